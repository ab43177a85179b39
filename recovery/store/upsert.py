"""INSERT .. ON CONFLICT DO NOTHING for SQLite and PostgreSQL: the database decides races.

SQLAlchemy never caches the compiled form of its dialect-specific ``insert().on_conflict_..``
constructs, and compiling one cost more than executing it. Both databases accept the same
statement (``INSERT .. ON CONFLICT (..) DO NOTHING RETURNING ..``; SQLite since 3.35), so it
is written once per shape as a typed ``text()`` statement, which SQLAlchemy compiles once and
caches; the column types still convert the values (JSON, aware datetimes, booleans).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import TextualSelect

SUPPORTED = frozenset({"postgresql", "sqlite"})

# Values for the columns a caller left out that have a Python-side default, as SQLAlchemy
# would have filled them in.
Defaults = tuple[tuple[str, Callable[[], Any]], ...]


def _quote(name: str) -> str:
    # Quoted identifiers mean the same on both databases for the names SQLAlchemy created.
    return '"' + name.replace('"', '""') + '"'


def _default_value(arg: Any) -> Callable[[], Any]:
    return lambda: arg


def _default_call(arg: Callable[[Any], Any]) -> Callable[[], Any]:
    # SQLAlchemy wraps a no-argument default so that it takes the execution context.
    return lambda: arg(None)


@lru_cache(maxsize=256)
def insert_ignore_statement(
    table: Table, keys: tuple[str, ...], conflict: tuple[str, ...], returning: str
) -> tuple[TextualSelect, Defaults] | None:
    """The statement for ``insert_ignore`` given the value keys, and the defaults to add; None
    when a left-out column has a default only SQLAlchemy's own insert can render (a SQL
    expression or a sequence)."""
    defaults: list[tuple[str, Callable[[], Any]]] = []
    for column in table.columns:
        default = column.default
        if column.key in keys or default is None:
            continue
        arg: Any = getattr(default, "arg", None)
        if default.is_scalar:
            defaults.append((column.key, _default_value(arg)))
        elif default.is_callable:
            defaults.append((column.key, _default_call(arg)))
        else:
            return None
    names = [*keys, *(key for key, _ in defaults)]
    target = _quote(table.name)
    if table.schema is not None:
        target = f"{_quote(table.schema)}.{target}"
    sql = (
        f"INSERT INTO {target} ({', '.join(_quote(table.c[key].name) for key in names)}) "
        f"VALUES ({', '.join(':' + key for key in names)}) "
        f"ON CONFLICT ({', '.join(_quote(table.c[key].name) for key in conflict)}) DO NOTHING "
        f"RETURNING {_quote(table.c[returning].name)}"
    )
    stmt = (
        text(sql)
        .bindparams(*(bindparam(key, type_=table.c[key].type) for key in names))
        .columns(table.c[returning])
    )
    return stmt, tuple(defaults)


def _uncached(
    dialect: str, table: Table, values: Mapping[str, Any], conflict: Sequence[str], returning: str
) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(table.c[returning])
    )


def insert_ignore(
    session: Session | Connection,
    table: Table,
    values: Mapping[str, Any],
    *,
    conflict: Sequence[str],
    returning: str = "id",
) -> Any | None:
    """Insert one row unless a row with the same ``conflict`` columns exists.

    Returns the ``returning`` column of the inserted row, or None when it already existed."""
    bind = session.get_bind() if isinstance(session, Session) else session
    dialect = bind.dialect.name
    if dialect not in SUPPORTED:  # pragma: no cover - the store supports these two
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    cached = insert_ignore_statement(table, tuple(values), tuple(conflict), returning)
    if cached is None:
        stmt: Any = _uncached(dialect, table, values, conflict, returning)
        return session.execute(stmt).scalar_one_or_none()
    stmt, defaults = cached
    params = dict(values)
    for key, make in defaults:
        params[key] = make()
    return session.execute(stmt, params).scalar_one_or_none()


def insert_ignore_many(
    session: Session | Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: Sequence[str],
    returning: str = "id",
) -> dict[tuple[Any, ...], Any]:
    """Insert many rows (all with the same columns) in one multi-row statement, each unless a
    row with the same ``conflict`` columns exists: the inserted rows' ``returning`` column by
    their ``conflict`` values. A row left out is absent from the answer, as ``insert_ignore``
    answers None. Compiled once per call (not cached), which a batch amortises."""
    if not rows:
        return {}
    bind = session.get_bind() if isinstance(session, Session) else session
    dialect = bind.dialect.name
    if dialect not in SUPPORTED:  # pragma: no cover - the store supports these two
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(table)
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(table.c[returning], *(table.c[name] for name in conflict))
    )
    result = session.execute(stmt, [dict(row) for row in rows])
    return {tuple(found[1:]): found[0] for found in result}

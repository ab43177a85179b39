"""INSERT .. ON CONFLICT DO NOTHING for SQLite and PostgreSQL: the database decides races."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Executable, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


@lru_cache(maxsize=128)
def insert_ignore_statement(
    dialect: str, table: Table, conflict: tuple[str, ...], returning: str
) -> Executable:
    """The statement for ``insert_ignore``, built once per shape.

    The values travel as execution parameters rather than ``.values()``, so the statement is the
    same object every time and SQLAlchemy's compiled cache answers instead of the compiler
    (building and compiling the dialect insert per call cost more than the insert itself)."""
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table)
    else:  # pragma: no cover - the store supports these two
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    result: Executable = stmt.on_conflict_do_nothing(index_elements=list(conflict)).returning(
        table.c[returning]
    )
    return result


def insert_ignore(
    session: Session,
    table: Table,
    values: Mapping[str, Any],
    *,
    conflict: Sequence[str],
    returning: str = "id",
) -> Any | None:
    """Insert one row unless a row with the same ``conflict`` columns exists.

    Returns the ``returning`` column of the inserted row, or None when it already existed."""
    stmt = insert_ignore_statement(
        session.get_bind().dialect.name, table, tuple(conflict), returning
    )
    return session.execute(stmt, dict(values)).scalar_one_or_none()

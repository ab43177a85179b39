"""INSERT .. ON CONFLICT DO NOTHING for SQLite and PostgreSQL: the database decides races."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


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
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(table).values(**values)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).values(**values)
    else:  # pragma: no cover - the store supports these two
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict)).returning(table.c[returning])
    return session.execute(stmt).scalar_one_or_none()

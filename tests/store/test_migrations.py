"""Alembic migrations create the schema the code expects, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from recovery.store.db import make_engine
from recovery.store.migrate import (
    SchemaNotReady,
    current_revision,
    ensure_schema,
    head_revision,
    redact_url,
    upgrade,
)
from recovery.store.tables import Base


def test_upgrade_creates_every_table_and_is_repeatable(db_url: str) -> None:
    with pytest.raises(SchemaNotReady, match="recovery db upgrade"):
        ensure_schema(db_url)
    upgrade(db_url)
    upgrade(db_url)
    assert current_revision(db_url) == head_revision(db_url)
    ensure_schema(db_url)
    engine = make_engine(db_url)
    names = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {t.name for t in Base.metadata.sorted_tables} <= names


def test_migrations_match_the_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    upgrade(db_url)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_redact_url() -> None:
    assert (
        redact_url("postgresql+psycopg://app:s3cret@db:5432/x")
        == "postgresql+psycopg://app:***@db:5432/x"
    )
    assert redact_url("sqlite:///data/recovery.db") == "sqlite:///data/recovery.db"

"""The embedded Prefect server's SQLite connections wait at most the bounded busy timeout for
a lock (Prefect's own set-up says 60 s), checked on connections made by Prefect's own SQLite
configuration; a bad setting is refused with a message naming it; a new default database
begins as a copy of the migrated template, and nothing else is touched."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from prefect.server.database.configurations import AioSqliteConfiguration
from prefect.settings import (
    PREFECT_HOME,
    PREFECT_SERVER_DATABASE_CONNECTION_URL,
    temporary_settings,
)
from sqlalchemy import text

from recovery.embedded import prefect_server
from recovery.embedded.prefect_server import (
    BUSY_TIMEOUT_ENV,
    bound_busy_timeout,
    busy_timeout_ms,
    default_database,
    seed_from_template,
)


async def _busy_timeout_of_a_new_connection(path: Path) -> int:
    config = AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{path}")
    engine = await config.engine()
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text("PRAGMA busy_timeout"))).scalar_one())
    finally:
        await engine.dispose()


def test_prefects_sqlite_connections_take_the_bounded_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prefect's own set-up first: its timeout is not ours.
    before = asyncio.run(_busy_timeout_of_a_new_connection(tmp_path / "before.db"))
    assert before != 2500
    original = AioSqliteConfiguration.setup_sqlite
    monkeypatch.setattr(AioSqliteConfiguration, "setup_sqlite", original)
    assert bound_busy_timeout(2500)
    after = asyncio.run(_busy_timeout_of_a_new_connection(tmp_path / "after.db"))
    assert after == 2500


@pytest.mark.parametrize(
    ("value", "expected"), [("", 2000), ("2", 2000), ("0.25", 250), (" 60 ", 60000)]
)
def test_the_busy_timeout_setting_is_read_in_seconds(value: str, expected: int) -> None:
    assert busy_timeout_ms({BUSY_TIMEOUT_ENV: value}) == expected
    assert busy_timeout_ms({}) == prefect_server.DEFAULT_BUSY_TIMEOUT_SECONDS * 1000


@pytest.mark.parametrize("value", ["soon", "0", "61", "-1", "nan"])
def test_a_bad_busy_timeout_is_refused_with_its_name(value: str) -> None:
    with pytest.raises(SystemExit) as refused:
        busy_timeout_ms({BUSY_TIMEOUT_ENV: value})
    assert BUSY_TIMEOUT_ENV in str(refused.value)


def _template(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE alembic_version (version_num TEXT)")
        db.execute("INSERT INTO alembic_version VALUES ('head')")
    return path


def test_a_new_default_database_begins_as_a_copy_of_the_migrated_template(
    tmp_path: Path,
) -> None:
    template = _template(tmp_path / "template.db")
    home = tmp_path / "home"
    with temporary_settings(
        {PREFECT_HOME: home}, restore_defaults={PREFECT_SERVER_DATABASE_CONNECTION_URL}
    ):
        assert default_database() == home / "prefect.db"
        assert seed_from_template(template)
        with sqlite3.connect(home / "prefect.db") as db:
            assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("head",)]
        # A database that exists is never replaced.
        assert not seed_from_template(template)


def test_a_database_of_ones_own_or_a_missing_template_is_left_to_prefect(tmp_path: Path) -> None:
    template = _template(tmp_path / "template.db")
    own = f"sqlite+aiosqlite:///{tmp_path / 'own.db'}"
    with temporary_settings(
        {PREFECT_HOME: tmp_path / "home", PREFECT_SERVER_DATABASE_CONNECTION_URL: own}
    ):
        assert default_database() is None
        assert not seed_from_template(template)
    assert not (tmp_path / "own.db").exists()
    with temporary_settings(
        {PREFECT_HOME: tmp_path / "home2"},
        restore_defaults={PREFECT_SERVER_DATABASE_CONNECTION_URL},
    ):
        assert not seed_from_template(tmp_path / "missing.db")
        assert not (tmp_path / "home2" / "prefect.db").exists()

"""The embedded Prefect server's SQLite connections wait at most the bounded busy timeout for
a lock (Prefect's own set-up says 60 s), checked on connections made by Prefect's own SQLite
configuration; and a bad setting is refused with a message naming it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prefect.server.database.configurations import AioSqliteConfiguration
from sqlalchemy import text

from recovery.embedded import prefect_server
from recovery.embedded.prefect_server import BUSY_TIMEOUT_ENV, bound_busy_timeout, busy_timeout_ms


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
    ("value", "expected"), [("", 5000), ("2", 2000), ("0.25", 250), (" 60 ", 60000)]
)
def test_the_busy_timeout_setting_is_read_in_seconds(value: str, expected: int) -> None:
    assert busy_timeout_ms({BUSY_TIMEOUT_ENV: value}) == expected
    assert busy_timeout_ms({}) == prefect_server.DEFAULT_BUSY_TIMEOUT_SECONDS * 1000


@pytest.mark.parametrize("value", ["soon", "0", "61", "-1", "nan"])
def test_a_bad_busy_timeout_is_refused_with_its_name(value: str) -> None:
    with pytest.raises(SystemExit) as refused:
        busy_timeout_ms({BUSY_TIMEOUT_ENV: value})
    assert BUSY_TIMEOUT_ENV in str(refused.value)

"""The embedded Prefect server's SQLite connections wait at most the bounded busy timeout for
a lock (Prefect's own set-up says 60 s), checked on connections made by Prefect's own SQLite
configuration; a bad setting is refused with a message naming it; a new default database
begins as a copy of the migrated template, and nothing else is touched."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
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


_EVENT_STORAGE_CHECK = """
import asyncio, sys, uuid
from datetime import datetime, timezone

from recovery.embedded.prefect_server import batch_sqlite_event_writes, plain_event_rows

assert batch_sqlite_event_writes() and (sys.argv[1:] != ["plain"] or plain_event_rows())
from prefect.server.database import provide_database_interface
from prefect.server.events.schemas.events import Event
from prefect.server.events.storage.database import write_events


def event(n):
    return Event(
        id=uuid.uuid4(),
        occurred=datetime(2026, 12, 7, 17, n, tzinfo=timezone.utc),
        event="recovery.contact.created",
        resource={
            "prefect.resource.id": f"recovery.case.stripe:in_{n}",
            "recovery.gateway": "stripe",
        },
        related=[
            {
                "prefect.resource.id": f"prefect.flow-run.{uuid.uuid4()}",
                "prefect.resource.role": "flow-run",
            },
            {"prefect.resource.id": "prefect.tag.demo", "prefect.resource.role": "tag"},
        ],
        payload={"attempt": "1"},
    ).receive()


async def main():
    db = provide_database_interface()
    batch = [event(n) for n in range(3)]
    for _ in range(2):  # the same events delivered twice are stored once
        async with db.session_context(begin_transaction=True) as session:
            await write_events(session=session, events=batch)
    async with db.session_context(begin_transaction=True) as session:
        await write_events(session=session, events=[event(3)])

asyncio.run(main())
"""


@pytest.mark.parametrize("rows", ["as prefect gives them", "plain"])
def test_events_are_stored_on_sqlite_once_each_with_their_resources(
    tmp_path: Path, rows: str
) -> None:
    """Prefect's server, its event storage replaced (``batch_sqlite_event_writes``), stores a
    batch with one statement per table: every event once (a batch delivered twice adds
    nothing), each with a row for its resource and one per related resource; the same with
    the rows' datetimes made plain (``plain_event_rows``)."""
    template = prefect_server.template_path()
    if not template.is_file():
        pytest.skip("no migrated template: run `make install`")
    database = tmp_path / "prefect.db"
    prefect_server._copy_database(template, database)
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{database}",
    }
    env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", _EVENT_STORAGE_CHECK, *(["plain"] if rows == "plain" else [])],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with closing(sqlite3.connect(database)) as connection:
        events = connection.execute("SELECT resource_id FROM events ORDER BY occurred").fetchall()
        roles = connection.execute(
            "SELECT resource_role, count(*) FROM event_resources GROUP BY resource_role"
        ).fetchall()
    assert [e[0] for e in events] == [f"recovery.case.stripe:in_{n}" for n in range(4)]
    assert dict(roles) == {"": 4, "flow-run": 4, "tag": 4}
    with closing(sqlite3.connect(database)) as connection:
        stored = connection.execute(
            "SELECT e.occurred, r.occurred, e.created FROM events e JOIN event_resources r "
            "ON r.event_id = e.id AND r.resource_role = '' ORDER BY e.occurred"
        ).fetchall()
    # The same instants whichever datetimes the rows held; each row's creation time is set.
    assert [(o[:16], r[:16]) for o, r, _ in stored] == [
        (f"2026-12-07 17:0{n}", f"2026-12-07 17:0{n}") for n in range(4)
    ]
    assert all(created for _, _, created in stored)


_ROWS_CHECK = """
import json
from datetime import datetime, timedelta, timezone
import uuid

from prefect.server.events.schemas.events import Event

INDIA = timezone(timedelta(hours=5, minutes=30))

def rows():
    received = Event(
        id=uuid.uuid4(),
        occurred=datetime(2026, 12, 7, 23, 5, 9, 123456, tzinfo=INDIA),
        event="recovery.contact.created",
        resource={"prefect.resource.id": "recovery.case.stripe:in_1"},
        related=[{"prefect.resource.id": "prefect.tag.demo", "prefect.resource.role": "tag"}],
    ).receive()
    return received.occurred, received.as_database_row(), received.as_database_resource_rows()

def described(value):
    return [type(value).__module__ + "." + type(value).__name__, value.isoformat()]

before = rows()
from recovery.embedded.prefect_server import plain_event_rows
assert plain_event_rows() and plain_event_rows()
occurred, row, resources = rows()
out = {"before": described(before[1]["occurred"]), "occurred": described(occurred)}
out["row"], out["resources"] = {}, []
for key, value in row.items():
    if isinstance(value, datetime):
        out["row"][key] = described(value)
for resource in resources:
    times = {k: described(v) for k, v in resource.items() if isinstance(v, datetime)}
    out["resources"].append(times)
print(json.dumps(out))
"""


def test_the_rows_stored_for_an_event_hold_plain_datetimes_of_the_same_instants() -> None:
    """With ``plain_event_rows``, every datetime of an event's rows is a ``datetime`` (not
    Prefect's ``pendulum`` one, slow to encode for PostgreSQL), of the same instant and offset,
    and each row says when it was created."""
    done = subprocess.run(
        [sys.executable, "-c", _ROWS_CHECK], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    plain = "datetime.datetime"
    occurred = found["occurred"][1]
    assert occurred == "2026-12-07T23:05:09.123456+05:30"
    # What Prefect gives (a pendulum datetime on this Python), the same instant.
    assert found["before"][1] == occurred
    assert found["row"]["occurred"] == [plain, occurred]
    assert {"occurred", "received", "recorded", "created", "updated"} <= set(found["row"])
    assert all(kind == plain for kind, _ in found["row"].values())
    assert found["resources"] and all(
        resource["occurred"] == [plain, occurred]
        and {"created", "updated"} <= set(resource)
        and all(kind == plain for kind, _ in resource.values())
        for resource in found["resources"]
    )


_SETTINGS_CHECK = """
import pydantic
from recovery.embedded.prefect_server import settle_event_settings

assert settle_event_settings()
from prefect.server.events.schemas import events
from prefect.settings import get_current_settings

assert events.get_current_settings() is events.get_current_settings()
limit = get_current_settings().server.events.maximum_labels_per_resource
def labels(count):
    return {"prefect.resource.id": "x", **{f"l{n}": "v" for n in range(count)}}

events.Resource.model_validate(labels(limit - 1))
try:
    events.Resource.model_validate(labels(limit))
except pydantic.ValidationError as exc:
    assert "maximum number of labels" in str(exc)
else:
    raise AssertionError("a resource over the label limit was taken")
most = events.PREFECT_EVENTS_MAXIMUM_RELATED_RESOURCES.value()
related = [{"prefect.resource.id": f"r{n}", "prefect.resource.role": "r"} for n in range(most + 1)]
try:
    events.Event.model_validate(
        {"occurred": "2026-12-07T17:00:00Z", "event": "e", "resource": {"prefect.resource.id": "x"},
         "related": related, "id": "00000000-0000-0000-0000-000000000001"}
    )
except pydantic.ValidationError as exc:
    assert "related" in str(exc)
else:
    raise AssertionError("an event over the related-resource limit was taken")
print(limit, most)
"""


def test_event_schemas_read_the_settings_once_and_still_enforce_their_limits() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SETTINGS_CHECK], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    limit, most = map(int, done.stdout.split())
    assert limit > 1 and most > 1


_TRANSACTION_CHECK = """
import asyncio, sqlite3, sys

import sqlalchemy as sa

from recovery.embedded.prefect_server import immediate_sqlite_transactions

if sys.argv[1] == "immediate":
    assert immediate_sqlite_transactions()
from prefect.server.database import provide_database_interface


async def main():
    db = provide_database_interface()
    async with db.session_context(begin_transaction=True) as session:
        await session.execute(sa.text("SELECT 1"))  # a read, no write yet
        other = sqlite3.connect(sys.argv[2], timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            print("locked" if "locked" in str(exc) else str(exc))
        else:
            print("free")
            other.rollback()
        finally:
            other.close()

asyncio.run(main())
"""


@pytest.mark.parametrize(("mode", "expected"), [("immediate", "locked"), ("prefect", "free")])
def test_a_server_transaction_takes_the_write_lock_as_it_begins(
    tmp_path: Path, mode: str, expected: str
) -> None:
    """With ``immediate_sqlite_transactions`` a transaction of Prefect's server holds SQLite's
    write lock from its first statement, a read (so a read-then-write cannot be refused at its
    write); as Prefect begins them, the lock is still free after the read."""
    database = tmp_path / "prefect.db"
    sqlite3.connect(database).close()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{database}",
    }
    env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", _TRANSACTION_CHECK, mode, str(database)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == expected

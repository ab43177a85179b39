"""``python -m recovery.embedded.prefect_server start ...``: ``prefect server start`` for the
embedded default, tuned for SQLite under the flows' load.

Prefect's server on SQLite sets ``PRAGMA busy_timeout`` to 60 s on every connection (not a
setting). Under the flows' load a write can then wait for the file's lock while another
connection's transaction waits for the server's event loop, and the loop itself can wait for the
first connection (CPython's ``sqlite3`` resets a statement without releasing the GIL when a
cursor is freed): the whole server stands still until the 60 s run out, and every flow run's
state change, task run and rate-limit slot waits with it. With the timeout at
``RECOVERY_PREFECT_SQLITE_BUSY_TIMEOUT_SECONDS`` (2 s) such a wait ends in seconds; the write
that gave up is retried by its service (task runs and events are re-queued) or by its client
(the server answers 503, which Prefect's clients and the request budget try again).

A transaction of Prefect's server on SQLite begins ``DEFERRED`` unless its caller asks for a lock:
it reads, then writes, and if another connection committed in between (the event persister
commits several times a second under load) SQLite refuses the write at once (``SQLITE_BUSY``,
no wait), and the server answers 503. The rate-limit acquisitions (read the limit, then take
slots) met that on most tries at a thousand events a second, and waited out the retries: the
flows' sends stood still for seconds at a time. Here every transaction of the server begins
``IMMEDIATE``, as Prefect's own set-up recommends for a transaction that reads then writes: it
waits its turn for the write lock (the busy timeout above) instead of failing. Reads outside a
transaction are unchanged.

Events are stored as on PostgreSQL. On SQLite, Prefect's server writes a batch of events as one
``INSERT ... VALUES`` statement with a row of parameters per event and per resource, built and
compiled anew for every batch (the statement differs with each batch's size): at a thousand
events a second that compilation alone took a fifth of the server's CPU. Here a batch is written
as PostgreSQL's is, one compiled statement executed for many rows (``executemany``), after the
same look for events already stored (an event delivered twice is stored once).

Every resource of every event is checked against two of the server's settings (at most so many
labels, so many related resources), each read anew from the settings at every check; an event
is parsed once by the API and once more by each of the server's four consumers of events. At a
thousand events a second those reads took a tenth of the server's CPU. Here the event schemas
read the server's settings once, as the server itself reads them at start (they do not change
while it runs); the limits are enforced as before.

The rows stored for an event hold plain datetimes. On Python 3.11 and 3.12 Prefect's server
parses an event's times as ``pendulum`` datetimes, and the rows it stores carry them (when the
event occurred, was received, was recorded, and each row's creation, by default a new
``pendulum`` datetime too); PostgreSQL's driver encodes a datetime by subtracting its epoch from
it, which for a ``pendulum`` datetime builds an interval of calendar units: a fifth of the
server's CPU at a thousand events a second on PostgreSQL. Here each row's datetimes are the same
instants as ``datetime`` values, and its creation time is given (when the row is written, as
before).

Only these five change; everything else is Prefect's own ``prefect server start``. On a Prefect
whose SQLite set-up, transactions, event storage or event schemas this module does not
recognise, the server starts with that part unchanged (with a warning). Every change but the
SQLite ones applies on PostgreSQL too.

A new SQLite database takes Prefect a quarter of a minute of migrations on first start. ``python
-m recovery.embedded.prefect_server template`` (which ``make install`` runs) migrates an empty
database once, beside this interpreter (``<sys.prefix>/prefect-<version>-empty.db``); ``start``
then begins a new database as a copy of it (Prefect's migrations find it at their head). Without
the template, or with a database of one's own (``PREFECT_SERVER_DATABASE_CONNECTION_URL``), the
server starts as Prefect starts it."""

from __future__ import annotations

import functools
import os
import sqlite3
import subprocess
import sys
import tempfile
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from datetime import UTC, datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

BUSY_TIMEOUT_ENV = "RECOVERY_PREFECT_SQLITE_BUSY_TIMEOUT_SECONDS"
DEFAULT_BUSY_TIMEOUT_SECONDS = 2.0


def busy_timeout_ms(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    """The busy timeout to set, in milliseconds (from ``BUSY_TIMEOUT_ENV``; 0.1 s to 60 s)."""
    raw = environ.get(BUSY_TIMEOUT_ENV, "")
    try:
        seconds = float(raw) if raw.strip() else DEFAULT_BUSY_TIMEOUT_SECONDS
    except ValueError:
        raise SystemExit(f"{BUSY_TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if not 0.1 <= seconds <= 60:
        raise SystemExit(f"{BUSY_TIMEOUT_ENV}={raw!r} must lie between 0.1 and 60 seconds")
    return int(seconds * 1000)


def bound_busy_timeout(milliseconds: int) -> bool:
    """Have every SQLite connection of Prefect's server wait at most ``milliseconds`` for a
    lock (after Prefect's own set-up of the connection); whether it could be done."""
    try:
        from prefect.server.database.configurations import AioSqliteConfiguration
    except ImportError:
        return False
    original = getattr(AioSqliteConfiguration, "setup_sqlite", None)
    if original is None:
        return False

    def setup_sqlite(self: Any, conn: Any, record: Any) -> None:
        original(self, conn, record)
        cursor = conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(milliseconds)};")
        cursor.close()

    AioSqliteConfiguration.setup_sqlite = setup_sqlite  # type: ignore[method-assign]
    return True


def immediate_sqlite_transactions() -> bool:
    """Have every transaction of Prefect's server on SQLite begin ``IMMEDIATE`` (see the
    module's docstring); whether it could be done."""
    try:
        from prefect.server.database import configurations
    except ImportError:
        return False
    config: Any = getattr(configurations, "AioSqliteConfiguration", None)
    mode: Any = getattr(configurations, "SQLITE_BEGIN_MODE", None)
    if config is None or mode is None or not hasattr(config, "begin_transaction"):
        return False

    @asynccontextmanager
    async def begin_transaction(
        self: Any, session: Any, with_for_update: bool = False
    ) -> AsyncIterator[Any]:
        token = mode.set("IMMEDIATE")
        try:
            async with session.begin() as transaction:
                yield transaction
        finally:
            mode.reset(token)

    config.begin_transaction = begin_transaction
    return True


def batch_sqlite_event_writes() -> bool:
    """Have Prefect's server store events on SQLite with one compiled statement per table for a
    whole batch (``executemany``), as it does on PostgreSQL; whether it could be done."""
    try:
        import sqlalchemy as sa
        from prefect.server.database import db_injector
        from prefect.server.events.storage import database as storage
    except ImportError:
        return False
    needed = ("_write_sqlite_events", "_in_safe_batches")
    if not all(hasattr(storage, name) for name in needed):
        return False

    @db_injector
    async def _write_sqlite_events(db: Any, session: Any, events: list[Any]) -> None:
        event_table, resource_table = db.Event.__table__, db.EventResource.__table__
        for batch in storage._in_safe_batches(events):
            ids = {event.id for event in batch}
            stored = set(
                (await session.scalars(sa.select(db.Event.id).where(db.Event.id.in_(ids)))).all()
            )
            fresh = [event for event in batch if event.id not in stored]
            if not fresh:
                continue
            await session.execute(sa.insert(event_table), [e.as_database_row() for e in fresh])
            resources = [row for event in fresh for row in event.as_database_resource_rows()]
            if resources:
                await session.execute(sa.insert(resource_table), resources)

    storage._write_sqlite_events = _write_sqlite_events
    return True


def settle_event_settings() -> bool:
    """Have the server's event schemas read its settings once (see the module's docstring);
    whether it could be done."""
    try:
        from prefect.server.events.schemas import events
    except ImportError:
        return False
    schemas: Any = events
    needed = ("get_current_settings", "PREFECT_EVENTS_MAXIMUM_RELATED_RESOURCES")
    if not all(hasattr(schemas, name) for name in needed):
        return False
    schemas.get_current_settings = functools.cache(schemas.get_current_settings)
    related = schemas.PREFECT_EVENTS_MAXIMUM_RELATED_RESOURCES
    schemas.PREFECT_EVENTS_MAXIMUM_RELATED_RESOURCES = SimpleNamespace(
        value=functools.cache(related.value)
    )
    return True


def _plain_datetime(value: datetime) -> datetime:
    """The same instant as a ``datetime`` (a ``pendulum`` one, or another subclass, rebuilt)."""
    if type(value) is datetime:
        return value
    offset = value.utcoffset()
    zone = None if offset is None else (UTC if not offset else timezone(offset))
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=zone,
        fold=value.fold,
    )


def _plain_row(row: dict[str, Any], written: datetime) -> dict[str, Any]:
    plain = {k: _plain_datetime(v) if isinstance(v, datetime) else v for k, v in row.items()}
    plain.setdefault("created", written)
    plain.setdefault("updated", written)
    return plain


def plain_event_rows() -> bool:
    """Have the rows Prefect's server stores for an event hold plain datetimes (see the
    module's docstring); whether it could be done."""
    try:
        from prefect.server.events.schemas.events import ReceivedEvent
    except ImportError:
        return False
    schema: Any = ReceivedEvent
    row = getattr(schema, "as_database_row", None)
    resource_rows = getattr(schema, "as_database_resource_rows", None)
    if row is None or resource_rows is None:
        return False
    if getattr(row, "plain_datetimes", False):
        return True

    def as_database_row(self: Any) -> dict[str, Any]:
        return _plain_row(row(self), datetime.now(UTC))

    def as_database_resource_rows(self: Any) -> list[dict[str, Any]]:
        written = datetime.now(UTC)
        return [_plain_row(resource, written) for resource in resource_rows(self)]

    as_database_row.plain_datetimes = True  # type: ignore[attr-defined]
    schema.as_database_row = as_database_row
    schema.as_database_resource_rows = as_database_resource_rows
    return True


def template_path() -> Path:
    """Where the migrated empty database of this Prefect version lies."""
    import prefect

    return Path(sys.prefix) / f"prefect-{prefect.__version__}-empty.db"


def build_template(path: Path | None = None) -> Path:
    """Migrate an empty SQLite database with Prefect's own migrations (``prefect server
    database upgrade``) and keep it at ``path`` (replaced atomically); its path."""
    path = path or template_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as work:
        fresh = Path(work) / "prefect.db"
        env = {
            **os.environ,
            "PREFECT_HOME": work,
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{fresh}",
        }
        env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
        subprocess.run(
            [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
            env=env,
            check=True,
            capture_output=True,
        )
        staged = Path(work) / "template.db"
        _copy_database(fresh, staged)
        os.replace(staged, path)
    return path


def _copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (its write-ahead log included), in one file."""
    # A connection's own ``with`` only commits: closing() closes both before the file moves.
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def default_database() -> Path | None:
    """The SQLite file Prefect's server would use here, when it is Prefect's default one (in
    ``PREFECT_HOME``); None for a database of one's own."""
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url
    value = url.get_secret_value() if url is not None else ""
    home = get_current_settings().home
    expected = home / "prefect.db"
    prefix = "sqlite+aiosqlite:///"
    if value.startswith(prefix) and Path(value.removeprefix(prefix)) == expected:
        return expected
    return None


def seed_from_template(template: Path | None = None) -> bool:
    """Begin a new default database as a copy of the migrated template; whether it was."""
    database = default_database()
    template = template or template_path()
    if database is None or database.exists() or not template.is_file():
        return False
    database.parent.mkdir(parents=True, exist_ok=True)
    staged = database.with_name(database.name + ".seeding")
    _copy_database(template, staged)
    os.replace(staged, database)
    return True


def main() -> None:
    if sys.argv[1:2] == ["template"]:
        print(f"migrated empty Prefect database: {build_template()}")  # noqa: T201
        return
    milliseconds = busy_timeout_ms()
    if not bound_busy_timeout(milliseconds):
        warnings.warn(
            "this Prefect's SQLite set-up is not recognised: its busy timeout is left as is",
            stacklevel=1,
        )
    if not immediate_sqlite_transactions():
        warnings.warn(
            "this Prefect's SQLite transactions are not recognised: they begin as it begins them",
            stacklevel=1,
        )
    if not batch_sqlite_event_writes():
        warnings.warn(
            "this Prefect's event storage is not recognised: events are stored as it stores them",
            stacklevel=1,
        )
    if not settle_event_settings():
        warnings.warn(
            "this Prefect's event schemas are not recognised: they read the settings as they do",
            stacklevel=1,
        )
    if not plain_event_rows():
        warnings.warn(
            "this Prefect's event rows are not recognised: they hold the datetimes it gives them",
            stacklevel=1,
        )
    if sys.argv[1:2] == ["start"]:
        seed_from_template()
    from prefect.cli import app

    sys.argv = ["prefect", "server", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()

"""``python -m recovery.embedded.prefect_server start ...``: ``prefect server start`` for the
embedded default, with SQLite's busy timeout bounded.

Prefect's server on SQLite sets ``PRAGMA busy_timeout`` to 60 s on every connection (not a
setting). Under the flows' load a write can then wait for the file's lock while another
connection's transaction waits for the server's event loop, and the loop itself can wait for the
first connection (CPython's ``sqlite3`` resets a statement without releasing the GIL when a
cursor is freed): the whole server stands still until the 60 s run out, and every flow run's
state change, task run and rate-limit slot waits with it. With the timeout at
``RECOVERY_PREFECT_SQLITE_BUSY_TIMEOUT_SECONDS`` (5 s) such a wait ends in seconds; the write
that gave up is retried by its service (task runs and events are re-queued) or by its client
(the server answers 503, which Prefect's clients and the request budget try again).

Only the busy timeout changes; everything else is Prefect's own ``prefect server start``. On a
Prefect whose SQLite set-up this module does not recognise, the server starts unchanged (with a
warning)."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

BUSY_TIMEOUT_ENV = "RECOVERY_PREFECT_SQLITE_BUSY_TIMEOUT_SECONDS"
DEFAULT_BUSY_TIMEOUT_SECONDS = 5.0


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


def main() -> None:
    milliseconds = busy_timeout_ms()
    if not bound_busy_timeout(milliseconds):
        warnings.warn(
            "this Prefect's SQLite set-up is not recognised: its busy timeout is left as is",
            stacklevel=1,
        )
    from prefect.cli import app

    sys.argv = ["prefect", "server", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()

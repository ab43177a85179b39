"""The floor the receiver is measured against: a bare FastAPI route that stores the raw body
with one SQLite insert per request (WAL, a commit per insert), and nothing else.

It mirrors the receiver's plumbing where that plumbing is not the receiver's own work: the body
is read in the event loop, the blocking insert runs in Starlette's thread pool, and uvicorn runs
with the same settings as ``recovery api`` (one process, no access log, default loop and HTTP
implementation). Run it as ``python bench/baseline_app.py --port P --db FILE``.
"""

from __future__ import annotations

import argparse
import sqlite3
import threading
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    signature TEXT,
    body BLOB NOT NULL
)
"""


def create_app(db_path: Path) -> FastAPI:
    """The baseline app writing to ``db_path`` (created if missing)."""
    local = threading.local()

    def connection() -> sqlite3.Connection:
        # One connection per pool thread, the way a connection pool would hand them out.
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(db_path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            local.conn = conn
        return conn

    with sqlite3.connect(db_path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute(SCHEMA)

    def insert(body: bytes, signature: str | None) -> int:
        cursor = connection().execute(
            "INSERT INTO deliveries (received_at, signature, body) VALUES (?, ?, ?)",
            (time.time(), signature, body),
        )
        return int(cursor.lastrowid or 0)

    def ping() -> None:
        connection().execute("SELECT 1").fetchone()

    app = FastAPI(title="Ingest baseline")

    @app.post("/webhooks/stripe")
    async def webhook(request: Request) -> dict[str, str]:
        body = await request.body()
        row_id = await run_in_threadpool(insert, body, request.headers.get("stripe-signature"))
        return {"status": "recorded", "id": str(row_id)}

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        await run_in_threadpool(ping)
        return JSONResponse({"status": "ok"})

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True, help="SQLite file (created if missing)")
    args = parser.parse_args()
    # The same uvicorn.run arguments as the receiver's CLI command.
    uvicorn.run(
        create_app(args.db), host=args.host, port=args.port, log_level="info", access_log=False
    )


if __name__ == "__main__":
    main()

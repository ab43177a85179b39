"""Engines and sessions. Nothing is built at import time: callers pass the URL in."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from recovery.domain.fingerprint import Fingerprint


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for the store; SQLite gets WAL with a sync at every commit, a busy timeout and
    foreign keys.

    Statement parameters are never rendered into error messages: they hold phone numbers and
    names, and errors end up in logs and in the inbox's error column."""
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connect_args = kwargs.pop("connect_args", {})
        # How long a writer waits for the file lock: ``?timeout=S`` in the URL, else 30 s.
        timeout = float(connect_args.get("timeout", make_url(url).query.get("timeout", 30)))
        connect_args["timeout"] = timeout
        connect_args.setdefault("check_same_thread", False)
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Autocommit mode off in the driver; we issue BEGIN ourselves so that
            # "BEGIN IMMEDIATE" can take the write lock up front and avoid upgrade deadlocks.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL syncs the WAL at every commit: a commit the receiver acknowledges (an inbox
            # row, a disposition) survives an OS crash or a power cut, which NORMAL does not
            # promise. The inbox writer commits many rows at once, so the sync is shared.
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        _WRITERS[engine] = threading.RLock()
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def make_sessionmaker(
    engine: Engine, *, fingerprint: Fingerprint | None = None
) -> sessionmaker[Session]:
    """Sessions on the store. ``fingerprint``: the keyed fingerprint erased personal data was
    replaced with, so that lookups (a suppressed number) match erased rows too; the runtime
    gives it, read from the settings."""
    info = {FINGERPRINT: fingerprint} if fingerprint is not None else {}
    return sessionmaker(engine, expire_on_commit=False, info=info)


FINGERPRINT = "recovery.fingerprint"


def fingerprint_of(session: Session) -> Fingerprint | None:
    """The store's fingerprint of erased personal data, when its sessions were given one."""
    found = session.info.get(FINGERPRINT)
    return found if callable(found) else None


# A SQLite store has one writer at a time, and every transaction begins by taking the write lock
# (``BEGIN IMMEDIATE``). SQLite's own wait for it polls, sleeping up to a tenth of a second
# between looks, so threads of one process that take turns through it lose most of a
# transaction's time asleep after the lock was free. Threads of one process take their turns in
# this lock instead, handed on the moment a transaction ends; other processes still wait as
# SQLite waits (the busy timeout).
_WRITERS: WeakKeyDictionary[Engine, threading.RLock] = WeakKeyDictionary()


def writer_turn(factory: sessionmaker[Session]) -> AbstractContextManager[object]:
    """This process's turn at a SQLite store's write lock (nothing to wait for on PostgreSQL)."""
    bind = factory.kw.get("bind")
    lock = _WRITERS.get(bind) if isinstance(bind, Engine) else None
    return lock if lock is not None else nullcontext()


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception. On SQLite the threads
    of this process take their turns (``writer_turn``)."""
    with writer_turn(factory), factory() as session, session.begin():
        yield session

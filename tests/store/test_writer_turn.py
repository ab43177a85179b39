"""Threads of one process take turns at a SQLite store's write lock (``store.db.writer_turn``)
instead of polling SQLite's lock with sleeps: every transaction succeeds even when the busy
timeout is far shorter than the queue of writers ahead of it, and another process still meets
SQLite's own lock."""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from recovery.store.db import make_engine, make_sessionmaker, transaction, writer_turn

THREADS = 4
TRANSACTIONS = 15
HOLD_SECONDS = 0.02  # each transaction holds the write lock this long


def test_writers_of_one_process_take_turns_past_a_short_busy_timeout(tmp_path: Path) -> None:
    # A busy timeout of 5 ms: four writers that each hold the lock 20 ms would time out at
    # SQLite's lock ("database is locked") if they met there.
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}?timeout=0.005")
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as session:
        session.execute(text("CREATE TABLE counter (n INTEGER)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))
    failures: list[BaseException] = []

    def write() -> None:
        for _ in range(TRANSACTIONS):
            try:
                with transaction(sessions) as session:
                    n = session.execute(text("SELECT n FROM counter")).scalar_one()
                    time.sleep(HOLD_SECONDS)
                    session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                failures.append(exc)

    threads = [threading.Thread(target=write) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        with sessions() as session:
            assert session.execute(text("SELECT n FROM counter")).scalar_one() == (
                THREADS * TRANSACTIONS
            )
    finally:
        engine.dispose()


def test_a_writer_outside_the_turns_still_meets_sqlites_lock(tmp_path: Path) -> None:
    """Another engine on the same file (as another process would be) is not in this engine's
    turns: while a transaction of the first holds the lock, its writes time out as SQLite's."""
    url = f"sqlite:///{tmp_path / 'store.db'}?timeout=0.05"
    first, second = make_engine(url), make_engine(url)
    try:
        with transaction(make_sessionmaker(first)) as session:
            session.execute(text("CREATE TABLE t (n INTEGER)"))
        with transaction(make_sessionmaker(first)) as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
            with pytest.raises(OperationalError, match="locked"):
                with transaction(make_sessionmaker(second)) as other:
                    other.execute(text("INSERT INTO t VALUES (2)"))
    finally:
        first.dispose()
        second.dispose()


def test_each_sqlite_engine_has_its_own_turns_and_postgresql_none(tmp_path: Path) -> None:
    one = make_engine(f"sqlite:///{tmp_path / 'one.db'}")
    two = make_engine(f"sqlite:///{tmp_path / 'two.db'}")
    postgres = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        turn_one = writer_turn(make_sessionmaker(one))
        assert turn_one is writer_turn(make_sessionmaker(one))
        assert turn_one is not writer_turn(make_sessionmaker(two))
        assert isinstance(writer_turn(make_sessionmaker(postgres)), nullcontext)
    finally:
        for engine in (one, two, postgres):
            engine.dispose()

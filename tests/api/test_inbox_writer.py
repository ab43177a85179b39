"""The inbox writer (group commit) against a real store: SQLite, and PostgreSQL when a URL is
given. A delivery is answered only after the transaction holding it committed; duplicates in
one batch are told apart; a failed transaction answers every request in it and writes nothing.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from recovery.api.app import create_app
from recovery.api.writer import InboxWriter, WriteFailed
from recovery.clock import FixedClock
from recovery.store.inbox import Delivery
from recovery.store.tables import InboxRow
from tests.factories import T0, invoice_failed, settings_for, stripe_headers


def delivery(event_id: str, kind: str = "failure") -> Delivery:
    return Delivery(
        gateway="stripe",
        event_id=event_id,
        event_type="invoice.payment_failed",
        kind=kind,
        payload={"gateway": "stripe", "event_id": event_id},
        pan_redacted=False,
        received_at=T0,
    )


def stored(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as s:
        return sorted(s.scalars(select(InboxRow.event_id)))


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def held(writer: InboxWriter, event_id: str) -> asyncio.Task[bool]:
    """Submit one delivery and wait until the writer has taken it into a transaction (which,
    with the store locked, then waits)."""
    taken = len(writer.batch_sizes)
    task = asyncio.create_task(writer.record(delivery(event_id)))
    await eventually(lambda: len(writer.batch_sizes) > taken)
    return task


@contextmanager
def store_locked(engine: Engine) -> Iterator[None]:
    """Hold the inbox's write lock from another connection, so the writer's next transaction
    waits and every delivery submitted meanwhile joins one batch."""
    with engine.connect() as conn:
        transaction = conn.begin()  # SQLite: BEGIN IMMEDIATE takes the database's write lock
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE webhook_inbox IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            transaction.rollback()


async def in_one_batch(
    writer: InboxWriter, engine: Engine, deliveries: list[Delivery]
) -> list[bool | BaseException]:
    """Submit ``deliveries`` while the writer is held on an earlier transaction, then let it go:
    they are written together, in one transaction."""
    with store_locked(engine):
        ahead = await held(writer, "evt_ahead")
        tasks = [asyncio.create_task(writer.record(d)) for d in deliveries]
        await eventually(lambda: writer.waiting == len(deliveries))
    assert await ahead is True
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert list(writer.batch_sizes)[-2:] == [1, len(deliveries)]
    return results


@contextmanager
def inbox_guard(engine: Engine) -> Iterator[None]:
    """A trigger standing for the store failing: on ``evt_boom`` the transaction fails as a
    whole (an error of the store, not of the row); on ``evt_refused`` the row is refused
    (a constraint)."""
    if engine.dialect.name == "sqlite":
        create = [
            "CREATE TRIGGER boom BEFORE INSERT ON webhook_inbox WHEN NEW.event_id = 'evt_boom' "
            "BEGIN SELECT abs(-9223372036854775808); END",  # SQLITE_ERROR: integer overflow
            "CREATE TRIGGER refuse BEFORE INSERT ON webhook_inbox "
            "WHEN NEW.event_id = 'evt_refused' BEGIN SELECT RAISE(ABORT, 'refused'); END",
        ]
        drop = ["DROP TRIGGER boom", "DROP TRIGGER refuse"]
    else:
        create = [
            """CREATE FUNCTION inbox_guard() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.event_id = 'evt_boom' THEN
                RAISE EXCEPTION 'out of disk' USING ERRCODE = '53100';
              END IF;
              IF NEW.event_id = 'evt_refused' THEN
                RAISE EXCEPTION 'refused' USING ERRCODE = '23514';
              END IF;
              RETURN NEW;
            END $$""",
            "CREATE TRIGGER inbox_guard BEFORE INSERT ON webhook_inbox "
            "FOR EACH ROW EXECUTE FUNCTION inbox_guard()",
        ]
        drop = ["DROP TRIGGER inbox_guard ON webhook_inbox", "DROP FUNCTION inbox_guard()"]
    with engine.begin() as conn:
        for statement in create:
            conn.exec_driver_sql(statement)
    try:
        yield
    finally:
        with engine.begin() as conn:
            for statement in drop:
                conn.exec_driver_sql(statement)


def test_one_event_many_times_in_one_batch_makes_one_row(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    writer = InboxWriter(engine)
    copies = [delivery("evt_same") for _ in range(20)]
    others = [delivery(f"evt_other_{i}") for i in range(5)]
    mixed = [copies[0], others[0], *copies[1:10], *others[1:], *copies[10:]]

    results = asyncio.run(in_one_batch(writer, engine, mixed))
    assert list(writer.batch_sizes) == [1, len(mixed)]
    by_event = [(d.event_id, r) for d, r in zip(mixed, results, strict=True)]
    same = [r for event, r in by_event if event == "evt_same"]
    assert same == [True] + [False] * 19  # the first in the batch is new, the rest duplicates
    assert [r for event, r in by_event if event != "evt_same"] == [True] * 5
    assert stored(sessions) == sorted(["evt_ahead", "evt_same", *(d.event_id for d in others)])
    assert writer.stop()


def test_concurrent_submissions_from_many_threads_and_loops(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Eight threads, each with its own event loop, race the same 30 events (and 10 of their
    own): every event is new exactly once, every other answer is a duplicate."""
    writer = InboxWriter(engine)
    shared = [f"evt_shared_{i}" for i in range(30)]

    def client(number: int) -> list[tuple[str, bool]]:
        own = [f"evt_own_{number}_{i}" for i in range(10)]
        events = shared[number % 3 :] + shared[: number % 3] + own

        async def send() -> list[bool]:
            return list(await asyncio.gather(*(writer.record(delivery(e)) for e in events)))

        return list(zip(events, asyncio.run(send()), strict=True))

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = [pair for result in pool.map(client, range(8)) for pair in result]
    new = [event for event, is_new in answers if is_new]
    assert sorted(new) == sorted(set(new))  # no event reported new twice
    assert set(new) == {event for event, _ in answers}  # and each once
    assert len(answers) == 8 * 40
    assert stored(sessions) == sorted(set(new))
    assert max(writer.batch_sizes) > 1  # the point of the writer: rows share transactions
    assert writer.stop()


def test_a_failing_transaction_fails_every_waiting_request_and_writes_nothing(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    writer = InboxWriter(engine)
    batch = [delivery("evt_ok_1"), delivery("evt_ok_2"), delivery("evt_boom"), delivery("evt_3")]

    with inbox_guard(engine):
        results = asyncio.run(in_one_batch(writer, engine, batch))
    assert len(results) == 4
    for result in results:
        assert isinstance(result, WriteFailed)
        assert isinstance(result.cause, OperationalError), result.cause
    # The rows inserted before the failure were rolled back with it.
    assert stored(sessions) == ["evt_ahead"]

    # The writer carries on: the same deliveries, sent again, are recorded.
    async def again() -> list[bool]:
        return list(await asyncio.gather(*(writer.record(d) for d in batch)))

    assert asyncio.run(again()) == [True] * 4
    assert stored(sessions) == sorted(["evt_ahead", *(d.event_id for d in batch)])
    assert writer.stop()


def test_a_row_the_store_refuses_fails_alone(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    writer = InboxWriter(engine)
    batch = [delivery("evt_a"), delivery("evt_refused"), delivery("evt_b"), delivery("evt_a")]

    with inbox_guard(engine):
        results = asyncio.run(in_one_batch(writer, engine, batch))
    assert results[0] is True and results[2] is True and results[3] is False
    refused = results[1]
    assert isinstance(refused, WriteFailed) and isinstance(refused.cause, IntegrityError)
    assert stored(sessions) == ["evt_a", "evt_ahead", "evt_b"]
    assert writer.stop()


def test_an_event_id_postgresql_cannot_store_fails_alone(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores NUL characters; PostgreSQL text cannot hold them")
    writer = InboxWriter(engine)
    batch = [delivery("evt_before"), delivery("evt_\x00nul"), delivery("evt_after")]

    results = asyncio.run(in_one_batch(writer, engine, batch))
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], WriteFailed) and isinstance(results[1].cause, DataError)
    assert stored(sessions) == ["evt_after", "evt_ahead", "evt_before"]
    assert writer.stop()


def test_store_unreachable_fails_every_request() -> None:
    from recovery.store.db import make_engine

    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", pool_pre_ping=False)
    writer = InboxWriter(engine)

    async def scenario() -> list[bool | BaseException]:
        return list(
            await asyncio.gather(
                *(writer.record(delivery(f"evt_{i}")) for i in range(5)), return_exceptions=True
            )
        )

    results = asyncio.run(scenario())
    assert len(results) == 5
    assert all(isinstance(r, WriteFailed) and isinstance(r.cause, SQLAlchemyError) for r in results)
    assert writer.stop()
    engine.dispose()


def test_stop_writes_what_is_waiting_then_ends_the_thread(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    writer = InboxWriter(engine)
    stopped: list[bool] = []

    async def scenario() -> list[bool]:
        with store_locked(engine):
            first = await held(writer, "evt_1")
            rest = [asyncio.create_task(writer.record(delivery(f"evt_{i}"))) for i in (2, 3)]
            await eventually(lambda: writer.waiting == 2)
            stopper = threading.Thread(target=lambda: stopped.append(writer.stop(timeout=30)))
            stopper.start()
            await asyncio.sleep(0.05)
            assert writer.running  # stop() waits for the work in hand
        answers = list(await asyncio.gather(first, *rest))
        await asyncio.to_thread(stopper.join, 30)
        return answers

    assert asyncio.run(scenario()) == [True, True, True]
    assert stopped == [True]  # joined: the thread has ended
    assert not writer.running
    assert stored(sessions) == ["evt_1", "evt_2", "evt_3"]

    # Stopped is not closed: the next delivery starts the thread again.
    async def later() -> bool:
        return await writer.record(delivery("evt_4"))

    assert asyncio.run(later()) is True
    assert writer.running
    assert writer.stop() and not writer.running


def test_an_idle_writer_ends_its_thread_and_restarts_on_demand(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    writer = InboxWriter(engine, idle_seconds=0.05)

    async def one(event_id: str) -> bool:
        return await writer.record(delivery(event_id))

    assert asyncio.run(one("evt_1")) is True
    deadline = time.monotonic() + 5
    while writer.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not writer.running
    assert asyncio.run(one("evt_1")) is False
    assert asyncio.run(one("evt_2")) is True
    assert stored(sessions) == ["evt_1", "evt_2"]
    assert writer.stop()


def test_a_cancelled_request_still_has_its_row_written(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """A client that gives up does not undo the delivery: the gateway's retry is a duplicate."""
    writer = InboxWriter(engine)

    async def scenario() -> None:
        with store_locked(engine):
            task = await held(writer, "evt_gone")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert await writer.record(delivery("evt_gone")) is False

    asyncio.run(scenario())
    assert stored(sessions) == ["evt_gone"]
    assert writer.stop()


def test_the_app_stops_its_writer_with_its_lifespan(store_url: str) -> None:
    from recovery.runtime import Runtime

    runtime = Runtime(settings_for(store_url), clock_override=FixedClock(T0))
    app = create_app(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock)
    writer = app.state.inbox_writer
    assert isinstance(writer, InboxWriter)
    event = invoice_failed(event_id="evt_life", invoice_id="in_life", created=T0)
    body = json.dumps(event).encode()
    with TestClient(app) as client:
        response = client.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
        assert response.json() == {"status": "recorded", "event_id": "evt_life"}
        assert writer.running
    assert not writer.running
    # Without the context manager (no lifespan) the writer starts on first use all the same.
    again = TestClient(app).post("/webhooks/stripe", content=body, headers=stripe_headers(body))
    assert again.json() == {"status": "duplicate", "event_id": "evt_life"}
    assert writer.stop()
    runtime.close()


def test_a_large_delivery_is_checked_off_the_event_loop_with_the_same_answers(
    store_url: str,
) -> None:
    """A body over the inline limit takes the worker-thread path: verified, scanned for card
    numbers, recorded once, and refused with the same answers as a small one."""
    from recovery.api.requests import INLINE_BODY_BYTES
    from recovery.runtime import Runtime

    runtime = Runtime(settings_for(store_url), clock_override=FixedClock(T0))
    client = TestClient(
        create_app(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock)
    )
    event = invoice_failed(event_id="evt_big", invoice_id="in_big", created=T0)
    event["data"]["object"]["description"] = "card 4000 0566 5566 5556 " + "x" * INLINE_BODY_BYTES
    body = json.dumps(event).encode()
    assert INLINE_BODY_BYTES < len(body) < runtime.settings.max_body_bytes

    first = client.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
    assert first.json() == {"status": "recorded", "event_id": "evt_big"}
    again = client.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
    assert again.json() == {"status": "duplicate", "event_id": "evt_big"}
    forged = client.post(
        "/webhooks/stripe", content=body, headers=stripe_headers(body, secret="whsec_not_ours_x")
    )
    assert forged.status_code == 400 and "signature" in forged.json()["error"]
    with runtime.sessions() as s:
        row = s.scalars(select(InboxRow)).one()
        assert row.pan_redacted and "4000" not in json.dumps(row.payload)
    runtime.close()


def test_the_inbox_commit_is_durable_before_the_answer(store_url: str) -> None:
    """The receiver's writer commits with the store's full durability: on SQLite the WAL is
    synced at every commit (``synchronous=FULL``; NORMAL could lose an acknowledged row to an
    OS crash or a power cut), on PostgreSQL the commit waits for its WAL flush
    (``synchronous_commit=on``). Checked on the very connection and at the very commit that
    holds a delivery the receiver acknowledges."""
    from sqlalchemy import event

    from recovery.runtime import Runtime

    runtime = Runtime(settings_for(store_url), clock_override=FixedClock(T0))
    seen: list[str] = []

    def on_commit(conn: object) -> None:
        raw = conn.connection.dbapi_connection  # type: ignore[attr-defined]
        cursor = raw.cursor()
        if runtime.engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA synchronous")
            seen.append({0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[cursor.fetchone()[0]])
        else:
            cursor.execute("SHOW synchronous_commit")
            seen.append(str(cursor.fetchone()[0]))
        cursor.close()

    event.listen(runtime.engine, "commit", on_commit)
    app = create_app(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock)
    body = json.dumps(invoice_failed(event_id="evt_durable", invoice_id="in_d", created=T0))
    with TestClient(app) as client:
        answer = client.post(
            "/webhooks/stripe", content=body, headers=stripe_headers(body.encode())
        )
    assert answer.status_code == 200
    assert seen and set(seen) <= {"FULL", "EXTRA", "on", "local", "remote_apply", "remote_write"}, (
        seen
    )
    runtime.close()

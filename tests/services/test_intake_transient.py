"""A store error during ingest that will pass (a lock wait cut short, a deadlock, a busy
database, a lost connection) leaves the inbox row unprocessed for the next run; only a row
that can never be applied is parked (``error``), and ``recovery inbox retry`` replays it.

PostgreSQL: another connection really holds the case's row lock while ingest runs with a short
``lock_timeout``. SQLite: the row's own statement fails in the driver with an
``OperationalError`` (a trigger calls a function that fails while the store is "busy"), as
SQLite's busy and locked errors do.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from recovery.cli import app
from recovery.domain.models import ContactPoint, Gateway, PaymentFailure
from recovery.domain.taxonomy import load_failure_codes
from recovery.services.intake import ingest_batch
from recovery.store.db import make_engine, make_sessionmaker, transaction
from recovery.store.inbox import record_delivery
from recovery.store.tables import CaseRow, InboxRow
from tests.factories import T0

CODES = load_failure_codes()


def failure(event_id: str, key: str, *, code: str | None = None) -> dict[str, Any]:
    return PaymentFailure(
        gateway=Gateway.generic,
        event_id=event_id,
        event_type="payment.failed",
        business_key=key,
        contact=ContactPoint(phone_e164="+14155552671"),
        failure_code=code,
        occurred_at=T0,
    ).model_dump(mode="json")


def deliver(sessions: sessionmaker[Session], event_id: str, payload: dict[str, Any]) -> None:
    with transaction(sessions) as session:
        record_delivery(
            session=session,
            gateway="generic",
            event_id=event_id,
            event_type="payment.failed",
            kind="failure",
            payload=payload,
            pan_redacted=False,
            now=T0,
        )


def rows(sessions: sessionmaker[Session]) -> dict[str, tuple[str | None, bool]]:
    """Each inbox row's result and whether it is processed."""
    with sessions() as s:
        return {
            row.event_id: (row.result, row.processed_at is not None)
            for row in s.scalars(select(InboxRow).order_by(InboxRow.id))
        }


def ingest(sessions: sessionmaker[Session]) -> dict[str, int]:
    return dict(ingest_batch(sessions=sessions, codes=CODES, now=T0, limit=50).results)


@pytest.fixture
def store(store_url: str) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    engine = make_engine(store_url)
    yield engine, make_sessionmaker(engine)
    engine.dispose()


@contextmanager
def case_locked(engine: Engine, key: str) -> Iterator[None]:
    """PostgreSQL: another connection holds the case's row lock (as an advance worker does)."""
    with engine.connect() as conn:
        trans = conn.begin()
        conn.execute(
            text("SELECT id FROM recovery_cases WHERE business_key = :k FOR UPDATE"), {"k": key}
        )
        try:
            yield
        finally:
            trans.rollback()


@contextmanager
def store_busy(engine: Engine, key: str, failures: int) -> Iterator[list[int]]:
    """SQLite: the row's insert into the cases fails ``failures`` times in the driver with an
    OperationalError, then goes through."""
    calls = [0]

    def busy() -> int:
        calls[0] += 1
        if calls[0] <= failures:
            raise RuntimeError("database is locked")
        return 0

    def install(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.create_function("store_busy", 0, busy)

    event.listen(engine, "connect", install)
    engine.dispose()  # every connection from now on has the function
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TRIGGER busy BEFORE INSERT ON recovery_cases "
            f"WHEN NEW.business_key = '{key}' BEGIN SELECT store_busy(); END"
        )
    try:
        yield calls
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER busy")
        event.remove(engine, "connect", install)


def test_a_lock_timeout_leaves_the_rows_unprocessed_and_a_retry_applies_them(
    store: tuple[Engine, sessionmaker[Session]],
) -> None:
    engine, sessions = store
    deliver(sessions, "evt_first", failure("evt_first", "pay_a"))
    assert ingest(sessions) == {"opened": 1}
    deliver(sessions, "evt_b", failure("evt_b", "pay_b"))
    deliver(sessions, "evt_a2", failure("evt_a2", "pay_a", code="insufficient_funds"))
    deliver(sessions, "evt_c", failure("evt_c", "pay_c"))

    if engine.dialect.name == "postgresql":
        ingest_engine = make_engine(engine.url.render_as_string(hide_password=False))

        @event.listens_for(ingest_engine, "connect")
        def _short_lock_wait(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '300ms'")
            dbapi_connection.commit()

        ingest_sessions = make_sessionmaker(ingest_engine)
        trouble = case_locked(engine, "pay_a")
    else:
        ingest_engine, ingest_sessions = engine, sessions
        trouble = store_busy(engine, "pay_c", failures=1)
    with trouble:
        with pytest.raises(OperationalError):
            ingest(ingest_sessions)
        # Nothing of the batch is kept, and nothing is parked: every row waits for a retry.
        assert rows(sessions) == {
            "evt_first": ("opened", True),
            "evt_b": (None, False),
            "evt_a2": (None, False),
            "evt_c": (None, False),
        }
        with sessions() as s:
            assert sorted(s.scalars(select(CaseRow.business_key))) == ["pay_a"]
    assert ingest(ingest_sessions) == {"opened": 2, "updated": 1}
    assert rows(sessions) == {
        "evt_first": ("opened", True),
        "evt_b": ("opened", True),
        "evt_a2": ("updated", True),
        "evt_c": ("opened", True),
    }
    if ingest_engine is not engine:
        ingest_engine.dispose()


@pytest.mark.postgres
def test_a_deadlock_leaves_the_row_unprocessed(
    store: tuple[Engine, sessionmaker[Session]],
) -> None:
    """Two transactions lock two cases in opposite orders; PostgreSQL breaks the deadlock by
    failing one of them. When that one is ingest, its row waits for the next run."""
    engine, sessions = store
    if engine.dialect.name != "postgresql":
        pytest.skip("deadlock detection is PostgreSQL's")
    deliver(sessions, "evt_x", failure("evt_x", "pay_x"))
    deliver(sessions, "evt_y", failure("evt_y", "pay_y"))
    assert ingest(sessions) == {"opened": 2}
    deliver(sessions, "evt_y2", failure("evt_y2", "pay_y", code="insufficient_funds"))

    ingest_engine = make_engine(engine.url.render_as_string(hide_password=False))

    @event.listens_for(ingest_engine, "connect")
    def _fast_detection(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET deadlock_timeout = '50ms'")
        dbapi_connection.commit()

    ingest_sessions = make_sessionmaker(ingest_engine)
    with engine.connect() as other:
        trans = other.begin()
        other.execute(text("SET LOCAL deadlock_timeout = '10s'"))
        other.execute(text("SELECT id FROM recovery_cases WHERE business_key = 'pay_y' FOR UPDATE"))
        waiter = threading.Thread(
            target=other.execute,
            args=(text("SELECT id FROM recovery_cases WHERE business_key = 'pay_x' FOR UPDATE"),),
        )

        # Ingest's transaction takes pay_x first; once the other transaction waits for it,
        # ingest's row asks for pay_y (held by the other): a cycle, which PostgreSQL finds from
        # ingest's side first (its deadlock_timeout is the shorter).
        @event.listens_for(ingest_engine, "begin")
        def _hold_x_first(conn: Any) -> None:
            conn.exec_driver_sql(
                "SELECT id FROM recovery_cases WHERE business_key = 'pay_x' FOR UPDATE"
            )
            waiter.start()
            deadline = time.monotonic() + 10
            with engine.connect() as watch:
                while not watch.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                ):
                    assert time.monotonic() < deadline, "the other transaction never waited"
                    time.sleep(0.01)

        with pytest.raises(OperationalError, match="deadlock"):
            ingest(ingest_sessions)
        event.remove(ingest_engine, "begin", _hold_x_first)
        waiter.join(10)
        trans.rollback()
    assert rows(sessions)["evt_y2"] == (None, False)
    assert ingest(ingest_sessions) == {"updated": 1}
    ingest_engine.dispose()


def test_a_row_that_can_never_be_applied_is_parked_and_the_rest_go_through(
    store: tuple[Engine, sessionmaker[Session]],
) -> None:
    _engine, sessions = store
    deliver(sessions, "evt_ok", failure("evt_ok", "pay_ok"))
    broken = failure("evt_broken", "pay_broken")
    broken["occurred_at"] = "not a time"
    deliver(sessions, "evt_broken", broken)
    deliver(sessions, "evt_ok2", failure("evt_ok2", "pay_ok2"))
    assert ingest(sessions) == {"opened": 2, "error": 1}
    assert rows(sessions)["evt_broken"] == ("error", True)


def cli(*args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(app, ["inbox", *args])
    document = json.loads(result.stdout) if result.exit_code == 0 and "--json" in args else None
    return result.exit_code, document, result.output


def test_inbox_retry_replays_parked_rows(
    store: tuple[Engine, sessionmaker[Session]],
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, sessions = store
    monkeypatch.setenv("RECOVERY_DATABASE_URL", store_url)
    # A refusal the store keeps making (a constraint) parks the rows it hits.
    if engine.dialect.name == "sqlite":
        create = [
            "CREATE TRIGGER refuse BEFORE INSERT ON recovery_cases WHEN NEW.business_key "
            "LIKE 'pay_bad%' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
        drop = ["DROP TRIGGER refuse"]
    else:
        create = [
            """CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF starts_with(NEW.business_key, 'pay_bad') THEN
                RAISE EXCEPTION 'refused' USING ERRCODE = '23514';
              END IF;
              RETURN NEW;
            END $$""",
            "CREATE TRIGGER refuse BEFORE INSERT ON recovery_cases "
            "FOR EACH ROW EXECUTE FUNCTION refuse()",
        ]
        drop = ["DROP TRIGGER refuse ON recovery_cases", "DROP FUNCTION refuse()"]
    with engine.begin() as conn:
        for statement in create:
            conn.exec_driver_sql(statement)
    for event_id, key in (("evt_1", "pay_bad1"), ("evt_2", "pay_good"), ("evt_3", "pay_bad3")):
        deliver(sessions, event_id, failure(event_id, key))
    assert ingest(sessions) == {"opened": 1, "error": 2}

    code, listed, _ = cli("list", "--parked", "--json")
    assert code == 0
    assert [(r["event_id"], r["gateway"]) for r in listed] == [
        ("evt_1", "generic"),
        ("evt_3", "generic"),
    ]
    assert all("IntegrityError" in r["error"] for r in listed)

    code, _, output = cli("retry")
    assert code == 2 and "--event-id" in output and "--all" in output
    code, _, output = cli("retry", "--event-id", "evt_nope", "--json")
    assert code == 2 and "evt_nope" in output
    code, _, output = cli("retry", "--event-id", "evt_2", "--json")
    assert code == 2 and "not parked" in output

    with engine.begin() as conn:
        for statement in drop:
            conn.exec_driver_sql(statement)
    code, done, output = cli("retry", "--event-id", "evt_1", "--json")
    assert code == 0, output
    assert done["requeued"] == 1 and done["results"] == {"generic:evt_1": "opened"}
    assert rows(sessions)["evt_3"] == ("error", True)
    code, done, output = cli("retry", "--all", "--json")
    assert code == 0, output
    assert done["requeued"] == 1 and done["results"] == {"generic:evt_3": "opened"}
    code, listed, _ = cli("list", "--parked", "--json")
    assert code == 0 and listed == []
    code, _, output = cli("list", "--parked")
    assert code == 0 and "no parked" in output
    with sessions() as s:
        assert len(list(s.scalars(select(CaseRow)))) == 3

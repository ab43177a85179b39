"""Faults the system must ride out without losing, duplicating or breaking the law:

* Prefect down while webhooks arrive: every delivery is acknowledged and recorded; when Prefect
  is back the receiver's own trigger starts the ingest run, and every case appears once;
* the store unavailable: 503 with Retry-After, nothing half-written, one row per event after
  redelivery;
* the contact centre answering 503, 429 (with and without Retry-After) and 500: no contact lost,
  none duplicated, and the backoff visible in Prefect's task runs;
* the shared clock jumping five days forward and two hours back mid-campaign: no call outside
  the lawful window, expired cases closed as expired, no crash, no duplicate;
* one case the contact centre cannot take must not hold back the rest of its batch, and an
  address field longer than its column must not lose the failure.

(A worker killed mid-advance is covered by ``tests/services/test_advance_crash.py``.)
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from recovery.api.app import create_app
from recovery.api.deliveries import DeliveryEvents
from recovery.clock import SystemClock
from recovery.contact_center.contacts import contact_id_for
from recovery.contact_center.emulator.server import serve_in_thread
from recovery.domain.compliance import permitted
from recovery.domain.history import call_history
from recovery.gateways.signing import sign
from recovery.runtime import Runtime
from recovery.services.intake import drain
from recovery.store.cases import to_entries, to_view
from recovery.store.tables import CaseRow, ContactRow, HistoryRow, InboxRow
from tests.factories import (
    GENERIC_SECRET,
    STRIPE_SECRET,
    T0,
    free_port,
    intent_failed,
    invoice_failed,
    settings_for,
    stripe_headers,
)
from tests.support.asgi import forwarding_app
from tests.support.planted_campaign import PLACES
from tests.support.running_system import System, run_flows

pytestmark = pytest.mark.prefect

# Tuesday 1 December 2026, 17:00 UTC: noon in New York, 09:00 in Los Angeles.
START = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


@pytest.fixture
def runtime(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """The store's runtime; flows run in this process read the same settings."""
    monkeypatch.setenv("RECOVERY_DATABASE_URL", store_url)
    monkeypatch.setenv("RECOVERY_STRIPE_WEBHOOK_SECRETS", STRIPE_SECRET)
    built = Runtime(settings_for(store_url))
    yield built
    built.close()


def wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.05)


def post(http: httpx.Client, base: str, event: dict[str, Any]) -> httpx.Response:
    body = json.dumps(event).encode()
    return http.post(f"{base}/webhooks/stripe", content=body, headers=stripe_headers(body))


def failure(
    i: int, key: str, *, created: datetime, decline: str = "expired_card"
) -> dict[str, Any]:
    area, state, postal = PLACES[i % len(PLACES)]
    return intent_failed(
        event_id=f"evt_{key}",
        intent_id=f"pi_{key}",
        invoice_id=key,
        created=created,
        code="expired_card" if decline == "expired_card" else "card_declined",
        decline_code=decline,
        phone=f"+1{area}555{100 + i % 100:04d}",
        state=state,
        postal_code=postal,
        customer=f"cus_{key}",
    )


# -- Prefect down while webhooks arrive --------------------------------------------------


def _ingest_deployment() -> str:
    from prefect.client.orchestration import get_client

    async def register() -> str:
        async with get_client() as prefect:
            flow_id = await prefect.create_flow_from_name("ingest")
            return str(await prefect.create_deployment(flow_id=flow_id, name="ingest"))

    return anyio.run(register)


def _runs_since(deployment_id: str, since: datetime) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    async def read() -> list[Any]:
        async with get_client() as prefect:
            return list(
                await prefect.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
                )
            )

    return [run for run in anyio.run(read) if run.created and run.created >= since]


def test_deliveries_while_prefect_is_down_all_become_cases_once_it_is_back(
    prefect_api_url: str, runtime: Runtime
) -> None:
    from prefect.flow_engine import run_flow

    from flows.ingest import ingest

    deployment_id = _ingest_deployment()
    since = datetime.now(UTC) - timedelta(seconds=1)
    port = free_port()  # where Prefect's API "is": nothing listens there yet
    deliveries = DeliveryEvents(api_url=f"http://127.0.0.1:{port}/api", window_seconds=1)
    deliveries.start()
    keys = [f"in_down_{i}" for i in range(40)]
    events = [
        invoice_failed(event_id=f"evt_inv_{k}", invoice_id=k, created=START) for k in keys
    ] + [
        intent_failed(event_id=f"evt_pi_{k}", intent_id=f"pi_{k}", invoice_id=k, created=START)
        for k in keys
    ]
    app = create_app(
        settings=runtime.settings,
        sessions=runtime.sessions,
        clock=SystemClock(),
        deliveries=deliveries,
    )
    try:
        with serve_in_thread(app) as receiver, httpx.Client(timeout=30) as http:
            answers: Counter[tuple[int, str]] = Counter()
            for event in events + events[:20]:  # and the gateway redelivers a quarter
                response = post(http, receiver, event)
                answers[(response.status_code, response.json()["status"])] += 1
            wait_for(lambda: deliveries.failures >= 3, 20, "the receiver to try Prefect and fail")
            assert answers == {(200, "recorded"): 80, (200, "duplicate"): 20}
            assert deliveries.events_sent == 0
            with runtime.sessions() as s:
                waiting = s.scalar(select(func.count()).where(InboxRow.processed_at.is_(None)))
            assert waiting == 80

            # Prefect comes back at the address the receiver knows.
            with serve_in_thread(forwarding_app(prefect_api_url.removesuffix("/api")), port=port):
                wait_for(lambda: deliveries.events_sent >= 1, 20, "the delivery event")
                time.sleep(1.5)  # no further delivery: no further event
            failures_while_down = deliveries.failures
    finally:
        deliveries.stop()
    # Every recorded delivery, announced once, in one event once Prefect is back.
    assert (deliveries.events_sent, deliveries.deliveries_sent) == (1, 80)
    # The run that drains the inbox (the automation's, or the sweep's, as a worker runs it).
    flow_run = _create_run(deployment_id)
    summary = run_flow(ingest, flow_run=flow_run)
    assert summary == {"rows": 80, "batches": 1, "results": {"opened": 40, "updated": 40}}
    with runtime.sessions() as s:
        per_key = Counter(s.scalars(select(CaseRow.business_key)))
        unprocessed = s.scalar(select(func.count()).where(InboxRow.processed_at.is_(None)))
    assert per_key == Counter(keys) and unprocessed == 0
    # (the ingest automation, when another test registered it, may have started one too)
    (state,) = [r.state for r in _runs_since(deployment_id, since) if r.id == flow_run.id]
    assert state is not None and state.is_completed()
    print(
        f"\nPrefect down: 100 deliveries (20 redelivered) all answered 200, 80 rows recorded; "
        f"{failures_while_down} failed event attempts; 1 event once back; 40 cases, 0 lost"
    )


def _create_run(deployment_id: str) -> Any:
    from prefect.client.orchestration import get_client

    async def create() -> Any:
        async with get_client() as prefect:
            return await prefect.create_flow_run_from_deployment(deployment_id)

    return anyio.run(create)


# -- the store unavailable ---------------------------------------------------------------


def _break_store(store_url: str, fault: str, runtime: Runtime) -> Any:
    """Make the inbox unwritable; returns what ``_mend_store`` needs to undo it."""
    if fault == "inbox table missing":
        with runtime.engine.begin() as connection:
            connection.execute(text("ALTER TABLE webhook_inbox RENAME TO webhook_inbox_away"))
        return None
    path = store_url.split(":///", 1)[1]
    holder = sqlite3.connect(path, isolation_level=None, timeout=30)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def _mend_store(fault: str, runtime: Runtime, holder: Any) -> int:
    """Undo the fault; the number of inbox rows the store held meanwhile."""
    if fault == "inbox table missing":
        with runtime.engine.begin() as connection:
            rows = connection.scalar(text("SELECT count(*) FROM webhook_inbox_away"))
            connection.execute(text("ALTER TABLE webhook_inbox_away RENAME TO webhook_inbox"))
        return int(rows or 0)
    holder.execute("ROLLBACK")
    holder.close()
    with runtime.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(InboxRow)) or 0)


@pytest.mark.parametrize(
    "fault",
    ["inbox table missing", pytest.param("database locked", marks=pytest.mark.slow)],
)
def test_store_unavailable_answers_503_and_writes_nothing_half(store_url: str, fault: str) -> None:
    if fault == "database locked" and not store_url.startswith("sqlite"):
        pytest.skip("an exclusive file lock is SQLite's outage")
    # A writer waits 3 s for the lock here, not the default 30 s.
    url = f"{store_url}?timeout=3" if fault == "database locked" else store_url
    runtime = Runtime(settings_for(url))
    app = create_app(settings=runtime.settings, sessions=runtime.sessions, clock=SystemClock())
    events = [
        invoice_failed(event_id=f"evt_store_{i}", invoice_id=f"in_store_{i}", created=START)
        for i in range(24)
    ]
    before, during = events[:8], events[8:] + events[:4]  # four redeliveries among them
    try:
        with serve_in_thread(app) as receiver, httpx.Client(timeout=120) as http:
            assert [post(http, receiver, e).status_code for e in before] == [200] * 8
            holder = _break_store(store_url, fault, runtime)
            began = time.monotonic()
            try:
                # Concurrent deliveries, so some share the writer's transaction.
                with ThreadPoolExecutor(max_workers=len(during)) as pool:
                    answers = list(pool.map(lambda e: post(http, receiver, e), during))
                waited = time.monotonic() - began
            finally:
                held = _mend_store(fault, runtime, holder)
            assert [a.status_code for a in answers] == [503] * len(during)
            assert {a.headers.get("retry-after") for a in answers} == {"5"}
            assert held == 8  # nothing of the refused deliveries was written
            # The gateway retries everything it was refused, and redelivers a few it was not.
            again = Counter(post(http, receiver, e).json()["status"] for e in during + before[:4])
            assert again == {"recorded": 16, "duplicate": 8}
        with runtime.sessions() as s:
            rows = Counter(s.scalars(select(InboxRow.event_id)))
        assert rows == Counter(e["id"] for e in events)
        summary = drain(
            sessions=runtime.sessions,
            codes=runtime.failure_codes,
            clock_now=runtime.clock.now,
            batch_size=100,
        )
        assert summary.results == {"opened": 24}
    finally:
        runtime.close()
    print(
        f"\nstore unavailable ({fault}): {len(during)} deliveries answered 503 with Retry-After "
        f"after {waited:.1f} s, 0 rows half-written; after redelivery 24 events, 24 rows, 24 cases"
    )


# -- the contact centre failing for a while ----------------------------------------------


def _flow_task_runs(flow_run_id: Any) -> list[tuple[Any, list[str]]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read() -> list[tuple[Any, list[str]]]:
        async with get_client() as prefect:
            runs = await prefect.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            found = []
            for run in runs:
                states = await prefect.read_task_run_states(run.id)
                found.append((run, [s.name for s in states]))
            return found

    return anyio.run(read)


def _settled_task_runs(
    flow_run_id: Any, prefix: str, seconds: float = 30.0
) -> list[tuple[Any, list[str]]]:
    """The flow run's task runs named ``prefix...`` once the server has recorded each one's
    final state: it records task runs from their state events, in batches, a moment after the
    flow run ends."""
    deadline = time.monotonic() + seconds
    while True:
        runs = [(r, s) for r, s in _flow_task_runs(flow_run_id) if r.name.startswith(prefix)]
        if runs and all(r.state is not None and r.state.is_final() for r, _ in runs):
            return runs
        if time.monotonic() > deadline:
            return runs
        time.sleep(0.5)


@pytest.fixture
def system(running_system: Callable[..., System]) -> System:
    return running_system(start=START)


FAULTS = [
    {"status": 503, "count": 2},
    {"status": 503, "apply": True},  # applied, then answered 503: the client cannot tell
    {"status": 429, "retry_after": 1},
    {"status": 429},  # no Retry-After: the client waits its default
    {"status": 500, "apply": True},  # not retried by the client: Prefect retries the task
]


class _Kept(logging.Handler):
    """Keeps the messages of the logger it is attached to (Prefect's logging set-up, which may
    run in the middle of a test, replaces the root logger's handlers, pytest's among them)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def client_log() -> Iterator[_Kept]:
    logger = logging.getLogger("recovery.contact_center.client")
    kept, level = _Kept(), logger.level
    logger.addHandler(kept)
    logger.setLevel(logging.INFO)
    try:
        yield kept
    finally:
        logger.removeHandler(kept)
        logger.setLevel(level)


@pytest.mark.slow
def test_contact_centre_errors_lose_and_duplicate_no_contact(
    system: System, client_log: _Kept
) -> None:
    from flows.advance import advance

    keys = [f"in_cc_{i}" for i in range(120)]
    for i, key in enumerate(keys):
        assert system.post(failure(i, key, created=START)).status_code == 200
    run_flows("ingest")
    for fault in FAULTS:
        system.control("faults", fault)
    began = time.monotonic()
    state = advance(return_state=True)
    took = time.monotonic() - began
    summary = state.result()
    counters = system.counters()
    held = {c["id"]: c for c in system.contacts()}
    expected = {contact_id_for(f"stripe:{key}", 1) for key in keys}
    with system.runtime.sessions() as s:
        rows = Counter(s.execute(select(ContactRow.contact_id, ContactRow.state)).all())
    task_runs = _settled_task_runs(state.state_details.flow_run_id, "create contacts")
    waits = [m for m in client_log.messages if "retrying in" in m]
    limited = [m for m in client_log.messages if "rate limited; waiting" in m]
    durations = sorted(round(run.total_run_time.total_seconds(), 1) for run, _ in task_runs)
    print(
        f"\ncontact centre faults: {counters['faults_injected']} injected "
        f"({[f['status'] for f in FAULTS for _ in range(int(f.get('count', 1)))]}); advance took "
        f"{took:.1f} s; create-contacts task runs {len(task_runs)} with durations {durations} s "
        f"and run counts {[run.run_count for run, _ in task_runs]}; client backoffs {len(waits)}, "
        f"429 waits {len(limited)}; contacts created {counters['contacts_created']}, upserts "
        f"{counters['upserts']}, duplicates {counters['duplicates']}"
    )
    assert counters["faults_injected"] == 6
    assert summary["contacts_created"] == 120 and summary["failed_batches"] == 0
    # Nothing lost, nothing twice: exactly one contact per case, under its deterministic id.
    assert set(held) == expected and counters["contacts_created"] == 120
    assert counters["duplicates"] == 0 and counters["upserts"] >= 1
    assert rows == Counter({(cid, "created"): 1 for cid in expected})
    # The backoff is visible: client waits inside the task runs, and a retried task run.
    assert len(waits) == 3 and len(limited) == 2
    assert sum(durations) >= 9.0
    retried = [states for run, states in task_runs if run.run_count >= 2]
    assert len(retried) == 1 and "AwaitingRetry" in retried[0]
    # And every contact is dialled once.
    assert system.dial()["dialled"] == 120
    assert system.counters()["dials"] == 120


def test_one_case_the_contact_centre_cannot_take_does_not_hold_back_its_batch(
    system: System,
) -> None:
    for i in range(10):
        area, state, postal = PLACES[i % len(PLACES)]
        body = json.dumps(
            {
                "type": "payment.failed",
                "event_id": f"gen-batch-{i}",
                "business_key": f"order-batch-{i}",
                "occurred_at": (START - timedelta(minutes=5)).isoformat(),
                "phone": f"+1{area}555{3000 + i:04d}",
                "state": state,
                "postal_code": postal,
                "decline_code": "expired_card",
                "amount": "19.99",
                # A currency the generic source accepts and the contact centre's columns do not.
                "currency": "USDT" if i == 3 else "USD",
            }
        ).encode()
        answer = system.http.post(
            f"{system.receiver}/webhooks/generic",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Recovery-Signature": sign(body, GENERIC_SECRET, int(time.time())),
            },
        )
        assert answer.status_code == 200
    run_flows("ingest", "advance")
    assert system.counters()["contacts_created"] == 9


# -- the clock jumps ----------------------------------------------------------------------


def _contact_law(hs: System) -> list[str]:
    """Every contact the contact centre took, checked against the calling rules at the instant
    it was created and at the instant it was dialled, with the history the system had then."""
    problems = []
    dialled = {
        c["id"]: datetime.fromisoformat(
            c["callRecords"]["phone"]["lastAttempt"].replace("Z", "+00:00")
        )
        for c in hs.contacts()
        if c.get("callRecords")
    }
    rules = hs.runtime.rules
    with hs.runtime.sessions() as s:
        for row in s.scalars(select(ContactRow).where(ContactRow.created_at.is_not(None))):
            case = s.get(CaseRow, row.case_id)
            assert case is not None and row.created_at is not None
            history = list(
                s.scalars(
                    select(HistoryRow).where(HistoryRow.case_id == case.id).order_by(HistoryRow.id)
                )
            )
            created = next(
                h.id
                for h in history
                if h.kind == "contact_created" and h.data.get("contact_id") == row.contact_id
            )
            calls = call_history(
                to_entries([h for h in history if h.id < created]), exclude_attempt=row.attempt
            )
            contact = to_view(case).contact
            for what, at in (("created", row.created_at), ("dialled", dialled.get(row.contact_id))):
                if at is None:
                    continue
                verdict = permitted(contact, calls, at, rules)
                if not verdict.permitted:
                    problems.append(f"{row.contact_id} {what} at {at}: {verdict.reasons}")
    return problems


@pytest.mark.slow
def test_clock_jumps_break_no_rule_and_duplicate_nothing(system: System) -> None:
    hs, clock = system, system.clock
    hs.control("scenario", {"name": "mixed", "seed": 5})
    declines = ["expired_card", "lost_card", "authentication_required", "generic_decline"]
    fresh = [f"in_fresh_{i}" for i in range(40)]
    old = [f"in_old_{i}" for i in range(12)]  # card_expired cases expire 30 days after failing
    for i, key in enumerate(fresh):
        event = failure(i, key, created=START - timedelta(minutes=10), decline=declines[i % 4])
        assert hs.post(event).status_code == 200
    for i, key in enumerate(old):
        assert hs.post(failure(i + 3, key, created=START - timedelta(days=27))).status_code == 200
    summaries: list[dict[str, Any]] = []

    def round_(*names: str) -> None:
        for name in names:
            if name == "dial":
                hs.dial()
            else:
                summaries.append({name: run_flows(name)[name]})

    round_("ingest", "advance", "dial", "dispositions", "advance")
    clock.set(START + timedelta(hours=2))
    round_("advance", "dial", "dispositions", "advance")
    # Two hours back: a time the campaign has already lived through.
    clock.set(START)
    late = [f"in_late_{i}" for i in range(8)]
    for i, key in enumerate(late):
        assert hs.post(failure(i + 5, key, created=START - timedelta(minutes=1))).status_code == 200
    round_("ingest", "advance", "dial", "dispositions", "advance")
    with hs.runtime.sessions() as s:
        open_old = set(
            s.scalars(
                select(CaseRow.business_key).where(
                    CaseRow.business_key.in_(old), CaseRow.status != "closed"
                )
            )
        )
    # Five days forward (a Sunday): the old cases are past their expiry.
    clock.set(START + timedelta(days=5))
    round_("advance", "dial", "dispositions", "advance", "reconcile", "close_on_payment")
    clock.set(START + timedelta(days=5, hours=3))
    round_("advance", "dial", "dispositions", "advance")

    counters = hs.counters()
    held = hs.contacts()
    with hs.runtime.sessions() as s:
        old_outcomes = {
            key: outcome
            for key, outcome in s.execute(
                select(CaseRow.business_key, CaseRow.outcome).where(CaseRow.business_key.in_(old))
            )
        }
        states = Counter(s.scalars(select(ContactRow.state)))
        sent = set(
            s.scalars(
                select(ContactRow.contact_id).where(
                    ContactRow.state.in_(("created", "dispositioned", "removed"))
                )
            )
        )
        cases = s.scalar(select(func.count()).select_from(CaseRow))
    problems = _contact_law(hs)
    failed = sum(
        int(v.get("advance", {}).get("failed_batches", 0) or 0) for v in summaries if "advance" in v
    )
    print(
        f"\nclock jumps (+2 h, -2 h, +5 d, +3 h): {cases} cases, contacts {dict(states)}, "
        f"emulator {counters}, old cases open before the jump {len(open_old)} -> "
        f"{Counter(old_outcomes[k] for k in open_old)}, contacts outside the rules "
        f"{len(problems)}, failed batches {failed}"
    )
    assert cases == len(fresh) + len(old) + len(late)
    assert counters["refused_outside_window"] == 0 and counters["duplicates"] == 0
    assert problems == []
    assert failed == 0
    assert all(c["dials"] <= 1 for c in held)
    assert {c["id"] for c in held} == sent  # what the store recorded as sent, and nothing else
    assert open_old and all(old_outcomes[k] == "expired" for k in open_old)
    assert all(outcome is not None for outcome in old_outcomes.values())
    assert counters["dials"] >= 50


# -- bad data: a field longer than its column -----------------------------------------------


@pytest.mark.parametrize(
    "field_name, value",
    [
        ("state", "California"),  # Stripe's address state is free text
        ("state", "4111 1111 1111 1111"),  # redacted to a marker longer than the column
        ("postal_code", "4111-1111-1111-1111"),
    ],
)
def test_a_long_address_field_does_not_lose_the_failure(
    store_url: str, field_name: str, value: str
) -> None:
    runtime = Runtime(settings_for(store_url))
    try:
        client = TestClient(
            create_app(settings=runtime.settings, sessions=runtime.sessions, clock=SystemClock())
        )
        event = invoice_failed(event_id="evt_long", invoice_id="in_long", created=T0)
        event["data"]["object"]["customer_address"][field_name] = value
        body = json.dumps(event).encode()
        answer = client.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
        assert answer.json()["status"] == "recorded"
        summary = drain(
            sessions=runtime.sessions,
            codes=runtime.failure_codes,
            clock_now=runtime.clock.now,
            batch_size=10,
        )
        assert summary.results == {"opened": 1}
        with runtime.sessions() as s:
            case = s.scalars(select(CaseRow)).one()
        expected = {"California": "CA"}.get(value)
        assert getattr(case, field_name) == expected
    finally:
        runtime.close()

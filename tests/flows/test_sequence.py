"""The recovery sequence end to end: receiver -> ingest -> advance -> emulator -> disposition
push -> advance, on the real Prefect engine, with a clock the test moves."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from sqlalchemy import select

from recovery.contact_center.contacts import contact_id_for
from recovery.store.tables import SuppressionRow
from tests.factories import charge_event, intent_failed, invoice_failed
from tests.support.running_system import System, run_flows

pytestmark = pytest.mark.prefect

# Tuesday 1 December 2026, 06:00 in Los Angeles (PST, UTC-8).
DAWN_PACIFIC = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
EIGHT_PACIFIC = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)


@pytest.fixture
def system(running_system: Callable[..., System]) -> System:
    return running_system(start=DAWN_PACIFIC)


def expired_card(
    event_id: str,
    key: str,
    at: datetime,
    phone: str = "+14155552671",
    state: str = "CA",
    postal: str = "94103",
) -> dict:
    return intent_failed(
        event_id=event_id,
        intent_id=f"pi_{key}",
        invoice_id=key,
        created=at,
        code="expired_card",
        decline_code="expired_card",
        phone=phone,
        state=state,
        postal_code=postal,
    )


def test_dawn_on_the_west_coast_waits_for_eight(system: System) -> None:
    assert system.post(expired_card("evt_1", "in_west", DAWN_PACIFIC)).status_code == 200
    run_flows("ingest", "advance")
    waiting = system.store.case("in_west")
    assert waiting.status == "awaiting_window"
    assert waiting.next_due_at == EIGHT_PACIFIC
    assert system.contacts() == []

    system.set_time(EIGHT_PACIFIC - timedelta(minutes=1))
    run_flows("advance")
    assert system.contacts() == []

    system.set_time(EIGHT_PACIFIC)
    run_flows("advance")
    contacts = system.contacts()
    assert [c["id"] for c in contacts] == [contact_id_for("stripe:in_west", 1)]
    data = contacts[0]["data"]
    assert data["timeZone"] == "America/Los_Angeles" and data["pciSensitive"] == "true"
    assert data["phone"] == "+14155552671"
    created = system.store.case("in_west")
    assert created.status == "awaiting_disposition" and created.contacts_made == 1
    (row,) = system.store.contacts()
    assert row.created_at == EIGHT_PACIFIC


def test_a_watching_advance_run_takes_the_case_that_falls_due_after_it_started(
    system: System,
) -> None:
    """With a linger, a run that starts with nothing due keeps watching, and decides the case
    that falls due while it watches (no second run needed); without one it ends at once."""
    from flows.advance import advance

    assert system.post(expired_card("evt_1", "in_west", DAWN_PACIFIC)).status_code == 200
    run_flows("ingest", "advance")
    assert system.store.case("in_west").next_due_at == EIGHT_PACIFIC

    started = time.monotonic()
    assert advance(linger_seconds=0)["decisions"] == {}
    assert time.monotonic() - started < 15

    result: dict[str, object] = {}
    watching = threading.Thread(target=lambda: result.update(advance(linger_seconds=6)))
    watching.start()
    time.sleep(1.5)
    assert system.contacts() == []
    system.set_time(EIGHT_PACIFIC + timedelta(minutes=1))
    watching.join(timeout=60)
    assert not watching.is_alive()
    assert result["decisions"] == {"contact": 1} and result["contacts_created"] == 1
    assert len(system.contacts()) == 1


def test_no_answer_then_the_next_attempt_per_policy(system: System) -> None:
    system.set_time(EIGHT_PACIFIC)
    system.post(expired_card("evt_na", "in_na", EIGHT_PACIFIC))
    run_flows("ingest", "advance")
    assert len(system.contacts()) == 1
    report = system.dial()
    assert report["actions_sent"] == 1
    run_flows("dispositions", "advance")
    after = system.store.case("in_na")
    assert after.status == "cooling_down"
    policy = system.runtime.policy.for_category(after.category)
    assert after.next_due_at is not None
    assert after.next_due_at >= EIGHT_PACIFIC + policy.retry_delay(1)
    kinds = [h.kind for h in system.store.history("in_na")]
    assert "disposition" in kinds
    system.set_time(after.next_due_at)
    run_flows("advance")
    ids = sorted(c["id"] for c in system.contacts())
    assert ids == sorted([contact_id_for("stripe:in_na", 1), contact_id_for("stripe:in_na", 2)])


def test_promise_to_pay_means_silence_until_the_date(system: System) -> None:
    system.set_time(EIGHT_PACIFIC)
    system.control("scenario", {"name": "all-promise-to-pay"})
    system.post(expired_card("evt_pp", "in_pp", EIGHT_PACIFIC))
    run_flows("ingest", "advance")
    system.dial()
    run_flows("advance")
    promised = system.store.case("in_pp")
    assert promised.status == "cooling_down"
    pushed = [h for h in system.store.history("in_pp") if h.kind == "disposition"]
    assert pushed and pushed[0].disposition == "promise_to_pay"
    promised_date = datetime.fromisoformat(pushed[0].data["promised_date"]).date()
    assert promised.next_due_at is not None
    assert promised.next_due_at.date() >= promised_date
    assert promised.next_due_at is not None and promised.next_due_at > EIGHT_PACIFIC + timedelta(
        days=1
    )
    for hours in (6, 24, 48):
        system.set_time(
            min(promised.next_due_at - timedelta(minutes=1), EIGHT_PACIFIC + timedelta(hours=hours))
        )
        run_flows("advance")
        assert len(system.contacts()) == 1


def test_do_not_call_suppresses_and_stops_every_case_on_the_number(system: System) -> None:
    system.set_time(EIGHT_PACIFIC)
    system.control("scenario", {"name": "all-never-call"})
    system.post(expired_card("evt_a", "in_dnc_a", EIGHT_PACIFIC))
    run_flows("ingest", "advance")
    # A second failure for the same customer arrives after the first call was queued.
    system.post(
        intent_failed(
            event_id="evt_b",
            intent_id="pi_dnc_b",
            invoice_id="in_dnc_b",
            created=EIGHT_PACIFIC,
            decline_code="insufficient_funds",
        )
    )
    run_flows("ingest")
    system.dial()
    run_flows("advance", "advance")
    first, second = system.store.case("in_dnc_a"), system.store.case("in_dnc_b")
    assert (first.status, first.outcome) == ("closed", "suppressed")
    assert (second.status, second.outcome) == ("closed", "suppressed")
    with system.runtime.sessions() as s:
        assert s.scalars(select(SuppressionRow.phone_e164)).all() == ["+14155552671"]
    dnc = system.http.get(
        f"{system.emulator}/__emulator__/dnc-lists/{system.runtime.settings.genesys_dnc_list_id}"
    ).json()
    assert "14155552671" in str(dnc)
    system.set_time(EIGHT_PACIFIC + timedelta(days=5))
    run_flows("advance")
    assert len(system.contacts()) == 1


def test_payment_mid_wait_closes_and_removes_the_pending_contact(system: System) -> None:
    system.set_time(EIGHT_PACIFIC)
    system.post(expired_card("evt_pay", "in_pay", EIGHT_PACIFIC))
    run_flows("ingest", "advance")
    assert len(system.contacts()) == 1
    system.post(
        charge_event(
            event_id="evt_paid",
            charge_id="ch_paid",
            invoice_id="in_pay",
            succeeded=True,
            created=EIGHT_PACIFIC + timedelta(minutes=5),
        )
    )
    run_flows("ingest", "close_on_payment")
    paid = system.store.case("in_pay")
    assert (paid.status, paid.outcome) == ("closed", "recovered")
    assert system.contacts() == []
    assert system.dial()["dialled"] == 0
    system.set_time(EIGHT_PACIFIC + timedelta(days=3))
    run_flows("advance")
    assert system.contacts() == []
    assert [h.kind for h in system.store.history("in_pay")][-1] == "contact_removed"


def test_late_failure_after_payment_opens_nothing(system: System) -> None:
    system.set_time(EIGHT_PACIFIC)
    system.post(
        invoice_failed(
            event_id="evt_p", invoice_id="in_pf", created=EIGHT_PACIFIC, event_type="invoice.paid"
        )
    )
    system.post(
        invoice_failed(
            event_id="evt_f", invoice_id="in_pf", created=EIGHT_PACIFIC - timedelta(hours=1)
        )
    )
    run_flows("ingest", "advance")
    assert system.store.cases() == []
    assert system.contacts() == []


def _task_run_names(state: Any, *expected: str, seconds: float = 30.0) -> list[str]:
    """The names of the task runs of the flow run that ended in ``state``, once the server has
    recorded them: it records task runs from their state events, in batches (at least once a
    second), a moment after the flow run ends. With ``expected`` name prefixes, waits until a
    task run of each has a final state and the list has stayed the same for a flush interval
    and more; without, reads them at once."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.events.worker import EventsWorker

    async def read() -> list[tuple[str, bool]]:
        async with get_client() as prefect:
            runs = await prefect.read_task_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
                )
            )
            return sorted((run.name, bool(run.state and run.state.is_final())) for run in runs)

    if not expected:
        return [name for name, _ in anyio.run(read)]
    EventsWorker.drain_all(timeout=10)
    deadline, last = time.monotonic() + seconds, None
    while True:
        found = anyio.run(read)
        final = [name for name, done in found if done]
        if found == last and all(done for _, done in found):
            if all(any(n.startswith(p) for n in final) for p in expected):
                return final
        if time.monotonic() > deadline:
            return [name for name, _ in found]
        last = found
        time.sleep(1.5)


def test_runs_that_find_no_work_run_no_task_and_no_chunk_is_decided_empty(
    system: System,
) -> None:
    from flows.advance import advance
    from flows.ingest import ingest
    from flows.reconcile import reconcile

    idle_states = []
    for idle in (ingest, advance, reconcile):
        state = idle(return_state=True)
        assert state.is_completed()
        idle_states.append((idle.name, state))

    assert system.post(expired_card("evt_1", "in_west", DAWN_PACIFIC)).status_code == 200
    state = ingest(return_state=True)
    assert state.result()["rows"] == 1
    assert [n for n in _task_run_names(state, "ingest batch") if n.startswith("ingest batch")] == [
        "ingest batch 1 (up to 500 rows)"
    ]
    # The idle runs' events went out before these: any task run of theirs is recorded by now.
    for name, idle_state in idle_states:
        assert _task_run_names(idle_state) == [], name
    system.set_time(EIGHT_PACIFIC)
    state = advance(return_state=True)
    assert state.result()["contacts_created"] == 1
    names = _task_run_names(state, "decide chunk", "create contacts")
    # One case due: one chunk decided (the first, one batch at most), and no second
    # chunk decided empty after it.
    assert [n for n in names if n.startswith("decide chunk")] == [
        "decide chunk 1 (up to 50 due cases)"
    ]

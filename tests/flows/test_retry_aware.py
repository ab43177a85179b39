"""Retry-aware timing end to end: receiver -> ingest -> advance -> emulator on the real Prefect
engine, with a clock the test moves. A soft decline whose gateway announced a retry waits for
it; the retry's success closes the case before any contact exists; a failed retry moves the
case on to a call that carries the payment link, and the outcome is written back to the
contact without queueing it again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from recovery.contact_center.contacts import CONTACT_COLUMNS, contact_id_for
from recovery.store.tables import ContactRow
from tests.factories import invoice_failed
from tests.support.running_system import System, run_flows

pytestmark = pytest.mark.prefect

# Tuesday 1 December 2026, 10:00 in Los Angeles (PST, UTC-8): inside the calling window.
T = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
PAGE = "https://invoice.stripe.com/i/acct_1Nv0FG/test_YWNjdF8xTnYwRkc?s=ap"


@pytest.fixture
def system(running_system: Callable[..., System]) -> System:
    return running_system(start=T)


def declined(
    event_id: str,
    invoice: str,
    at: datetime,
    *,
    decline_code: str,
    retry: datetime | None,
    attempt: int = 1,
) -> dict[str, Any]:
    """Stripe's invoice.payment_failed with its payment intent expanded (the decline code) and
    Stripe's next automatic retry."""
    event = invoice_failed(
        event_id=event_id,
        invoice_id=invoice,
        created=at,
        attempt_count=attempt,
        next_payment_attempt=retry,
        hosted_invoice_url=PAGE,
    )
    event["data"]["object"]["payment_intent"] = {
        "id": f"pi_{invoice}",
        "object": "payment_intent",
        "last_payment_error": {"code": "card_declined", "decline_code": decline_code},
    }
    return event


def test_a_retry_success_during_the_wait_closes_the_case_with_no_contact(system: System) -> None:
    retry = T + timedelta(days=10)  # after the 7-day grace of insufficient funds
    response = system.post(
        declined("evt_r1", "in_retry", T, decline_code="insufficient_funds", retry=retry)
    )
    assert response.status_code == 200
    run_flows("ingest", "advance")
    waiting = system.store.case("in_retry")
    assert (waiting.status, waiting.category) == ("awaiting_retry", "insufficient_funds")
    assert waiting.next_due_at == retry + timedelta(days=1)
    last = system.store.decisions("in_retry")[-1]
    assert last.data["waiting_for"] == "gateway_retry"
    assert last.data["retry_at"] == retry.isoformat()
    assert last.data["unwaited_at"] == (T + timedelta(days=7)).isoformat()

    # the grace ends: nothing happens, the case still waits for the retry
    system.set_time(T + timedelta(days=7, hours=1))
    run_flows("advance")
    assert system.contacts() == [] and system.store.count(ContactRow) == 0

    # Stripe's retry succeeds
    system.set_time(retry + timedelta(minutes=2))
    paid = invoice_failed(
        event_id="evt_r1_paid",
        invoice_id="in_retry",
        created=retry + timedelta(minutes=1),
        event_type="invoice.paid",
    )
    assert system.post(paid).status_code == 200
    run_flows("ingest", "close_on_payment", "advance")
    closed = system.store.case("in_retry")
    assert (closed.status, closed.outcome, closed.contacts_made) == ("closed", "recovered", 0)

    # long after the wait would have ended: still no contact, anywhere
    system.set_time(retry + timedelta(days=3))
    run_flows("advance", "dispositions", "reconcile")
    assert system.contacts() == [] and system.store.count(ContactRow) == 0
    assert system.counters()["contacts_created"] == 0


def test_a_failed_retry_moves_the_case_on_to_a_call_carrying_the_payment_link(
    system: System,
) -> None:
    retry = T + timedelta(days=3)  # Friday 10:00 in Los Angeles
    system.post(declined("evt_g1", "in_moved", T, decline_code="do_not_honor", retry=retry))
    run_flows("ingest", "advance")
    waiting = system.store.case("in_moved")
    assert (waiting.status, waiting.category) == ("awaiting_retry", "generic_decline")
    assert waiting.next_due_at == retry + timedelta(days=1)

    # the retry fails: Stripe reports it, announcing a later retry (not waited for)
    system.set_time(retry + timedelta(minutes=1))
    again = declined(
        "evt_g2",
        "in_moved",
        retry,
        decline_code="do_not_honor",
        retry=retry + timedelta(days=5),
        attempt=2,
    )
    assert system.post(again).status_code == 200
    run_flows("ingest", "advance")
    contacts = system.contacts()
    assert [c["id"] for c in contacts] == [contact_id_for("stripe:in_moved", 1)]
    data = contacts[0]["data"]
    assert tuple(data) == CONTACT_COLUMNS
    assert data["paymentLink"] == PAGE and data["pciTokenized"] == "true"
    assert data["lastAttemptDate"] == "2026-12-04"  # the retry's date in Los Angeles
    assert data["dispositionCode"] == "" and contacts[0]["callable"] is True

    # the call's outcome is written back to the contact, which is not queued again
    assert system.dial()["actions_sent"] == 1
    run_flows("dispositions")
    updated = system.contacts()[0]
    assert updated["data"]["dispositionCode"] == "no_answer"
    assert updated["callable"] is False
    assert updated["data"]["paymentLink"] == PAGE
    assert system.dial()["dialled"] == 0

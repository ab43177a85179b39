"""Dispatching one batch, in-process against the store and the emulator over HTTP:

* a case whose values the contact centre cannot take is refused on its own: the rest of its
  batch is created, the case is parked for a person (until its expiry), and it is not planned,
  sent and refused again on every run;
* a planned contact withdrawn by the last compliance check is removed from the contact list
  when the contact centre may already hold it (a resend after a lost answer), before it is
  recorded as withdrawn; if the removal fails it stays planned, and a fresh plan costs no
  request at all;
* the compliance refusals behind a wait or a withdrawal are recorded as fields in the
  history entry (``data["holds"]``), the dial margin's among them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from recovery.clock import FixedClock
from recovery.contact_center.client import GenesysClient
from recovery.contact_center.contacts import ContactRequest, contact_id_for
from recovery.contact_center.errors import TransientContactCenterError
from recovery.contact_center.throttle import RetryPolicy
from recovery.domain.compliance import CallingRules, holds_data, load_rules
from recovery.domain.models import CaseStatus, FailureCategory, HistoryKind
from recovery.domain.policy import Policy, load_policy
from recovery.reporting.figures import held_entries
from recovery.services.advance import Decided, decide_due
from recovery.services.dispatch import (
    INVALID_FOR_CONTACT_CENTRE,
    REMOVAL_FAILED,
    Dispatched,
    dispatch,
)
from recovery.store.cases import append_history, case_key
from recovery.store.db import transaction
from recovery.store.tables import CaseRow, ContactRow, HistoryRow
from tests.support.due_cases import CALLABLE_INSTANT, seed_due_cases
from tests.support.emulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    CONTACT_LIST,
    Emulator,
    running_emulator,
)

LEASE = timedelta(seconds=30)
# 01:00 in New York, 22:00 in Los Angeles: after hours in every zone the seeded cases live in.
AFTER_HOURS = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
# What holds the first three seeded cases (California, New York, Texas) then, as recorded.
AFTER_HOURS_HOLDS = [
    [{"rule": "hours", "jurisdiction": "US", "zone": "America/Los_Angeles"}],
    [{"rule": "hours", "jurisdiction": "US", "zone": "America/New_York"}],
    [
        {"rule": "hours", "jurisdiction": "US", "zone": "America/Chicago"},
        {"rule": "hours", "jurisdiction": "US-TX", "zone": "America/Chicago"},
    ],
]
# 20:50 in New York: calling is lawful there for ten more minutes.
CLOSING = datetime(2026, 12, 2, 1, 50, tzinfo=UTC)
MARGIN = timedelta(minutes=15)
# A test card number (Luhn-valid).
PAN = "4111111111111111"


@dataclass
class Bench:
    sessions: sessionmaker[Session]
    emulator: Emulator
    client: GenesysClient
    clock: FixedClock
    policy: Policy
    rules: CallingRules

    def decide(self, owner: str) -> Decided:
        return decide_due(
            sessions=self.sessions,
            policy=self.policy,
            rules=self.rules,
            now=self.clock.now(),
            owner=owner,
            limit=100,
            lease=LEASE,
            contact_list_id=CONTACT_LIST,
        )

    def dispatch(self, ids: list[int]) -> Dispatched:
        return dispatch(
            sessions=self.sessions,
            client=self.client,
            contact_row_ids=ids,
            rules=self.rules,
            now=self.clock.now(),
        )

    def held(self) -> dict[str, bool]:
        """Contact id -> queued, for every contact the contact centre holds."""
        return {c["id"]: bool(c["queued"]) for c in self.emulator.contacts()}

    def case(self, key: str) -> CaseRow:
        with self.sessions() as session:
            for case in session.scalars(select(CaseRow)):
                if case_key(case.gateway, case.business_key) == key:
                    return case
        raise AssertionError(f"no case {key}")

    def contact(self, key: str, attempt: int = 1) -> ContactRow:
        with self.sessions() as session:
            return session.scalars(
                select(ContactRow).where(ContactRow.contact_id == contact_id_for(key, attempt))
            ).one()

    def history(self, key: str) -> list[HistoryRow]:
        case_id = self.case(key).id
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(HistoryRow).where(HistoryRow.case_id == case_id).order_by(HistoryRow.id)
                )
            )

    def set_case(self, key: str, **values: object) -> None:
        case_id = self.case(key).id
        with transaction(self.sessions) as session:
            session.execute(update(CaseRow).where(CaseRow.id == case_id).values(**values))


@pytest.fixture
def bench(sessions: sessionmaker[Session]) -> Iterator[Bench]:
    clock = FixedClock(CALLABLE_INSTANT)
    with running_emulator(clock) as emulator:
        client = GenesysClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=emulator.url,
            clock=clock,
            sleep=lambda _seconds: None,
            # One retry on a server error, without waiting: a failure is quick to provoke.
            retry=RetryPolicy(server_error_backoff=(0.0,)),
        )
        try:
            yield Bench(sessions, emulator, client, clock, load_policy(), load_rules())
        finally:
            client.close()


# -- a case the contact centre cannot take --------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field", "secret"),
    [
        ({"currency": "USDT"}, "currency", "USDT"),
        ({"amount": Decimal("-5.00")}, "amount", "-5"),
        ({"amount": Decimal("2e12")}, "amount", "2000000000000"),
        ({"business_key": f"order {PAN}"}, "case_key", PAN),
    ],
    ids=["currency", "negative-amount", "absurd-amount", "card-number"],
)
def test_one_case_the_contact_centre_cannot_take_is_refused_alone(
    bench: Bench, values: dict[str, object], field: str, secret: str
) -> None:
    keys = seed_due_cases(bench.sessions, count=6, at=CALLABLE_INSTANT)
    bench.set_case(keys[2], **values)
    bad = f"stripe:{values['business_key']}" if "business_key" in values else keys[2]
    good = [k for k in keys if k != keys[2]]

    decided = bench.decide("first")
    assert decided.actions == {"contact": 6}
    sent = bench.dispatch(decided.to_dispatch)

    assert (sent.created, sent.rejected, sent.cancelled, sent.requests) == (5, 1, 0, 1)
    assert sent.reasons == {INVALID_FOR_CONTACT_CENTRE: 1}
    held = bench.held()
    assert set(held) == {contact_id_for(k, 1) for k in good}
    for key in good:
        assert bench.contact(key).state == "created"
        assert bench.case(key).status == CaseStatus.awaiting_disposition.value

    row = bench.contact(bad)
    assert row.state == "rejected" and row.created_at is None
    assert row.error is not None
    assert row.error.startswith(f"{INVALID_FOR_CONTACT_CENTRE}: {field}: "), row.error
    case = bench.case(bad)
    assert case.status == CaseStatus.review.value and case.flagged_for_review
    assert case.lease_owner is None and case.contacts_made == 0
    history = bench.history(bad)
    refusal = [h for h in history if h.kind == HistoryKind.note and h.data.get("refused")]
    assert len(refusal) == 1 and f"{field}: " in " ".join(refusal[0].reasons)
    # Never sent: the attempt is not in the history the frequency caps read.
    assert not [h for h in history if h.kind == HistoryKind.contact_requested]
    # Neither the refused value nor anything from the phone number is kept in the record.
    texts = [row.error, case.status_reason or "", *(" ".join(h.reasons) for h in history)]
    assert not [t for t in texts if secret in t or (row.phone_e164[-7:] in t)]

    # Decided again at once, it is parked until its expiry instead of being planned again.
    again = bench.decide("second")
    assert again.claimed == 1 and again.actions == {"review": 1} and again.to_dispatch == []
    case = bench.case(bad)
    expires = case.failed_at + bench.policy.for_category(FailureCategory.card_expired).expires_after
    assert case.status == CaseStatus.review.value and case.next_due_at == expires
    assert bench.decide("third").claimed == 0
    assert bench.emulator.counters()["contacts_created"] == 5
    assert bench.contact(bad).state == "rejected"


def test_a_refused_case_released_by_a_person_is_planned_and_sent_again(bench: Bench) -> None:
    keys = seed_due_cases(bench.sessions, count=2, at=CALLABLE_INSTANT)
    bench.set_case(keys[0], currency="USDT")
    first = bench.dispatch(bench.decide("first").to_dispatch)
    assert (first.created, first.rejected) == (1, 1)
    bench.decide("parks")

    # Corrected and released for another attempt.
    bench.clock.set(CALLABLE_INSTANT + timedelta(minutes=20))
    now = bench.clock.now()
    case_id = bench.case(keys[0]).id
    with transaction(bench.sessions) as session:
        append_history(
            session=session,
            case_id=case_id,
            at=now,
            now=now,
            kind=HistoryKind.note,
            reasons=["currency corrected"],
            data={"review_resolved": True},
        )
    bench.set_case(keys[0], currency="USD", next_due_at=now, flagged_for_review=False)

    decided = bench.decide("after-review")
    assert decided.actions == {"contact": 1}
    assert bench.contact(keys[0]).state == "requested"
    sent = bench.dispatch(decided.to_dispatch)
    assert (sent.created, sent.rejected) == (1, 0)
    assert contact_id_for(keys[0], 1) in bench.held()
    assert bench.case(keys[0]).status == CaseStatus.awaiting_disposition.value


# -- withdrawn after it may have reached the contact centre ---------------------------------


def _taken_then_lost(bench: Bench, keys: list[str]) -> None:
    """The contact centre takes the planned contacts; the worker dies before recording it."""
    requests = []
    for key in keys:
        row = bench.contact(key)
        requests.append(
            ContactRequest(
                case_key=key, attempt=1, phone_e164=row.phone_e164, time_zone=row.time_zone
            )
        )
    assert bench.client.add_contacts(CONTACT_LIST, requests).created == [
        contact_id_for(k, 1) for k in keys
    ]


def test_a_resend_withdrawn_after_hours_is_removed_from_the_contact_list(bench: Bench) -> None:
    keys = seed_due_cases(bench.sessions, count=3, at=CALLABLE_INSTANT)
    assert bench.decide("dies").actions == {"contact": 3}
    _taken_then_lost(bench, keys)
    assert all(bench.held()[contact_id_for(k, 1)] for k in keys)

    bench.clock.set(AFTER_HOURS)
    decided = bench.decide("takes-over")
    assert decided.actions == {"resend": 3}
    sent = bench.dispatch(decided.to_dispatch)

    assert (sent.cancelled, sent.created, sent.requests) == (3, 0, 0)
    assert bench.held() == {}
    assert bench.emulator.counters()["deleted"] == 3
    for key, holds in zip(keys, AFTER_HOURS_HOLDS, strict=True):
        assert bench.contact(key).state == "cancelled"
        notes = [h.data for h in bench.history(key) if h.kind == HistoryKind.note]
        assert notes[-1] == {
            "attempt": 1,
            "contact_id": contact_id_for(key, 1),
            "withdrawn": True,
            "holds": holds,
            "removed": True,
        }
        assert any(n.get("unconfirmed") for n in notes)
        assert bench.case(key).lease_owner is None
    # The report counts them among the contacts blocked by compliance, from these fields.
    with bench.sessions() as session:
        withdrawn = [e for e in held_entries(session=session) if e.withdrawal]
    assert [holds_data(e.holds) for e in withdrawn] == AFTER_HOURS_HOLDS


def test_a_withdrawn_resend_stays_planned_while_the_contact_centre_is_down(bench: Bench) -> None:
    keys = seed_due_cases(bench.sessions, count=2, at=CALLABLE_INSTANT)
    bench.decide("dies")
    _taken_then_lost(bench, keys)
    bench.clock.set(AFTER_HOURS)
    ids = bench.decide("takes-over").to_dispatch

    bench.emulator.fault(status=503, apply=False, delay_seconds=0, count=10)
    down = bench.dispatch(ids)
    assert down.cancelled == 0 and down.reasons == {REMOVAL_FAILED: 2}
    # Nothing recorded as withdrawn while the contact centre still holds it.
    assert {bench.contact(k).state for k in keys} == {"requested"}
    assert set(bench.held()) == {contact_id_for(k, 1) for k in keys}

    bench.emulator.clear_faults()
    bench.clock.set(AFTER_HOURS + LEASE + timedelta(seconds=1))
    decided = bench.decide("next-run")
    assert decided.actions == {"resend": 2}
    back = bench.dispatch(decided.to_dispatch)
    assert back.cancelled == 2 and bench.held() == {}
    assert {bench.contact(k).state for k in keys} == {"cancelled"}


def test_a_batch_retried_after_a_lost_answer_is_removed_when_withdrawn(bench: Bench) -> None:
    keys = seed_due_cases(bench.sessions, count=2, at=CALLABLE_INSTANT)
    ids = bench.decide("only").to_dispatch
    # Applied, then answered with errors: the client gives up without knowing.
    bench.emulator.fault(status=503, apply=True, delay_seconds=0, count=2)
    with pytest.raises(TransientContactCenterError):
        bench.dispatch(ids)
    assert set(bench.held()) == {contact_id_for(k, 1) for k in keys}

    # Retried under the same lease, once calling is no longer lawful.
    bench.clock.set(AFTER_HOURS)
    retried = bench.dispatch(ids)
    assert retried.cancelled == 2 and bench.held() == {}


def test_a_fresh_plan_withdrawn_costs_no_request(bench: Bench) -> None:
    keys = seed_due_cases(bench.sessions, count=3, at=CALLABLE_INSTANT)
    ids = bench.decide("only").to_dispatch
    before = bench.emulator.counters()["requests"]
    bench.clock.set(AFTER_HOURS)
    sent = bench.dispatch(ids)
    assert sent.cancelled == 3 and sent.requests == 0
    assert bench.emulator.counters()["requests"] == before
    for key, holds in zip(keys, AFTER_HOURS_HOLDS, strict=True):
        notes = [h for h in bench.history(key) if h.kind == HistoryKind.note]
        assert "withdrawn before it was sent" in notes[-1].reasons[0]
        assert "removed" not in notes[-1].data
        assert notes[-1].data["holds"] == holds


# -- the compliance refusals recorded as fields ----------------------------------------------


def test_a_wait_for_the_window_records_its_holds(bench: Bench) -> None:
    keys = seed_due_cases(bench.sessions, count=3, at=CALLABLE_INSTANT)
    bench.clock.set(AFTER_HOURS)
    assert bench.decide("night").actions == {"wait": 3}
    for key, holds in zip(keys, AFTER_HOURS_HOLDS, strict=True):
        decision = [h for h in bench.history(key) if h.kind == HistoryKind.decision][-1]
        assert decision.data["action"] == "wait"
        assert decision.data["holds"] == holds


def test_a_contact_records_no_holds(bench: Bench) -> None:
    (key,) = seed_due_cases(bench.sessions, count=1, at=CALLABLE_INSTANT)
    assert bench.decide("day").actions == {"contact": 1}
    decision = [h for h in bench.history(key) if h.kind == HistoryKind.decision][-1]
    assert decision.data["action"] == "contact" and decision.data["holds"] == []


def test_the_dial_margin_is_recorded_as_a_hold(bench: Bench) -> None:
    """Too close to the window's end: the decision waits, and a contact planned earlier is
    withdrawn at dispatch; both record the margin and the rule it would have broken."""
    late = [
        {"rule": "dial_margin", "period": "15m"},
        {"rule": "hours", "jurisdiction": "US", "zone": "America/New_York"},
    ]
    # Both in New York (the second of the seeded places).
    first, second = seed_due_cases(bench.sessions, count=1, at=CALLABLE_INSTANT, start=1) + (
        seed_due_cases(bench.sessions, count=1, at=CALLABLE_INSTANT, start=1, prefix="in_late")
    )
    bench.clock.set(CLOSING)
    waited = decide_due(
        sessions=bench.sessions,
        policy=bench.policy,
        rules=bench.rules,
        now=CLOSING,
        owner="margin",
        limit=1,
        lease=LEASE,
        contact_list_id=CONTACT_LIST,
        dial_margin=MARGIN,
    )
    assert waited.actions == {"wait": 1}
    decision = [h for h in bench.history(first) if h.kind == HistoryKind.decision][-1]
    assert decision.data["holds"] == late
    assert "the window closes within the 15 min dial margin" in decision.reasons

    planned = bench.decide("no-margin")  # the other case, planned without a margin
    assert planned.actions == {"contact": 1}
    sent = dispatch(
        sessions=bench.sessions,
        client=bench.client,
        contact_row_ids=planned.to_dispatch,
        rules=bench.rules,
        now=CLOSING,
        dial_margin=MARGIN,
    )
    assert sent.cancelled == 1 and sent.requests == 0
    note = [h for h in bench.history(second) if h.kind == HistoryKind.note][-1]
    assert note.data["withdrawn"] is True and note.data["holds"] == late


def test_a_resend_the_contact_centre_can_no_longer_take_is_removed_then_refused(
    bench: Bench,
) -> None:
    keys = seed_due_cases(bench.sessions, count=2, at=CALLABLE_INSTANT)
    bench.decide("dies")
    _taken_then_lost(bench, keys)
    # The case changed meanwhile; the version the contact centre holds must not be dialled.
    bench.set_case(keys[0], currency="USDT")
    bench.clock.set(CALLABLE_INSTANT + LEASE + timedelta(seconds=1))
    decided = bench.decide("takes-over")
    assert decided.actions == {"resend": 2}
    sent = bench.dispatch(decided.to_dispatch)

    assert (sent.created, sent.rejected, sent.cancelled) == (1, 1, 0)
    assert set(bench.held()) == {contact_id_for(keys[1], 1)}
    assert bench.contact(keys[0]).state == "rejected"
    assert bench.case(keys[0]).status == CaseStatus.review.value
    refusal = [h for h in bench.history(keys[0]) if h.data.get("refused")]
    assert len(refusal) == 1 and refusal[0].data["removed"] is True

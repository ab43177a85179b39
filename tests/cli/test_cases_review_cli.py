"""``recovery cases resolve`` and ``recovery cases close``: a person acts on the review queue.

Against a migrated store (SQLite and PostgreSQL), the CLI in process, the advance step in
process, and the Genesys emulator over real HTTP, all on one file clock:

* resolve releases a case parked because the contact centre refused its currency: the next
  decision plans it again, and with ``--clear currency`` the contact is then built and created;
* resolve of a case not in review (open, closed, held by a worker, unknown) exits 1 and
  changes nothing; an unknown ``--clear`` field exits 2;
* close removes a contact queued at the contact centre, or planned and perhaps sent, before
  it closes the case; with the contact centre down or failing it exits 1 and changes nothing;
* a card number in a note never reaches the store.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from recovery.cli import app
from recovery.clock import FileClock
from recovery.contact_center.client import GenesysClient
from recovery.contact_center.contacts import ContactRequest, contact_id_for
from recovery.contact_center.throttle import RetryPolicy
from recovery.domain.compliance import CallingRules, load_rules
from recovery.domain.models import CaseStatus, HistoryKind, Outcome
from recovery.domain.pan import REDACTED
from recovery.domain.policy import Policy, load_policy
from recovery.services.advance import Decided, decide_due
from recovery.services.closing import closed_case_contacts
from recovery.services.dispatch import Dispatched, dispatch
from recovery.store.cases import case_key, close_case
from recovery.store.db import make_engine, make_sessionmaker, transaction
from recovery.store.review import MANUAL_OUTCOMES
from recovery.store.tables import Base, CaseRow, ContactRow, HistoryRow
from recovery.store.work import claim_due
from tests.support.due_cases import CALLABLE_INSTANT, seed_due_cases
from tests.support.emulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    CONTACT_LIST,
    Emulator,
    running_emulator,
)

LEASE = timedelta(seconds=30)
# A test card number (Luhn-valid), and the same number as a person might paste it.
PAN = "4111111111111111"
SPACED_PAN = "4111 1111 1111 1111"


@dataclass
class Bench:
    sessions: sessionmaker[Session]
    emulator: Emulator
    client: GenesysClient
    clock: FileClock
    policy: Policy
    rules: CallingRules
    monkeypatch: pytest.MonkeyPatch

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

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(app, ["cases", *args])

    def held(self) -> set[str]:
        """The ids of the contacts the contact centre holds."""
        return {c["id"] for c in self.emulator.contacts()}

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

    def review_queue(self) -> set[str]:
        """The keys the review-queue flow lists."""
        with self.sessions() as session:
            return {
                case_key(c.gateway, c.business_key)
                for c in session.scalars(
                    select(CaseRow).where(
                        or_(CaseRow.flagged_for_review.is_(True), CaseRow.status == "review")
                    )
                )
            }

    def snapshot(self) -> list[str]:
        """Every row of every table, as text: what "nothing changed" compares."""
        rows: list[str] = []
        with self.sessions() as session:
            for table in Base.metadata.sorted_tables:
                for row in session.execute(select(table).order_by(*table.primary_key.columns)):
                    rows.append(f"{table.name} {json.dumps([str(v) for v in row])}")
        return rows

    def park_refused(self, key: str, currency: str = "USDT") -> None:
        """The contact centre's columns refuse the case's currency: the contact is refused
        before it is sent, and the next decision parks the case for a person."""
        self.set_case(key, currency=currency)
        sent = self.dispatch(self.decide("plans").to_dispatch)
        assert sent.rejected == 1, sent
        assert self.decide("parks").actions["review"] == 1
        case = self.case(key)
        assert case.status == CaseStatus.review.value and case.flagged_for_review


@pytest.fixture
def bench(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bench]:
    clock_file = tmp_path / "clock"
    clock_file.write_text(CALLABLE_INSTANT.isoformat())
    clock = FileClock(clock_file)
    engine = make_engine(store_url)
    with running_emulator(clock) as emulator:
        for name, value in {
            "RECOVERY_DATABASE_URL": store_url,
            "RECOVERY_CLOCK": f"file:{clock_file}",
            "RECOVERY_STRIPE_API_BASE": "http://127.0.0.1:9",
            "RECOVERY_GENESYS_REGION": "emulator",
            "RECOVERY_GENESYS_BASE_URL": emulator.url,
            "RECOVERY_GENESYS_CLIENT_ID": CLIENT_ID,
            "RECOVERY_GENESYS_CLIENT_SECRET": CLIENT_SECRET,
            "RECOVERY_GENESYS_CONTACT_LIST_ID": CONTACT_LIST,
        }.items():
            monkeypatch.setenv(name, value)
        client = GenesysClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=emulator.url,
            clock=clock,
            sleep=lambda _seconds: None,
            retry=RetryPolicy(server_error_backoff=(0.0,)),
        )
        try:
            yield Bench(
                make_sessionmaker(engine),
                emulator,
                client,
                clock,
                load_policy(),
                load_rules(),
                monkeypatch,
            )
        finally:
            client.close()
            engine.dispose()


def _document(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.stderr or result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


# -- resolve --------------------------------------------------------------------------------


@pytest.mark.parametrize("clear", [["currency"], []], ids=["clear-currency", "as-it-is"])
def test_resolve_releases_a_refused_case_and_the_next_decision_plans_it_again(
    bench: Bench, clear: list[str]
) -> None:
    keys = seed_due_cases(bench.sessions, count=2, at=CALLABLE_INSTANT)
    bench.park_refused(keys[0])
    assert bench.review_queue() == {keys[0]}
    # Parked until its expiry: no advance run takes it up again by itself.
    assert bench.decide("idle").claimed == 0

    bench.clock.set(CALLABLE_INSTANT + timedelta(minutes=20))
    now = bench.clock.now()
    options = [arg for name in clear for arg in ("--clear", name)]
    document = _document(
        bench.cli(
            "resolve", keys[0], "--note", "ops/jane: checked with billing", *options, "--json"
        )
    )
    assert document == {
        "key": keys[0],
        "action": "resolved",
        "status": "open",
        "next_due_at": now.isoformat(),
        "cleared": clear,
    }
    case = bench.case(keys[0])
    assert (case.status, case.flagged_for_review, case.next_due_at) == ("open", False, now)
    assert case.currency == (None if clear else "USDT")
    assert bench.review_queue() == set()
    note = bench.history(keys[0])[-1]
    assert note.kind == HistoryKind.note and note.at == now
    assert note.data == {"review_resolved": True, "cleared": clear}
    assert list(note.reasons)[0] == "review resolved: ops/jane: checked with billing"
    assert "USDT" not in json.dumps(note.reasons)

    decided = bench.decide("after-review")
    assert decided.actions == {"contact": 1}
    assert bench.contact(keys[0]).state == "requested"
    sent = bench.dispatch(decided.to_dispatch)
    if clear:
        # Built without the refused value, the contact is created at the contact centre.
        assert (sent.created, sent.rejected) == (1, 0)
        assert contact_id_for(keys[0], 1) in bench.held()
        assert bench.contact(keys[0]).state == "created"
        assert bench.case(keys[0]).status == CaseStatus.awaiting_disposition.value
    else:
        # Released as it was, the same value is refused again and the case parked again.
        assert (sent.created, sent.rejected) == (0, 1)
        assert contact_id_for(keys[0], 1) not in bench.held()
        assert bench.decide("parks-again").actions == {"review": 1}
        assert bench.review_queue() == {keys[0]}


@pytest.mark.parametrize("situation", ["open", "closed", "held", "unknown"])
def test_resolve_of_a_case_not_in_review_exits_1_and_changes_nothing(
    bench: Bench, situation: str
) -> None:
    keys = seed_due_cases(bench.sessions, count=2, at=CALLABLE_INSTANT)
    key = keys[0]
    expected = {
        "open": f"case {key} is open, not in review",
        "closed": f"case {key} is closed (recovered)",
        "held": f"case {key} is being worked on right now",
        "unknown": "no case 'stripe:nothing_like_it'",
    }[situation]
    now = bench.clock.now()
    if situation == "closed":
        case_id = bench.case(key).id
        with transaction(bench.sessions) as session:
            case = session.get(CaseRow, case_id)
            assert case is not None
            close_case(
                session=session,
                case=case,
                outcome=Outcome.recovered,
                at=now,
                now=now,
                reasons=["payment succeeded"],
            )
    elif situation == "held":
        bench.park_refused(key)
        bench.set_case(key, next_due_at=now)
        case_id = bench.case(key).id
        with transaction(bench.sessions) as session:
            claimed = claim_due(
                session=session, now=now, limit=10, owner="worker-1", lease_seconds=300
            )
        assert claimed == [case_id]
    elif situation == "unknown":
        key = "stripe:nothing_like_it"
    before = bench.snapshot()

    result = bench.cli("resolve", key, "--note", "ops/jane: looked at it")

    assert result.exit_code == 1, result.output
    assert expected in result.stderr
    assert result.stdout == ""
    assert bench.snapshot() == before


def test_resolve_of_a_closed_case_in_the_review_queue_only_clears_its_flag(bench: Bench) -> None:
    # A dispute closes the case and flags it: a person acknowledges it, and it stays closed.
    keys = seed_due_cases(bench.sessions, count=1, at=CALLABLE_INSTANT)
    now = bench.clock.now()
    case_id = bench.case(keys[0]).id
    with transaction(bench.sessions) as session:
        case = session.get(CaseRow, case_id)
        assert case is not None
        close_case(
            session=session,
            case=case,
            outcome=Outcome.disputed,
            at=now,
            now=now,
            reasons=["disposition dispute"],
        )
        case.flagged_for_review = True
    assert bench.review_queue() == {keys[0]}

    cleared = bench.cli(
        "resolve", keys[0], "--note", "ops/jane: refund issued", "--clear", "amount"
    )
    assert cleared.exit_code == 1 and "nothing to clear" in cleared.stderr

    result = bench.cli("resolve", keys[0], "--note", "ops/jane: refund issued")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"resolved the review of {keys[0]}: it stays closed\n"
    case = bench.case(keys[0])
    assert (case.status, case.outcome, case.flagged_for_review) == ("closed", "disputed", False)
    assert bench.review_queue() == set()
    assert bench.history(keys[0])[-1].data == {"review_resolved": True, "cleared": []}


def test_an_unknown_clear_field_exits_2_and_changes_nothing(bench: Bench) -> None:
    keys = seed_due_cases(bench.sessions, count=1, at=CALLABLE_INSTANT)
    bench.park_refused(keys[0])
    before = bench.snapshot()

    result = bench.cli(
        "resolve", keys[0], "--note", "x", "--clear", "currency", "--clear", "phone_e164"
    )
    assert result.exit_code == 2
    assert "cannot clear 'phone_e164': --clear takes amount, currency, customer_name" in (
        result.stderr
    )
    empty = bench.cli("resolve", keys[0], "--note", "   ")
    assert empty.exit_code == 2 and "--note is empty" in empty.stderr
    assert bench.snapshot() == before


# -- close ----------------------------------------------------------------------------------


def test_close_removes_the_queued_contact_from_the_contact_centre_then_closes(
    bench: Bench,
) -> None:
    keys = seed_due_cases(bench.sessions, count=2, at=CALLABLE_INSTANT)
    assert bench.dispatch(bench.decide("plans").to_dispatch).created == 2
    assert bench.held() == {contact_id_for(k, 1) for k in keys}
    bench.clock.set(CALLABLE_INSTANT + timedelta(minutes=5))
    now = bench.clock.now()

    document = _document(
        bench.cli(
            "close",
            keys[0],
            "--outcome",
            "recovered",
            "--note",
            "ops/jane: paid by bank transfer",
            "--json",
        )
    )

    assert document == {
        "key": keys[0],
        "action": "closed",
        "outcome": "recovered",
        "removed_from_contact_list": 1,
        "not_on_contact_list": 0,
    }
    assert bench.held() == {contact_id_for(keys[1], 1)}
    assert bench.emulator.counters()["deleted"] == 1
    case = bench.case(keys[0])
    assert (case.status, case.outcome, case.closed_at, case.next_due_at) == (
        "closed",
        "recovered",
        now,
        None,
    )
    assert (case.lease_owner, case.lease_until, case.flagged_for_review) == (None, None, False)
    assert bench.contact(keys[0]).state == "removed"
    removed, closed = bench.history(keys[0])[-2:]
    assert removed.kind == HistoryKind.contact_removed and removed.data["attempt"] == 1
    assert closed.kind == HistoryKind.closed
    assert closed.data == {"outcome": "recovered", "by_person": True}
    assert list(closed.reasons) == [
        "closed by a person as recovered: ops/jane: paid by bank transfer"
    ]
    # Nothing is left for the close-on-payment flow, and no advance run takes it up again.
    assert closed_case_contacts(sessions=bench.sessions, limit=10) == []
    entries = len(bench.history(keys[0]))
    bench.clock.set(now + timedelta(days=3))
    bench.decide("later")
    assert len(bench.history(keys[0])) == entries
    assert bench.case(keys[0]).status == "closed"

    again = bench.cli("close", keys[0], "--outcome", "disputed", "--note", "again")
    assert again.exit_code == 1 and f"case {keys[0]} is already closed (recovered)" in (
        again.stderr
    )


@pytest.mark.parametrize("sent", [True, False], ids=["taken-then-lost", "never-sent"])
def test_close_withdraws_a_planned_contact_the_contact_centre_may_hold(
    bench: Bench, sent: bool
) -> None:
    keys = seed_due_cases(bench.sessions, count=1, at=CALLABLE_INSTANT)
    assert bench.decide("dies").actions == {"contact": 1}
    if sent:
        # The contact centre took it; the worker died before recording the answer.
        row = bench.contact(keys[0])
        request = ContactRequest(
            case_key=keys[0], attempt=1, phone_e164=row.phone_e164, time_zone=row.time_zone
        )
        assert bench.client.add_contacts(CONTACT_LIST, [request]).created == [row.contact_id]
    bench.clock.set(CALLABLE_INSTANT + LEASE + timedelta(seconds=1))

    result = bench.cli("close", keys[0], "--outcome", "disputed", "--note", "ops/jane: dispute")

    assert result.exit_code == 0, result.stderr
    expected = (
        "1 queued contact(s) removed from the contact list"
        if sent
        else "1 queued contact(s) not on the contact list (any more)"
    )
    assert result.stdout == f"closed {keys[0]} as disputed: {expected}\n"
    assert bench.held() == set()
    row = bench.contact(keys[0])
    assert row.state == "cancelled"
    withdrawn = [h for h in bench.history(keys[0]) if h.data.get("withdrawn")]
    assert [h.data for h in withdrawn] == [
        {
            "attempt": 1,
            "contact_id": row.contact_id,
            "withdrawn": True,
            "holds": [],  # a person's close: no compliance refusal behind it
            "removed": sent,
        }
    ]
    case = bench.case(keys[0])
    assert (case.status, case.outcome, case.lease_owner) == ("closed", "disputed", None)
    # The planned contact is never sent afterwards, however often the advance step runs.
    bench.clock.set(CALLABLE_INSTANT + timedelta(hours=1))
    assert bench.decide("next-run").claimed == 0
    assert bench.dispatch([row.id]).requests == 0
    assert bench.held() == set()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("trouble", ["stopped", "failing"])
def test_close_while_the_contact_centre_is_unreachable_exits_1_and_changes_nothing(
    bench: Bench, trouble: str
) -> None:
    keys = seed_due_cases(bench.sessions, count=1, at=CALLABLE_INSTANT)
    assert bench.dispatch(bench.decide("plans").to_dispatch).created == 1
    before = bench.snapshot()
    if trouble == "stopped":
        bench.monkeypatch.setenv("RECOVERY_GENESYS_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    else:
        bench.emulator.fault(status=503, apply=False, delay_seconds=0, count=50)

    result = bench.cli("close", keys[0], "--outcome", "recovered", "--note", "ops/jane: paid")

    assert result.exit_code == 1, result.output
    assert "nothing changed, the case is not closed; try again" in result.stderr
    assert result.stdout == ""
    assert bench.snapshot() == before
    bench.emulator.clear_faults()
    assert bench.held() == {contact_id_for(keys[0], 1)}

    # Once the contact centre answers again, the same command does it.
    bench.monkeypatch.setenv("RECOVERY_GENESYS_BASE_URL", bench.emulator.url)
    retried = bench.cli("close", keys[0], "--outcome", "recovered", "--note", "ops/jane: paid")
    assert retried.exit_code == 0, retried.stderr
    assert bench.held() == set()
    assert bench.case(keys[0]).outcome == "recovered"


def test_close_refuses_an_outcome_a_person_does_not_set(bench: Bench) -> None:
    keys = seed_due_cases(bench.sessions, count=1, at=CALLABLE_INSTANT)
    before = bench.snapshot()
    for outcome in ("expired", "exhausted", "suppressed", "paid"):
        result = bench.cli("close", keys[0], "--outcome", outcome, "--note", "ops/jane")
        assert result.exit_code == 2, outcome
        assert "a person closes a case as recovered, disputed, unreachable" in result.stderr
    assert bench.snapshot() == before
    helped = bench.cli("close", "--help")
    assert helped.exit_code == 0
    for outcome in MANUAL_OUTCOMES:
        assert f"{outcome.value}:" in helped.stdout


# -- card numbers ---------------------------------------------------------------------------


def test_a_card_number_in_a_note_never_reaches_the_store(bench: Bench, tmp_path: Path) -> None:
    keys = seed_due_cases(bench.sessions, count=2, at=CALLABLE_INSTANT)
    bench.park_refused(keys[0])

    resolved = bench.cli(
        "resolve", keys[0], "--note", f"customer read out {SPACED_PAN}", "--clear", "currency"
    )
    assert resolved.exit_code == 0, resolved.stderr
    closed = bench.cli(
        "close", keys[1], "--outcome", "recovered", "--note", f"paid with card {PAN} by phone"
    )
    assert closed.exit_code == 0, closed.stderr

    assert (
        list(bench.history(keys[0])[-1].reasons)[0]
        == f"review resolved: customer read out {REDACTED}"
    )
    assert list(bench.history(keys[1])[-1].reasons) == [
        f"closed by a person as recovered: paid with card {REDACTED} by phone"
    ]
    blob = "\n".join(bench.snapshot())
    for form in (PAN, SPACED_PAN):
        assert form not in blob
        assert form not in resolved.output + closed.output
    url = str(bench.sessions.kw["bind"].url)
    if url.startswith("sqlite"):
        database = Path(str(bench.sessions.kw["bind"].url.database))
        for file in (database, Path(f"{database}-wal")):
            if file.exists():
                assert PAN.encode() not in file.read_bytes()
                assert SPACED_PAN.encode() not in file.read_bytes()

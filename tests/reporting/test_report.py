"""``recovery report``: every figure checked against a small store whose histories are known.

Ten cases fail in October 2026 (one more in September, outside the period). Their contacts,
dispositions, payments and decisions are written with the repository functions, and the
compliance refusals come from the compliance engine itself (its verdicts' holds, recorded as
``data["holds"]`` as the advance service records them), so the report counts what the engine
really answers. One of K's decisions is recorded as before holds were stored (reasons only),
which the report reads back from the engine's sentences. The expected figures below were
worked out by hand from this table:

| case | category           | phone | amount     | what happened                                  |
|------|--------------------|-------|------------|------------------------------------------------|
| A    | insufficient_funds | FL    | 20.00 USD  | contact, promise_to_pay, paid after 2.5 days   |
| B    | insufficient_funds | CA    | 35.50 USD  | contact, no_answer, contact, callback, paid 4d |
| C    | card_expired       | FL    | 10.00 EUR  | paid after 1 day, never called                 |
| D    | card_expired       | CA    | 15.00 USD  | contact, payment_updated, closed recovered 6d  |
| E    | generic_decline    | FL    | 50.00 USD  | contact, do_not_call, closed suppressed        |
| F    | insufficient_funds | none  | 5.00 USD   | no phone: needs contact info                   |
| G    | insufficient_funds | bad   | 5.00 USD   | invalid phone: closed unreachable              |
| H    | generic_decline    | FL    | 12.00 USD  | contact, no_answer, 2nd withdrawn, exhausted   |
| I    | insufficient_funds | FL    | 3000 JPY   | paid after 3 days, never called                |
| K    | insufficient_funds | CA    | 25.00 USD  | contact, promise_to_pay, still open            |
| J    | insufficient_funds | FL    | 99.00 USD  | failed in September: outside the period        |
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from recovery.cli import app
from recovery.domain.compliance import (
    CallHistory,
    Hold,
    Verdict,
    holds_data,
    load_rules,
    permitted,
)
from recovery.domain.models import (
    CaseStatus,
    ContactPoint,
    Disposition,
    FailureCategory,
    Gateway,
    HistoryKind,
    Outcome,
    PaymentFailure,
    PaymentSucceeded,
)
from recovery.domain.policy import is_right_party
from recovery.reporting.figures import (
    compliance_rules,
    compute_report,
    entry_holds,
    held_entries,
    rule_label,
)
from recovery.reporting.legacy import legacy_holds_from_prose
from recovery.reporting.render import report_document
from recovery.store.cases import (
    append_history,
    apply_failure,
    apply_success,
    close_case,
)
from recovery.store.contacts import record_withdrawal
from recovery.store.db import make_engine, make_sessionmaker, transaction
from recovery.store.dispositions import record_disposition
from recovery.store.tables import CaseRow, ContactRow, HistoryRow

F0 = datetime(2026, 10, 5, 14, 0, tzinfo=UTC)
LATER = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)  # when the successes were processed
SINCE = datetime(2026, 10, 1, tzinfo=UTC)
UNTIL = datetime(2026, 11, 1, tzinfo=UTC)
FL = ("+13055550123", "FL")
CA = ("+14155552671", "CA")
US_HOURS = ("US", "hours")
FL_HOURS = ("US-FL", "hours")
FL_CAP = ("US-FL", "cap 3 attempts per rolling 24h")
US_COOLDOWN = ("US", "no call within 7d after a conversation")


class Store:
    """Writes cases and their histories with the repository functions."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.ids: dict[str, int] = {}
        self.rules = load_rules(None, "strict")

    def fail(
        self,
        key: str,
        category: FailureCategory,
        where: tuple[str, str] | None,
        amount: str,
        currency: str = "usd",
        at: datetime = F0,
        phone_problem: str | None = None,
    ) -> None:
        phone, state = where if where else (None, None)
        if phone_problem:
            phone = None  # an invalid number is kept only as sent, never as E.164
        failure = PaymentFailure(
            gateway=Gateway.stripe,
            event_id=f"evt_{key}",
            event_type="invoice.payment_failed",
            business_key=f"in_{key}",
            contact=ContactPoint(phone_e164=phone, state=state),
            phone_raw="12" if phone_problem else None,
            phone_problem=phone_problem,
            amount=Decimal(amount),
            currency=currency,
            occurred_at=at,
        )
        result = apply_failure(
            session=self.session,
            failure=failure,
            category=category,
            category_reason="test",
            now=at,
        )
        assert result.case_id is not None
        self.ids[key] = result.case_id

    def call(self, key: str, attempt: int, disposition: Disposition | None, hours: float) -> None:
        """A contact created at the contact centre and, if given, its disposition."""
        at = F0 + timedelta(hours=hours)
        contact_id = f"c-{key}-{attempt}"
        self.session.add(
            ContactRow(
                case_id=self.ids[key],
                attempt=attempt,
                contact_id=contact_id,
                contact_list_id="list",
                phone_e164="+10000000000",
                time_zone="America/New_York",
                planned_at=at,
                requested_at=at,
                created_at=at,
                state="created",
                disposition_due_at=at + timedelta(hours=4),
            )
        )
        self.session.flush()
        if disposition is not None:
            record_disposition(
                session=self.session,
                contact_id=contact_id,
                wrapup_code=disposition.value,
                disposition=disposition,
                right_party=is_right_party(disposition),
                source="push",
                occurred_at=at + timedelta(minutes=5),
                now=at + timedelta(minutes=5),
            )

    def planned_only(self, key: str, attempt: int) -> ContactRow:
        """A contact planned but never created at the contact centre (it does not count)."""
        row = ContactRow(
            case_id=self.ids[key],
            attempt=attempt,
            contact_id=f"c-{key}-{attempt}",
            contact_list_id="list",
            phone_e164="+10000000000",
            time_zone="America/New_York",
            planned_at=F0,
            requested_at=F0,
            created_at=None,
            state="requested",
        )
        self.session.add(row)
        self.session.flush()
        return row

    def pay(self, key: str, days: float, amount: str) -> None:
        success = PaymentSucceeded(
            gateway=Gateway.stripe,
            event_id=f"evt_paid_{key}",
            event_type="invoice.paid",
            business_key=f"in_{key}",
            amount=Decimal(amount),
            occurred_at=F0 + timedelta(days=days),
        )
        assert apply_success(session=self.session, success=success, now=LATER).action == "closed"

    def close(self, key: str, outcome: Outcome, days: float) -> None:
        case = self.session.get(CaseRow, self.ids[key])
        assert case is not None
        at = F0 + timedelta(days=days)
        close_case(session=self.session, case=case, outcome=outcome, at=at, now=at, reasons=["t"])

    def decide(self, key: str, *reasons: str, verdict: Verdict | None = None) -> None:
        """A decision as the advance service records it: the step's reasons (the verdict's
        among them) and the verdict's holds in ``data``."""
        holds = verdict.holds if verdict is not None else ()
        append_history(
            session=self.session,
            case_id=self.ids[key],
            at=F0,
            now=F0,
            kind=HistoryKind.decision,
            status=CaseStatus.awaiting_window,
            reasons=[*reasons, *(verdict.reasons if verdict is not None else ())],
            data={"action": "wait", "holds": holds_data(holds)},
        )

    def note(self, key: str, kind: HistoryKind, *reasons: str) -> None:
        """An entry with reasons only, as every entry was before holds were stored."""
        append_history(
            session=self.session,
            case_id=self.ids[key],
            at=F0,
            now=F0,
            kind=kind,
            status=CaseStatus.awaiting_window,
            reasons=reasons,
        )

    def refusals(self, where: tuple[str, str], at: datetime, history: CallHistory) -> Verdict:
        """The compliance engine's own refusal of a call."""
        verdict = permitted(
            ContactPoint(phone_e164=where[0], state=where[1]), history, at, self.rules
        )
        assert not verdict.permitted
        return verdict


def build(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        s = Store(session)
        ins, exp, gen = (
            FailureCategory.insufficient_funds,
            FailureCategory.card_expired,
            FailureCategory.generic_decline,
        )
        evening = datetime(2026, 10, 6, 1, 0, tzinfo=UTC)  # 21:00 in New York
        dawn = datetime(2026, 10, 6, 13, 0, tzinfo=UTC)  # 06:00 in Los Angeles
        noon = datetime(2026, 10, 6, 16, 0, tzinfo=UTC)
        fl_hours = s.refusals(FL, evening, CallHistory())
        ca_hours = s.refusals(CA, dawn, CallHistory())
        cap = s.refusals(
            FL, noon, CallHistory(attempts=tuple(noon - timedelta(hours=h) for h in (1, 2, 3)))
        )
        cooldown = s.refusals(CA, noon, CallHistory(last_conversation=noon - timedelta(days=1)))
        assert compliance_rules(fl_hours.holds) == {FL_HOURS, US_HOURS}
        assert compliance_rules(ca_hours.holds) == {US_HOURS}

        s.fail("A", ins, FL, "20.00")
        s.decide("A", "insufficient_funds: first contact", verdict=fl_hours)
        s.decide("A", "insufficient_funds: first contact", "attempt 1 of 5")
        s.call("A", 1, Disposition.promise_to_pay, hours=20)
        s.pay("A", 2.5, "20.00")

        s.fail("B", ins, CA, "35.50")
        s.call("B", 1, Disposition.no_answer, hours=20)
        s.call("B", 2, Disposition.callback_requested, hours=44)
        s.decide("B", "callback_requested: retry", verdict=cooldown)
        s.pay("B", 4, "35.50")

        s.fail("C", exp, FL, "10.00", currency="eur")
        s.pay("C", 1, "10.00")

        s.fail("D", exp, CA, "15.00")
        s.call("D", 1, Disposition.payment_updated, hours=30)
        s.close("D", Outcome.recovered, days=6)

        s.fail("E", gen, FL, "50.00")
        s.decide("E", "attempt 4 of 5", verdict=cap)
        s.call("E", 1, Disposition.do_not_call, hours=20)
        s.close("E", Outcome.suppressed, days=1)

        s.fail("F", ins, None, "5.00")
        s.fail("G", ins, ("12", "FL"), "5.00", phone_problem="invalid phone number")

        s.fail("H", gen, FL, "12.00")
        s.call("H", 1, Disposition.no_answer, hours=20)
        record_withdrawal(
            session=session,
            row=s.planned_only("H", 2),
            why="not permitted now: " + "; ".join(fl_hours.reasons),
            now=F0,
            removed=None,
            holds=fl_hours.holds,
        )
        s.note("H", HistoryKind.note, "operator remark: " + fl_hours.reasons[0])  # not a block
        s.close("H", Outcome.exhausted, days=9)

        s.fail("I", ins, FL, "3000", currency="jpy")
        s.pay("I", 3, "3000")

        s.fail("K", ins, CA, "25.00")
        s.decide("K", verdict=ca_hours)
        s.note("K", HistoryKind.decision, *ca_hours.reasons)  # recorded before holds were
        s.call("K", 1, Disposition.promise_to_pay, hours=30)

        s.fail("J", ins, FL, "99.00", at=datetime(2026, 9, 20, 12, tzinfo=UTC))
        s.decide("J", verdict=fl_hours)
        s.pay("J", 2, "99.00")


EXPECTED_FUNNEL = {
    "failed": 10,
    "reachable": 8,  # not F (no phone) nor G (unreachable)
    "contacted": 6,  # A B D E H K
    "right_party": 5,  # A B D E K
    "promised": 2,  # A K
    "recovered": 5,  # A B C D I
}


def test_figures_match_the_hand_computed_ones(sessions: sessionmaker[Session]) -> None:
    build(sessions)
    with sessions() as session:
        report = compute_report(session=session, now=LATER, since=SINCE, until=UNTIL)
    assert report.funnel == EXPECTED_FUNNEL
    assert report.recovered_after_contact == 3  # A B D
    # A after its promise; B (callback) and D (payment updated) within 7 days of speaking to
    # the customer; C and I paid without any call
    assert report.attribution is not None
    assert report.attribution.recovered == {
        "after_promise": 1,
        "after_call": 2,
        "no_call": 2,
        "after_calls": 0,
    }
    assert report.recovered_amount == {
        "eur": Decimal("10.00"),
        "jpy": Decimal("3000"),
        "usd": Decimal("70.50"),
    }
    assert {str(v) for v in report.recovered_amount.values()} == {"10.00", "3000", "70.50"}
    categories = {
        g.name: (g.cases, g.recovered, g.recovery_rate, g.median_days_to_recover)
        for g in report.by_category
    }
    assert categories == {
        "card_expired": (2, 2, 1.0, 3.5),  # days 1 and 6
        "insufficient_funds": (6, 3, 0.5, 3.0),  # days 2.5, 4 and 3
        "generic_decline": (2, 0, 0.0, None),
    }
    assert [g.name for g in report.by_category] == [
        "card_expired",
        "insufficient_funds",
        "generic_decline",
    ]
    dispositions = {
        g.name: (g.cases, g.recovered, g.recovery_rate, g.median_days_to_recover)
        for g in report.by_last_disposition
    }
    assert dispositions == {
        "promise_to_pay": (2, 1, 0.5, 2.5),
        "callback_requested": (1, 1, 1.0, 4.0),
        "no_answer": (1, 0, 0.0, None),
        "do_not_call": (1, 0, 0.0, None),
        "payment_updated": (1, 1, 1.0, 6.0),
        "none": (4, 2, 0.5, 2.0),  # C F G I; C after 1 day, I after 3
    }
    blocks = [(b.jurisdiction, b.rule, b.decisions, b.cases) for b in report.compliance_blocks]
    assert blocks == [
        (*US_HOURS, 4, 3),  # A, H's withdrawn contact, K twice
        (*FL_HOURS, 2, 2),  # A, H
        (*US_COOLDOWN, 1, 1),  # B
        (*FL_CAP, 1, 1),  # E
    ]
    assert report.blocked_decisions == 6
    assert report.closed_by_outcome == {
        "exhausted": 1,
        "recovered": 5,
        "suppressed": 1,
        "unreachable": 1,
    }
    days = [(d.day.isoformat(), d.count, d.amounts) for d in report.recoveries_by_day]
    assert days == [
        ("2026-10-06", 1, {"eur": Decimal("10.00")}),
        ("2026-10-08", 2, {"jpy": Decimal("3000"), "usd": Decimal("20.00")}),
        ("2026-10-09", 1, {"usd": Decimal("35.50")}),
        ("2026-10-11", 1, {"usd": Decimal("15.00")}),
    ]


def test_an_open_period_includes_every_case(sessions: sessionmaker[Session]) -> None:
    build(sessions)
    with sessions() as session:
        report = compute_report(session=session, now=LATER)
    assert report.funnel["failed"] == 11 and report.funnel["recovered"] == 6
    assert report.recovered_amount["usd"] == Decimal("169.50")
    with sessions() as session:
        empty = compute_report(session=session, now=LATER, until=SINCE - timedelta(days=30))
    assert empty.funnel == dict.fromkeys(EXPECTED_FUNNEL, 0)
    assert empty.by_category == [] and empty.recoveries_by_day == []


def test_the_report_counts_the_recorded_fields_not_the_text(
    sessions: sessionmaker[Session],
) -> None:
    """A decision counts for the holds its data records, whatever its reasons say; only an
    entry without ``holds`` (recorded before they were) is read from its reasons."""
    with transaction(sessions) as session:
        s = Store(session)
        s.fail("A", FailureCategory.insufficient_funds, FL, "20.00")
        sunday = Hold(
            rule="weekday", jurisdiction="US-AL", zone="America/Chicago", weekday="Sunday"
        )
        append_history(
            session=session,
            case_id=s.ids["A"],
            at=F0,
            now=F0,
            kind=HistoryKind.decision,
            reasons=["waiting"],  # no rule named anywhere in the text
            data={"action": "wait", "holds": holds_data([sunday, Hold(rule="dial_margin")])},
        )
        append_history(
            session=session,
            case_id=s.ids["A"],
            at=F0,
            now=F0,
            kind=HistoryKind.decision,
            reasons=["US-FL hours 08:00-20:00 in America/New_York: 21:30 local is outside"],
            data={"action": "wait", "holds": []},  # the text is not read: nothing held it
        )
        s.note("A", HistoryKind.decision, "US cap 7 attempts per rolling 7d: 7 attempts")
    with sessions() as session:
        report = compute_report(session=session, now=LATER)
        entries = held_entries(session=session)
    blocks = [(b.jurisdiction, b.rule, b.decisions, b.cases) for b in report.compliance_blocks]
    assert blocks == [
        ("US", "cap 7 attempts per rolling 7d", 1, 1),  # the entry without holds
        ("US-AL", "no calls on Sunday", 1, 1),
    ]
    assert report.blocked_decisions == 2
    assert [e.holds for e in entries] == [
        (sunday, Hold(rule="dial_margin")),
        (Hold(rule="attempt_cap", jurisdiction="US", limit=7, period="7d"),),
    ]


def test_withdrawal_notes_and_decisions_are_read_from_history(
    sessions: sessionmaker[Session],
) -> None:
    build(sessions)
    with sessions() as session:
        rows = list(session.scalars(select(HistoryRow).order_by(HistoryRow.id)))
        entries = held_entries(session=session, since=SINCE, until=UNTIL)
    withdrawals = [e for e in entries if e.withdrawal]
    assert len(withdrawals) == 1
    assert {(h.jurisdiction, h.rule, h.zone) for h in withdrawals[0].holds} == {
        ("US", "hours", "America/New_York"),
        ("US-FL", "hours", "America/New_York"),
        ("US-FL", "hours", "America/Chicago"),  # the state's zones: the panhandle too
    }
    # J failed in September: outside the period.
    assert len([e for e in entries if not e.withdrawal]) == 5  # A B E K K, not A's second
    assert all(entry_holds(r) is None for r in rows if r.kind == HistoryKind.disposition.value)
    # Every hold recorded is a JSON document of fields only.
    recorded = [h for r in rows for h in (r.data or {}).get("holds", [])]
    assert recorded and all(
        set(h) <= {"rule", "jurisdiction", "zone", "weekday", "limit", "period"} for h in recorded
    )
    json.dumps(recorded)


@pytest.mark.parametrize(
    ("hold", "label"),
    [
        (Hold(rule="hours", jurisdiction="US-FL", zone="America/New_York"), "hours"),
        (Hold(rule="weekday", jurisdiction="US", weekday="Sunday"), "no calls on Sunday"),
        (Hold(rule="holiday", jurisdiction="US-MA"), "no calls on public holidays"),
        (
            Hold(rule="attempt_cap", jurisdiction="US-FL", limit=3, period="24h"),
            "cap 3 attempts per rolling 24h",
        ),
        (
            Hold(rule="cooldown", jurisdiction="US", period="7d"),
            "no call within 7d after a conversation",
        ),
    ],
)
def test_rule_labels_come_from_the_fields(hold: Hold, label: str) -> None:
    assert rule_label(hold) == label
    assert compliance_rules([hold]) == {(hold.jurisdiction, label)}


def test_holds_that_are_no_calling_rule_are_not_blocks() -> None:
    others = [
        Hold(rule="suppressed"),
        Hold(rule="timezone_unknown"),
        Hold(rule="no_rules", jurisdiction="GB"),
        Hold(rule="no_window"),
        Hold(rule="dial_margin", period="15m"),
    ]
    assert compliance_rules(others) == set()


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (
            "US no calls on Sunday in America/New_York: 2026-10-04 local",
            [Hold(rule="weekday", jurisdiction="US", zone="America/New_York", weekday="Sunday")],
        ),
        (
            "US-MA no calls on public holidays in America/New_York: 2026-10-12 is Columbus Day",
            [Hold(rule="holiday", jurisdiction="US-MA", zone="America/New_York")],
        ),
        (
            "US-FL hours Sat 09:00-12:00, 13:00-17:00 in America/New_York: 18:00 local is outside",
            [Hold(rule="hours", jurisdiction="US-FL", zone="America/New_York")],
        ),
        (
            "US-FL cap 3 attempts per rolling 24h: 3 attempts from 2026-10-06T13:00:00+00:00 to "
            "2026-10-06T15:00:00+00:00",
            [Hold(rule="attempt_cap", jurisdiction="US-FL", limit=3, period="24h")],
        ),
        (
            "US no call within 7d after a conversation: last conversation 2026-10-05T16:00:00",
            [Hold(rule="cooldown", jurisdiction="US", period="7d")],
        ),
        (
            "the window closes within the 420 min dial margin",
            [Hold(rule="dial_margin", period="7h")],
        ),
        ("suppressed: do_not_call", []),
        ("attempt 2 of 5", []),
        ("timezone_unknown: no zone for the number", []),
    ],
)
def test_legacy_entries_are_read_from_the_engines_sentences(
    reason: str, expected: list[Hold]
) -> None:
    assert list(legacy_holds_from_prose([reason], withdrawal=False)) == expected
    # A note counts only as a contact withdrawn before it was sent.
    assert legacy_holds_from_prose([reason], withdrawal=True) == ()
    withdrawn = f"attempt 2 withdrawn before it was sent: not permitted now: {reason}"
    assert list(legacy_holds_from_prose([withdrawn], withdrawal=True)) == expected


def test_legacy_sentences_are_the_engines_own() -> None:
    """The engine still writes the sentences the legacy reader knows, hold for hold."""
    rules = load_rules(None, "strict")
    alabama = ContactPoint(phone_e164="+12055550123", state="AL")
    sunday_night = datetime(2026, 10, 5, 3, 30, tzinfo=UTC)  # Sunday 22:30 in Birmingham
    noon = datetime(2026, 10, 6, 16, 0, tzinfo=UTC)
    histories = [
        CallHistory(),
        CallHistory(attempts=tuple(noon - timedelta(hours=h) for h in range(1, 8))),
        CallHistory(last_conversation=noon - timedelta(days=1)),
    ]
    checked = 0
    for contact, at in [
        (alabama, sunday_night),
        (ContactPoint(phone_e164=FL[0], state="FL"), noon),
        (
            ContactPoint(phone_e164="+14015550101", state="RI"),
            datetime(2026, 12, 25, 16, tzinfo=UTC),
        ),
    ]:
        for history in histories:
            verdict = permitted(contact, history, at, rules)
            for reason, hold in zip(verdict.reasons, verdict.holds, strict=True):
                if hold.calling_rule:
                    assert legacy_holds_from_prose([reason], withdrawal=False) == (hold,)
                    checked += 1
    assert checked >= 6


@pytest.fixture
def cli_store(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("RECOVERY_DATABASE_URL", store_url)
    engine = make_engine(store_url)
    build(make_sessionmaker(engine))
    engine.dispose()
    yield store_url


def test_cli_json_contract_and_files(cli_store: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["report", "--json", "--since", "2026-10-01", "--until", "2026-11-01", "--out", str(out)],
    )
    assert result.exit_code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    assert set(document) == {
        "period",
        "generated_at",
        "cases",
        "funnel",
        "recovered_after_contact",
        "recovered_amount",
        "recovered_without_amount",
        "by_category",
        "by_last_disposition",
        "compliance_blocks",
        "blocked_decisions",
        "closed_by_outcome",
        "recoveries_by_day",
        "attribution",
        "files",
    }
    assert document["period"] == {
        "since": "2026-10-01T00:00:00+00:00",
        "until": "2026-11-01T00:00:00+00:00",
    }
    assert document["cases"] == 10
    assert document["funnel"] == [
        {"stage": stage, "cases": count, "rate": round(count / 10, 4)}
        for stage, count in EXPECTED_FUNNEL.items()
    ]
    assert document["recovered_amount"] == {"eur": "10.00", "jpy": "3000", "usd": "70.50"}
    assert document["recovered_without_amount"] == 0
    assert document["by_category"][0] == {
        "name": "card_expired",
        "cases": 2,
        "recovered": 2,
        "recovery_rate": 1.0,
        "median_days_to_recover": 3.5,
    }
    assert document["compliance_blocks"][0] == {
        "jurisdiction": "US",
        "rule": "hours",
        "label": "US hours",
        "decisions": 4,
        "cases": 3,
    }
    assert document["closed_by_outcome"]["recovered"] == 5
    assert document["recoveries_by_day"][1] == {
        "date": "2026-10-08",
        "count": 2,
        "amount": {"jpy": "3000", "usd": "20.00"},
    }
    chart = Path(document["files"]["chart"])
    markdown = Path(document["files"]["report"])
    assert chart == out / "recoveries.png" and markdown == out / "report.md"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5000
    text = markdown.read_text()
    assert "![Recoveries per day](recoveries.png)" in text
    assert "| recovered | 5 | 50.0% |" in text
    assert "| US | hours | 4 | 3 |" in text
    assert document["attribution"] == {
        "days": 7,
        "recovered": [
            {"cause": "after_promise", "cases": 1, "amount": {"usd": "20.00"}},
            {"cause": "after_call", "cases": 2, "amount": {"usd": "50.50"}},
            {"cause": "no_call", "cases": 2, "amount": {"eur": "10.00", "jpy": "3000"}},
            {"cause": "after_calls", "cases": 0, "amount": {}},
        ],
        "retry_waits": 0,
        "calls_avoided": 0,
        "calls_avoided_amount": {},
    }
    assert "## Recoveries attributed" in text
    assert (
        "| recovered after a call (within 7 days of a right-party contact) | 2 | 40.0% "
        "| 50.50 USD |" in text
    )


def test_cli_tables_and_default_folder(cli_store: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "--since", "2026-10-01T00:00:00Z"])
    assert result.exit_code == 0, result.stderr
    for title in (
        "Funnel",
        "Recovered amount",
        "By failure category",
        "Blocked by compliance",
        "Recoveries attributed",
    ):
        assert title in result.stdout
    # The conftest points RECOVERY_DATA_DIR at tmp_path / "data".
    assert (tmp_path / "data" / "reports" / "recoveries.png").exists()
    assert (tmp_path / "data" / "reports" / "report.md").exists()


def test_cli_bad_period_exits_2(cli_store: str) -> None:
    result = CliRunner().invoke(app, ["report", "--since", "2026-10-01T00:00:00"])
    assert result.exit_code == 2 and "no UTC offset" in result.stderr
    result = CliRunner().invoke(app, ["report", "--since", "2026-11-01", "--until", "2026-10-01"])
    assert result.exit_code == 2


def test_report_document_without_cases_is_complete(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        report = compute_report(session=session, now=LATER)
    document = report_document(report)
    assert document["cases"] == 0
    assert all(stage["rate"] == 0.0 for stage in document["funnel"])
    assert document["files"] == {"report": None, "chart": None}
    with sessions() as session:
        assert session.scalar(select(CaseRow.id)) is None

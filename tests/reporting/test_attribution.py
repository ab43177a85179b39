"""What brought each recovery: the report's attribution of one case from its rows (pure), and
the summary over cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from recovery.reporting.figures import (
    AttributionFacts,
    attribution_facts,
    summarise_attribution,
)
from recovery.reporting.render import attribution_rows
from recovery.store.tables import CaseRow, HistoryRow

F0 = datetime(2026, 10, 5, 14, 0, tzinfo=UTC)


def case(outcome: str | None, closed_days: float | None = None) -> CaseRow:
    return CaseRow(
        id=1,
        gateway="stripe",
        business_key="in_1",
        category="insufficient_funds",
        amount=Decimal("20.00"),
        currency="usd",
        failed_at=F0,
        opened_at=F0,
        status="closed" if outcome else "open",
        outcome=outcome,
        closed_at=F0 + timedelta(days=closed_days) if closed_days is not None else None,
    )


def row(kind: str, days: float, *, disposition: str | None = None, **data: Any) -> HistoryRow:
    at = F0 + timedelta(days=days)
    return HistoryRow(kind=kind, at=at, recorded_at=at, disposition=disposition, data=data)


def paid(days: float) -> HistoryRow:
    return row("payment_succeeded", days, amount="20.00", currency="usd")


def spoke(days: float, disposition: str = "callback_requested", **data: Any) -> HistoryRow:
    return row("disposition", days, disposition=disposition, **data)


def waited(days: float, unwaited_days: float) -> HistoryRow:
    return row(
        "decision",
        days,
        action="wait",
        waiting_for="gateway_retry",
        unwaited_at=(F0 + timedelta(days=unwaited_days)).isoformat(),
    )


def facts(history: list[HistoryRow], contacts: int, outcome: str | None = "recovered") -> Any:
    return attribution_facts(case(outcome), history, contacts, days=7)


def test_paid_without_any_call_is_no_call() -> None:
    found = facts([paid(3)], contacts=0)
    assert (found.cause, found.waited, found.call_avoided) == ("no_call", False, False)


def test_a_wait_that_held_the_call_past_the_payment_avoided_a_call() -> None:
    # the policy alone allowed the call at day 7; the retry wait held it; paid on day 10
    found = facts([waited(0, 7), paid(10)], contacts=0)
    assert (found.cause, found.waited, found.call_avoided) == ("no_call", True, True)


def test_a_wait_that_ended_after_an_earlier_payment_avoided_nothing() -> None:
    # paid on day 5: the policy would not have called before day 7 anyway
    found = facts([waited(0, 7), paid(5)], contacts=0)
    assert (found.cause, found.call_avoided) == ("no_call", False)


def test_a_call_after_the_wait_is_no_call_avoided() -> None:
    found = facts([waited(0, 7), spoke(11), paid(12)], contacts=1)
    assert (found.cause, found.call_avoided) == ("after_call", False)


@pytest.mark.parametrize(
    ("spoken_day", "paid_day", "cause"),
    [
        (2, 4, "after_call"),
        (2, 9, "after_call"),  # exactly 7 days
        (2, 9.1, "after_calls"),
        (5, 4, "after_calls"),  # the conversation came after the payment
    ],
)
def test_a_call_counts_within_n_days_of_a_right_party_contact(
    spoken_day: float, paid_day: float, cause: str
) -> None:
    assert facts([spoke(spoken_day), paid(paid_day)], contacts=1).cause == cause


def test_no_answer_is_not_a_right_party_contact() -> None:
    history = [spoke(1, "no_answer"), paid(2)]
    assert facts(history, contacts=1).cause == "after_calls"


def test_a_promise_counts_from_its_promised_date() -> None:
    promise = spoke(1, "promise_to_pay", promised_date="2026-10-20")
    # the promised date is 15 days after the call; payment 3 days after it
    assert facts([promise, paid(18)], contacts=1).cause == "after_promise"
    # beyond 7 days after the promised date, it is no longer the promise's
    assert facts([promise, paid(30)], contacts=1).cause == "after_calls"


def test_a_paid_disposition_closes_as_after_a_call() -> None:
    found = attribution_facts(
        case("recovered", closed_days=1), [spoke(1, "paid")], contacts_created=1, days=7
    )
    assert found.cause == "after_call"


def test_open_and_lost_cases_have_no_cause() -> None:
    assert facts([spoke(1)], contacts=1, outcome=None).cause is None
    assert facts([spoke(1)], contacts=1, outcome="exhausted").cause is None


def test_the_summary_counts_amounts_and_avoided_calls() -> None:
    items = [
        AttributionFacts("no_call", True, True, Decimal("20.00"), "usd"),
        AttributionFacts("no_call", False, False, Decimal("1000"), "jpy"),
        AttributionFacts("after_call", False, False, Decimal("5.50"), "usd"),
        AttributionFacts(None, True, False, Decimal("9.00"), "usd"),
    ]
    summary = summarise_attribution(items, days=5)
    assert summary.recovered == {
        "after_promise": 0,
        "after_call": 1,
        "no_call": 2,
        "after_calls": 0,
    }
    assert summary.amounts["no_call"] == {"jpy": Decimal("1000"), "usd": Decimal("20.00")}
    assert (summary.retry_waits, summary.calls_avoided) == (2, 1)
    assert summary.avoided_amounts == {"usd": Decimal("20.00")}
    header, rows = attribution_rows(summary)
    assert header == ["attribution", "cases", "of recovered", "amount"]
    assert rows[1][0] == "recovered after a call (within 5 days of a right-party contact)"
    assert rows[-1][1:] == ["1", "33.3%", "20.00 USD"]

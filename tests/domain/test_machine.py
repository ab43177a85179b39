"""The state machine, per failure category and per disposition, against the real compliance
engine and the shipped policy and calling rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from recovery.domain.compliance import CallHistory, load_rules, next_permitted, permitted
from recovery.domain.machine import Step, Suppress, decide
from recovery.domain.models import (
    CaseStatus,
    CaseView,
    ContactPoint,
    Disposition,
    FailureCategory,
    Gateway,
    HistoryEntry,
    HistoryKind,
    Outcome,
)
from recovery.domain.policy import DEFAULT_POLICY, load_policy

POLICY = load_policy()
PAYDAY = load_policy(DEFAULT_POLICY.with_name("policy-payday.yaml"))
RULES = load_rules()
LA = ZoneInfo("America/Los_Angeles")
NY = ZoneInfo("America/New_York")
CA = ContactPoint(phone_e164="+14155550123", state="CA")
FL = ContactPoint(phone_e164="+13055550123", state="FL", postal_code="33101")
TX = ContactPoint(phone_e164="+12145550123", state="TX")


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz).astimezone(UTC)


def make_case(
    category: FailureCategory,
    failed_at: datetime,
    contact: ContactPoint = CA,
    status: CaseStatus = CaseStatus.open,
    outcome: Outcome | None = None,
) -> CaseView:
    return CaseView(
        key="stripe:in_1",
        gateway=Gateway.stripe,
        status=status,
        outcome=outcome,
        category=category,
        contact=contact,
        failed_at=failed_at,
        opened_at=failed_at,
    )


def failed(at: datetime) -> HistoryEntry:
    return HistoryEntry(at=at, kind=HistoryKind.failure_recorded)


def contacted(at: datetime, attempt: int) -> HistoryEntry:
    return HistoryEntry(
        at=at,
        kind=HistoryKind.contact_requested,
        data={"attempt": attempt, "planned_at": at.isoformat()},
    )


def disposed(at: datetime, disposition: Disposition, attempt: int, **data: Any) -> HistoryEntry:
    return HistoryEntry(
        at=at,
        kind=HistoryKind.disposition,
        disposition=disposition,
        data={"attempt": attempt, **data},
    )


def paid(at: datetime) -> HistoryEntry:
    return HistoryEntry(at=at, kind=HistoryKind.payment_succeeded)


def run(case: CaseView, history: Sequence[HistoryEntry], now: datetime, **kw: Any) -> Step:
    return decide(case, history, now, POLICY, RULES, **kw)


def calls_before(history: Sequence[HistoryEntry]) -> CallHistory:
    return CallHistory(
        attempts=tuple(e.at for e in history if e.kind is HistoryKind.contact_requested)
    )


# --- first contact, per category ---


def test_expired_card_first_contact_is_the_next_lawful_instant_after_the_failure() -> None:
    at = local(NY, 2026, 12, 1, 21, 30)  # Tuesday, after hours in Florida
    case = make_case(FailureCategory.card_expired, at, FL)
    history = [failed(at)]
    step = run(case, history, at)
    expected = next_permitted(FL, CallHistory(), at, RULES).next_permitted_at
    assert step.action == "wait" and step.status is CaseStatus.awaiting_window
    assert step.at == expected == local(NY, 2026, 12, 2, 8, 0)
    assert any("US-FL hours" in r for r in step.reasons)

    contact = run(case, history, step.at)
    assert contact.action == "contact" and contact.attempt == 1
    assert contact.status is CaseStatus.contact_requested
    assert contact.at == step.at
    assert contact.disposition_due_at == step.at + timedelta(hours=4)
    assert contact.timezones == ("America/New_York",)
    assert permitted(FL, CallHistory(), contact.at, RULES).permitted


def test_a_failure_inside_the_window_is_called_at_once() -> None:
    at = local(LA, 2026, 12, 1, 10, 0)
    step = run(make_case(FailureCategory.card_invalid_or_lost, at), [failed(at)], at)
    assert (step.action, step.at, step.attempt) == ("contact", at, 1)


def test_insufficient_funds_is_not_called_before_the_grace() -> None:
    at = local(LA, 2026, 11, 2, 10, 0)  # Monday
    case = make_case(FailureCategory.insufficient_funds, at)
    history = [failed(at)]
    grace_end = at + timedelta(days=7)  # the default policy's 7-day grace
    for now in (at, at + timedelta(hours=5), at + timedelta(days=6, hours=23, minutes=59)):
        step = run(case, history, now)
        assert step.action == "wait"
        assert step.at == grace_end
        assert step.status is CaseStatus.awaiting_window
    assert run(case, history, grace_end).action == "contact"


def test_a_category_policy_delay_is_then_fitted_into_texas_sunday_hours() -> None:
    at = local(ZoneInfo("America/Chicago"), 2026, 12, 5, 9, 0)  # Saturday
    case = make_case(FailureCategory.generic_decline, at, TX)
    step = run(case, [failed(at)], at)
    # one day later is Sunday 09:00; Texas allows Sunday calls from 12:00 only, and without a
    # postal code the customer may be in El Paso (Mountain time) as well
    assert step.timezones == ("America/Chicago", "America/Denver")
    assert step.at == local(ZoneInfo("America/Denver"), 2026, 12, 6, 12, 0)
    assert any("US-TX hours Sun 12:00-21:00" in r for r in step.reasons)


# --- dispositions ---


def one_attempt(
    category: FailureCategory,
    disposition: Disposition,
    contact: ContactPoint = CA,
    **data: Any,
) -> tuple[CaseView, list[HistoryEntry], datetime]:
    """A case called once on Monday 2026-11-02 10:00 Pacific, outcome 5 minutes later."""
    start = local(LA, 2026, 11, 2, 10, 0)
    case = make_case(category, start - timedelta(hours=1), contact)
    history = [
        failed(start - timedelta(hours=1)),
        contacted(start, 1),
        disposed(start + timedelta(minutes=5), disposition, 1, **data),
    ]
    return case, history, start + timedelta(minutes=5)


@pytest.mark.parametrize(
    "disposition",
    [Disposition.no_answer, Disposition.busy, Disposition.voicemail, Disposition.machine],
)
def test_unanswered_calls_retry_on_the_category_schedule(disposition: Disposition) -> None:
    case, history, now = one_attempt(FailureCategory.card_expired, disposition)
    step = run(case, history, now)
    assert step.action == "wait" and step.status is CaseStatus.cooling_down
    assert step.at == history[1].at + timedelta(days=1)  # card_expired: retry 1d, lawful then
    assert run(case, history, step.at).attempt == 2


def test_insufficient_funds_retries_on_the_next_payday_under_the_payday_policy() -> None:
    case, history, now = one_attempt(FailureCategory.insufficient_funds, Disposition.no_answer)
    step = decide(case, history, now, PAYDAY, RULES)
    # the 15th of November, midnight Pacific, then the calling window opens at 08:00
    assert step.at == local(LA, 2026, 11, 15, 8, 0)


def test_insufficient_funds_retries_after_fixed_delays_under_the_default_policy() -> None:
    case, history, now = one_attempt(FailureCategory.insufficient_funds, Disposition.no_answer)
    step = run(case, history, now)
    assert step.at == history[1].at + timedelta(days=3)


def test_promise_to_pay_waits_for_the_date_plus_grace() -> None:
    case, history, now = one_attempt(
        FailureCategory.card_expired, Disposition.promise_to_pay, promised_date="2026-11-12"
    )
    step = run(case, history, now)
    # end of the promised local day + 2 days grace: 2026-11-15 00:00 Pacific, then 08:00
    assert step.action == "wait" and step.status is CaseStatus.cooling_down
    assert step.at == local(LA, 2026, 11, 15, 8, 0)
    for later in (now + timedelta(days=1), local(LA, 2026, 11, 13, 12, 0), step.at - timedelta(1)):
        assert run(case, history, later).action == "wait"
    assert run(case, history, step.at).action == "contact"


def test_promise_to_pay_cannot_cut_the_quiet_week_after_a_conversation() -> None:
    case, history, now = one_attempt(
        FailureCategory.card_expired, Disposition.promise_to_pay, promised_date="2026-11-03"
    )
    step = run(case, history, now)
    # the promise would allow 2026-11-06, but the customer spoke to us at 10:05 on the 2nd
    assert step.at == now + timedelta(days=7)
    assert any("after a conversation" in r for r in step.reasons)


def test_promise_to_pay_without_a_date_checks_again_after_the_default_delay() -> None:
    case, history, now = one_attempt(FailureCategory.card_expired, Disposition.promise_to_pay)
    assert run(case, history, now).at == now + timedelta(days=7)


def test_a_far_promise_is_capped_and_expiry_still_applies() -> None:
    case, history, now = one_attempt(
        FailureCategory.card_expired, Disposition.promise_to_pay, promised_date="2027-06-01"
    )
    step = run(case, history, now)
    expires_at = case.failed_at + timedelta(days=30)
    assert step.action == "wait" and step.at == expires_at
    closed = run(case, history, expires_at)
    assert (closed.action, closed.outcome) == ("close", Outcome.expired)


def test_callback_at_a_lawful_time_is_honoured_exactly() -> None:
    wanted = local(LA, 2026, 11, 3, 15, 30)
    case, history, now = one_attempt(
        FailureCategory.card_expired,
        Disposition.callback_requested,
        callback_at=wanted.astimezone(LA).isoformat(),
    )
    step = run(case, history, now)
    # before the 1d retry delay and inside the quiet week: the customer asked for it
    assert (step.action, step.at) == ("wait", wanted)
    contact = run(case, history, wanted)
    assert (contact.action, contact.attempt) == ("contact", 2)


def test_callback_at_an_unlawful_time_moves_to_the_next_lawful_instant() -> None:
    wanted = local(LA, 2026, 11, 3, 22, 30)
    case, history, now = one_attempt(
        FailureCategory.card_expired, Disposition.callback_requested, callback_at=wanted.isoformat()
    )
    step = run(case, history, now)
    assert step.at == local(LA, 2026, 11, 4, 8, 0)


def test_do_not_call_suppresses_the_number_and_stops_every_case_on_it() -> None:
    case, history, now = one_attempt(FailureCategory.card_expired, Disposition.do_not_call)
    step = run(case, history, now)
    assert step.action == "close" and step.status is CaseStatus.closed
    assert step.outcome is Outcome.suppressed
    assert step.suppress == Suppress(phone_e164=CA.phone_e164, scope="*", reason="do_not_call")
    assert step.stop_phone_cases
    # and nothing follows, whenever asked and whatever comes after
    later = [*history, contacted(now + timedelta(days=2), 2)]
    for when in (now + timedelta(days=1), now + timedelta(days=3)):
        again = run(case, later, when)
        assert again.action == "close" and again.outcome is Outcome.suppressed
        assert again.suppress is not None


def test_a_payment_does_not_swallow_a_do_not_call() -> None:
    case, history, now = one_attempt(FailureCategory.card_expired, Disposition.do_not_call)
    step = run(case, [*history, paid(now)], now)
    assert step.outcome is Outcome.recovered
    assert step.suppress is not None and step.stop_phone_cases


def test_wrong_number_closes_unreachable_and_suppresses_for_this_customer() -> None:
    case, history, now = one_attempt(FailureCategory.card_expired, Disposition.wrong_number)
    step = run(case, history, now)
    assert step.outcome is Outcome.unreachable
    assert step.suppress == Suppress(
        phone_e164=CA.phone_e164, scope="customer", reason="wrong_number"
    )
    assert not step.stop_phone_cases


@pytest.mark.parametrize(
    ("disposition", "outcome", "flag"),
    [
        (Disposition.paid, Outcome.recovered, False),
        (Disposition.payment_updated, Outcome.recovered, False),
        (Disposition.dispute, Outcome.disputed, True),
    ],
)
def test_closing_dispositions(disposition: Disposition, outcome: Outcome, flag: bool) -> None:
    case, history, now = one_attempt(FailureCategory.card_expired, disposition)
    step = run(case, history, now)
    assert (step.action, step.outcome, step.flag_review) == ("close", outcome, flag)
    assert step.suppress is None and not step.stop_phone_cases


def test_an_unknown_disposition_parks_the_case_until_a_person_resolves_it() -> None:
    case, history, now = one_attempt(FailureCategory.card_expired, Disposition.unknown)
    step = run(case, history, now)
    assert (step.action, step.status, step.flag_review) == ("review", CaseStatus.review, True)
    assert step.at == case.failed_at + timedelta(days=30)
    resolved = [
        *history,
        HistoryEntry(
            at=now + timedelta(hours=1), kind=HistoryKind.note, data={"review_resolved": True}
        ),
    ]
    assert run(case, resolved, now + timedelta(hours=1)).action == "wait"


# --- waiting for an outcome ---


def test_a_requested_contact_waits_for_its_outcome_then_asks_for_reconciling() -> None:
    start = local(LA, 2026, 11, 2, 10, 0)
    case = make_case(FailureCategory.card_expired, start)
    history = [failed(start), contacted(start, 1)]
    step = run(case, history, start + timedelta(minutes=1))
    assert (step.action, step.status) == ("wait", CaseStatus.awaiting_disposition)
    assert step.at == start + timedelta(hours=4)
    overdue = run(case, history, start + timedelta(hours=4))
    assert (overdue.action, overdue.status, overdue.flag_review) == (
        "review",
        CaseStatus.review,
        True,
    )
    assert any("reconcile" in r for r in overdue.reasons)
    # the outcome arriving late puts the case back on its schedule
    late = [*history, disposed(start + timedelta(hours=5), Disposition.no_answer, 1)]
    assert run(case, late, start + timedelta(hours=5)).action == "wait"


def test_a_rejected_contact_is_reviewed() -> None:
    start = local(LA, 2026, 11, 2, 10, 0)
    case = make_case(FailureCategory.card_expired, start)
    history = [
        failed(start),
        contacted(start, 1),
        HistoryEntry(at=start, kind=HistoryKind.contact_rejected, data={"attempt": 1}),
    ]
    step = run(case, history, start + timedelta(minutes=1))
    assert step.action == "review" and "contact_rejected" in step.reasons[0]


def resolved_note(at: datetime) -> HistoryEntry:
    return HistoryEntry(at=at, kind=HistoryKind.note, data={"review_resolved": True})


def test_a_person_releases_an_attempt_that_ended_without_an_outcome() -> None:
    start = local(LA, 2026, 11, 2, 10, 0)
    case = make_case(FailureCategory.card_expired, start)
    history = [
        failed(start),
        contacted(start, 1),
        HistoryEntry(at=start, kind=HistoryKind.contact_rejected, data={"attempt": 1}),
    ]
    later = start + timedelta(hours=2)
    # A resolution older than the attempt does not count.
    stale = [resolved_note(start - timedelta(minutes=1)), *history]
    assert run(case, stale, later).action == "review"
    released = run(case, [*history, resolved_note(later)], later)
    # Attempt 1 counts as made: the next one follows the retry schedule, not the review.
    assert released.action in ("wait", "contact") and released.status is not CaseStatus.review
    assert released.at >= start + POLICY.for_category(FailureCategory.card_expired).retry_delay(1)


def test_a_person_releases_an_attempt_whose_outcome_never_came() -> None:
    start = local(LA, 2026, 11, 2, 10, 0)
    case = make_case(FailureCategory.card_expired, start)
    history = [failed(start), contacted(start, 1)]
    overdue = start + timedelta(hours=5)
    assert run(case, history, overdue).action == "review"
    released = run(case, [*history, resolved_note(overdue)], overdue)
    assert released.action in ("wait", "contact") and released.status is not CaseStatus.review
    # and a second attempt without an outcome parks the case again
    second = released.at
    again = [*history, resolved_note(overdue), contacted(second, 2)]
    assert run(case, again, second + timedelta(hours=5)).action == "review"


# --- caps and ends ---


def attempts(case: CaseView, count: int, start: datetime) -> list[HistoryEntry]:
    out = [failed(case.failed_at)]
    for n in range(1, count + 1):
        at = start + timedelta(days=2 * (n - 1))
        out += [contacted(at, n), disposed(at + timedelta(minutes=5), Disposition.no_answer, n)]
    return out


def test_max_attempts_exhausts_the_case() -> None:
    start = local(LA, 2026, 11, 2, 10, 0)
    case = make_case(FailureCategory.card_expired, start)  # at most 5 attempts
    four = attempts(case, 4, start)
    assert run(case, four, four[-1].at).action == "wait"
    five = attempts(case, 5, start)
    step = run(case, five, five[-1].at)
    assert (step.action, step.outcome) == ("close", Outcome.exhausted)
    assert step.reasons == ("5 of 5 attempts made",)


def test_a_case_expires() -> None:
    start = local(LA, 2026, 11, 2, 10, 0)
    case = make_case(FailureCategory.card_expired, start)
    history = attempts(case, 1, start)
    expiry = start + timedelta(days=30)
    assert run(case, history, expiry - timedelta(seconds=1)).action != "close"
    step = run(case, history, expiry)
    assert (step.action, step.outcome, step.at) == ("close", Outcome.expired, expiry)


def test_a_success_between_two_steps_recovers_and_nothing_follows() -> None:
    start = local(LA, 2026, 11, 2, 10, 0)
    case = make_case(FailureCategory.card_expired, start)
    history = attempts(case, 1, start)
    first = run(case, history, history[-1].at)
    assert first.action == "wait"
    paid_at = history[-1].at + timedelta(hours=3)
    history.append(paid(paid_at))
    for now in (paid_at, first.at, first.at + timedelta(days=40)):
        step = run(case, history, now)
        assert (step.action, step.outcome, step.status) == (
            "close",
            Outcome.recovered,
            CaseStatus.closed,
        )


def test_a_success_wins_over_a_pending_contact_and_an_expiry() -> None:
    start = local(LA, 2026, 11, 2, 10, 0)
    case = make_case(FailureCategory.card_expired, start)
    history = [failed(start), contacted(start, 1), paid(start + timedelta(minutes=1))]
    assert run(case, history, start + timedelta(minutes=2)).outcome is Outcome.recovered
    assert run(case, history, start + timedelta(days=90)).outcome is Outcome.recovered


def test_a_closed_case_stays_closed() -> None:
    start = local(LA, 2026, 11, 2, 10, 0)
    case = make_case(FailureCategory.card_expired, start, status=CaseStatus.closed)
    step = run(make_case(FailureCategory.card_expired, start), [failed(start)], start)
    assert step.action == "contact"
    closed_history = [
        failed(start),
        HistoryEntry(at=start, kind=HistoryKind.closed, data={"outcome": "exhausted"}),
    ]
    assert run(case, [failed(start)], start).action == "close"
    assert run(make_case(FailureCategory.card_expired, start), closed_history, start).outcome is (
        Outcome.exhausted
    )


# --- contact information and suppression ---


def test_no_phone_needs_contact_info() -> None:
    start = local(LA, 2026, 11, 2, 10, 0)
    case = make_case(FailureCategory.card_expired, start, ContactPoint(state="CA"))
    step = run(case, [failed(start)], start)
    assert (step.action, step.status) == ("review", CaseStatus.needs_contact_info)


def test_an_unknown_timezone_is_never_dialled() -> None:
    start = local(LA, 2026, 11, 2, 10, 0)
    toll_free = ContactPoint(phone_e164="+18005550199")
    step = run(make_case(FailureCategory.card_expired, start, toll_free), [failed(start)], start)
    assert (step.action, step.status) == ("review", CaseStatus.needs_contact_info)
    assert any(r.startswith("timezone_unknown") for r in step.reasons)


def test_a_number_without_calling_rules_is_reviewed() -> None:
    start = local(LA, 2026, 11, 2, 10, 0)
    london = ContactPoint(phone_e164="+442079460000", country="GB")
    step = run(make_case(FailureCategory.card_expired, start, london), [failed(start)], start)
    assert step.action == "review"
    assert any(r.startswith("no_rules") for r in step.reasons)


@pytest.mark.parametrize(
    ("reason", "outcome"),
    [("do_not_call", Outcome.suppressed), ("wrong_number", Outcome.unreachable)],
)
def test_a_suppressed_number_closes_the_case(reason: str, outcome: Outcome) -> None:
    start = local(LA, 2026, 11, 2, 10, 0)
    case = make_case(FailureCategory.card_expired, start)
    step = run(case, [failed(start)], start, suppression=reason)
    assert (step.action, step.outcome) == ("close", outcome)
    assert step.suppress is None  # already on the list


def test_no_window_within_the_horizon_waits_and_looks_again(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "version: 1\nprofiles:\n  closed:\n    horizon_days: 14\n    baseline: [US]\n"
        "    require_country_rules: true\n    rows:\n      - jurisdiction: US\n"
        "        hours: {daily: none}\n        source: a test\n"
    )
    rules = load_rules(path, profile="closed")
    start = local(LA, 2026, 11, 2, 10, 0)
    case = make_case(FailureCategory.card_expired, start)
    step = decide(case, [failed(start)], start, POLICY, rules)
    assert (step.action, step.status) == ("wait", CaseStatus.awaiting_window)
    assert step.at == start + timedelta(days=14)
    assert any("no permitted window within 14 days" in r for r in step.reasons)


# --- the function itself ---


def test_decide_is_deterministic_and_returns_utc() -> None:
    case, history, now = one_attempt(FailureCategory.generic_decline, Disposition.busy)
    first = run(case, history, now.astimezone(NY))
    assert first == run(case, history, now)
    assert first.at.utcoffset() == timedelta(0)


def test_decide_refuses_a_naive_now() -> None:
    case, history, now = one_attempt(FailureCategory.generic_decline, Disposition.busy)
    with pytest.raises(ValueError, match="timezone-aware"):
        run(case, history, now.replace(tzinfo=None))


# --- the dial margin and a contact the contact centre cannot take ---


def test_a_contact_too_late_for_the_dial_margin_waits_for_the_next_window() -> None:
    at = local(LA, 2026, 12, 1, 20, 40)  # Tuesday, 20 minutes before California's 21:00
    case = make_case(FailureCategory.card_invalid_or_lost, at)
    assert run(case, [failed(at)], at).action == "contact"
    step = run(case, [failed(at)], at, dial_margin=timedelta(minutes=30))
    expected = next_permitted(CA, CallHistory(), at + timedelta(minutes=30), RULES)
    assert step.action == "wait" and step.status is CaseStatus.awaiting_window
    assert step.at == expected.next_permitted_at == local(LA, 2026, 12, 2, 8, 0)
    assert "the window closes within the 30 min dial margin" in step.reasons
    assert step.timezones == ("America/Los_Angeles",)


def test_a_contact_well_inside_the_window_ignores_the_dial_margin() -> None:
    at = local(LA, 2026, 12, 1, 10, 0)
    case = make_case(FailureCategory.card_invalid_or_lost, at)
    plain = run(case, [failed(at)], at)
    margin = run(case, [failed(at)], at, dial_margin=timedelta(minutes=30))
    assert margin == plain and margin.action == "contact"


def refused_note(at: datetime, attempt: int) -> HistoryEntry:
    return HistoryEntry(at=at, kind=HistoryKind.note, data={"attempt": attempt, "refused": True})


def test_an_attempt_the_contact_centre_cannot_take_parks_the_case_until_its_expiry() -> None:
    at = local(LA, 2026, 12, 1, 10, 0)
    case = make_case(FailureCategory.card_invalid_or_lost, at)
    history = [failed(at), refused_note(at, 1)]
    why = "invalid for the contact centre: currency: too long"
    step = run(case, history, at + timedelta(minutes=1), refused={1: why})
    expires = at + POLICY.for_category(FailureCategory.card_invalid_or_lost).expires_after
    assert step.action == "review" and step.status is CaseStatus.review
    assert step.flag_review and step.at == expires
    assert step.reasons == (f"attempt 1 cannot be sent: {why}", "a person must correct the case")
    # Without a recorded reason the refusal is named as such; the margin never undoes a park.
    bare = run(case, history, at, refused={1: None}, dial_margin=timedelta(minutes=30))
    assert bare.reasons[0] == "attempt 1 cannot be sent: refused" and bare.action == "review"


def test_a_refused_attempt_released_by_a_person_is_planned_again() -> None:
    at = local(LA, 2026, 12, 1, 10, 0)
    case = make_case(FailureCategory.card_invalid_or_lost, at)
    later = at + timedelta(minutes=5)
    released = [failed(at), refused_note(at, 1), resolved_note(later)]
    step = run(case, released, later, refused={1: "bad value"})
    assert (step.action, step.attempt) == ("contact", 1)
    # Refused again after the release: parked again.
    again = [*released, refused_note(later + timedelta(minutes=1), 1)]
    assert run(case, again, later, refused={1: "bad value"}).action == "review"
    # A refusal of another attempt does not hold this one back.
    assert run(case, [failed(at)], at, refused={2: "bad value"}).action == "contact"

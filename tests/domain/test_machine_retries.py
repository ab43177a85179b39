"""Retry-aware timing in the state machine: a soft decline's first call waits for the retry the
gateway announced, a hard decline never does, and a card update pauses the case until the next
retry; against the shipped policy, taxonomy and calling rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from recovery.domain.compliance import load_rules
from recovery.domain.machine import Step, decide
from recovery.domain.models import (
    CaseStatus,
    CaseView,
    ContactPoint,
    Disposition,
    FailureCategory,
    Gateway,
    HistoryEntry,
    HistoryKind,
)
from recovery.domain.policy import load_policy

POLICY = load_policy()
RULES = load_rules()
LA = ZoneInfo("America/Los_Angeles")
CA = ContactPoint(phone_e164="+14155550123", state="CA")
# Monday 2 November 2026, 10:00 in Los Angeles: inside the calling window.
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=LA).astimezone(UTC)


def case(category: FailureCategory) -> CaseView:
    return CaseView(
        key="stripe:in_1",
        gateway=Gateway.stripe,
        status=CaseStatus.open,
        category=category,
        contact=CA,
        failed_at=T0,
        opened_at=T0,
    )


def failure(
    at: datetime,
    *,
    retry: datetime | None = None,
    decline: str | None = "soft",
    kind: HistoryKind = HistoryKind.failure_recorded,
) -> HistoryEntry:
    data: dict[str, Any] = {"next_retry_at": retry.isoformat() if retry else None}
    if decline is not None:
        data["decline"] = decline
    return HistoryEntry(at=at, kind=kind, data=data)


def run(view: CaseView, history: list[HistoryEntry], now: datetime) -> Step:
    return decide(view, history, now, POLICY, RULES)


def test_a_soft_decline_waits_past_a_retry_beyond_the_grace() -> None:
    retry = T0 + timedelta(days=10)  # later than the 7-day grace, within the 14-day horizon
    view = case(FailureCategory.insufficient_funds)
    history = [failure(T0, retry=retry)]
    step = run(view, history, T0)
    assert step.action == "wait" and step.status is CaseStatus.awaiting_retry
    assert step.at == retry + timedelta(days=1)  # 10:00 Pacific: lawful
    assert step.waiting_for == "gateway_retry" and step.retry_at == retry
    assert step.unwaited_at == T0 + timedelta(days=7)
    assert any("the gateway retries at 2026-11-12T18:00:00Z" in r for r in step.reasons)
    # still waiting the minute before, called at the minute
    assert run(view, history, step.at - timedelta(minutes=1)).action == "wait"
    contact = run(view, history, step.at)
    assert contact.action == "contact" and contact.attempt == 1
    assert contact.waiting_for is None


def test_a_retry_inside_the_grace_changes_nothing_but_is_noted() -> None:
    retry = T0 + timedelta(days=3)
    view = case(FailureCategory.insufficient_funds)
    step = run(view, [failure(T0, retry=retry)], T0)
    assert step.at == T0 + timedelta(days=7)
    assert step.status is CaseStatus.awaiting_window and step.waiting_for is None
    assert any("the policy's own delay ends later" in r for r in step.reasons)


def test_a_generic_decline_waits_for_the_retry_after_its_one_day_delay() -> None:
    retry = T0 + timedelta(days=3)
    view = case(FailureCategory.generic_decline)
    step = run(view, [failure(T0, retry=retry)], T0 + timedelta(days=1))
    assert step.status is CaseStatus.awaiting_retry
    assert step.at == retry + timedelta(days=1)
    assert step.unwaited_at == T0 + timedelta(days=1)


def test_a_success_during_the_wait_closes_the_case_with_no_call() -> None:
    retry = T0 + timedelta(days=3)
    view = case(FailureCategory.generic_decline)
    history = [
        failure(T0, retry=retry),
        HistoryEntry(at=retry + timedelta(minutes=2), kind=HistoryKind.payment_succeeded),
    ]
    step = run(view, history, retry + timedelta(minutes=3))
    assert step.action == "close" and step.outcome == "recovered"


def test_a_failure_at_the_retry_ends_the_wait() -> None:
    retry = T0 + timedelta(days=3)
    later_retry = T0 + timedelta(days=6)
    view = case(FailureCategory.generic_decline)
    history = [
        failure(T0, retry=retry),
        # the retry failed; the gateway announces another one, which is not waited for
        failure(retry + timedelta(seconds=5), retry=later_retry, kind=HistoryKind.failure_updated),
    ]
    now = retry + timedelta(minutes=1)
    step = run(view, history, now)
    assert step.action == "contact" and step.at == now
    assert any("retry at 2026-11-05T18:00:00Z failed" in r for r in step.reasons)


def test_the_events_of_one_attempt_do_not_end_the_wait() -> None:
    retry = T0 + timedelta(days=3)
    view = case(FailureCategory.generic_decline)
    history = [
        failure(T0, retry=retry),
        # the charge's own event about the same attempt, a second later, says nothing of retries
        failure(T0 + timedelta(seconds=1), kind=HistoryKind.failure_updated),
    ]
    step = run(view, history, T0 + timedelta(days=1))
    assert step.status is CaseStatus.awaiting_retry and step.at == retry + timedelta(days=1)


def test_a_later_announcement_before_the_retry_replaces_it() -> None:
    first, moved = T0 + timedelta(days=2), T0 + timedelta(days=4)
    view = case(FailureCategory.generic_decline)
    history = [
        failure(T0, retry=first),
        failure(T0 + timedelta(days=1), retry=moved, kind=HistoryKind.failure_updated),
    ]
    step = run(view, history, T0 + timedelta(days=1, minutes=1))
    assert step.retry_at == moved and step.at == moved + timedelta(days=1)


def test_a_hard_decline_is_called_at_once_whatever_the_gateway_plans() -> None:
    view = case(FailureCategory.card_expired)
    step = run(view, [failure(T0, retry=T0 + timedelta(days=2), decline="hard")], T0)
    assert step.action == "contact" and step.at == T0
    assert any("card_expired is a hard decline" in r for r in step.reasons)


def test_the_taxonomy_recorded_with_the_failure_decides_soft_or_hard() -> None:
    retry = T0 + timedelta(days=10)
    view = case(FailureCategory.insufficient_funds)
    # an operator's taxonomy that calls insufficient funds a hard decline
    hard = run(view, [failure(T0, retry=retry, decline="hard")], T0)
    assert hard.waiting_for is None and hard.at == T0 + timedelta(days=7)
    # no classification on record: the shipped one (soft)
    shipped = run(view, [failure(T0, retry=retry, decline=None)], T0)
    assert shipped.waiting_for == "gateway_retry"


def test_a_retry_beyond_the_horizon_is_not_waited_for() -> None:
    retry = T0 + timedelta(days=20)
    view = case(FailureCategory.insufficient_funds)
    step = run(view, [failure(T0, retry=retry)], T0)
    assert step.waiting_for is None and step.at == T0 + timedelta(days=7)
    assert any("more than 14d after the failure: not waited for" in r for r in step.reasons)


def test_only_the_first_call_waits_for_a_retry() -> None:
    retry = T0 + timedelta(days=10)
    view = case(FailureCategory.insufficient_funds)
    call = T0 + timedelta(days=11)
    history = [
        failure(T0, retry=retry),
        HistoryEntry(at=call, kind=HistoryKind.contact_requested, data={"attempt": 1}),
        HistoryEntry(
            at=call + timedelta(minutes=5),
            kind=HistoryKind.disposition,
            disposition=Disposition.no_answer,
            data={"attempt": 1},
        ),
    ]
    step = run(view, history, call + timedelta(minutes=5))
    assert step.status is CaseStatus.cooling_down and step.waiting_for is None
    assert step.at == call + timedelta(days=3)


def test_a_card_update_pauses_the_case_until_after_the_next_retry() -> None:
    retry = T0 + timedelta(days=2)
    view = case(FailureCategory.card_expired)
    updated = T0 + timedelta(hours=1)
    history = [
        failure(T0, retry=retry, decline="hard"),
        HistoryEntry(at=updated, kind=HistoryKind.card_updated),
    ]
    step = run(view, history, updated)
    assert step.status is CaseStatus.awaiting_retry and step.waiting_for == "card_update"
    assert step.at == retry + POLICY.after_card_update
    assert any("card updated at 2026-11-02T19:00:00Z: paused" in r for r in step.reasons)


def test_a_card_update_without_an_announced_retry_does_not_pause() -> None:
    view = case(FailureCategory.card_expired)
    history = [
        failure(T0, decline="hard"),
        HistoryEntry(at=T0 + timedelta(hours=1), kind=HistoryKind.card_updated),
    ]
    step = run(view, history, T0 + timedelta(hours=1))
    assert step.action == "contact"
    assert any("no gateway retry announced after it, not paused" in r for r in step.reasons)

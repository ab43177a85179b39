"""The recovery sequence as a state machine: ``decide`` reads a case and its history and says
what happens next.

``decide`` is pure: no I/O, no clock (``now`` is an argument), deterministic. The history is the
source of truth; these ``HistoryEntry.data`` conventions are read:

- ``contact_requested``: ``{"attempt": n, "planned_at": iso}``; one entry per dial attempt.
- ``disposition``: ``disposition`` set; data may carry ``"attempt": n`` (else the latest
  attempt before it), ``"promised_date": "YYYY-MM-DD"``, ``"callback_at": iso``,
  ``"right_party": bool`` (overrides the disposition's own meaning).
- ``payment_succeeded``: the payment arrived; it wins over everything else.
- ``contact_rejected`` / ``contact_removed``: ``{"attempt": n}``; the attempt ended without an
  outcome, so the case is parked for review.
- ``closed``: ``{"outcome": ...}``; ``note`` with ``{"review_resolved": true}`` releases a case
  parked for review (it then continues on the category's retry schedule).
- ``failure_recorded`` / ``failure_updated`` (at the failure's own time): ``"next_retry_at":
  iso`` when the gateway announced its next automatic retry, ``"decline": "soft" | "hard"``
  (the taxonomy's classification of the case's category; the shipped one when absent).
- ``card_updated``: the card network updated the customer's card.

Retry-aware timing. For a soft decline whose category has ``gateway_retry`` in the policy, the
first contact also waits until ``gateway_retry.after`` past the retry the gateway announced
(the latest announcement made before that retry's time), unless that retry lies beyond
``gateway_retry.within`` after the failure. A payment success meanwhile closes the case with no
call (it wins over everything); a failure event at or after the retry's time means the retry
failed, which ends the wait. Hard declines never wait for a retry. After a card update, no call
(at any attempt) comes before ``after_card_update`` past the next retry announced after the
update and not yet failed. Such a wait has the status ``awaiting_retry`` and says so in
``Step.waiting_for``, with the retry's time and the instant the policy alone would have allowed.

Order of precedence: payment success > an earlier close > a closing disposition (do-not-call,
wrong number, paid, dispute, ...) > suppression of the number > expiry > missing phone > an
attempt still waiting for its outcome > review > the next contact. Every contact time comes from
the compliance engine's ``next_permitted``, never from the policy alone.

A step shaped by a compliance verdict carries that verdict's ``holds`` (the refusals as fields:
rule, jurisdiction, zone), which the caller records with the step.

Two rules then hold back a contact step: an attempt the contact centre refused before it was
sent (a value its columns cannot take) parks the case for a person until one releases it, and a
contact the dialer could not call within ``dial_margin`` of now waits for the next window.

A wait's status says what holds the case: ``cooling_down`` while the policy's delay after an
attempt (or a promise) has not passed, ``awaiting_window`` while only the calling rules do, and
``awaiting_disposition`` while a call's outcome is awaited. A ``review`` step's ``at`` is the
case's expiry, so that a parked case still closes in the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator

from recovery.domain.compliance import (
    CallHistory,
    CallingRules,
    Hold,
    dial_margin_hold,
    next_permitted,
    permitted,
    resolve_contact,
)
from recovery.domain.history import call_history, refusal_resolved
from recovery.domain.models import (
    CaseStatus,
    CaseView,
    ContactPoint,
    Disposition,
    FailureCategory,
    HistoryEntry,
    HistoryKind,
    Outcome,
)
from recovery.domain.policy import (
    CategoryPolicy,
    DayOfMonth,
    NextWeekday,
    Policy,
    delay_end,
    format_delay,
    is_right_party,
)
from recovery.domain.taxonomy import SOFT_DECLINES

__all__ = ["Action", "Step", "Suppress", "WaitingFor", "decide"]

Action = Literal["contact", "wait", "close", "review"]
# What a retry-aware wait waits for.
WaitingFor = Literal["gateway_retry", "card_update"]


class Suppress(BaseModel):
    """A number to add to the suppression list.

    ``scope`` is ``*`` (every customer) or ``customer`` (this case's customer only: the caller
    writes the customer reference, which the state machine does not see).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    phone_e164: str
    scope: Literal["*", "customer"]
    reason: str


class Step(BaseModel):
    """What happens next to a case, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Action
    at: AwareDatetime
    status: CaseStatus
    outcome: Outcome | None = None
    attempt: int | None = None
    suppress: Suppress | None = None
    stop_phone_cases: bool = False
    flag_review: bool = False
    reasons: tuple[str, ...] = ()
    # The compliance refusals behind the step, as fields (empty when none shaped it).
    holds: tuple[Hold, ...] = ()
    # On contact: when the outcome is due before reconciling, and the candidate zones.
    disposition_due_at: AwareDatetime | None = None
    timezones: tuple[str, ...] = ()
    # On a retry-aware wait: what it waits for, the gateway's retry, and the instant the policy
    # alone would have allowed the contact (the call the wait may save).
    waiting_for: WaitingFor | None = None
    retry_at: AwareDatetime | None = None
    unwaited_at: AwareDatetime | None = None

    @field_validator("at", "disposition_due_at", "retry_at", "unwaited_at", mode="after")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None


@dataclass(slots=True)
class _Disp:
    at: datetime
    disposition: Disposition
    attempt: int | None
    data: dict[str, Any]


@dataclass(slots=True)
class _Failure:
    at: datetime
    next_retry_at: datetime | None
    decline: str | None


@dataclass(slots=True)
class _Facts:
    success_at: datetime | None = None
    closed_outcome: Outcome | None = None
    closed: bool = False
    attempts: dict[int, datetime] = field(default_factory=dict)
    answered: set[int] = field(default_factory=set)
    ended: dict[int, str] = field(default_factory=dict)
    dispositions: list[_Disp] = field(default_factory=list)
    last_conversation: datetime | None = None
    review_resolved_at: datetime | None = None
    failures: list[_Failure] = field(default_factory=list)
    card_updated_at: datetime | None = None


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _read(history: Sequence[HistoryEntry]) -> _Facts:
    facts = _Facts()
    current: int | None = None
    for entry in history:
        kind = entry.kind
        if kind is HistoryKind.payment_succeeded:
            if facts.success_at is None:
                facts.success_at = _utc(entry.at)
        elif kind is HistoryKind.contact_requested:
            requested = _int(entry.data.get("attempt")) or len(facts.attempts) + 1
            facts.attempts.setdefault(requested, _utc(entry.at))
            current = requested
        elif kind is HistoryKind.disposition and entry.disposition is not None:
            number = _int(entry.data.get("attempt")) or current
            facts.dispositions.append(_Disp(_utc(entry.at), entry.disposition, number, entry.data))
            if number is not None:
                facts.answered.add(number)
            right_party = entry.data.get("right_party")
            spoke = right_party if isinstance(right_party, bool) else None
            if spoke is None:
                spoke = is_right_party(entry.disposition)
            if spoke and (facts.last_conversation is None or entry.at > facts.last_conversation):
                facts.last_conversation = _utc(entry.at)
        elif kind in (HistoryKind.contact_rejected, HistoryKind.contact_removed):
            ended = _int(entry.data.get("attempt")) or current
            if ended is not None:
                facts.ended[ended] = kind.value
        elif kind is HistoryKind.closed:
            facts.closed = True
            raw = entry.data.get("outcome")
            if isinstance(raw, str) and raw in Outcome.__members__:
                facts.closed_outcome = Outcome(raw)
        elif kind is HistoryKind.note and entry.data.get("review_resolved") is True:
            facts.review_resolved_at = _utc(entry.at)
        elif kind in (HistoryKind.failure_recorded, HistoryKind.failure_updated):
            decline = entry.data.get("decline")
            facts.failures.append(
                _Failure(
                    _utc(entry.at),
                    _aware(entry.data.get("next_retry_at")),
                    decline if isinstance(decline, str) else None,
                )
            )
        elif kind is HistoryKind.card_updated:
            at = _utc(entry.at)
            if facts.card_updated_at is None or at > facts.card_updated_at:
                facts.card_updated_at = at
    facts.failures.sort(key=lambda f: f.at)
    return facts


def _aware(raw: Any) -> datetime | None:
    """An aware instant from history data (ISO text), else None."""
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            return None
    else:
        return None
    return _utc(value) if value.tzinfo is not None else None


@dataclass(frozen=True, slots=True)
class _Retry:
    """The gateway's retry as the failures on record tell it."""

    at: datetime | None  # the retry announced (the latest announcement before it came)
    failed_at: datetime | None  # a failure at or after it: the retry failed


def _gateway_retry(failures: Sequence[_Failure]) -> _Retry:
    announced: datetime | None = None
    for failure in failures:
        if announced is not None and failure.at >= announced:
            return _Retry(announced, failure.at)
        if failure.next_retry_at is not None and failure.next_retry_at > failure.at:
            announced = failure.next_retry_at
    return _Retry(announced, None)


def _soft(case: CaseView, facts: _Facts) -> bool:
    """Whether the case's category is a soft decline, as recorded with its latest failure."""
    for failure in reversed(facts.failures):
        if failure.decline in ("soft", "hard"):
            return failure.decline == "soft"
    return FailureCategory(case.category) in SOFT_DECLINES


@dataclass(frozen=True, slots=True)
class _Wait:
    """A retry-aware wait that pushes the earliest contact later: until when, and why."""

    until: datetime
    waiting_for: WaitingFor
    retry_at: datetime
    reason: str


def _retry_waits(
    case: CaseView,
    cat: CategoryPolicy,
    policy: Policy,
    facts: _Facts,
    n: int,
    failed_at: datetime,
) -> tuple[_Wait | None, tuple[str, ...]]:
    """The retry-aware wait that applies (the later one when both do), and notes on the
    retries that are not waited for."""
    retry = _gateway_retry(facts.failures)
    notes: list[str] = []
    waits: list[_Wait] = []
    if retry.at is not None and retry.failed_at is not None:
        notes.append(
            f"the gateway's retry at {_iso(retry.at)} failed "
            f"(failure at {_iso(retry.failed_at)}): no further wait for it"
        )
    pending = retry.at if retry.at is not None and retry.failed_at is None else None
    rule = cat.gateway_retry
    if n == 0 and pending is not None:
        name = case.category.value
        if not _soft(case, facts):
            notes.append(f"{name} is a hard decline: the gateway's retry is not waited for")
        elif rule is None:
            notes.append(f"{name}: the policy waits for no gateway retry")
        elif pending > failed_at + rule.within:
            notes.append(
                f"the gateway's retry at {_iso(pending)} is more than "
                f"{format_delay(rule.within)} after the failure: not waited for"
            )
        else:
            until = pending + rule.after
            waits.append(
                _Wait(
                    until,
                    "gateway_retry",
                    pending,
                    f"{name}: soft decline, the gateway retries at {_iso(pending)}: first "
                    f"contact {format_delay(rule.after)} after it (not before {_iso(until)})",
                )
            )
    updated = facts.card_updated_at
    if updated is not None:
        if pending is not None and pending > updated:
            until = pending + policy.after_card_update
            waits.append(
                _Wait(
                    until,
                    "card_update",
                    pending,
                    f"card updated at {_iso(updated)}: paused until "
                    f"{format_delay(policy.after_card_update)} after the gateway's retry at "
                    f"{_iso(pending)} (not before {_iso(until)})",
                )
            )
        else:
            notes.append(
                f"card updated at {_iso(updated)}: no gateway retry announced after it, not paused"
            )
    wait = max(waits, key=lambda w: w.until) if waits else None
    return wait, tuple(notes)


def decide(
    case: CaseView,
    history: Sequence[HistoryEntry],
    now: datetime,
    policy: Policy,
    rules: CallingRules,
    *,
    suppression: str | None = None,
    dial_margin: timedelta = timedelta(0),
    refused: Mapping[int, str | None] | None = None,
) -> Step:
    """The next step of a case at ``now`` (aware), from its history, the policy and the rules.

    ``suppression`` is the reason when the case's number is on the suppression list for this
    customer (looked up by the caller). ``refused``: attempts planned before that the contact
    centre could never take (refused before sending; attempt -> why): planning one of them
    again parks the case for a person, unless a person released it since. ``dial_margin``: a
    contact is only planned when calling stays lawful for that long after ``now``, so that the
    dialer has time to call it inside the window; otherwise the case waits for the next one.
    """
    step = _next_step(case, history, now, policy, rules, suppression=suppression)
    if step.action != "contact" or step.attempt is None:
        return step
    if refused and step.attempt in refused:
        if not refusal_resolved(history, attempt=step.attempt):
            return _park_refused(case, step.attempt, refused[step.attempt], _utc(now), policy)
    if dial_margin > timedelta(0):
        return _respect_margin(case.contact, step, history, _utc(now), dial_margin, rules)
    return step


def _park_refused(
    case: CaseView, attempt: int, why: str | None, now: datetime, policy: Policy
) -> Step:
    """A case whose contact the contact centre cannot take waits for a person, not for the
    same refusal again; it is looked at again at its expiry, so that it still closes."""
    expires_at = case.failed_at + policy.for_category(case.category).expires_after
    return Step(
        action="review",
        at=max(now, expires_at),
        status=CaseStatus.review,
        flag_review=True,
        reasons=(
            f"attempt {attempt} cannot be sent: {why or 'refused'}",
            "a person must correct the case",
        ),
    )


def _respect_margin(
    contact: ContactPoint,
    step: Step,
    history: Sequence[HistoryEntry],
    now: datetime,
    margin: timedelta,
    rules: CallingRules,
) -> Step:
    """A contact planned so late in the window that the dialer could not call it in time
    waits for the next window instead."""
    calls = call_history(history, exclude_attempt=None)
    if permitted(contact, calls, now + margin, rules).permitted:
        return step
    later = next_permitted(contact, calls, now + margin, rules)
    minutes = int(margin.total_seconds() // 60)
    reasons = (*step.reasons, f"the window closes within the {minutes} min dial margin")
    at = later.next_permitted_at or now + timedelta(days=rules.horizon_days)
    return Step(
        action="wait",
        at=at,
        status=CaseStatus.awaiting_window,
        reasons=(*reasons, *later.reasons),
        holds=(dial_margin_hold(margin), *later.holds),
        timezones=step.timezones,
    )


def _next_step(
    case: CaseView,
    history: Sequence[HistoryEntry],
    now: datetime,
    policy: Policy,
    rules: CallingRules,
    *,
    suppression: str | None,
) -> Step:
    """The next step by the sequence's own rules (see the module's docstring)."""
    if now.tzinfo is None:
        raise ValueError("decide needs a timezone-aware now")
    now = _utc(now)
    facts = _read(history)
    cat = policy.for_category(case.category)
    phone = case.contact.phone_e164
    failed_at = _utc(case.failed_at)
    expires_at = failed_at + cat.expires_after

    def close(outcome: Outcome | None, *reasons: str, **extra: Any) -> Step:
        return Step(
            action="close",
            at=now,
            status=CaseStatus.closed,
            outcome=outcome,
            reasons=reasons,
            **extra,
        )

    def review(status: CaseStatus, *reasons: str, holds: tuple[Hold, ...] = ()) -> Step:
        # Looked at again at expiry so that a parked case still closes in the end.
        return Step(
            action="review",
            at=max(now, expires_at),
            status=status,
            flag_review=True,
            reasons=reasons,
            holds=holds,
        )

    # A closing disposition's suppression is carried by every close, so that a payment or
    # an earlier close can never swallow a request to stop calling.
    closing = next(
        (d for d in facts.dispositions if policy.for_disposition(d.disposition).action == "close"),
        None,
    )
    stop: dict[str, Any] = {}
    if closing is not None:
        rule = policy.for_disposition(closing.disposition)
        if rule.suppress is not None and phone:
            stop["suppress"] = Suppress(
                phone_e164=phone,
                scope="*" if rule.suppress == "all" else "customer",
                reason=closing.disposition.value,
            )
        stop["stop_phone_cases"] = rule.stop_phone_cases

    if facts.success_at is not None:
        return close(Outcome.recovered, f"payment succeeded at {_iso(facts.success_at)}", **stop)
    if facts.closed or case.status is CaseStatus.closed:
        return close(facts.closed_outcome or case.outcome, "the case is already closed", **stop)
    if closing is not None:
        rule = policy.for_disposition(closing.disposition)
        notes = [f"disposition {closing.disposition.value} at {_iso(closing.at)}"]
        if "suppress" in stop:
            whom = "every customer" if rule.suppress == "all" else "this customer"
            notes.append(f"the number is suppressed for {whom}")
        if rule.stop_phone_cases:
            notes.append("every open case on the number stops")
        if rule.flag_review:
            notes.append("flagged for review")
        return close(rule.outcome, *notes, flag_review=rule.flag_review, **stop)

    if suppression is not None:
        outcome = Outcome.unreachable if suppression == "wrong_number" else Outcome.suppressed
        return close(outcome, f"the number is suppressed: {suppression}")
    if now >= expires_at:
        return close(
            Outcome.expired,
            f"{case.category.value}: expired {format_delay(cat.expires_after)} after the failure",
        )
    if not phone:
        return review(CaseStatus.needs_contact_info, "no phone number: not dialable")

    n = max(facts.attempts) if facts.attempts else 0
    # A person who resolved the review of an attempt without an outcome releases the case:
    # that attempt counts as made, and the next one follows the category's retry schedule.
    released = False
    if n:
        last_at = facts.attempts[n]
        resolved = facts.review_resolved_at is not None and facts.review_resolved_at >= last_at
        if n in facts.ended:
            if not resolved:
                return review(
                    CaseStatus.review, f"attempt {n}: {facts.ended[n]} without an outcome"
                )
            released = True
        elif n not in facts.answered:
            due = last_at + cat.disposition_timeout
            if now < due:
                return Step(
                    action="wait",
                    at=min(due, expires_at),
                    status=CaseStatus.awaiting_disposition,
                    reasons=(f"attempt {n}: waiting for its outcome until {_iso(due)}",),
                )
            if not resolved:
                return review(
                    CaseStatus.review,
                    f"attempt {n}: no outcome since {_iso(last_at)}: "
                    "reconcile with the contact centre",
                )
            released = True

    last = facts.dispositions[-1] if facts.dispositions and not released else None
    action = policy.for_disposition(last.disposition).action if last is not None else "retry"
    if action == "review":
        assert last is not None
        if facts.review_resolved_at is None or facts.review_resolved_at < last.at:
            return review(CaseStatus.review, f"disposition {last.disposition.value}: review")
        action = "retry"

    earliest, why = _earliest(case, cat, policy, facts, last, action, n, failed_at)
    wait, retry_notes = _retry_waits(case, cat, policy, facts, n, failed_at)
    unwaited = earliest
    waiting: dict[str, Any] = {}
    if wait is not None and wait.until > earliest:
        earliest = wait.until
        retry_notes = (wait.reason, *retry_notes)
        waiting = {
            "waiting_for": wait.waiting_for,
            "retry_at": wait.retry_at,
            "unwaited_at": max(unwaited, now),
        }
    elif wait is not None:
        retry_notes = (*retry_notes, f"{wait.reason}; the policy's own delay ends later")
    callback_at = _callback_at(last) if action == "callback" else None
    if n >= cat.max_attempts:
        if action == "promise" and now < earliest:
            return Step(
                action="wait",
                at=min(earliest, expires_at),
                status=CaseStatus.cooling_down,
                reasons=(
                    why,
                    f"no attempts left ({n} of {cat.max_attempts}): "
                    "waiting for the promised payment",
                ),
            )
        return close(Outcome.exhausted, f"{n} of {cat.max_attempts} attempts made")

    calls = CallHistory(
        attempts=tuple(sorted(facts.attempts.values())),
        last_conversation=facts.last_conversation,
        callback_at=callback_at,
        suppression=None,
    )
    after = max(now, earliest)
    verdict = next_permitted(case.contact, calls, after, rules)
    reasons = (why, *retry_notes, f"attempt {n + 1} of {cat.max_attempts}", *verdict.reasons)
    cooling = n > 0 and earliest > now
    status = CaseStatus.cooling_down if cooling else CaseStatus.awaiting_window
    if waiting and earliest > now:
        status = CaseStatus.awaiting_retry
    else:
        waiting = {}
    at = verdict.next_permitted_at
    holds = verdict.holds
    if at is None:
        rules_held = {hold.rule for hold in holds}
        if "timezone_unknown" in rules_held:
            return review(CaseStatus.needs_contact_info, *reasons, holds=holds)
        if "suppressed" in rules_held:
            return close(Outcome.suppressed, *reasons, holds=holds)
        if "no_rules" in rules_held:
            return review(CaseStatus.review, *reasons, holds=holds)
        horizon = timedelta(days=rules.horizon_days)
        return Step(
            action="wait",
            at=min(after + horizon, expires_at),
            status=status,
            reasons=(
                *reasons,
                f"no permitted window within {rules.horizon_days} days: looking again then",
            ),
            holds=holds,
            timezones=verdict.timezones,
            **waiting,
        )
    at = _utc(at)
    if at >= expires_at:
        return Step(
            action="wait",
            at=expires_at,
            status=status,
            reasons=(*reasons, f"the next permitted instant {_iso(at)} is after the expiry"),
            holds=holds,
            timezones=verdict.timezones,
            **waiting,
        )
    if at <= now:
        where = ", ".join(verdict.timezones)
        return Step(
            action="contact",
            at=now,
            status=CaseStatus.contact_requested,
            attempt=n + 1,
            reasons=(
                *reasons,
                f"permitted now in {where} ({', '.join(verdict.jurisdictions)})",
            ),
            disposition_due_at=now + cat.disposition_timeout,
            timezones=verdict.timezones,
        )
    return Step(
        action="wait",
        at=at,
        status=status,
        reasons=reasons,
        holds=holds,
        timezones=verdict.timezones,
        **waiting,
    )


def _earliest(
    case: CaseView,
    cat: CategoryPolicy,
    policy: Policy,
    facts: _Facts,
    last: _Disp | None,
    action: str,
    n: int,
    failed_at: datetime,
) -> tuple[datetime, str]:
    """The earliest instant the policy allows the next contact, and why."""
    name = case.category.value
    if n == 0:
        at = delay_end(cat.first_contact, failed_at, _zones(case, cat.first_contact))
        if cat.first_contact == timedelta(0):
            return at, f"{name}: first contact as soon as lawful after the failure"
        text = format_delay(cat.first_contact)
        return at, f"{name}: first contact {text} after the failure (not before {_iso(at)})"
    if last is None:  # an attempt without an outcome, released by a person
        last_delay = cat.retry_delay(n)
        at = delay_end(last_delay, facts.attempts[n], _zones(case, last_delay))
        return at, f"{name}: retry {format_delay(last_delay)} after attempt {n}"
    rule = policy.for_disposition(last.disposition)
    label = f"disposition {last.disposition.value}"
    if action == "callback":
        wanted = _callback_at(last)
        if wanted is not None:
            return wanted, f"{label}: call back at {_iso(wanted)}"
        assert rule.delay is not None
        at = delay_end(rule.delay, last.at, _zones(case, rule.delay))
        return at, f"{label} without a time: call back {format_delay(rule.delay)} later"
    if action == "promise":
        assert rule.grace is not None and rule.delay is not None
        promised = _promised_date(last)
        if promised is None:
            at = delay_end(rule.delay, last.at, _zones(case, rule.delay))
            return at, f"{label} without a date: check again {format_delay(rule.delay)} later"
        day_end = _local_midnight(
            promised + timedelta(days=1), resolve_contact(case.contact).timezones
        )
        at = day_end + rule.grace
        if rule.max_promise is not None and at > last.at + rule.max_promise:
            at = last.at + rule.max_promise
            return at, f"{label} for {promised.isoformat()}: beyond the limit, check at {_iso(at)}"
        return at, (
            f"{label} for {promised.isoformat()}: check again after "
            f"{format_delay(rule.grace)} grace (not before {_iso(at)})"
        )
    delay = rule.delay if rule.delay is not None else cat.retry_delay(n)
    at = delay_end(delay, facts.attempts[n], _zones(case, delay))
    return (
        at,
        f"{name}: {label}, retry {format_delay(delay)} after attempt {n} (not before {_iso(at)})",
    )


def _zones(case: CaseView, delay: timedelta | NextWeekday | DayOfMonth) -> tuple[str, ...]:
    # Only a calendar-aligned delay needs the customer's zones; skip the lookup otherwise.
    if isinstance(delay, timedelta):
        return ()
    return resolve_contact(case.contact).timezones


def _local_midnight(day: date, zones: Sequence[str]) -> datetime:
    names = zones or ("UTC",)
    return max(datetime.combine(day, time(0), tzinfo=ZoneInfo(z)).astimezone(UTC) for z in names)


def _callback_at(last: _Disp | None) -> datetime | None:
    if last is None:
        return None
    return _aware(last.data.get("callback_at"))


def _promised_date(last: _Disp) -> date | None:
    raw = last.data.get("promised_date")
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            return None
    return None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

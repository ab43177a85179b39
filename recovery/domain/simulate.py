"""Play one case end to end on a virtual timeline, without any server: the ``recovery plan``.

The loop is the production one in miniature: ``decide`` -> apply the step to an in-memory
history -> move the virtual clock to the step's time. Each contact receives the next scripted
disposition (``no_answer`` once the script runs out) a few minutes after it is made.

When the gateway announced its next automatic retry (``next_retry_at``), the failure carries it
as a live one does; ``retry_outcome`` then plays what happens at that instant: ``paid`` (the
retry's success arrives), ``failed`` (a new failure event), or nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict

from recovery.domain.compliance import CallingRules, resolve_contact
from recovery.domain.machine import Action, WaitingFor, decide
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
from recovery.domain.policy import DispositionMap, Policy, is_right_party, map_wrapup
from recovery.domain.taxonomy import FailureCodes, categorize

__all__ = [
    "CALL_DURATION",
    "MAX_STEPS",
    "Plan",
    "PlanStep",
    "ScriptedDisposition",
    "SimulationError",
    "RetryOutcome",
    "parse_dispositions",
    "parse_reason",
    "simulate",
]

# How long after a contact its scripted outcome arrives: a short call and its wrap-up.
CALL_DURATION = timedelta(minutes=5)
# A policy cannot need more: 50 attempts at most, each with a few waits around it.
MAX_STEPS = 1000

# What happens at the gateway's announced retry in a simulation.
RetryOutcome = Literal["paid", "failed"]


class SimulationError(RuntimeError):
    """The simulated case did not come to an end (a policy or rules defect)."""


class ScriptedDisposition(BaseModel):
    """One scripted call outcome: ``promise_to_pay:2026-12-12``, ``callback_requested:<ISO>``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    disposition: Disposition
    promised_date: date | None = None
    callback_at: AwareDatetime | None = None

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"right_party": is_right_party(self.disposition)}
        if self.promised_date is not None:
            out["promised_date"] = self.promised_date.isoformat()
        if self.callback_at is not None:
            out["callback_at"] = self.callback_at.isoformat()
        return out

    def label(self) -> str:
        if self.promised_date is not None:
            return f"{self.disposition.value}:{self.promised_date.isoformat()}"
        if self.callback_at is not None:
            return f"{self.disposition.value}:{self.callback_at.isoformat()}"
        return self.disposition.value


class PlanStep(BaseModel):
    """One line of the timeline: a decision, or (``event``) what the gateway's retry brought."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: AwareDatetime
    local_time: AwareDatetime
    decided_at: AwareDatetime
    action: Action | Literal["event"]
    status: CaseStatus
    outcome: Outcome | None = None
    attempt: int | None = None
    disposition: str | None = None
    reasons: tuple[str, ...] = ()
    waiting_for: WaitingFor | None = None
    retry_at: AwareDatetime | None = None
    event: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The ``recovery plan --json`` shape of the step."""
        out: dict[str, Any] = {
            "at": self.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "local_time": self.local_time.isoformat(),
            "action": self.action,
            "status": self.status.value,
        }
        if self.action == "close":
            out["outcome"] = self.outcome.value if self.outcome else None
        if self.action == "contact":
            out["attempt"] = self.attempt
            out["disposition"] = self.disposition
        if self.action == "event":
            out["event"] = self.event
        if self.waiting_for is not None:
            out["waiting_for"] = self.waiting_for
            if self.retry_at is not None:
                out["retry_at"] = self.retry_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        out["reasons"] = list(self.reasons)
        return out


class Plan(BaseModel):
    """A whole simulated timeline, in the zone its local times are shown in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str
    category: FailureCategory
    steps: tuple[PlanStep, ...]

    def as_json(self) -> dict[str, Any]:
        return {"steps": [s.as_json() for s in self.steps]}


def parse_dispositions(
    text: str, mapping: DispositionMap | None = None
) -> list[ScriptedDisposition]:
    """``no_answer,promise_to_pay:2026-12-12,callback_requested:2026-12-03T15:00:00-05:00``.

    Names are the project's dispositions, or wrap-up codes the mapping knows. Raises
    ``ValueError`` naming the bad item.
    """
    out: list[ScriptedDisposition] = []
    for index, raw in enumerate(text.split(","), start=1):
        item = raw.strip()
        if not item:
            if text.strip():
                raise ValueError(f"disposition {index}: empty item")
            continue
        name, sep, arg = item.partition(":")
        disposition = _disposition(name.strip(), mapping)
        if disposition is None:
            choices = ", ".join(d.value for d in Disposition)
            raise ValueError(f"disposition {index} {name.strip()!r}: not one of {choices}")
        if not sep:
            out.append(ScriptedDisposition(disposition=disposition))
            continue
        arg = arg.strip()
        if disposition is Disposition.promise_to_pay:
            try:
                promised = date.fromisoformat(arg)
            except ValueError:
                raise ValueError(
                    f"disposition {index} {item!r}: the promised date must be YYYY-MM-DD"
                ) from None
            out.append(ScriptedDisposition(disposition=disposition, promised_date=promised))
        elif disposition is Disposition.callback_requested:
            at = _aware(arg, f"disposition {index} {item!r}: the callback time")
            out.append(ScriptedDisposition(disposition=disposition, callback_at=at))
        else:
            raise ValueError(
                f"disposition {index} {item!r}: only promise_to_pay and callback_requested "
                "take a value"
            )
    return out


def _disposition(name: str, mapping: DispositionMap | None) -> Disposition | None:
    try:
        return Disposition(name.lower())
    except ValueError:
        pass
    if mapping is not None:
        found = map_wrapup(name, mapping)
        if found is not Disposition.unknown:
            return found
    return None


def _aware(text: str, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} is not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise ValueError(f"{what} has no UTC offset: {text!r} (e.g. 2026-12-03T15:00:00-05:00)")
    return value


def parse_reason(text: str, codes: FailureCodes) -> tuple[FailureCategory, str]:
    """A failure category by name, or a Stripe decline / failure code mapped by the taxonomy."""
    name = text.strip().lower()
    if name in FailureCategory.__members__:
        return FailureCategory(name), f"category {name}"
    stripe = codes.gateways.get(Gateway.stripe)
    known = stripe is not None and (name in stripe.decline_code or name in stripe.failure_code)
    category, reason = (
        categorize(gateway=Gateway.stripe, decline_code=name, failure_code=name, codes=codes)
        if known
        else (FailureCategory.unknown, "")
    )
    if category is FailureCategory.unknown:
        choices = ", ".join(c.value for c in FailureCategory)
        raise ValueError(
            f"unknown reason {text!r}: give a category ({choices}) or a Stripe decline code"
        )
    return category, reason


def _retry_event(at: datetime, outcome: RetryOutcome) -> HistoryEntry:
    if outcome == "paid":
        return HistoryEntry(
            at=at, kind=HistoryKind.payment_succeeded, reasons=("the gateway's retry succeeded",)
        )
    return HistoryEntry(
        at=at,
        kind=HistoryKind.failure_updated,
        reasons=("the gateway's retry failed",),
        data={"next_retry_at": None},
    )


def simulate(
    *,
    category: FailureCategory,
    contact: ContactPoint,
    failed_at: datetime,
    dispositions: Sequence[ScriptedDisposition],
    policy: Policy,
    rules: CallingRules,
    call_duration: timedelta = CALL_DURATION,
    max_steps: int = MAX_STEPS,
    next_retry_at: datetime | None = None,
    retry_outcome: RetryOutcome | None = None,
    soft_decline: bool | None = None,
) -> Plan:
    """The timeline of one case from its failure to its end, on a virtual clock.

    ``soft_decline``: the taxonomy's classification of ``category`` (None: the shipped one)."""
    if failed_at.tzinfo is None:
        raise ValueError("failed_at needs a UTC offset")
    failed_at = failed_at.astimezone(UTC)
    if next_retry_at is not None and next_retry_at.tzinfo is None:
        raise ValueError("next_retry_at needs a UTC offset")
    retry = next_retry_at.astimezone(UTC) if next_retry_at is not None else None
    if retry is not None and retry <= failed_at:
        raise ValueError("the gateway's next retry must come after the failure")
    zones = resolve_contact(contact).timezones
    zone_name = zones[0] if zones else "UTC"
    zone = ZoneInfo(zone_name)
    script = deque(dispositions)
    failure: dict[str, Any] = {"next_retry_at": retry.isoformat() if retry else None}
    if soft_decline is not None:
        failure["decline"] = "soft" if soft_decline else "hard"
    history: list[HistoryEntry] = [
        HistoryEntry(
            at=failed_at, kind=HistoryKind.failure_recorded, status=CaseStatus.open, data=failure
        )
    ]
    # The event the gateway's retry brings, played when the clock reaches it.
    pending = (retry, retry_outcome) if retry is not None and retry_outcome else None
    status = CaseStatus.open
    now = failed_at
    steps: list[PlanStep] = []

    for _ in range(max_steps):
        case = CaseView(
            key="plan",
            gateway=Gateway.generic,
            status=status,
            category=category,
            contact=contact,
            failed_at=failed_at,
            opened_at=failed_at,
        )
        step = decide(case, history, now, policy, rules)
        status = step.status
        # A review's own time is when the case is looked at again; the timeline shows when it
        # was parked.
        at = now if step.action == "review" else step.at
        common: dict[str, Any] = {
            "at": at,
            "local_time": at.astimezone(zone),
            "decided_at": now,
            "action": step.action,
            "status": step.status,
            "reasons": step.reasons,
            "waiting_for": step.waiting_for,
            "retry_at": step.retry_at,
        }
        if step.action == "contact":
            scripted = (
                script.popleft()
                if script
                else ScriptedDisposition(disposition=Disposition.no_answer)
            )
            steps.append(PlanStep(**common, attempt=step.attempt, disposition=scripted.label()))
            history.append(
                HistoryEntry(
                    at=now,
                    kind=HistoryKind.contact_requested,
                    status=step.status,
                    reasons=step.reasons,
                    data={"attempt": step.attempt, "planned_at": now.isoformat()},
                )
            )
            now = now + call_duration
            history.append(
                HistoryEntry(
                    at=now,
                    kind=HistoryKind.disposition,
                    disposition=scripted.disposition,
                    data={"attempt": step.attempt, **scripted.data()},
                )
            )
        elif step.action == "wait":
            if step.at <= now:
                raise SimulationError(f"a wait that does not move time forward at {now}")
            steps.append(PlanStep(**common))
            if pending is not None and pending[0] <= step.at:
                # The gateway's retry comes first: its event, then a decision at that instant.
                now, outcome = max(pending[0], now), pending[1]
                pending = None
                event = _retry_event(now, outcome)
                history.append(event)
                steps.append(
                    PlanStep(
                        at=now,
                        local_time=now.astimezone(zone),
                        decided_at=now,
                        action="event",
                        status=status,
                        event=f"gateway retry: {outcome}",
                        reasons=event.reasons,
                    )
                )
                continue
            now = step.at
        else:
            steps.append(PlanStep(**common, outcome=step.outcome))
            return Plan(timezone=zone_name, category=category, steps=tuple(steps))
    raise SimulationError(f"the case did not end within {max_steps} steps")

"""Advancing due cases, without Prefect: the decide step of the advance flow.

``decide_due`` leases a chunk of due cases, runs the pure state machine on each, and applies
its step (wait, close, review) or plans a contact: a ``contacts`` row in state ``requested``
with a deterministic contact id, sent by ``recovery.services.dispatch``. A case whose planned
contact was never confirmed (a crash after the contact centre answered, before the answer was
recorded) is not decided again: its planned contact is sent again, which upserts, and a note in
its history says the contact centre may already hold it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from recovery.clock import Clock
from recovery.contact_center.contacts import contact_id_for
from recovery.domain.compliance import CallingRules
from recovery.domain.events import CaseEvent
from recovery.domain.machine import Step, decide
from recovery.domain.models import Outcome
from recovery.domain.policy import Policy
from recovery.services.dispatch import Dispatched
from recovery.services.watching import WATCH_POLL_SECONDS, watch_store
from recovery.store.cases import (
    case_histories,
    case_key,
    close_decided,
    make_number_due,
    record_decision,
    to_view,
)
from recovery.store.contacts import ContactPlan, note_possibly_held, open_contacts, plan_contacts
from recovery.store.db import transaction
from recovery.store.suppression import (
    ALL_CUSTOMERS,
    active_suppressions,
    suppress_for_case,
    suppression_reason,
)
from recovery.store.tables import CaseRow, SuppressionRow
from recovery.store.work import any_due, claim_due, leased_cases, release


@dataclass
class Decided:
    """What one chunk of due cases came to."""

    claimed: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    to_dispatch: list[int] = field(default_factory=list)
    suppressed_numbers: list[str] = field(default_factory=list)
    # the business events of the transitions made (no personal data)
    events: list[CaseEvent] = field(default_factory=list)


@dataclass
class AdvanceTotals:
    """What an advance run came to: its decisions, its contacts, the batches that failed; as
    the run's table, name and result."""

    actions: Counter[str] = field(default_factory=Counter)
    sent: Dispatched = field(default_factory=Dispatched)
    failed: int = 0

    def counts(self) -> list[tuple[str, int]]:
        sent = self.sent
        return [
            *sorted(self.actions.items()),
            ("contacts created", sent.created),
            ("contacts rejected", sent.rejected),
            ("contacts withdrawn", sent.cancelled),
            *((f"not sent: {k}", v) for k, v in sorted(sent.reasons.items())),
        ]

    def description(self) -> str:
        return f"Advance: {sum(self.actions.values())} decisions, {self.sent.created} contacts"

    def run_name(self) -> str:
        """What the run did, as its name: plain when it found nothing to do."""
        decisions = sum(self.actions.values())
        if not decisions:
            return "advance: nothing due"
        return f"advance: {decisions} decisions, {self.sent.created} contacts"

    def summary(self) -> dict[str, object]:
        return {
            "decisions": dict(self.actions),
            "contacts_created": self.sent.created,
            "contacts_rejected": self.sent.rejected,
            "contacts_withdrawn": self.sent.cancelled,
            "requests": self.sent.requests,
            "failed_batches": self.failed,
        }


def decide_due(
    *,
    sessions: sessionmaker[Session],
    policy: Policy,
    rules: CallingRules,
    now: datetime,
    owner: str,
    limit: int,
    lease: timedelta,
    contact_list_id: str,
    dial_margin: timedelta = timedelta(0),
) -> Decided:
    """Lease up to ``limit`` due cases to ``owner`` and apply each one's next step.

    ``dial_margin``: a contact is only planned when calling stays lawful for at least this long
    after now, so the dialer has time to call it inside the window."""
    result = Decided()
    with transaction(sessions) as session:
        ids = claim_due(
            session=session,
            now=now,
            limit=limit,
            owner=owner,
            lease_seconds=int(lease.total_seconds()),
        )
    result.claimed = len(ids)
    if not ids:
        return result
    plans: list[ContactPlan] = []
    # where each plan's contact goes in ``result.to_dispatch`` once it has its row id
    slots: list[int] = []
    with transaction(sessions) as session:
        cases = leased_cases(session=session, case_ids=ids, owner=owner)
        contacts = open_contacts(session=session, case_ids=ids)
        histories = case_histories(session=session, case_ids=ids)
        suppressions = active_suppressions(
            session=session, phones=[c.phone_e164 for c in cases if c.phone_e164], now=now
        )
        for case in cases:
            planned = contacts.planned.get(case.id)
            if planned is not None:
                result.actions["resend"] += 1
                result.to_dispatch.append(planned.id)
                note_possibly_held(
                    session=session,
                    contact=planned,
                    why="was planned under an earlier lease that ended before any answer was "
                    "recorded (sent again under the same id)",
                    now=now,
                )
                continue
            step = decide(
                to_view(case),
                histories[case.id],
                now,
                policy,
                rules,
                suppression=suppression_reason(suppressions, case.phone_e164, case.customer_ref),
                dial_margin=dial_margin,
                refused=contacts.refused.get(case.id),
            )
            result.actions[step.action] += 1
            added = _apply(session, case, step, now, contact_list_id, result, plans)
            if len(plans) > len(slots):
                slots.append(len(result.to_dispatch) - 1)
            if added is not None:
                # Later cases of this chunk on the same number must see it at once.
                suppressions[added.phone_e164].append(added)
        # The chunk's contacts are planned together (one insert each for the contact rows and
        # their history entries), in the same transaction; their places in the dispatch order
        # were kept as the cases were decided.
        for slot, made in zip(
            slots, plan_contacts(session=session, plans=plans, now=now), strict=True
        ):
            result.to_dispatch[slot] = made.row_id
    return result


def _apply(
    session: Session,
    case: CaseRow,
    step: Step,
    now: datetime,
    contact_list_id: str,
    result: Decided,
    plans: list[ContactPlan],
) -> SuppressionRow | None:
    """Apply one step through the store's transitions; the suppression it added, if any. A
    contact step is added to ``plans`` (planned with the rest of its chunk)."""
    added: SuppressionRow | None = None
    if step.suppress is not None:
        scope = ALL_CUSTOMERS if step.suppress.scope == "*" else (case.customer_ref or "*")
        added = suppress_for_case(
            session=session,
            case_id=case.id,
            phone_e164=step.suppress.phone_e164,
            reason=step.suppress.reason,
            scope=scope,
            now=now,
        )
        if scope == ALL_CUSTOMERS:
            result.suppressed_numbers.append(step.suppress.phone_e164)
    if step.stop_phone_cases and case.phone_e164:
        make_number_due(
            session=session, phone_e164=case.phone_e164, except_case_id=case.id, now=now
        )
    if step.action == "close":
        moved = close_decided(
            session=session,
            case=case,
            outcome=step.outcome or Outcome.exhausted,
            reasons=step.reasons,
            flag_review=step.flag_review,
            now=now,
        )
        result.events.extend(moved.events)
    elif step.action == "contact":
        assert step.attempt is not None
        plans.append(
            ContactPlan(
                case=case,
                attempt=step.attempt,
                contact_id=contact_id_for(case_key(case.gateway, case.business_key), step.attempt),
                contact_list_id=contact_list_id,
                time_zone=contact_zone(step.timezones, now),
                planned_at=step.at,
                disposition_due_at=step.disposition_due_at,
                reasons=step.reasons,
                timezones=step.timezones,
                holds=step.holds,
            )
        )
        result.to_dispatch.append(0)  # the row id, once planned
    else:
        moved = record_decision(
            session=session,
            case=case,
            action=step.action,
            status=step.status,
            at=step.at,
            reasons=step.reasons,
            now=now,
            holds=step.holds,
            extra=waiting_data(step),
        )
        result.events.extend(moved.events)
    return added


def waiting_data(step: Step) -> dict[str, str]:
    """A retry-aware wait as its decision records it (read by ``cases show`` and the report's
    calls avoided); empty for any other step."""
    if step.waiting_for is None:
        return {}
    out = {"waiting_for": str(step.waiting_for)}
    for name in ("retry_at", "unwaited_at"):
        value = getattr(step, name)
        if value is not None:
            out[name] = value.isoformat()
    return out


def contact_zone(zones: Sequence[str], at: datetime) -> str:
    """The candidate zone whose evening comes first (the largest UTC offset at ``at``): the
    one a dialer's callable-time check must use so that no zone is called after hours."""
    if not zones:
        raise ValueError("a contact needs at least one time zone")
    return max(zones, key=lambda z: (at.astimezone(ZoneInfo(z)).utcoffset() or timedelta(), z))


def wait_for_due(
    *,
    sessions: sessionmaker[Session],
    clock: Clock,
    deadline: float,
    poll_seconds: float = WATCH_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> bool:
    """Watch the store (one indexed read a look) until a case is due and free to claim, or
    until the ``monotonic`` instant ``deadline``: whether one is."""
    return watch_store(
        lambda session: any_due(session=session, now=clock.now()),
        sessions=sessions,
        deadline=deadline,
        poll_seconds=poll_seconds,
        sleep=sleep,
        monotonic=monotonic,
    )


def release_unfinished(*, sessions: sessionmaker[Session], case_ids: list[int], owner: str) -> int:
    """End ``owner``'s lease on cases it will not finish; how many were released."""
    with transaction(sessions) as session:
        return release(session=session, case_ids=case_ids, owner=owner)

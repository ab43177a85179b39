"""Advancing due cases, without Prefect: the work of the advance flow.

1. ``decide_due``: lease a chunk of due cases, run the pure state machine on each, and apply
   its step (wait, close, review), or plan a contact: a ``contacts`` row in state
   ``requested`` with a deterministic contact id. A case whose planned contact was never
   confirmed (a crash after the contact centre answered, before the answer was recorded) is
   not decided again: its planned contact is sent again, which upserts.
2. ``dispatch``: right before handing contacts to the contact centre, check once more that the
   number is not suppressed and that calling is lawful now; send one batch; record what the
   contact centre created or refused. The attempt enters the case history (and so the
   frequency caps) only once the contact centre holds it.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from recovery.contact_center.client import AddContactsResult, GenesysClient
from recovery.contact_center.contacts import ContactRequest, contact_id_for
from recovery.domain.compliance import CallHistory, CallingRules, next_permitted, permitted
from recovery.domain.machine import Step, decide
from recovery.domain.models import (
    CaseStatus,
    ContactPoint,
    Disposition,
    HistoryEntry,
    HistoryKind,
    Outcome,
)
from recovery.domain.policy import Policy, is_right_party
from recovery.logging import mask_phone
from recovery.store.cases import append_history, case_key, close_case, to_entries, to_view
from recovery.store.db import transaction
from recovery.store.suppression import ALL_CUSTOMERS, add_suppression
from recovery.store.tables import CaseRow, ContactRow, HistoryRow, SuppressionRow
from recovery.store.upsert import insert_ignore
from recovery.store.work import claim_due, release

log = logging.getLogger("recovery.advance")


@dataclass
class Decided:
    """What one chunk of due cases came to."""

    claimed: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    to_dispatch: list[int] = field(default_factory=list)
    suppressed_numbers: list[str] = field(default_factory=list)
    # (event name, case key, payload) for the business event feed; no personal data
    events: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


@dataclass
class Dispatched:
    """What one batch sent to the contact centre came to."""

    created: int = 0
    rejected: int = 0
    cancelled: int = 0
    requests: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


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
    with transaction(sessions) as session:
        cases = list(
            session.scalars(
                select(CaseRow).where(CaseRow.id.in_(ids), CaseRow.lease_owner == owner)
            )
        )
        pending = {
            row.case_id: row
            for row in session.scalars(
                select(ContactRow).where(
                    ContactRow.case_id.in_(ids), ContactRow.state == "requested"
                )
            )
        }
        histories = _histories(session, ids)
        suppressions = _suppressions(session, [c.phone_e164 for c in cases if c.phone_e164], now)
        for case in cases:
            if case.id in pending:
                result.actions["resend"] += 1
                result.to_dispatch.append(pending[case.id].id)
                continue
            reason = _suppressed(suppressions, case.phone_e164, case.customer_ref)
            view = to_view(case)
            step = decide(view, histories[case.id], now, policy, rules, suppression=reason)
            if step.action == "contact" and dial_margin > timedelta(0):
                step = _respect_margin(
                    view.contact, step, histories[case.id], now, dial_margin, rules
                )
            result.actions[step.action] += 1
            added = _apply(session, case, step, now, owner, contact_list_id, result)
            if added is not None:
                # Later cases of this chunk on the same number must see it at once.
                suppressions[added.phone_e164].append(added)
    return result


def _respect_margin(
    contact: ContactPoint,
    step: Step,
    entries: Sequence[HistoryEntry],
    now: datetime,
    margin: timedelta,
    rules: CallingRules,
) -> Step:
    """A contact planned so late in the window that the dialer could not call it in time
    waits for the next window instead."""
    calls = call_history(entries, exclude_attempt=None)
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
        timezones=step.timezones,
    )


def _histories(session: Session, case_ids: Sequence[int]) -> dict[int, list[HistoryEntry]]:
    rows: dict[int, list[HistoryRow]] = defaultdict(list)
    for row in session.scalars(
        select(HistoryRow).where(HistoryRow.case_id.in_(case_ids)).order_by(HistoryRow.id)
    ):
        rows[row.case_id].append(row)
    return defaultdict(list, {case_id: to_entries(items) for case_id, items in rows.items()})


def _suppressions(
    session: Session, phones: Iterable[str], now: datetime
) -> dict[str, list[SuppressionRow]]:
    found: dict[str, list[SuppressionRow]] = defaultdict(list)
    wanted = sorted(set(phones))
    for start in range(0, len(wanted), 500):
        for row in session.scalars(
            select(SuppressionRow).where(SuppressionRow.phone_e164.in_(wanted[start : start + 500]))
        ):
            if row.expires_at is None or row.expires_at > now:
                found[row.phone_e164].append(row)
    return found


def _suppressed(
    found: dict[str, list[SuppressionRow]], phone: str | None, customer_ref: str | None
) -> str | None:
    if not phone:
        return None
    rows = found.get(phone, [])
    for row in rows:
        if row.scope == ALL_CUSTOMERS:
            return row.reason
    for row in rows:
        if customer_ref is not None and row.scope == customer_ref:
            return row.reason
    return None


def _apply(
    session: Session,
    case: CaseRow,
    step: Step,
    now: datetime,
    owner: str,
    contact_list_id: str,
    result: Decided,
) -> SuppressionRow | None:
    """Apply one step; the suppression it added, if any."""
    reasons = list(step.reasons)
    added: SuppressionRow | None = None
    if step.suppress is not None:
        scope = ALL_CUSTOMERS if step.suppress.scope == "*" else (case.customer_ref or "*")
        added = add_suppression(
            session=session,
            phone_e164=step.suppress.phone_e164,
            reason=step.suppress.reason,
            source="disposition",
            now=now,
            scope=scope,
        )
        append_history(
            session=session,
            case_id=case.id,
            at=now,
            now=now,
            kind=HistoryKind.suppressed,
            reasons=[
                f"{mask_phone(step.suppress.phone_e164)} suppressed ({step.suppress.reason})"
                f" for {'every customer' if scope == ALL_CUSTOMERS else 'this customer'}"
            ],
            data={"reason": step.suppress.reason, "scope": "all" if scope == "*" else "customer"},
        )
        if scope == ALL_CUSTOMERS:
            result.suppressed_numbers.append(step.suppress.phone_e164)
    if step.stop_phone_cases and case.phone_e164:
        # Every other open case on the number is made due now: its next decision finds the
        # number suppressed and closes it (a worker holding one of them does the same).
        session.execute(
            update(CaseRow)
            .where(
                CaseRow.phone_e164 == case.phone_e164,
                CaseRow.id != case.id,
                CaseRow.status != CaseStatus.closed.value,
            )
            .values(next_due_at=now, updated_at=now)
        )
    if step.action == "close":
        already = case.status == CaseStatus.closed.value
        if not already:
            close_case(
                session=session,
                case=case,
                outcome=step.outcome or Outcome.exhausted,
                at=now,
                now=now,
                reasons=reasons,
            )
        case.flagged_for_review = case.flagged_for_review or step.flag_review
        case.lease_owner, case.lease_until = None, None
        return added
    if step.action == "contact":
        _plan_contact(session, case, step, now, contact_list_id, result)
        return added
    case.status = step.status.value
    case.status_reason = "; ".join(reasons)[:2000]
    case.next_due_at = step.at
    case.updated_at = now
    case.lease_owner, case.lease_until = None, None
    if step.action == "review":
        case.flagged_for_review = True
    append_history(
        session=session,
        case_id=case.id,
        at=now,
        now=now,
        kind=HistoryKind.decision,
        status=step.status,
        reasons=reasons,
        data={"action": step.action, "next_due_at": step.at.isoformat()},
    )
    return added


def contact_zone(zones: Sequence[str], at: datetime) -> str:
    """The candidate zone whose evening comes first (the largest UTC offset at ``at``): the
    one a dialer's callable-time check must use so that no zone is called after hours."""
    if not zones:
        raise ValueError("a contact needs at least one time zone")
    return max(zones, key=lambda z: (at.astimezone(ZoneInfo(z)).utcoffset() or timedelta(), z))


def _plan_contact(
    session: Session,
    case: CaseRow,
    step: Step,
    now: datetime,
    contact_list_id: str,
    result: Decided,
) -> None:
    assert step.attempt is not None
    key = case_key(case.gateway, case.business_key)
    contact_id = contact_id_for(key, step.attempt)
    zone = contact_zone(step.timezones, now)
    values = {
        "case_id": case.id,
        "attempt": step.attempt,
        "contact_id": contact_id,
        "contact_list_id": contact_list_id,
        "phone_e164": case.phone_e164 or "",
        "time_zone": zone,
        "planned_at": step.at,
        "requested_at": now,
        "created_at": None,
        "state": "requested",
        "error": None,
        "disposition_due_at": step.disposition_due_at,
    }
    row_id = insert_ignore(
        session,
        ContactRow.__table__,  # type: ignore[arg-type]
        values,
        conflict=("case_id", "attempt"),
    )
    if row_id is None:
        # The same attempt was planned before and withdrawn (say, the window closed before it
        # was sent): plan it again under the same deterministic id.
        row = session.scalars(
            select(ContactRow).where(
                ContactRow.case_id == case.id, ContactRow.attempt == step.attempt
            )
        ).one()
        if row.state not in ("requested", "cancelled"):
            raise RuntimeError(f"case {key}: attempt {step.attempt} already {row.state}")
        for name, value in values.items():
            setattr(row, name, value)
        row_id = row.id
    case.status = CaseStatus.contact_requested.value
    case.status_reason = "; ".join(step.reasons)[:2000]
    case.updated_at = now
    # Kept leased while the contact is in flight; if the worker dies, the lease ends and the
    # planned contact is sent again (same id: an upsert).
    case.next_due_at = now
    append_history(
        session=session,
        case_id=case.id,
        at=now,
        now=now,
        kind=HistoryKind.decision,
        status=CaseStatus.contact_requested,
        reasons=step.reasons,
        data={
            "action": "contact",
            "attempt": step.attempt,
            "contact_id": contact_id,
            "time_zone": zone,
            "timezones": list(step.timezones),
        },
    )
    result.to_dispatch.append(int(row_id))


def call_history(entries: Sequence[HistoryEntry], *, exclude_attempt: int | None) -> CallHistory:
    """The compliance engine's view of a case's calls, from its history."""
    attempts: list[datetime] = []
    last_conversation: datetime | None = None
    callback_at: datetime | None = None
    for entry in entries:
        if entry.kind is HistoryKind.contact_requested:
            if entry.data.get("attempt") != exclude_attempt:
                attempts.append(entry.at)
        elif entry.kind is HistoryKind.disposition and entry.disposition is not None:
            spoke = entry.data.get("right_party")
            if spoke is True or (spoke is None and is_right_party(entry.disposition)):
                if last_conversation is None or entry.at > last_conversation:
                    last_conversation = entry.at
            callback_at = None
            if entry.disposition is Disposition.callback_requested:
                raw = entry.data.get("callback_at")
                if isinstance(raw, str):
                    try:
                        parsed = datetime.fromisoformat(raw)
                    except ValueError:
                        parsed = None
                    if parsed is not None and parsed.tzinfo is not None:
                        callback_at = parsed
    return CallHistory(
        attempts=tuple(sorted(attempts)),
        last_conversation=last_conversation,
        callback_at=callback_at,
    )


def dispatch(
    *,
    sessions: sessionmaker[Session],
    client: GenesysClient,
    contact_row_ids: Sequence[int],
    rules: CallingRules,
    now: datetime,
    dial_margin: timedelta = timedelta(0),
) -> Dispatched:
    """Check, send and record one batch of planned contacts (one contact-centre request).

    A contact is sent only if calling is lawful now and still ``dial_margin`` from now, so the
    dialer has time to call it inside the window."""
    outcome = Dispatched()
    requests: list[ContactRequest] = []
    list_id = ""
    with transaction(sessions) as session:
        rows = list(
            session.scalars(
                select(ContactRow)
                .where(ContactRow.id.in_(contact_row_ids), ContactRow.state == "requested")
                .order_by(ContactRow.id)
            )
        )
        if not rows:
            return outcome
        cases = {
            c.id: c
            for c in session.scalars(
                select(CaseRow).where(CaseRow.id.in_([r.case_id for r in rows]))
            )
        }
        histories = _histories(session, list(cases))
        suppressions = _suppressions(session, [r.phone_e164 for r in rows], now)
        for row in rows:
            case = cases[row.case_id]
            why = _withdraw_reason(
                case, row, histories[case.id], suppressions, rules, now, dial_margin
            )
            if why is not None:
                _withdraw(session, case, row, why, now)
                outcome.cancelled += 1
                outcome.reasons[why.split(":", 1)[0]] += 1
                continue
            list_id = row.contact_list_id
            requests.append(
                ContactRequest(
                    case_key=case_key(case.gateway, case.business_key),
                    attempt=row.attempt,
                    phone_e164=row.phone_e164,
                    transaction_id=case.business_key,
                    failure_reason=case.category,
                    amount=case.amount,
                    currency=(case.currency or "").upper(),
                    next_retry_window=row.planned_at.astimezone(ZoneInfo(row.time_zone)).isoformat(
                        timespec="minutes"
                    ),
                    time_zone=row.time_zone,
                )
            )
    if not requests:
        return outcome
    sent: AddContactsResult = client.add_contacts(list_id, requests)
    outcome.requests = sent.requests
    _record(sessions, requests, sent, now, outcome)
    return outcome


def _withdraw_reason(
    case: CaseRow,
    row: ContactRow,
    entries: Sequence[HistoryEntry],
    suppressions: dict[str, list[SuppressionRow]],
    rules: CallingRules,
    now: datetime,
    dial_margin: timedelta,
) -> str | None:
    if case.status == CaseStatus.closed.value:
        return f"case closed: {case.outcome}"
    reason = _suppressed(suppressions, row.phone_e164, case.customer_ref)
    if reason is not None:
        return f"suppressed: {reason}"
    contact = to_view(case).contact
    calls = call_history(entries, exclude_attempt=row.attempt)
    verdict = permitted(contact, calls, now, rules)
    if not verdict.permitted:
        return "not permitted now: " + "; ".join(verdict.reasons)
    if dial_margin > timedelta(0):
        later = permitted(contact, calls, now + dial_margin, rules)
        if not later.permitted:
            minutes = int(dial_margin.total_seconds() // 60)
            return f"the window closes within the {minutes} min dial margin: " + "; ".join(
                later.reasons
            )
    return None


def _withdraw(session: Session, case: CaseRow, row: ContactRow, why: str, now: datetime) -> None:
    row.state = "cancelled"
    row.error = why[:1000]
    append_history(
        session=session,
        case_id=case.id,
        at=now,
        now=now,
        kind=HistoryKind.note,
        reasons=[f"attempt {row.attempt} withdrawn before it was sent: {why}"],
        data={"attempt": row.attempt, "contact_id": row.contact_id, "withdrawn": True},
    )
    if case.status != CaseStatus.closed.value:
        case.next_due_at = now
        case.updated_at = now
    case.lease_owner, case.lease_until = None, None


def _record(
    sessions: sessionmaker[Session],
    requests: Sequence[ContactRequest],
    sent: AddContactsResult,
    now: datetime,
    outcome: Dispatched,
) -> None:
    created = set(sent.created)
    rejected = {r.contact_id: r for r in sent.rejected}
    by_id = {r.contact_id: r for r in requests}
    with transaction(sessions) as session:
        rows = session.scalars(
            select(ContactRow).where(ContactRow.contact_id.in_(list(by_id)))
        ).all()
        cases = {
            c.id: c
            for c in session.scalars(
                select(CaseRow).where(CaseRow.id.in_([r.case_id for r in rows]))
            )
        }
        for row in rows:
            case = cases[row.case_id]
            if row.state != "requested":
                continue  # recorded by someone else meanwhile
            history = {
                "attempt": row.attempt,
                "planned_at": row.planned_at.isoformat(),
                "contact_id": row.contact_id,
                "time_zone": row.time_zone,
            }
            append_history(
                session=session,
                case_id=case.id,
                at=now,
                now=now,
                kind=HistoryKind.contact_requested,
                status=CaseStatus.contact_requested,
                reasons=[f"attempt {row.attempt} sent to the contact centre"],
                data=history,
            )
            if row.contact_id in created:
                row.state, row.created_at = "created", now
                case.contacts_made += 1
                case.status = CaseStatus.awaiting_disposition.value
                case.status_reason = f"attempt {row.attempt} queued at the contact centre"
                case.next_due_at = row.disposition_due_at or now
                append_history(
                    session=session,
                    case_id=case.id,
                    at=now,
                    now=now,
                    kind=HistoryKind.contact_created,
                    status=CaseStatus.awaiting_disposition,
                    reasons=[f"contact {row.contact_id} created in list {row.contact_list_id}"],
                    data=history,
                )
                outcome.created += 1
            else:
                refusal = rejected.get(row.contact_id)
                why = refusal.reason if refusal else "not confirmed by the contact centre"
                row.state, row.error = "rejected", why[:1000]
                case.next_due_at = now
                append_history(
                    session=session,
                    case_id=case.id,
                    at=now,
                    now=now,
                    kind=HistoryKind.contact_rejected,
                    reasons=[f"contact refused: {why}"],
                    data=history,
                )
                outcome.rejected += 1
                outcome.reasons["rejected"] += 1
            case.updated_at = now
            case.lease_owner, case.lease_until = None, None


def release_unfinished(*, sessions: sessionmaker[Session], case_ids: list[int], owner: str) -> None:
    with transaction(sessions) as session:
        release(session=session, case_ids=case_ids, owner=owner)

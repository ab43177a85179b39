"""Advancing due cases, without Prefect: the work of the advance flow.

1. ``decide_due``: lease a chunk of due cases, run the pure state machine on each, and apply
   its step (wait, close, review), or plan a contact: a ``contacts`` row in state
   ``requested`` with a deterministic contact id. A case whose planned contact was never
   confirmed (a crash after the contact centre answered, before the answer was recorded) is
   not decided again: its planned contact is sent again, which upserts, and a note in its
   history says the contact centre may already hold it.
2. ``dispatch``: right before handing contacts to the contact centre, check once more that the
   number is not suppressed and that calling is lawful now; send one batch; record what the
   contact centre created or refused. The attempt enters the case history (and so the
   frequency caps) only once the contact centre holds it.

   A contact withdrawn by that last check that the contact centre may already hold (sent
   before and never confirmed) is first removed from its contact list, outside any
   transaction, and recorded as withdrawn only once the removal succeeded. A contact the
   contact centre could never take (a value its columns refuse) is not sent: it is recorded
   as rejected and its case parked for review, and the rest of the batch goes on.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from recovery.contact_center.client import AddContactsResult, GenesysClient
from recovery.contact_center.contacts import ContactRequest, contact_id_for, redact
from recovery.contact_center.errors import (
    CardDataRefused,
    ContactCenterError,
    TransientContactCenterError,
)
from recovery.domain.compliance import CallHistory, CallingRules, next_permitted, permitted
from recovery.domain.machine import Step, decide
from recovery.domain.models import (
    CaseStatus,
    CaseView,
    ContactPoint,
    Disposition,
    HistoryEntry,
    HistoryKind,
    Outcome,
)
from recovery.domain.policy import Policy, is_right_party
from recovery.log_scrubbing import mask_phone
from recovery.services.contact_data import contact_request
from recovery.store.cases import (
    append_history,
    case_key,
    close_case,
    record_withdrawal,
    removal_data,
    removal_note,
    to_entries,
    to_view,
)
from recovery.store.db import transaction
from recovery.store.suppression import ALL_CUSTOMERS, add_suppression, preferred_suppression
from recovery.store.tables import CaseRow, ContactRow, HistoryRow, SuppressionRow
from recovery.store.upsert import insert_ignore
from recovery.store.work import claim_due, release

log = logging.getLogger("recovery.services.advance")

# ``Dispatched.reasons`` key of contacts refused before sending: a case value the contact
# centre's columns cannot take.
INVALID_FOR_CONTACT_CENTRE = "invalid for the contact centre"
# ``Dispatched.reasons`` key of withdrawn contacts left planned because the contact centre,
# which may hold them, could not be asked to remove them.
REMOVAL_FAILED = "not removed from the contact list: left planned"


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
        pending: dict[int, ContactRow] = {}
        refused: dict[tuple[int, int], ContactRow] = {}
        for row in session.scalars(
            select(ContactRow).where(
                ContactRow.case_id.in_(ids), ContactRow.state.in_(("requested", "rejected"))
            )
        ):
            if row.state == "requested":
                pending[row.case_id] = row
            else:
                refused[(row.case_id, row.attempt)] = row
        histories = _histories(session, ids)
        suppressions = _suppressions(session, [c.phone_e164 for c in cases if c.phone_e164], now)
        for case in cases:
            if case.id in pending:
                row = pending[case.id]
                result.actions["resend"] += 1
                result.to_dispatch.append(row.id)
                _note_unconfirmed(
                    session,
                    case.id,
                    row,
                    now,
                    "was planned under an earlier lease that ended before any answer was "
                    "recorded (sent again under the same id)",
                )
                continue
            reason = _suppressed(suppressions, case.phone_e164, case.customer_ref)
            view = to_view(case)
            step = decide(view, histories[case.id], now, policy, rules, suppression=reason)
            if step.action == "contact" and step.attempt is not None:
                refusal = refused.get((case.id, step.attempt))
                if refusal is not None and not _refusal_resolved(histories[case.id], refusal):
                    step = _park_refused(view, refusal, now, policy)
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


def _note_unconfirmed(
    session: Session, case_id: int, row: ContactRow, now: datetime, why: str
) -> None:
    """Record that the contact centre may hold this planned contact although the store never
    saw it confirmed, so that withdrawing it later also removes it from the contact list."""
    append_history(
        session=session,
        case_id=case_id,
        at=now,
        now=now,
        kind=HistoryKind.note,
        reasons=[f"attempt {row.attempt} {why}: the contact centre may hold it"],
        data={"attempt": row.attempt, "contact_id": row.contact_id, "unconfirmed": True},
    )


def _possibly_sent(entries: Sequence[HistoryEntry], row: ContactRow) -> bool:
    """Whether the contact centre may hold this planned contact: a request for it may have
    reached the contact centre since it was last planned, with no answer recorded."""
    held = False
    for entry in entries:
        if entry.data.get("attempt") != row.attempt:
            continue
        if entry.kind is HistoryKind.decision and entry.data.get("action") == "contact":
            held = False
        elif entry.kind is HistoryKind.note and entry.data.get("unconfirmed") is True:
            held = True
    return held


def _refusal_resolved(entries: Sequence[HistoryEntry], row: ContactRow) -> bool:
    """Whether a person released the case after its contact was refused before sending."""
    resolved = False
    for entry in entries:
        if entry.kind is not HistoryKind.note:
            continue
        if entry.data.get("refused") is True and entry.data.get("attempt") == row.attempt:
            resolved = False
        elif entry.data.get("review_resolved") is True:
            resolved = True
    return resolved


def _park_refused(view: CaseView, refusal: ContactRow, now: datetime, policy: Policy) -> Step:
    """A case whose contact the contact centre cannot take waits for a person, not for the
    same refusal again; it is looked at again at its expiry, so that it still closes."""
    expires_at = view.failed_at + policy.for_category(view.category).expires_after
    return Step(
        action="review",
        at=max(now, expires_at),
        status=CaseStatus.review,
        flag_review=True,
        reasons=(
            f"attempt {refusal.attempt} cannot be sent: {refusal.error or 'refused'}",
            "a person must correct the case",
        ),
    )


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
    row = preferred_suppression(found.get(phone, []), customer_ref)
    return row.reason if row is not None else None


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
    data = {"action": step.action, "next_due_at": step.at.isoformat()}
    if step.waiting_for is not None:
        data.update(waiting_data(step))
        result.events.append(
            ("waiting", case_key(case.gateway, case.business_key), waiting_event(case, step))
        )
    append_history(
        session=session,
        case_id=case.id,
        at=now,
        now=now,
        kind=HistoryKind.decision,
        status=step.status,
        reasons=reasons,
        data=data,
    )
    return added


def waiting_data(step: Step) -> dict[str, str]:
    """A retry-aware wait as its decision records it (read by ``cases show`` and the report's
    calls avoided)."""
    out = {"waiting_for": str(step.waiting_for)}
    for name in ("retry_at", "unwaited_at"):
        value = getattr(step, name)
        if value is not None:
            out[name] = value.isoformat()
    return out


def waiting_event(case: CaseRow, step: Step) -> dict[str, str]:
    """The ``waiting`` business event's payload: what the case waits for, and until when (no
    personal data)."""
    return {
        "waiting_for": str(step.waiting_for),
        "until": step.at.isoformat(),
        "category": case.category,
        **({"retry_at": step.retry_at.isoformat()} if step.retry_at else {}),
    }


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
        # A row refused before it was ever sent (a value the contact centre cannot take) is
        # planned again once a person released the case; a row the contact centre refused has
        # its attempt in the history, so the machine never plans that attempt again.
        if row.state not in ("requested", "cancelled", "rejected"):
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
    dialer has time to call it inside the window. A withdrawn contact the contact centre may
    already hold is removed from its list first; a contact whose values the contact centre
    cannot take is refused on its own and its case parked for review."""
    outcome = Dispatched()
    requests: list[ContactRequest] = []
    removals: list[_Removal] = []
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
            refusal: str | None = None
            if why is None:
                try:
                    requests.append(_contact_request(case, row, histories[case.id]))
                    list_id = row.contact_list_id
                    continue
                except (ValidationError, CardDataRefused) as exc:
                    # This contact alone is not sent; the rest of the batch is.
                    refusal = _invalid_reason(exc)
            if _possibly_sent(histories[case.id], row):
                # Recorded only once the contact centre no longer holds it.
                removals.append(_Removal(row.id, row.contact_list_id, row.contact_id, why, refusal))
            elif why is not None:
                _withdraw(session, case, row, why, now)
                outcome.cancelled += 1
                outcome.reasons[why.split(":", 1)[0]] += 1
            elif refusal is not None:
                _refuse(session, case, row, refusal, now)
                outcome.rejected += 1
                outcome.reasons[INVALID_FOR_CONTACT_CENTRE] += 1
    if removals:
        _remove_withdrawn(sessions, client, removals, now, outcome)
    if not requests:
        return outcome
    try:
        sent: AddContactsResult = client.add_contacts(list_id, requests)
    except Exception:
        # The contact centre may have taken some or all of the batch before failing.
        _note_batch_unconfirmed(sessions, requests, now)
        raise
    outcome.requests = sent.requests
    _record(sessions, requests, sent, now, outcome)
    return outcome


def _contact_request(
    case: CaseRow, row: ContactRow, entries: Sequence[HistoryEntry] = ()
) -> ContactRequest:
    """The contact as the contact centre will receive it; raises ``ValidationError`` or
    ``CardDataRefused`` when a value cannot be sent."""
    return contact_request(case=case, row=row, entries=entries)


def _invalid_reason(exc: ValidationError | CardDataRefused) -> str:
    """Which value was refused and why, without the value itself."""
    if isinstance(exc, CardDataRefused):
        problems = [f"{exc.field}: looks like a card number"]
    else:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "contact"
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
    return redact(f"{INVALID_FOR_CONTACT_CENTRE}: " + "; ".join(problems))


def _refuse(
    session: Session,
    case: CaseRow,
    row: ContactRow,
    why: str,
    now: datetime,
    *,
    removed: bool | None = None,
) -> None:
    """A contact the contact centre cannot take: not sent, and its case parked for a person
    (decided again at once, which parks it until its expiry; see ``decide_due``).
    ``removed``: as for ``_withdraw``."""
    row.state, row.error = "rejected", why[:1000]
    case.status = CaseStatus.review.value
    case.status_reason = f"attempt {row.attempt} not sent: {why}"[:2000]
    case.flagged_for_review = True
    case.next_due_at = now
    case.updated_at = now
    case.lease_owner, case.lease_until = None, None
    append_history(
        session=session,
        case_id=case.id,
        at=now,
        now=now,
        kind=HistoryKind.note,
        status=CaseStatus.review,
        reasons=[
            f"attempt {row.attempt} not sent: {why}",
            *removal_note(row, removed),
            "a person must correct the case",
        ],
        data=removal_data(
            {"attempt": row.attempt, "contact_id": row.contact_id, "refused": True}, removed
        ),
    )
    log.warning("contact %s not sent: %s", row.contact_id, why)


@dataclass(frozen=True)
class _Removal:
    """A contact not to be sent that the contact centre may hold: removed before it is
    recorded as withdrawn (``why``) or refused (``refusal``)."""

    row_id: int
    contact_list_id: str
    contact_id: str
    why: str | None
    refusal: str | None


def _remove_withdrawn(
    sessions: sessionmaker[Session],
    client: GenesysClient,
    removals: Sequence[_Removal],
    now: datetime,
    outcome: Dispatched,
) -> None:
    """Remove contacts not to be sent from their lists, then record them as withdrawn (or
    refused). One the contact centre could not be asked to remove stays planned (and leased):
    a later run withdraws it again, so nothing stays queued there unrecorded."""
    removed: dict[int, bool] = {}
    for index, item in enumerate(removals):
        try:
            removed[item.row_id] = client.remove_contact(item.contact_list_id, item.contact_id)
        except TransientContactCenterError as exc:
            # Unreachable: the rest would wait as long and fail too.
            left = len(removals) - index
            log.warning("%d withdrawn contacts not removed, left planned: %s", left, exc)
            outcome.reasons[REMOVAL_FAILED] += left
            break
        except ContactCenterError as exc:
            log.warning("contact %s not removed, left planned: %s", item.contact_id, exc)
            outcome.reasons[REMOVAL_FAILED] += 1
    if not removed:
        return
    items = {item.row_id: item for item in removals}
    with transaction(sessions) as session:
        rows = session.scalars(select(ContactRow).where(ContactRow.id.in_(list(removed)))).all()
        cases = {
            c.id: c
            for c in session.scalars(
                select(CaseRow).where(CaseRow.id.in_([r.case_id for r in rows]))
            )
        }
        for row in rows:
            if row.state != "requested":
                continue  # recorded by someone else meanwhile
            item, case = items[row.id], cases[row.case_id]
            if item.why is not None:
                _withdraw(session, case, row, item.why, now, removed=removed[row.id])
                outcome.cancelled += 1
                outcome.reasons[item.why.split(":", 1)[0]] += 1
            elif item.refusal is not None:
                _refuse(session, case, row, item.refusal, now, removed=removed[row.id])
                outcome.rejected += 1
                outcome.reasons[INVALID_FOR_CONTACT_CENTRE] += 1


def _note_batch_unconfirmed(
    sessions: sessionmaker[Session], requests: Sequence[ContactRequest], now: datetime
) -> None:
    by_id = {r.contact_id for r in requests}
    try:
        with transaction(sessions) as session:
            for row in session.scalars(
                select(ContactRow).where(
                    ContactRow.contact_id.in_(list(by_id)), ContactRow.state == "requested"
                )
            ):
                _note_unconfirmed(
                    session, row.case_id, row, now, "was sent and no answer was received"
                )
    except Exception:
        log.exception("could not note %d contacts as possibly held", len(by_id))


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


def _withdraw(
    session: Session,
    case: CaseRow,
    row: ContactRow,
    why: str,
    now: datetime,
    *,
    removed: bool | None = None,
) -> None:
    """``removed``: None when the contact was never sent; else whether removing it from its
    contact list found it there."""
    record_withdrawal(session=session, row=row, why=why, now=now, removed=removed)
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

"""A person's actions on a case (``recovery cases resolve`` / ``recovery cases close``): named
transitions that return what they did, and the review queue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from recovery.domain.models import CaseStatus, HistoryKind, Outcome, storable
from recovery.domain.pan import redact_text
from recovery.store.cases import CaseMoved, append_history, case_key, close_case, find_case
from recovery.store.contacts import record_withdrawal
from recovery.store.tables import CaseRow, ContactRow

# Descriptive fields a person may empty before releasing a review: values the contact centre's
# columns may refuse. Never the phone, the address or the identity of the case.
CLEARABLE_FIELDS = ("amount", "currency", "customer_name")
# Outcomes a person may close a case with. The others follow from the attempts (exhausted),
# the clock (expired) and the suppression list (suppressed).
MANUAL_OUTCOMES = (Outcome.recovered, Outcome.disputed, Outcome.unreachable)
NOTE_LIMIT = 1000


class CaseActionRefused(Exception):
    """A person's action that does not apply to the case as it stands; nothing was changed."""


def person_note(text: str) -> str:
    """A person's note as it is stored: card numbers redacted (before it is cut, so that no
    part of one survives), what no text column takes replaced, trimmed, at most 1000 chars."""
    cleaned, _ = redact_text(storable(text))
    cleaned = cleaned.strip()
    return cleaned if len(cleaned) <= NOTE_LIMIT else cleaned[: NOTE_LIMIT - 1] + "\u2026"


def find_case_for_update(*, session: Session, key: str) -> CaseRow | None:
    """As ``find_case``; on PostgreSQL the row stays locked until the transaction ends, so a
    person's change and a worker's claim or a recorded event cannot interleave (SQLite's write
    transaction is exclusive anyway)."""
    case = find_case(session=session, key=key)
    if case is None or session.get_bind().dialect.name != "postgresql":
        return case
    return _locked(session, case.id)


def _locked(session: Session, case_id: int) -> CaseRow:
    stmt = select(CaseRow).where(CaseRow.id == case_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


def _refuse_if_leased(case: CaseRow, now: datetime) -> None:
    if case.lease_until is not None and case.lease_until > now:
        raise CaseActionRefused(
            f"case {case_key(case.gateway, case.business_key)} is being worked on right now "
            f"(held until {case.lease_until.isoformat()}): nothing changed, try again then"
        )


@dataclass(frozen=True)
class Resolved:
    """A review a person resolved: the case is due for a decision at ``next_due_at``."""

    key: str
    status: str
    next_due_at: datetime
    cleared: tuple[str, ...]


def resolve_review(
    *, session: Session, case: CaseRow, note: str, clear: Sequence[str], now: datetime
) -> Resolved:
    """Release a case a person has looked at: the history note ``{"review_resolved": true}``
    (which the state machine and the advance step read), the flag cleared, the fields in
    ``clear`` emptied, and the case due now so that the next advance run decides it again.

    A case parked in ``review`` becomes ``open`` (due for a decision); any other status is
    left to that decision. A closed case flagged for review (a dispute) only has its flag
    cleared. Raises ``CaseActionRefused`` for a closed case not flagged, a case not in
    review, or one a worker holds; ``ValueError`` for an empty note or an unknown field."""
    unknown = [name for name in clear if name not in CLEARABLE_FIELDS]
    if unknown:
        raise ValueError(f"cannot clear {', '.join(unknown)}: only {', '.join(CLEARABLE_FIELDS)}")
    text = person_note(note)
    if not text:
        raise ValueError("the note is empty: say who resolved the review and why")
    key = case_key(case.gateway, case.business_key)
    if case.status == CaseStatus.closed.value:
        if not case.flagged_for_review:
            raise CaseActionRefused(f"case {key} is closed ({case.outcome}): nothing to resolve")
        if clear:
            raise CaseActionRefused(f"case {key} is closed ({case.outcome}): nothing to clear")
        # A closed case flagged for a person (a dispute): the review is acknowledged, and the
        # case leaves the review queue; it stays closed.
        case.flagged_for_review = False
        case.updated_at = now
        append_history(
            session=session,
            case_id=case.id,
            at=now,
            now=now,
            kind=HistoryKind.note,
            status=CaseStatus.closed,
            reasons=[f"review resolved: {text}"],
            data={"review_resolved": True, "cleared": []},
        )
        return Resolved(key, case.status, case.next_due_at or now, ())
    if case.status != CaseStatus.review.value and not case.flagged_for_review:
        raise CaseActionRefused(f"case {key} is {case.status}, not in review: nothing to resolve")
    _refuse_if_leased(case, now)
    cleared = tuple(dict.fromkeys(clear))
    for name in cleared:
        setattr(case, name, None)
    if case.status == CaseStatus.review.value:
        case.status = CaseStatus.open.value
        case.status_reason = "review resolved by a person; due for a decision"
    case.flagged_for_review = False
    case.next_due_at = now
    case.updated_at = now
    reasons = [f"review resolved: {text}"]
    if cleared:
        reasons.append(f"cleared {', '.join(cleared)}")
    append_history(
        session=session,
        case_id=case.id,
        at=now,
        now=now,
        kind=HistoryKind.note,
        status=CaseStatus(case.status),
        reasons=reasons,
        data={"review_resolved": True, "cleared": list(cleared)},
    )
    return Resolved(key, case.status, now, cleared)


@dataclass(frozen=True)
class QueuedContact:
    """A contact the contact centre holds, or may hold, for a case, with no outcome yet."""

    row_id: int
    contact_list_id: str
    contact_id: str
    state: str  # created: held there; requested: planned, perhaps sent before a crash


@dataclass(frozen=True)
class Hold:
    """A case a person is closing, held like a worker's lease so that no advance run decides
    it (or sends its planned contact) while its contacts are removed."""

    case_id: int
    key: str
    owner: str
    previous_owner: str | None
    previous_until: datetime | None
    contacts: tuple[QueuedContact, ...]


def hold_for_closing(
    *, session: Session, case: CaseRow, owner: str, now: datetime, until: datetime
) -> Hold:
    """Hold an open case for ``owner`` until ``until``; with its queued contacts. Raises
    ``CaseActionRefused`` for a closed case or one a worker holds."""
    key = case_key(case.gateway, case.business_key)
    if case.status == CaseStatus.closed.value:
        raise CaseActionRefused(f"case {key} is already closed ({case.outcome})")
    _refuse_if_leased(case, now)
    hold = Hold(
        case_id=case.id,
        key=key,
        owner=owner,
        previous_owner=case.lease_owner,
        previous_until=case.lease_until,
        contacts=tuple(
            QueuedContact(row.id, row.contact_list_id, row.contact_id, row.state)
            for row in session.scalars(
                select(ContactRow)
                .where(
                    ContactRow.case_id == case.id,
                    ContactRow.state.in_(("requested", "created")),
                )
                .order_by(ContactRow.id)
            )
        ),
    )
    case.lease_owner, case.lease_until = owner, until
    return hold


def release_hold(*, session: Session, hold: Hold) -> bool:
    """Give the case back as it was held before (the closing did not happen); False when the
    hold had lapsed and another owner holds the case."""
    result = session.execute(
        update(CaseRow)
        .where(CaseRow.id == hold.case_id, CaseRow.lease_owner == hold.owner)
        .values(lease_owner=hold.previous_owner, lease_until=hold.previous_until)
    )
    return bool(getattr(result, "rowcount", 0))


def close_by_hand(
    *,
    session: Session,
    hold: Hold,
    outcome: Outcome,
    note: str,
    now: datetime,
    withdrawn: Mapping[int, bool],
) -> CaseMoved:
    """Close a held case with a person's outcome and note (``close_case``: the same history
    and fields as every close), and clear its review flag: a person has looked at it.

    ``withdrawn``: planned contacts (row id) already taken off the contact list, with whether
    the list still held them; they are recorded as withdrawn. Raises ``CaseActionRefused``
    when the case closed meanwhile or the hold lapsed and was taken over."""
    if outcome not in MANUAL_OUTCOMES:
        allowed = ", ".join(o.value for o in MANUAL_OUTCOMES)
        raise ValueError(f"a person closes a case as one of {allowed}, not {outcome.value}")
    text = person_note(note)
    if not text:
        raise ValueError("the note is empty: say who closed the case and why")
    case = _locked(session, hold.case_id)
    if case.status == CaseStatus.closed.value:
        raise CaseActionRefused(f"case {hold.key} closed meanwhile ({case.outcome})")
    if case.lease_owner != hold.owner:
        raise CaseActionRefused(
            f"case {hold.key}: the hold on it lapsed and it was taken over; try again"
        )
    rows = session.scalars(select(ContactRow).where(ContactRow.id.in_(list(withdrawn)))).all()
    for row in rows:
        if row.state != "requested":
            continue
        record_withdrawal(
            session=session,
            row=row,
            why="the case was closed by a person",
            now=now,
            removed=withdrawn[row.id],
        )
    closed = close_case(
        session=session,
        case=case,
        outcome=outcome,
        at=now,
        now=now,
        reasons=[f"closed by a person as {outcome.value}: {text}"],
        data={"by_person": True},
    )
    case.flagged_for_review = False
    return closed


def review_queue(*, session: Session, limit: int) -> list[CaseRow]:
    """The cases a person must look at: parked in review, or flagged (a dispute), newest
    first."""
    return list(
        session.scalars(
            select(CaseRow)
            .where(or_(CaseRow.flagged_for_review.is_(True), CaseRow.status == "review"))
            .order_by(CaseRow.updated_at.desc())
            .limit(limit)
        )
    )

"""Contacts: one row per dial attempt handed (or about to be handed) to the contact centre, and
every transition of one, with the note it leaves in its case's history.

A contact is ``requested`` (planned, perhaps sent), then ``created`` (the contact centre holds
it), ``rejected`` (refused, by the contact centre or before sending), ``cancelled`` (withdrawn
before the contact centre took it), ``removed`` (taken off the list once its case closed) or
``dispositioned`` (its outcome arrived). A transition of a contact that is no longer in the
state it expects returns None and changes nothing: another worker recorded it meanwhile.
These functions join the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from recovery.domain import events as case_events
from recovery.domain.compliance.holds import Hold, holds_data
from recovery.domain.events import CaseEvent
from recovery.domain.models import CaseStatus, HistoryKind
from recovery.store.cases import (
    append_histories,
    append_history,
    case_key,
    history_values,
)
from recovery.store.tables import CaseRow, ContactRow, HistoryRow, table_of
from recovery.store.upsert import insert_ignore_many

REQUESTED = "requested"
CREATED = "created"
REJECTED = "rejected"
CANCELLED = "cancelled"
REMOVED = "removed"
# States from which an attempt may be planned again: withdrawn, or refused before it was ever
# sent (the contact centre's own refusal puts the attempt in the history, and the state
# machine never plans that attempt again).
REPLANNABLE = (REQUESTED, CANCELLED, REJECTED)


@dataclass(frozen=True)
class Moved:
    """What a contact transition did: the contact's new state and its case's status."""

    row_id: int
    case_id: int
    attempt: int
    contact_id: str
    state: str
    case_status: str
    # The business events of the transition (one each).
    events: tuple[CaseEvent, ...] = ()


def _moved(row: ContactRow, case_status: str, *events: CaseEvent) -> Moved:
    return Moved(row.id, row.case_id, row.attempt, row.contact_id, row.state, case_status, events)


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenContacts:
    """The contacts of a chunk of cases that a decision must know of."""

    # case id -> its planned contact (at most one: the attempt in flight)
    planned: dict[int, ContactRow] = field(default_factory=dict)
    # case id -> {attempt: why} for attempts refused (before sending, or by the contact centre)
    refused: dict[int, dict[int, str | None]] = field(default_factory=dict)


def open_contacts(*, session: Session, case_ids: Sequence[int]) -> OpenContacts:
    found = OpenContacts()
    for row in session.scalars(
        select(ContactRow).where(
            ContactRow.case_id.in_(case_ids), ContactRow.state.in_((REQUESTED, REJECTED))
        )
    ):
        if row.state == REQUESTED:
            found.planned[row.case_id] = row
        else:
            found.refused.setdefault(row.case_id, {})[row.attempt] = row.error
    return found


def planned_contacts(*, session: Session, row_ids: Sequence[int]) -> list[ContactRow]:
    """The contacts among ``row_ids`` still planned, in id order."""
    return list(
        session.scalars(
            select(ContactRow)
            .where(ContactRow.id.in_(list(row_ids)), ContactRow.state == REQUESTED)
            .order_by(ContactRow.id)
        )
    )


def contacts_by_id(*, session: Session, row_ids: Iterable[int]) -> list[ContactRow]:
    return list(session.scalars(select(ContactRow).where(ContactRow.id.in_(list(row_ids)))))


def contacts_by_contact_id(
    *, session: Session, contact_ids: Iterable[str], state: str | None = None
) -> list[ContactRow]:
    stmt = select(ContactRow).where(ContactRow.contact_id.in_(list(contact_ids)))
    if state is not None:
        stmt = stmt.where(ContactRow.state == state)
    return list(session.scalars(stmt))


def contacts_of_case(*, session: Session, case_id: int) -> list[ContactRow]:
    """A case's contacts, by attempt."""
    return list(
        session.scalars(
            select(ContactRow).where(ContactRow.case_id == case_id).order_by(ContactRow.attempt)
        )
    )


def queued_for_closed_cases(*, session: Session, limit: int) -> list[tuple[int, str, str]]:
    """(row id, contact list id, contact id) of contacts still queued for closed cases."""
    rows = session.execute(
        select(ContactRow.id, ContactRow.contact_list_id, ContactRow.contact_id)
        .join(CaseRow, CaseRow.id == ContactRow.case_id)
        .where(ContactRow.state == CREATED, CaseRow.status == CaseStatus.closed.value)
        .order_by(ContactRow.id)
        .limit(limit)
    )
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


# --- planning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """A contact planned for a case: the row to send, and whether the attempt was planned
    before (withdrawn or refused before sending) and is planned again under the same id."""

    row_id: int
    case_id: int
    attempt: int
    contact_id: str
    replanned: bool


@dataclass(frozen=True)
class ContactPlan:
    """One attempt to plan for a leased case (what ``plan_contacts`` records)."""

    case: CaseRow
    attempt: int
    contact_id: str
    contact_list_id: str
    time_zone: str
    planned_at: datetime
    disposition_due_at: datetime | None
    reasons: Sequence[str]
    timezones: Sequence[str]
    holds: Sequence[Hold] = ()


def plan_contact(
    *,
    session: Session,
    case: CaseRow,
    attempt: int,
    contact_id: str,
    contact_list_id: str,
    time_zone: str,
    planned_at: datetime,
    disposition_due_at: datetime | None,
    reasons: Sequence[str],
    timezones: Sequence[str],
    now: datetime,
    holds: Sequence[Hold] = (),
) -> Planned:
    """Plan attempt ``attempt`` of a case: the contact row (``requested``), the case in
    ``contact_requested`` and due now, and the decision in its history. The case stays leased
    while the contact is in flight; if the worker dies, the lease ends and the planned contact
    is sent again (same id: an upsert)."""
    plan = ContactPlan(
        case=case,
        attempt=attempt,
        contact_id=contact_id,
        contact_list_id=contact_list_id,
        time_zone=time_zone,
        planned_at=planned_at,
        disposition_due_at=disposition_due_at,
        reasons=reasons,
        timezones=timezones,
        holds=holds,
    )
    return plan_contacts(session=session, plans=[plan], now=now)[0]


def _contact_values(plan: ContactPlan, now: datetime) -> dict[str, Any]:
    return {
        "case_id": plan.case.id,
        "attempt": plan.attempt,
        "contact_id": plan.contact_id,
        "contact_list_id": plan.contact_list_id,
        "phone_e164": plan.case.phone_e164 or "",
        "time_zone": plan.time_zone,
        "planned_at": plan.planned_at,
        "requested_at": now,
        "created_at": None,
        "state": REQUESTED,
        "error": None,
        "disposition_due_at": plan.disposition_due_at,
    }


def plan_contacts(
    *, session: Session, plans: Sequence[ContactPlan], now: datetime
) -> list[Planned]:
    """Plan many attempts at once, each as ``plan_contact`` does, in the order given: one
    multi-row insert of the new contact rows (an attempt planned before is planned again in
    place), and one of their decisions' history entries. What each plan came to, in order."""
    if not plans:
        return []
    # Pending changes first, so that entries added earlier in the caller's transaction keep
    # their place before these in the history.
    session.flush()
    all_values = [_contact_values(plan, now) for plan in plans]
    inserted = insert_ignore_many(
        session,
        ContactRow.__table__,  # type: ignore[arg-type]
        all_values,
        conflict=("case_id", "attempt"),
    )
    planned: list[Planned] = []
    history: list[dict[str, Any]] = []
    for plan, values in zip(plans, all_values, strict=True):
        case, attempt = plan.case, plan.attempt
        row_id = inserted.get((case.id, attempt))
        replanned = row_id is None
        if row_id is None:
            row = session.scalars(
                select(ContactRow).where(
                    ContactRow.case_id == case.id, ContactRow.attempt == attempt
                )
            ).one()
            if row.state not in REPLANNABLE:
                key = case_key(case.gateway, case.business_key)
                raise RuntimeError(f"case {key}: attempt {attempt} already {row.state}")
            for name, value in values.items():
                setattr(row, name, value)
            row_id = row.id
        case.status = CaseStatus.contact_requested.value
        case.status_reason = "; ".join(plan.reasons)[:2000]
        case.updated_at = now
        case.next_due_at = now
        history.append(
            history_values(
                case_id=case.id,
                at=now,
                now=now,
                kind=HistoryKind.decision,
                status=CaseStatus.contact_requested,
                reasons=plan.reasons,
                data={
                    "action": "contact",
                    "attempt": attempt,
                    "contact_id": plan.contact_id,
                    "time_zone": plan.time_zone,
                    "timezones": list(plan.timezones),
                    "holds": holds_data(plan.holds),
                },
            )
        )
        planned.append(Planned(int(row_id), case.id, attempt, plan.contact_id, replanned))
    append_histories(session=session, rows=history)
    return planned


def note_possibly_held(*, session: Session, contact: ContactRow, why: str, now: datetime) -> None:
    """Record that the contact centre may hold this planned contact although the store never
    saw it confirmed, so that withdrawing it later also removes it from the contact list
    (``recovery.domain.history.possibly_sent`` reads this note)."""
    append_history(
        session=session,
        case_id=contact.case_id,
        at=now,
        now=now,
        kind=HistoryKind.note,
        reasons=[f"attempt {contact.attempt} {why}: the contact centre may hold it"],
        data={"attempt": contact.attempt, "contact_id": contact.contact_id, "unconfirmed": True},
    )


# --- not sent: withdrawn or refused ----------------------------------------------------------


def removal_note(row: ContactRow, removed: bool | None) -> list[str]:
    """What removing a contact from its list found (nothing when it was never sent)."""
    if removed is None:
        return []
    where = f"contact list {row.contact_list_id}"
    return [f"removed from {where}" if removed else f"it was not in {where}"]


def removal_data(data: dict[str, Any], removed: bool | None) -> dict[str, Any]:
    return data if removed is None else {**data, "removed": removed}


def record_withdrawal(
    *,
    session: Session,
    row: ContactRow,
    why: str,
    now: datetime,
    removed: bool | None,
    holds: Sequence[Hold] = (),
) -> None:
    """A planned contact withdrawn: cancelled, with a note in its case's history. ``removed``:
    None when it was never sent; else whether removing it from its contact list found it.
    ``holds``: the compliance refusals behind the withdrawal, recorded as ``data["holds"]``
    (empty when none: a closed case, a person's close)."""
    row.state, row.error = CANCELLED, why[:1000]
    if removed is None:
        reason = f"attempt {row.attempt} withdrawn before it was sent: {why}"
    else:
        reason = f"attempt {row.attempt} withdrawn: {why}"
    append_history(
        session=session,
        case_id=row.case_id,
        at=now,
        now=now,
        kind=HistoryKind.note,
        reasons=[reason, *removal_note(row, removed)],
        data=removal_data(
            {
                "attempt": row.attempt,
                "contact_id": row.contact_id,
                "withdrawn": True,
                "holds": holds_data(holds),
            },
            removed,
        ),
    )


def withdraw_planned(
    *,
    session: Session,
    case: CaseRow,
    contact: ContactRow,
    why: str,
    now: datetime,
    removed: bool | None = None,
    holds: Sequence[Hold] = (),
) -> Moved | None:
    """A planned contact the last check before sending withdrew (``record_withdrawal``); its
    case is released and, unless closed, due now for a fresh decision."""
    if contact.state != REQUESTED:
        return None
    record_withdrawal(session=session, row=contact, why=why, now=now, removed=removed, holds=holds)
    if case.status != CaseStatus.closed.value:
        case.next_due_at = now
        case.updated_at = now
    case.lease_owner, case.lease_until = None, None
    return _moved(contact, case.status)


def refuse_planned(
    *,
    session: Session,
    case: CaseRow,
    contact: ContactRow,
    why: str,
    now: datetime,
    removed: bool | None = None,
) -> Moved | None:
    """A planned contact the contact centre cannot take (a value its columns refuse): not
    sent, and its case parked for a person (due now: the next decision parks it until its
    expiry, see ``recovery.domain.machine.decide``). ``removed``: as for
    ``record_withdrawal``."""
    if contact.state != REQUESTED:
        return None
    contact.state, contact.error = REJECTED, why[:1000]
    case.status = CaseStatus.review.value
    case.status_reason = f"attempt {contact.attempt} not sent: {why}"[:2000]
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
            f"attempt {contact.attempt} not sent: {why}",
            *removal_note(contact, removed),
            "a person must correct the case",
        ],
        data=removal_data(
            {"attempt": contact.attempt, "contact_id": contact.contact_id, "refused": True},
            removed,
        ),
    )
    key = case_key(case.gateway, case.business_key)
    return _moved(
        contact,
        case.status,
        case_events.review_needed(key, category=case.category, why="contact refused"),
    )


# --- the contact centre's answer --------------------------------------------------------------


def _sent_data(contact: Any) -> dict[str, Any]:
    """What the history keeps of a contact sent (a ``ContactRow`` or a row with its columns)."""
    return {
        "attempt": contact.attempt,
        "planned_at": contact.planned_at.isoformat(),
        "contact_id": contact.contact_id,
        "time_zone": contact.time_zone,
    }


def _sent_entry(case_id: int, attempt: int, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """``_sent``'s history entry, as values for ``append_histories``."""
    return history_values(
        case_id=case_id,
        at=now,
        now=now,
        kind=HistoryKind.contact_requested,
        status=CaseStatus.contact_requested,
        reasons=[f"attempt {attempt} sent to the contact centre"],
        data=data,
    )


def _sent(session: Session, case: CaseRow, contact: ContactRow, now: datetime) -> dict[str, Any]:
    data = _sent_data(contact)
    session.add(HistoryRow(**_sent_entry(case.id, contact.attempt, data, now)))
    return data


def record_created(*, session: Session, contact_ids: Iterable[str], now: datetime) -> list[Moved]:
    """The contact centre holds these contacts: each attempt enters its case's history (sent,
    then created; and so the frequency caps), and each case awaits its outcome, released. A
    contact no longer ``requested`` is left alone (another worker recorded it).

    A batch is written with one statement per table for all its contacts (``executemany``),
    the values read with one query: this is the write every contact makes, and the ORM's
    flush of the same rows cost more than deciding them."""
    contact, case = table_of(ContactRow), table_of(CaseRow)
    found = session.execute(
        select(
            contact.c.id,
            contact.c.case_id,
            contact.c.attempt,
            contact.c.contact_id,
            contact.c.contact_list_id,
            contact.c.planned_at,
            contact.c.time_zone,
            contact.c.disposition_due_at,
            case.c.gateway,
            case.c.business_key,
            case.c.category,
        )
        .join(case, case.c.id == contact.c.case_id)
        .where(contact.c.contact_id.in_(list(contact_ids)), contact.c.state == REQUESTED)
        .order_by(contact.c.id)
    ).all()
    if not found:
        return []
    entries: list[dict[str, Any]] = []
    for row in found:
        data = _sent_data(row)
        entries.append(_sent_entry(row.case_id, row.attempt, data, now))
        entries.append(
            history_values(
                case_id=row.case_id,
                at=now,
                now=now,
                kind=HistoryKind.contact_created,
                status=CaseStatus.awaiting_disposition,
                reasons=[f"contact {row.contact_id} created in list {row.contact_list_id}"],
                data=data,
            )
        )
    session.execute(
        update(contact)
        .where(contact.c.id == bindparam("row_id"), contact.c.state == REQUESTED)
        .values(state=CREATED, created_at=now),
        [{"row_id": row.id} for row in found],
    )
    session.execute(
        update(case)
        .where(case.c.id == bindparam("row_id"))
        .values(
            contacts_made=case.c.contacts_made + 1,
            status=CaseStatus.awaiting_disposition.value,
            status_reason=bindparam("reason"),
            next_due_at=bindparam("due"),
            updated_at=now,
            lease_owner=None,
            lease_until=None,
        ),
        [
            {
                "row_id": row.case_id,
                "reason": f"attempt {row.attempt} queued at the contact centre",
                "due": row.disposition_due_at or now,
            }
            for row in found
        ],
    )
    append_histories(session=session, rows=entries)
    status = CaseStatus.awaiting_disposition.value
    return [
        Moved(
            row.id,
            row.case_id,
            row.attempt,
            row.contact_id,
            CREATED,
            status,
            (
                case_events.contact_created(
                    case_key(row.gateway, row.business_key),
                    category=row.category,
                    attempt=row.attempt,
                    contact_id=row.contact_id,
                ),
            ),
        )
        for row in found
    ]


def record_rejected(
    *, session: Session, case: CaseRow, contact: ContactRow, why: str, now: datetime
) -> Moved | None:
    """The contact centre refused the contact it was sent: the attempt enters the history
    with the refusal, and the case is released and due now (the state machine reviews it)."""
    if contact.state != REQUESTED:
        return None
    data = _sent(session, case, contact, now)
    contact.state, contact.error = REJECTED, why[:1000]
    case.next_due_at = now
    append_history(
        session=session,
        case_id=case.id,
        at=now,
        now=now,
        kind=HistoryKind.contact_rejected,
        reasons=[f"contact refused: {why}"],
        data=data,
    )
    case.updated_at = now
    case.lease_owner, case.lease_until = None, None
    return _moved(contact, case.status)


# --- closed cases ------------------------------------------------------------------------------


def record_removed(*, session: Session, row_id: int, found: bool, now: datetime) -> Moved | None:
    """A queued contact of a closed case taken off its contact list (``found``: whether the
    list still held it)."""
    row = session.get(ContactRow, row_id)
    if row is None or row.state != CREATED:
        return None
    row.state = REMOVED
    append_history(
        session=session,
        case_id=row.case_id,
        at=now,
        now=now,
        kind=HistoryKind.contact_removed,
        reasons=[
            f"contact {row.contact_id} removed from list {row.contact_list_id}: the case closed"
            + ("" if found else " (it was already gone)")
        ],
        data={"attempt": row.attempt, "contact_id": row.contact_id},
    )
    return _moved(row, CaseStatus.closed.value)

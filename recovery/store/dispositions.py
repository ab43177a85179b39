"""Call outcomes from the contact centre, recorded once per contact and attempt.

A disposition arrives by push (the notification listener, the data-action callback) or by
poll (the reconcile); either way the unique constraint on (contact id, attempt) keeps the
first and makes the second a no-op, and the case is made due so the state machine decides its
next step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from recovery.domain import events as case_events
from recovery.domain.events import CaseEvent
from recovery.domain.models import CaseStatus, Disposition, HistoryKind
from recovery.store.cases import append_history, case_key
from recovery.store.tables import CaseRow, ContactRow, DispositionRow
from recovery.store.upsert import insert_ignore

DispositionSource = Literal["push", "poll"]


class UnknownContact(LookupError):
    """No contact with this id was ever handed to the contact centre by this system."""

    def __init__(self, contact_id: str):
        super().__init__(f"unknown contact id {contact_id!r}")
        self.contact_id = contact_id


@dataclass(frozen=True)
class RecordResult:
    """``recorded`` is False when this contact's outcome was already on record."""

    recorded: bool
    case_id: int
    attempt: int
    disposition_id: int | None
    # The business event of the outcome recorded (none for a duplicate).
    events: tuple[CaseEvent, ...] = ()

    @property
    def duplicate(self) -> bool:
        return not self.recorded


def record_disposition(
    *,
    session: Session,
    contact_id: str,
    wrapup_code: str,
    disposition: Disposition,
    right_party: bool,
    source: DispositionSource,
    occurred_at: datetime,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> RecordResult:
    """Record a call outcome once; the case becomes due now so the next step is decided.

    Raises ``UnknownContact`` when ``contact_id`` is not one of ours (nothing is written).
    """
    contact = session.execute(
        select(ContactRow).where(ContactRow.contact_id == contact_id)
    ).scalar_one_or_none()
    if contact is None:
        raise UnknownContact(contact_id)
    inserted = insert_ignore(
        session,
        DispositionRow.__table__,  # type: ignore[arg-type]
        {
            "contact_id": contact_id,
            "attempt": contact.attempt,
            "case_id": contact.case_id,
            "wrapup_code": wrapup_code[:128],
            "disposition": disposition.value,
            "right_party": right_party,
            "detail": detail or {},
            "source": source,
            "occurred_at": occurred_at,
            "received_at": now,
            "applied_at": None,
        },
        conflict=("contact_id", "attempt"),
    )
    if inserted is None:
        return RecordResult(
            recorded=False, case_id=contact.case_id, attempt=contact.attempt, disposition_id=None
        )
    case = session.get(CaseRow, contact.case_id)
    if case is None:  # pragma: no cover - the foreign key forbids it
        raise UnknownContact(contact_id)
    if contact.state == "requested":
        # The contact centre held (and dialled) a contact whose sending was never confirmed
        # (the sender died waiting for the answer): the outcome confirms it, so the attempt
        # enters the history the frequency caps count, as the confirmation would have.
        confirmed = _confirm_by_outcome(session, case, contact, now)
    else:
        confirmed = None
    values: dict[str, Any] = {"updated_at": now}
    if contact.state == "requested":
        # The case's lease is the sender's, held while this contact was in flight: the outcome
        # settles the contact, so the case is free for its next decision now, not when the
        # lease runs out (the sender, when it returns, finds the contact settled).
        values["lease_owner"], values["lease_until"] = None, None
    if contact.state in {"requested", "created"}:
        contact.state = "dispositioned"
    # A closed case stays closed: the outcome is evidence, not a reason to act again.
    if case.status != CaseStatus.closed.value:
        values["next_due_at"] = now
    session.execute(update(CaseRow).where(CaseRow.id == case.id).values(**values))
    append_history(
        session=session,
        case_id=case.id,
        at=occurred_at,
        now=now,
        kind=HistoryKind.disposition,
        status=CaseStatus(case.status),
        disposition=disposition,
        reasons=[f"wrap-up code {wrapup_code[:128]!r} from {source}"],
        data={
            "contact_id": contact_id,
            "attempt": contact.attempt,
            "wrapup_code": wrapup_code[:128],
            "right_party": right_party,
            "source": source,
            # The state machine reads these: silence until a promised date, a callback time.
            **{
                k: (detail or {})[k]
                for k in ("promised_date", "callback_at")
                if (detail or {}).get(k)
            },
        },
    )
    session.flush()
    key = case_key(case.gateway, case.business_key)
    recorded = case_events.outcome_recorded(
        key,
        category=case.category,
        disposition=disposition.value,
        wrapup_code=wrapup_code[:128],
        attempt=contact.attempt,
        source=source,
    )
    return RecordResult(
        recorded=True,
        case_id=case.id,
        attempt=contact.attempt,
        disposition_id=int(inserted),
        events=(recorded,) if confirmed is None else (confirmed, recorded),
    )


def _confirm_by_outcome(
    session: Session, case: CaseRow, contact: ContactRow, now: datetime
) -> case_events.CaseEvent:
    """The contact's creation, recorded as the confirmation would have; its event."""
    data = {
        "attempt": contact.attempt,
        "planned_at": contact.planned_at.isoformat(),
        "contact_id": contact.contact_id,
        "time_zone": contact.time_zone,
        "confirmed_by_outcome": True,
    }
    for kind, reason in (
        (HistoryKind.contact_requested, f"attempt {contact.attempt} sent to the contact centre"),
        (
            HistoryKind.contact_created,
            f"contact {contact.contact_id} held by the contact centre: its outcome arrived",
        ),
    ):
        append_history(
            session=session,
            case_id=case.id,
            at=contact.requested_at,
            now=now,
            kind=kind,
            reasons=[reason],
            data=data,
        )
    contact.created_at = contact.requested_at
    case.contacts_made += 1
    return case_events.contact_created(
        case_key(case.gateway, case.business_key),
        category=case.category,
        attempt=contact.attempt,
        contact_id=contact.contact_id,
    )


def contacts_awaiting_disposition(
    *, session: Session, now: datetime, limit: int
) -> list[ContactRow]:
    """Contacts created at the contact centre whose outcome is overdue: the reconcile poll's
    work list, oldest first."""
    rows = session.execute(
        select(ContactRow)
        .where(ContactRow.state == "created", ContactRow.disposition_due_at <= now)
        .order_by(ContactRow.disposition_due_at, ContactRow.id)
        .limit(limit)
    )
    return list(rows.scalars())


@dataclass(frozen=True)
class Published:
    """A recorded outcome marked as published, with what its business event carries."""

    case_key: str
    disposition: str
    wrapup_code: str
    attempt: int
    source: str
    category: str = ""


def mark_published(
    *, session: Session, limit: int, now: datetime, through_id: int | None = None
) -> list[Published]:
    """Mark up to ``limit`` recorded outcomes not yet published (oldest first; none after
    disposition ``through_id`` when given) as applied at ``now``; what they were."""
    stmt = (
        select(DispositionRow, CaseRow.gateway, CaseRow.business_key, CaseRow.category)
        .join(CaseRow, CaseRow.id == DispositionRow.case_id)
        .where(DispositionRow.applied_at.is_(None))
        .order_by(DispositionRow.id)
        .limit(limit)
    )
    if through_id is not None:
        stmt = stmt.where(DispositionRow.id <= through_id)
    rows = session.execute(stmt).all()
    published = []
    for disposition, gateway, business_key, category in rows:
        disposition.applied_at = now
        published.append(
            Published(
                case_key=case_key(gateway, business_key),
                disposition=disposition.disposition,
                wrapup_code=disposition.wrapup_code,
                attempt=disposition.attempt,
                source=disposition.source,
                category=category,
            )
        )
    return published


@dataclass(frozen=True)
class Unpublished:
    """A recorded outcome not yet published, with its contact and case (read only)."""

    disposition_id: int
    disposition: str
    contact: ContactRow
    case: CaseRow


def unpublished_outcomes(*, session: Session, limit: int) -> list[Unpublished]:
    """Up to ``limit`` recorded outcomes not yet published, oldest first, with their contact
    and case."""
    rows = session.execute(
        select(DispositionRow.id, DispositionRow.disposition, ContactRow, CaseRow)
        .join(ContactRow, ContactRow.contact_id == DispositionRow.contact_id)
        .join(CaseRow, CaseRow.id == ContactRow.case_id)
        .where(DispositionRow.applied_at.is_(None))
        .order_by(DispositionRow.id)
        .limit(limit)
    ).all()
    return [Unpublished(int(r[0]), str(r[1]), r[2], r[3]) for r in rows]


def dispositions_of_case(*, session: Session, case_id: int) -> list[DispositionRow]:
    """A case's recorded outcomes, as received."""
    return list(
        session.scalars(
            select(DispositionRow)
            .where(DispositionRow.case_id == case_id)
            .order_by(DispositionRow.id)
        )
    )

"""Contacts the contact centre must never dial again on its own, and the record that it was
told so.

A contact is done with once its outcome is recorded, or once its case has closed or is parked
for a person while the contact may still be queued. Genesys keeps such a contact callable (a
system wrap-up leaves it "retried in the next recycle") unless it is told otherwise; the
``uncallable_at`` stamp says it was.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from recovery.domain.models import CaseStatus, HistoryKind
from recovery.store.cases import append_history
from recovery.store.tables import CaseRow, ContactRow

# Case statuses in which a contact still queued at the contact centre must not be dialled.
PAUSED = (CaseStatus.review.value, CaseStatus.needs_contact_info.value, CaseStatus.closed.value)


@dataclass(frozen=True)
class DoneContact:
    row_id: int
    contact_list_id: str
    contact_id: str
    why: str


def contacts_to_make_uncallable(*, session: Session, limit: int) -> list[DoneContact]:
    """Contacts not yet made uncallable whose outcome is recorded, or whose case closed or is
    parked; oldest first."""
    rows = session.execute(
        select(ContactRow, CaseRow.status)
        .join(CaseRow, CaseRow.id == ContactRow.case_id)
        .where(
            ContactRow.uncallable_at.is_(None),
            or_(
                ContactRow.state == "dispositioned",
                and_(ContactRow.state == "created", CaseRow.status.in_(PAUSED)),
            ),
        )
        .order_by(ContactRow.id)
        .limit(limit)
    ).all()
    done: list[DoneContact] = []
    for row, status in rows:
        why = "its outcome is recorded" if row.state == "dispositioned" else f"the case is {status}"
        done.append(DoneContact(row.id, row.contact_list_id, row.contact_id, why))
    return done


def record_uncallable(
    *,
    session: Session,
    contacts: Sequence[DoneContact],
    held: Collection[str],
    now: datetime,
) -> int:
    """Stamp these contacts as made uncallable (``held``: the ids the contact centre still
    held and was told; the others were gone already). How many were stamped."""
    by_id = {c.row_id: c for c in contacts}
    stamped = 0
    for row in session.scalars(select(ContactRow).where(ContactRow.id.in_(list(by_id)))):
        if row.uncallable_at is not None:
            continue  # stamped by someone else meanwhile
        row.uncallable_at = now
        item = by_id[row.id]
        told = row.contact_id in held
        append_history(
            session=session,
            case_id=row.case_id,
            at=now,
            now=now,
            kind=HistoryKind.note,
            reasons=[
                f"contact {row.contact_id} made uncallable at the contact centre: {item.why}"
                if told
                else f"contact {row.contact_id} no longer at the contact centre: {item.why}"
            ],
            data={
                "attempt": row.attempt,
                "contact_id": row.contact_id,
                "uncallable": True,
                "held": told,
            },
        )
        stamped += 1
    return stamped

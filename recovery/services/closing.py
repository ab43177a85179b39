"""Closing: contacts still queued for a case that has closed (paid, suppressed, expired, ...)
are deleted from the contact list, so nobody is called after paying."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.contact_center.client import GenesysClient
from recovery.domain.models import HistoryKind
from recovery.store.cases import append_history
from recovery.store.db import transaction
from recovery.store.tables import CaseRow, ContactRow


def closed_case_contacts(
    *, sessions: sessionmaker[Session], limit: int
) -> list[tuple[int, str, str]]:
    """(row id, contact list id, contact id) of contacts still queued for closed cases."""
    with sessions() as session:
        rows = session.execute(
            select(ContactRow.id, ContactRow.contact_list_id, ContactRow.contact_id)
            .join(CaseRow, CaseRow.id == ContactRow.case_id)
            .where(ContactRow.state == "created", CaseRow.status == "closed")
            .order_by(ContactRow.id)
            .limit(limit)
        )
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def remove_closed(
    *,
    sessions: sessionmaker[Session],
    client: GenesysClient,
    contacts: Sequence[tuple[int, str, str]],
    now: datetime,
) -> Counter[str]:
    """Delete these contacts from their lists and record it on their cases."""
    counts: Counter[str] = Counter()
    for row_id, list_id, contact_id in contacts:
        removed = client.remove_contact(list_id, contact_id)
        with transaction(sessions) as session:
            row = session.get(ContactRow, row_id)
            if row is None or row.state != "created":
                continue
            row.state = "removed"
            append_history(
                session=session,
                case_id=row.case_id,
                at=now,
                now=now,
                kind=HistoryKind.contact_removed,
                reasons=[
                    f"contact {contact_id} removed from list {list_id}: the case closed"
                    + ("" if removed else " (it was already gone)")
                ],
                data={"attempt": row.attempt, "contact_id": contact_id},
            )
        counts["removed" if removed else "already_gone"] += 1
    return counts

"""Keeping the contact centre and the store in step, without Prefect.

- ``reconcile_overdue``: contacts whose outcome is overdue are read back (bulk get) and the
  dialer's last result is recorded as if it had been pushed (a lost push loses nothing).
- ``remove_closed``: contacts still queued for a case that has closed (paid, suppressed,
  expired, ...) are deleted from the contact list, so nobody is called after paying.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.contact_center.client import GenesysClient
from recovery.domain.models import HistoryKind
from recovery.domain.policy import DispositionMap, is_right_party, map_wrapup
from recovery.store.cases import append_history
from recovery.store.db import transaction
from recovery.store.dispositions import (
    UnknownContact,
    contacts_awaiting_disposition,
    record_disposition,
)
from recovery.store.tables import CaseRow, ContactRow

log = logging.getLogger("recovery.reconcile")


def overdue_contacts(
    *, sessions: sessionmaker[Session], now: datetime, limit: int
) -> list[tuple[str, str]]:
    """(contact list id, contact id) of contacts whose outcome is overdue."""
    with sessions() as session:
        return [
            (row.contact_list_id, row.contact_id)
            for row in contacts_awaiting_disposition(session=session, now=now, limit=limit)
        ]


def reconcile_overdue(
    *,
    sessions: sessionmaker[Session],
    client: GenesysClient,
    contacts: Sequence[tuple[str, str]],
    mapping: DispositionMap,
    phone_column: str,
    now: datetime,
) -> Counter[str]:
    """Read these contacts back and record every outcome the push did not deliver."""
    counts: Counter[str] = Counter()
    by_list: dict[str, list[str]] = {}
    for list_id, contact_id in contacts:
        by_list.setdefault(list_id, []).append(contact_id)
    for list_id, ids in by_list.items():
        found = {c.id: c for c in client.get_contacts(list_id, ids)}
        with transaction(sessions) as session:
            for contact_id in ids:
                contact = found.get(contact_id)
                record = contact.call_records.get(phone_column) if contact else None
                if contact is None:
                    counts["missing_at_contact_centre"] += 1
                    continue
                if record is None or not record.last_result:
                    counts["not_dialled_yet"] += 1
                    continue
                disposition = map_wrapup(record.last_result, mapping)
                try:
                    result = record_disposition(
                        session=session,
                        contact_id=contact_id,
                        wrapup_code=record.last_result,
                        disposition=disposition,
                        right_party=is_right_party(disposition),
                        source="poll",
                        occurred_at=record.last_attempt or now,
                        now=now,
                        detail={"reconciled": True},
                    )
                except UnknownContact:
                    counts["unknown_contact"] += 1
                    continue
                counts["duplicate" if result.duplicate else "recorded"] += 1
    return counts


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

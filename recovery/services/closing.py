"""Closing: contacts still queued for a case that has closed (paid, suppressed, expired, ...)
are deleted from the contact list, so nobody is called after paying."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from recovery.contact_center.client import GenesysClient
from recovery.store.contacts import queued_for_closed_cases, record_removed
from recovery.store.db import transaction


def closed_case_contacts(
    *, sessions: sessionmaker[Session], limit: int
) -> list[tuple[int, str, str]]:
    """(row id, contact list id, contact id) of contacts still queued for closed cases."""
    with sessions() as session:
        return queued_for_closed_cases(session=session, limit=limit)


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
        found = client.remove_contact(list_id, contact_id)
        with transaction(sessions) as session:
            moved = record_removed(session=session, row_id=row_id, found=found, now=now)
        if moved is not None:
            counts["removed" if found else "already_gone"] += 1
    return counts

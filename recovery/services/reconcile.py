"""Reconcile: contacts whose outcome is overdue are read back from the contact centre (bulk
get) and the dialer's last result is recorded as if it had been pushed, so a lost push loses
nothing."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from recovery.contact_center.client import GenesysClient
from recovery.domain.policy import DispositionMap, is_right_party, map_wrapup
from recovery.store.db import transaction
from recovery.store.dispositions import (
    UnknownContact,
    contacts_awaiting_disposition,
    record_disposition,
)

log = logging.getLogger("recovery.services.reconcile")


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

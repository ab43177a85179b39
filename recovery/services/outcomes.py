"""Recorded call outcomes, as the dispositions flow handles them (without Prefect): the
update each outcome makes to its contact at the contact centre, then its business event."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.contact_center.contacts import ContactRequest
from recovery.contact_center.errors import CardDataRefused
from recovery.services.contact_data import contact_request
from recovery.store.cases import case_key, to_entries
from recovery.store.db import transaction
from recovery.store.tables import CaseRow, ContactRow, DispositionRow, HistoryRow

log = logging.getLogger("recovery.services.outcomes")


@dataclass(frozen=True)
class OutcomeUpdate:
    """A contact to update at the contact centre after its outcome: the same columns it was
    sent with, ``dispositionCode`` set, not dialable, and sent with ``doNotQueue=true`` so the
    update never puts it back in the dialer's queue."""

    contact_list_id: str
    request: ContactRequest


@dataclass(frozen=True)
class OutcomeUpdates:
    """The updates of the oldest unpublished outcomes, up to disposition ``through_id``
    (publish those and no later ones: a later one has had no update yet)."""

    updates: list[OutcomeUpdate]
    through_id: int | None


def outcome_updates(*, sessions: sessionmaker[Session], limit: int) -> OutcomeUpdates:
    """The updates of the outcomes not yet published, oldest first. A contact whose values
    cannot be sent again is left out, logged."""
    with sessions() as session:
        found = session.execute(
            select(DispositionRow.id, DispositionRow.disposition, ContactRow, CaseRow)
            .join(ContactRow, ContactRow.contact_id == DispositionRow.contact_id)
            .join(CaseRow, CaseRow.id == ContactRow.case_id)
            .where(DispositionRow.applied_at.is_(None))
            .order_by(DispositionRow.id)
            .limit(limit)
        ).all()
        through = max((int(r[0]) for r in found), default=None)
        # Only a contact the contact centre holds is updated (a removed one is not re-added).
        rows = [(d, c, k) for _, d, c, k in found if c.state == "dispositioned"]
        histories: dict[int, list[HistoryRow]] = defaultdict(list)
        ids = sorted({case.id for _, _, case in rows})
        for start in range(0, len(ids), 500):
            for row in session.scalars(
                select(HistoryRow)
                .where(HistoryRow.case_id.in_(ids[start : start + 500]))
                .order_by(HistoryRow.id)
            ):
                histories[row.case_id].append(row)
        updates: list[OutcomeUpdate] = []
        for disposition, contact, case in rows:
            try:
                request = contact_request(
                    case=case,
                    row=contact,
                    entries=to_entries(histories[case.id]),
                    disposition_code=disposition,
                )
            except (ValidationError, CardDataRefused):
                log.warning("contact %s: its outcome update cannot be sent", contact.contact_id)
                continue
            updates.append(
                OutcomeUpdate(
                    contact.contact_list_id, request.model_copy(update={"dialable": False})
                )
            )
        return OutcomeUpdates(updates, through)


def publish_recorded(
    *,
    sessions: sessionmaker[Session],
    now: datetime,
    limit: int,
    through_id: int | None = None,
) -> list[tuple[str, str, dict[str, str]]]:
    """Mark recorded outcomes as applied (up to disposition ``through_id`` when given); their
    business events (no personal data)."""
    events: list[tuple[str, str, dict[str, str]]] = []
    with transaction(sessions) as session:
        stmt = (
            select(DispositionRow, CaseRow.gateway, CaseRow.business_key)
            .join(CaseRow, CaseRow.id == DispositionRow.case_id)
            .where(DispositionRow.applied_at.is_(None))
            .order_by(DispositionRow.id)
            .limit(limit)
        )
        if through_id is not None:
            stmt = stmt.where(DispositionRow.id <= through_id)
        rows = session.execute(stmt).all()
        for disposition, gateway, business_key in rows:
            disposition.applied_at = now
            events.append(
                (
                    "disposition.recorded",
                    case_key(gateway, business_key),
                    {
                        "disposition": disposition.disposition,
                        "wrapup_code": disposition.wrapup_code,
                        "attempt": str(disposition.attempt),
                        "source": disposition.source,
                    },
                )
            )
    return events

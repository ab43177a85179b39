"""Call outcomes: recorded from whichever channel brings them (the notification listener, a
data action, the analytics reconcile); then, by the dispositions flow, each written to its
contact at the contact centre (``dispositionCode``, not dialable, ``doNotQueue=true``) and
published as a business event."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from recovery import event_feed
from recovery.contact_center.client import GenesysClient
from recovery.contact_center.contacts import ContactRequest
from recovery.contact_center.errors import CardDataRefused
from recovery.domain.models import Disposition
from recovery.domain.pan import redact_text
from recovery.domain.policy import DispositionMap, is_right_party, map_wrapup
from recovery.services.contact_data import contact_request
from recovery.store.cases import case_histories
from recovery.store.db import transaction
from recovery.store.dispositions import (
    DispositionSource,
    RecordResult,
    mark_published,
    record_disposition,
    unpublished_outcomes,
)
from recovery.store.uncallable import DoneContact, record_uncallable

log = logging.getLogger("recovery.services.outcomes")


@dataclass(frozen=True)
class OutcomeUpdate:
    """A contact to update at the contact centre after its outcome: the same columns it was
    sent with, ``dispositionCode`` set, not dialable, and sent with ``doNotQueue=true`` so the
    update never puts it back in the dialer's queue."""

    row_id: int
    contact_list_id: str
    request: ContactRequest


@dataclass(frozen=True)
class OutcomeUpdates:
    """The updates of the oldest unpublished outcomes, up to disposition ``through_id``
    (publish those and no later ones: a later one has had no update yet)."""

    updates: tuple[OutcomeUpdate, ...]
    through_id: int | None

    def batches(self, size: int) -> list[tuple[OutcomeUpdate, ...]]:
        """Up to ``size`` updates of one contact list each: one request each."""
        by_list: dict[str, list[OutcomeUpdate]] = {}
        for item in self.updates:
            by_list.setdefault(item.contact_list_id, []).append(item)
        return [
            tuple(items[start : start + size])
            for items in by_list.values()
            for start in range(0, len(items), size)
        ]


def outcome_updates(*, sessions: sessionmaker[Session], limit: int) -> OutcomeUpdates:
    """The updates of the outcomes not yet published, oldest first. Only a contact the
    contact centre holds is updated (a removed one is not added again); a contact whose values
    cannot be sent again is left out, logged."""
    with sessions() as session:
        found = unpublished_outcomes(session=session, limit=limit)
        histories = case_histories(session=session, case_ids=sorted({f.case.id for f in found}))
        updates: list[OutcomeUpdate] = []
        for item in found:
            if item.contact.state != "dispositioned":
                continue
            try:
                request = contact_request(
                    case=item.case,
                    row=item.contact,
                    entries=histories[item.case.id],
                    disposition_code=item.disposition,
                )
            except (ValidationError, CardDataRefused):
                log.warning(
                    "contact %s: its outcome update cannot be sent", item.contact.contact_id
                )
                continue
            updates.append(
                OutcomeUpdate(
                    item.contact.id,
                    item.contact.contact_list_id,
                    request.model_copy(update={"dialable": False}),
                )
            )
        through = max((item.disposition_id for item in found), default=None)
        return OutcomeUpdates(tuple(updates), through)


def write_outcomes(
    *,
    sessions: sessionmaker[Session],
    client: GenesysClient,
    updates: Sequence[OutcomeUpdate],
    now: datetime,
) -> Counter[str]:
    """Write these outcomes to their contacts (one contact list, one request): the contact
    centre keeps the disposition with the contact, and, not dialable, never calls it again on
    its own; those written are stamped uncallable, so the uncallable flow leaves them be."""
    if not updates:
        return Counter()
    list_id = updates[0].contact_list_id
    result = client.add_contacts(list_id, [u.request for u in updates])
    written = set(result.created)
    done = [
        DoneContact(u.row_id, list_id, u.request.contact_id, "its outcome was recorded")
        for u in updates
        if u.request.contact_id in written
    ]
    with transaction(sessions) as session:
        record_uncallable(session=session, contacts=done, held=written, now=now)
    return Counter({"written": len(written), "refused": len(result.rejected)})


def publish_recorded(
    *,
    sessions: sessionmaker[Session],
    now: datetime,
    limit: int,
    through_id: int | None = None,
) -> Counter[str]:
    """Mark recorded outcomes as applied (up to disposition ``through_id`` when given); how
    many of each disposition. (Their business events were sent when they were recorded.)"""
    with transaction(sessions) as session:
        published = mark_published(session=session, limit=limit, now=now, through_id=through_id)
    return Counter(outcome.disposition for outcome in published)


# What agents are asked to type into the wrap-up notes so the next step can honour it; only
# these two values are ever read from the notes (free text, never stored as such).
_NOTE_FIELD = re.compile(r"\b(promisedDate|callbackAt)\s*=\s*([0-9T:+\-.Z]+)")


def details_from_note(note: str) -> dict[str, str]:
    """``promised_date`` and ``callback_at`` from a wrap-up note (``promisedDate=2026-12-08``,
    ``callbackAt=2026-12-03T11:00:00-05:00``); anything else in the note is ignored."""
    found: dict[str, str] = {}
    for key, value in _NOTE_FIELD.findall(note or ""):
        if key == "promisedDate":
            try:
                found["promised_date"] = date.fromisoformat(value[:10]).isoformat()
            except ValueError:
                continue
        else:
            try:
                at = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            if at.tzinfo is not None:
                found["callback_at"] = at.isoformat()
    return found


def record_outcome(
    *,
    sessions: sessionmaker[Session],
    contact_id: str,
    wrapup_name: str,
    note: str,
    mapping: DispositionMap,
    source: DispositionSource,
    channel: str,
    occurred_at: datetime,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> RecordResult:
    """Record one call outcome, whichever channel brought it: the wrap-up's name mapped to a
    disposition (``recovery/data/dispositions.yaml``), the promised date or callback time from
    its note; its ``recovery.disposition.recorded`` event goes to the process's event sink
    (``recovery.event_feed``). Raises ``UnknownContact`` for a contact this system never
    sent."""
    name, _ = redact_text(wrapup_name.strip())
    disposition = map_wrapup(name, mapping)
    detail: dict[str, Any] = {
        "channel": channel,
        "mapped": disposition is not Disposition.unknown,
        **details_from_note(note),
        **(extra or {}),
    }
    with transaction(sessions) as session:
        result = record_disposition(
            session=session,
            contact_id=contact_id,
            wrapup_code=name or "unknown",
            disposition=disposition,
            right_party=is_right_party(disposition),
            source=source,
            occurred_at=occurred_at,
            now=now,
            detail=detail,
        )
    event_feed.publish(result.events)
    return result

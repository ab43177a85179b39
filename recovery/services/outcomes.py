"""Call outcomes: recorded from whichever channel brings them (the notification listener, a
data action, the analytics reconcile), and published by the dispositions flow."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from recovery.domain.models import Disposition
from recovery.domain.pan import redact_text
from recovery.domain.policy import DispositionMap, is_right_party, map_wrapup
from recovery.store.db import transaction
from recovery.store.dispositions import (
    DispositionSource,
    RecordResult,
    mark_published,
    record_disposition,
)


def publish_recorded(
    *, sessions: sessionmaker[Session], now: datetime, limit: int
) -> list[tuple[str, str, dict[str, str]]]:
    """Mark recorded outcomes as applied; their business events (no personal data)."""
    with transaction(sessions) as session:
        published = mark_published(session=session, limit=limit, now=now)
    return [
        (
            "disposition.recorded",
            outcome.case_key,
            {
                "disposition": outcome.disposition,
                "wrapup_code": outcome.wrapup_code,
                "attempt": str(outcome.attempt),
                "source": outcome.source,
            },
        )
        for outcome in published
    ]


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
    its note. Raises ``UnknownContact`` for a contact this system never sent."""
    name, _ = redact_text(wrapup_name.strip())
    disposition = map_wrapup(name, mapping)
    detail: dict[str, Any] = {
        "channel": channel,
        "mapped": disposition is not Disposition.unknown,
        **details_from_note(note),
        **(extra or {}),
    }
    with transaction(sessions) as session:
        return record_disposition(
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

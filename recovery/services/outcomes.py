"""Recorded call outcomes, as the dispositions flow publishes them (without Prefect)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from recovery.store.db import transaction
from recovery.store.dispositions import mark_published


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

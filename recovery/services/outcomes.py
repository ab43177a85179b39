"""Recorded call outcomes, as the dispositions flow publishes them (without Prefect)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.store.cases import case_key
from recovery.store.db import transaction
from recovery.store.tables import CaseRow, DispositionRow


def publish_recorded(
    *, sessions: sessionmaker[Session], now: datetime, limit: int
) -> list[tuple[str, str, dict[str, str]]]:
    """Mark recorded outcomes as applied; their business events (no personal data)."""
    events: list[tuple[str, str, dict[str, str]]] = []
    with transaction(sessions) as session:
        rows = session.execute(
            select(DispositionRow, CaseRow.gateway, CaseRow.business_key)
            .join(CaseRow, CaseRow.id == DispositionRow.case_id)
            .where(DispositionRow.applied_at.is_(None))
            .order_by(DispositionRow.id)
            .limit(limit)
        ).all()
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

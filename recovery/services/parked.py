"""Inbox rows ingest parked (``error``: they could never be applied as they were): list them,
and replay them once their cause is fixed (a new release, a store constraint lifted)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from recovery.domain.taxonomy import FailureCodes
from recovery.services.intake import CustomerLookup, IngestSummary, drain
from recovery.store import inbox
from recovery.store.db import transaction


class RetryRefused(ValueError):
    """The rows asked for cannot be replayed (unknown, or not parked); nothing changed."""


@dataclass(frozen=True)
class Retried:
    requeued: int
    # "gateway:event_id" -> the result of the replay (``error`` again when it still fails)
    results: dict[str, str | None]
    ingest: IngestSummary

    def as_dict(self) -> dict[str, object]:
        return {
            "requeued": self.requeued,
            "results": self.results,
            "ingest": self.ingest.as_dict(),
        }


def list_parked(*, sessions: sessionmaker[Session]) -> list[dict[str, object]]:
    """Every parked row, oldest first: identity, when, and why (the error is scrubbed)."""
    with sessions() as session:
        return [
            {
                "id": row.id,
                "gateway": row.gateway,
                "event_id": row.event_id,
                "event_type": row.event_type,
                "received_at": row.received_at.isoformat(),
                "parked_at": row.processed_at.isoformat() if row.processed_at else None,
                "error": row.error,
            }
            for row in inbox.parked_rows(session=session)
        ]


def retry_parked(
    *,
    sessions: sessionmaker[Session],
    codes: FailureCodes,
    clock_now: Callable[[], datetime],
    batch_size: int,
    event_ids: Sequence[str] | None,
    lookup: CustomerLookup | None = None,
) -> Retried:
    """Make the parked rows with ``event_ids`` (every parked row when None) unprocessed again,
    then drain the inbox. Raises ``RetryRefused`` (nothing changed) for an event id with no
    row or whose rows are not parked. A store error that passes propagates after the requeue
    was committed: the rows then wait for the next ingest run."""
    with transaction(sessions) as session:
        if event_ids is None:
            rows = inbox.parked_rows(session=session)
        else:
            found = inbox.rows_with_event_ids(session=session, event_ids=event_ids)
            problems: list[str] = []
            for event_id in dict.fromkeys(event_ids):
                mine = [row for row in found if row.event_id == event_id]
                if not mine:
                    problems.append(f"no inbox row has event id {event_id!r}")
                elif not any(row.result == inbox.PARKED for row in mine):
                    results = ", ".join(sorted({str(row.result) for row in mine}))
                    problems.append(f"event {event_id!r} is not parked (result {results})")
            if problems:
                raise RetryRefused("; ".join(problems))
            rows = [row for row in found if row.result == inbox.PARKED]
        ids = [row.id for row in rows]
        keys = {row.id: f"{row.gateway}:{row.event_id}" for row in rows}
        requeued = inbox.requeue(session=session, row_ids=ids)
    summary = drain(
        sessions=sessions,
        codes=codes,
        clock_now=clock_now,
        batch_size=batch_size,
        lookup=lookup,
    )
    with sessions() as session:
        after = {row.id: row.result for row in inbox.rows_by_id(session=session, row_ids=ids)}
    return Retried(requeued, {keys[i]: after.get(i) for i in ids}, summary)

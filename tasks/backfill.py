"""Task: record one chunk of an export file in the inbox (the webhook path, in one go)."""

from __future__ import annotations

from datetime import datetime

from recovery.services.backfill import BackfillSummary, Export, Position, read_chunk, record_chunk
from tasks.retry import store_task
from tasks.runtime import runtime


@store_task(
    "record-export-chunk",
    "record chunk {chunk_no} (up to {limit} lines)",
)
def record_export_chunk(
    export: Export,
    start: Position,
    chunk_no: int,
    limit: int,
    since: datetime | None,
    until: datetime | None,
    dry_run: bool,
    seen: frozenset[tuple[str, str]],
) -> tuple[BackfillSummary, Position, bool, frozenset[tuple[str, str]]]:
    """Read one chunk of the export and record it in the inbox in one transaction (a dry
    run records nothing; ``seen`` carries the events met so far, to find duplicates)."""
    built = runtime()
    known = set(seen) if dry_run else set()
    items, after, done = read_chunk(export, start, limit)
    summary = record_chunk(
        sessions=built.sessions,
        items=items,
        now=built.clock.now(),
        since=since,
        until=until,
        dry_run=dry_run,
        seen=known,
        marker=built.settings.redaction_marker(),
    )
    return summary, after, done, frozenset(known)

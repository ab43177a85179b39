"""Task: record one chunk of an export file in the inbox (the webhook path, in one go)."""

from __future__ import annotations

from datetime import datetime

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from recovery.runtime import Runtime
from recovery.services.backfill import BackfillSummary, Export, Position, read_chunk, record_chunk
from tasks.retry import retry_transient


@task(
    name="record-export-chunk",
    task_run_name="record chunk {chunk_no} (up to {limit} lines)",
    retries=4,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recovery", "store"],
)
def record_export_chunk(
    runtime: Runtime,
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
    known = set(seen) if dry_run else set()
    items, after, done = read_chunk(export, start, limit)
    summary = record_chunk(
        sessions=runtime.sessions,
        items=items,
        now=runtime.clock.now(),
        since=since,
        until=until,
        dry_run=dry_run,
        seen=known,
        marker=runtime.settings.redaction_marker(),
    )
    return summary, after, done, frozenset(known)

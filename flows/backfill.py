"""Flow: backfill from an export file (Stripe events as JSON lines, or a CSV of failures).

Chunk by chunk, the file takes the webhook path (card-number guard, normalisation, the inbox
unique on gateway + event id), then the ingest task drains the inbox into cases, so running
the same file again changes nothing. A progress artifact follows the file; a table artifact
sums up what was recorded and skipped, and why.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from recovery.services.backfill import BackfillSummary, check_range, open_export, parse_bound
from tasks.artifacts import Progress, publish_summary
from tasks.backfill import record_export_chunk
from tasks.ingest import InboxDrain
from tasks.runtime import flow_runtime


@flow(name="backfill")
def backfill(
    path: str,
    since: str | None = None,
    until: str | None = None,
    dry_run: bool = False,
    chunk_lines: int = 500,
) -> dict[str, object]:
    """Replay an export file into the inbox chunk by chunk and drain each chunk into cases."""
    logger = get_run_logger()
    start = parse_bound(since, "since") if since else None
    end = parse_bound(until, "until") if until else None
    check_range(start, end)
    export = open_export(path)
    total = BackfillSummary(
        path=str(export.path),
        format=export.description,
        dry_run=dry_run,
        ignored_columns=export.ignored_columns,
    )
    progress = Progress("backfill-progress", f"Backfill of {export.path.name}")
    seen: frozenset[tuple[str, str]] = frozenset()
    position, done, chunk_no = export.start, False, 0
    with flow_runtime() as built:
        drain = InboxDrain(built.settings.ingest_batch_size)
        while not done:
            chunk_no += 1
            chunk, position, done, seen = record_export_chunk(
                export, position, chunk_no, chunk_lines, start, end, dry_run, seen
            )
            total.add(chunk)
            if not dry_run:
                drained = drain()
                total.cases.update(drained.results)
                total.inbox_rows_applied += drained.rows
            progress.update(position.offset, export.size)
            logger.info(
                "chunk %d: %d records, recorded %s, skipped %s",
                chunk_no,
                chunk.records,
                dict(chunk.recorded),
                dict(chunk.skipped),
            )
    progress.update(1, 1)
    publish_summary("backfill-summary", total.describe(), total.counts())
    return total.as_dict()

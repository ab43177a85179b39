"""Flow: backfill from an export file (Stripe events as JSON lines, or a CSV of failures).

Chunk by chunk, the file takes the webhook path (card-number guard, normalisation, the inbox
unique on gateway + event id), then the ingest task drains the inbox into cases, so running
the same file again changes nothing. A progress artifact follows the file; a table artifact
sums up what was recorded and skipped, and why.
"""

from __future__ import annotations

from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from recovery.runtime import Runtime
from recovery.services.backfill import (
    SKIP_REASONS,
    BackfillSummary,
    check_range,
    open_export,
    parse_bound,
)
from recovery.settings import Settings
from tasks.backfill import record_export_chunk
from tasks.events import emit_case_events
from tasks.ingest import apply_inbox_batch


def _summary_table(total: BackfillSummary) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [
        {"what": "records read", "count": total.records},
        {"what": "recorded failures", "count": total.recorded.get("failure", 0)},
        {"what": "recorded successes", "count": total.recorded.get("success", 0)},
    ]
    rows += [{"what": f"skipped: {r}", "count": total.skipped.get(r, 0)} for r in SKIP_REASONS]
    rows += [{"what": f"cases {k}", "count": v} for k, v in sorted(total.cases.items())]
    if total.pan_redacted:
        rows.append({"what": "records with a card number redacted", "count": total.pan_redacted})
    rows += [{"what": problem, "count": 1} for problem in total.problems[:200]]
    return rows


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
    runtime = Runtime(Settings())
    runtime.require_schema()
    total = BackfillSummary(
        path=str(export.path),
        format=export.description,
        dry_run=dry_run,
        ignored_columns=export.ignored_columns,
    )
    progress = create_progress_artifact(
        0.0, key="backfill-progress", description=f"Backfill of {export.path.name}"
    )
    assert isinstance(progress, UUID)  # a flow run is synchronous
    seen: frozenset[tuple[str, str]] = frozenset()
    position, done, chunk_no, batch_no = export.start, False, 0, 0
    try:
        while not done:
            chunk_no += 1
            chunk, position, done, seen = record_export_chunk(
                runtime, export, position, chunk_no, chunk_lines, start, end, dry_run, seen
            )
            total.add(chunk)
            limit = runtime.settings.ingest_batch_size
            while not dry_run:
                batch_no += 1
                batch = apply_inbox_batch(runtime, batch_no, limit)
                total.cases.update(batch.results)
                total.inbox_rows_applied += batch.rows
                emit_case_events(batch.events)
                if batch.rows < limit:  # the inbox is drained (anything newer: next chunk)
                    break
            update_progress_artifact(progress, 100.0 * position.offset / max(export.size, 1))
            logger.info(
                "chunk %d: %d records, recorded %s, skipped %s",
                chunk_no,
                chunk.records,
                dict(chunk.recorded),
                dict(chunk.skipped),
            )
    finally:
        runtime.close()
    update_progress_artifact(progress, 100.0)
    create_table_artifact(
        key="backfill-summary",
        table=_summary_table(total),
        description=f"Backfill of {export.path.name}"
        + (" (dry run: nothing written)" if dry_run else "")
        + f": {total.records} records, {sum(total.recorded.values())} recorded, "
        f"{sum(total.skipped.values())} skipped",
    )
    return total.as_dict()

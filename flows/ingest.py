"""Flow: drain the webhook inbox into recovery cases, batch by batch."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows._support import publish_summary
from recovery.services.intake import IngestSummary
from tasks.events import emit_case_events
from tasks.ingest import apply_inbox_batch
from tasks.runtime import flow_runtime


@flow(name="ingest", log_prints=False)  # tags come from the deployment
def ingest(max_batches: int = 1000) -> dict[str, object]:
    """Apply every unprocessed inbox row, one batch per task run, until the inbox is empty."""
    logger = get_run_logger()
    total = IngestSummary()
    with flow_runtime() as built:
        for batch_no in range(1, max_batches + 1):
            batch = apply_inbox_batch(batch_no, built.settings.ingest_batch_size)
            if batch.rows == 0:
                break
            total.add(batch)
            emit_case_events(batch.events)
            logger.info("batch %d: %d rows %s", batch_no, batch.rows, dict(batch.results))
    publish_summary(
        "ingest-summary",
        f"Ingest: {total.rows} inbox rows in {total.batches} batches",
        sorted(total.results.items()),
        columns=("result", "rows"),
    )
    return total.as_dict()

"""Flow: drain the webhook inbox into recovery cases, batch by batch."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from recovery.runtime import Runtime
from recovery.services.intake import IngestSummary
from recovery.settings import Settings
from tasks.events import emit_case_events
from tasks.ingest import apply_inbox_batch


@flow(name="ingest", log_prints=False)  # tags come from the deployment
def ingest(max_batches: int = 1000) -> dict[str, object]:
    """Apply every unprocessed inbox row, one batch per task run, until the inbox is empty."""
    runtime = Runtime(Settings())
    logger = get_run_logger()
    runtime.require_schema()
    total = IngestSummary()
    for batch_no in range(1, max_batches + 1):
        batch = apply_inbox_batch(runtime, batch_no, runtime.settings.ingest_batch_size)
        if batch.rows == 0:
            break
        total.add(batch)
        emit_case_events(batch.events)
        logger.info("batch %d: %d rows %s", batch_no, batch.rows, dict(batch.results))
    create_table_artifact(
        key="ingest-summary",
        table=[{"result": k, "rows": v} for k, v in sorted(total.results.items())]
        or [{"result": "nothing to do", "rows": 0}],
        description=f"Ingest: {total.rows} inbox rows in {total.batches} batches",
    )
    return total.as_dict()

"""Flow: drain the webhook inbox into recovery cases, batch by batch."""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from recovery.services.intake import IngestSummary, wait_for_inbox
from tasks.artifacts import publish_summary
from tasks.events import emit_case_events
from tasks.ingest import apply_inbox_batch
from tasks.runtime import flow_runtime


@flow(name="ingest", log_prints=False)  # tags come from the deployment
def ingest(max_batches: int = 1000, linger_seconds: float | None = None) -> dict[str, object]:
    """Apply every unprocessed inbox row, one batch per task run, until the inbox is empty;
    then, for ``linger_seconds`` from the run's start (default
    ``RECOVERY_INGEST_LINGER_SECONDS``), keep watching it for new rows. A run that finds the
    inbox empty applies no batch."""
    logger = get_run_logger()
    total = IngestSummary()
    with flow_runtime() as built:
        linger = built.settings.ingest_linger_seconds if linger_seconds is None else linger_seconds
        deadline = time.monotonic() + linger
        batch_no, size = 0, built.settings.ingest_batch_size
        # A look at the inbox (one count, no task run) before each batch but a full batch's
        # next: no batch is applied empty.
        waiting = wait_for_inbox(sessions=built.sessions, deadline=deadline)
        while waiting and batch_no < max_batches:
            batch = apply_inbox_batch(batch_no + 1, size)
            if batch.rows == 0:  # the rows waiting are another runner's (PostgreSQL)
                waiting = linger > 0 and wait_for_inbox(
                    sessions=built.sessions, deadline=deadline, held=True
                )
                continue
            batch_no += 1
            total.add(batch)
            emit_case_events(batch.events)
            logger.info("batch %d: %d rows %s", batch_no, batch.rows, dict(batch.results))
            waiting = batch.rows >= size or wait_for_inbox(
                sessions=built.sessions, deadline=deadline
            )
    publish_summary(
        "ingest-summary",
        f"Ingest: {total.rows} inbox rows in {total.batches} batches",
        sorted(total.results.items()),
        columns=("result", "rows"),
    )
    return total.as_dict()

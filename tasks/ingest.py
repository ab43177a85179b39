"""Task: apply one batch of inbox rows to the store (one transaction)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from recovery.runtime import Runtime
from recovery.services.intake import IngestSummary, ingest_batch
from tasks.retry import retry_transient


@task(
    name="apply-inbox-batch",
    task_run_name="ingest batch {batch_no} (up to {limit} rows)",
    retries=4,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recovery", "store"],
)
def apply_inbox_batch(runtime: Runtime, batch_no: int, limit: int) -> IngestSummary:
    """Apply up to ``limit`` unprocessed inbox rows: open, update or close cases."""
    return ingest_batch(
        sessions=runtime.sessions,
        codes=runtime.failure_codes,
        now=runtime.clock.now(),
        limit=limit,
        lookup=runtime.customer_lookup(),
    )

"""Task: apply one batch of inbox rows to the store (one transaction); draining the inbox
batch by batch after a backfill chunk."""

from __future__ import annotations

from recovery.services.intake import IngestSummary, ingest_batch
from tasks.events import emit_case_events
from tasks.retry import store_task
from tasks.runtime import runtime


@store_task(
    "apply-inbox-batch",
    "ingest batch {batch_no} (up to {limit} rows)",
)
def apply_inbox_batch(batch_no: int, limit: int) -> IngestSummary:
    """Apply up to ``limit`` unprocessed inbox rows: open, update or close cases."""
    built = runtime()
    return ingest_batch(
        sessions=built.sessions,
        codes=built.failure_codes,
        now=built.clock.now(),
        limit=limit,
        lookup=built.customer_lookup(),
    )


class InboxDrain:
    """Ingest batches until the inbox holds less than a batch (anything newer is for the next
    call), numbering the batches across calls."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.batch_no = 0

    def __call__(self) -> IngestSummary:
        total = IngestSummary()
        while True:
            self.batch_no += 1
            batch = apply_inbox_batch(self.batch_no, self.limit)
            total.add(batch)
            emit_case_events(batch.events)
            if batch.rows < self.limit:
                return total

"""Flow: write the call outcomes recorded since the last run to their contacts at the contact
centre, then mark them applied (the listener, the receiver and the reconcile record each one
at once, with its event, and make its case due; the advance flow decides the next step)."""

from __future__ import annotations

from prefect import flow

from tasks.artifacts import publish_summary
from tasks.outcomes import find_outcome_updates, publish_outcomes, write_outcome_batch
from tasks.runtime import flow_runtime


@flow(name="dispositions")
def dispositions(limit: int = 5000) -> int:
    """Update each new outcome's contact (dispositionCode, not dialable, doNotQueue=true),
    then mark it applied (its ``recovery.disposition.recorded`` event was sent when it was
    recorded). A failed update fails the run before anything is marked, so the next run sends
    it again."""
    with flow_runtime(check_schema=False) as built:
        found = find_outcome_updates(limit)
        for batch_no, batch in enumerate(found.batches(built.settings.genesys_batch_size), 1):
            write_outcome_batch(batch_no, len(batch), batch)
        counts = publish_outcomes(limit, found.through_id)
    publish_summary(
        "dispositions-summary",
        f"{counts.total()} outcomes published",
        sorted(counts.items()),
        columns=("disposition", "count"),
        empty="no new outcomes",
    )
    return counts.total()

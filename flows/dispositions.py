"""Flow: write the call outcomes recorded since the last run to their contacts at the contact
centre, then publish them (the listener, the receiver and the reconcile record each one at once
and make its case due; the advance flow decides the next step)."""

from __future__ import annotations

from collections import Counter

from prefect import flow

from flows._support import publish_summary
from tasks.events import emit_case_events
from tasks.outcomes import find_outcome_updates, publish_outcomes, write_outcome_batch
from tasks.runtime import flow_runtime


@flow(name="dispositions")
def dispositions(limit: int = 5000) -> int:
    """Update each new outcome's contact (dispositionCode, not dialable, doNotQueue=true),
    then emit a ``recovery.disposition.recorded`` event per outcome and mark it applied. A
    failed update fails the run before anything is marked, so the next run sends it again."""
    with flow_runtime(check_schema=False) as built:
        found = find_outcome_updates(limit)
        for batch_no, batch in enumerate(found.batches(built.settings.genesys_batch_size), 1):
            write_outcome_batch(batch_no, len(batch), batch)
        events = publish_outcomes(limit, found.through_id)
    emit_case_events(events)
    counts = Counter(event.payload["disposition"] for event in events)
    publish_summary(
        "dispositions-summary",
        f"{len(events)} outcomes published",
        sorted(counts.items()),
        columns=("disposition", "count"),
        empty="no new outcomes",
    )
    return len(events)

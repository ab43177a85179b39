"""Flow: publish the call outcomes recorded since the last run (the listener, the receiver and
the reconcile record each one at once and make its case due; the advance flow decides the next
step)."""

from __future__ import annotations

from collections import Counter

from prefect import flow

from flows._support import publish_summary
from tasks.events import emit_case_events
from tasks.outcomes import publish_outcomes
from tasks.runtime import flow_runtime


@flow(name="dispositions")
def dispositions(limit: int = 5000) -> int:
    """Emit a ``recovery.disposition.recorded`` event per new outcome and mark it applied."""
    with flow_runtime(check_schema=False):
        events = publish_outcomes(limit)
    emit_case_events(events)
    counts = Counter(payload["disposition"] for _, _, payload in events)
    publish_summary(
        "dispositions-summary",
        f"{len(events)} outcomes published",
        sorted(counts.items()),
        columns=("disposition", "count"),
        empty="no new outcomes",
    )
    return len(events)

"""Flow: publish the call outcomes recorded since the last run (the listener, the receiver and
the reconcile record each one at once and make its case due; the advance flow decides the next
step)."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from recovery.runtime import Runtime
from recovery.services.outcomes import publish_recorded
from recovery.settings import Settings
from tasks.events import emit_case_events


@flow(name="dispositions")
def dispositions(limit: int = 5000) -> int:
    """Emit a ``recovery.disposition.recorded`` event per new outcome and mark it applied."""
    runtime = Runtime(Settings())
    try:
        events = publish_recorded(sessions=runtime.sessions, now=runtime.clock.now(), limit=limit)
    finally:
        runtime.close()
    emit_case_events(events)
    counts: dict[str, int] = {}
    for _, _, payload in events:
        counts[payload["disposition"]] = counts.get(payload["disposition"], 0) + 1
    lines = [f"| {name} | {count} |" for name, count in sorted(counts.items())]
    create_markdown_artifact(
        key="dispositions-summary",
        markdown="\n".join(
            ["# Outcomes published", "", "| disposition | count |", "|---|---|", *lines]
        )
        if lines
        else "No new outcomes.",
        description=f"{len(events)} outcomes published",
    )
    return len(events)

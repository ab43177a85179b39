"""Flow: write the call outcomes recorded since the last run to their contacts at the contact
centre, then publish them (the receiver records each push at once and makes its case due; the
advance flow decides the next step)."""

from __future__ import annotations

from collections import defaultdict

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.concurrency.sync import rate_limit

from recovery.contact_center.contacts import ContactRequest
from recovery.runtime import Runtime
from recovery.services.outcomes import outcome_updates, publish_recorded
from recovery.settings import Settings
from tasks.contact_center import update_contacts
from tasks.events import emit_case_events


@flow(name="dispositions")
def dispositions(limit: int = 5000) -> int:
    """Update each new outcome's contact (dispositionCode, not dialable, doNotQueue=true),
    then emit a ``recovery.disposition.recorded`` event per outcome and mark it applied. A
    failed update fails the run before anything is marked, so the next run sends it again."""
    runtime = Runtime(Settings())
    settings = runtime.settings
    client = runtime.contact_center()
    try:
        found = outcome_updates(sessions=runtime.sessions, limit=limit)
        by_list: dict[str, list[ContactRequest]] = defaultdict(list)
        for update in found.updates:
            by_list[update.contact_list_id].append(update.request)
        size = settings.genesys_batch_size
        batch_no = 0
        for list_id, requests in by_list.items():
            for start in range(0, len(requests), size):
                batch = requests[start : start + size]
                batch_no += 1
                rate_limit(settings.genesys_rate_limit_name, occupy=1, strict=True)
                update_contacts(client, batch_no, len(batch), list_id, batch)
        events = publish_recorded(
            sessions=runtime.sessions,
            now=runtime.clock.now(),
            limit=limit,
            through_id=found.through_id,
        )
    finally:
        client.close()
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

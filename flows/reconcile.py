"""Flow: look up every contact whose outcome is overdue in the contact centre's analytics, so a
lost event loses nothing."""

from __future__ import annotations

from collections import Counter

from prefect import flow
from prefect.artifacts import create_table_artifact

from recovery.runtime import Runtime
from recovery.services.reconcile import overdue_contacts
from recovery.settings import Settings
from tasks.contact_center import reconcile_from_analytics_task


@flow(name="reconcile")
def reconcile(limit: int = 10_000) -> dict[str, int]:
    """Find overdue contacts' outcomes (analytics, then call records), batch by batch."""
    runtime = Runtime(Settings())
    client = runtime.contact_center()
    totals: Counter[str] = Counter()
    try:
        contacts = overdue_contacts(sessions=runtime.sessions, now=runtime.clock.now(), limit=limit)
        size = runtime.settings.genesys_batch_size
        for batch_no, start in enumerate(range(0, len(contacts), size), 1):
            batch = contacts[start : start + size]
            totals.update(
                reconcile_from_analytics_task(runtime, client, batch_no, len(batch), batch)
            )
    finally:
        client.close()
        runtime.close()
    create_table_artifact(
        key="reconcile-summary",
        table=[{"result": k, "contacts": v} for k, v in sorted(totals.items())]
        or [{"result": "nothing overdue", "contacts": 0}],
        description=f"Reconcile: {sum(totals.values())} overdue contacts read back",
    )
    return dict(totals)

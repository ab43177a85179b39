"""Flow: contacts the project is done with (outcome recorded, case closed or parked) are made
uncallable at the contact centre, so Genesys never dials them again on its own."""

from __future__ import annotations

from collections import Counter

from prefect import flow
from prefect.artifacts import create_table_artifact

from recovery.runtime import Runtime
from recovery.services.uncallable import done_contacts
from recovery.settings import Settings
from tasks.contact_center import make_uncallable_task


@flow(name="uncallable")
def uncallable(limit: int = 10_000) -> dict[str, int]:
    """Make every done contact uncallable, one batch of contacts per task."""
    runtime = Runtime(Settings())
    client = runtime.contact_center()
    totals: Counter[str] = Counter()
    try:
        contacts = done_contacts(sessions=runtime.sessions, limit=limit)
        size = runtime.settings.genesys_batch_size
        for batch_no, start in enumerate(range(0, len(contacts), size), 1):
            batch = contacts[start : start + size]
            totals.update(make_uncallable_task(runtime, client, batch_no, len(batch), batch))
    finally:
        client.close()
        runtime.close()
    create_table_artifact(
        key="uncallable-summary",
        table=[{"result": k, "contacts": v} for k, v in sorted(totals.items())]
        or [{"result": "nothing to do", "contacts": 0}],
        description=f"{sum(totals.values())} done contacts handled",
    )
    return dict(totals)

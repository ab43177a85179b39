"""Flow: a payment arrived, so its case closed: take its pending contact out of the contact
list before the dialer reaches it."""

from __future__ import annotations

from collections import Counter

from prefect import flow
from prefect.artifacts import create_table_artifact

from recovery.runtime import Runtime
from recovery.services.closing import closed_case_contacts
from recovery.settings import Settings
from tasks.contact_center import remove_contacts


@flow(name="close-on-payment")
def close_on_payment(limit: int = 10_000) -> dict[str, int]:
    """Remove every contact still queued for a closed case (paid, suppressed, expired...)."""
    runtime = Runtime(Settings())
    client = runtime.contact_center()
    totals: Counter[str] = Counter()
    try:
        contacts = closed_case_contacts(sessions=runtime.sessions, limit=limit)
        size = runtime.settings.genesys_batch_size
        for batch_no, start in enumerate(range(0, len(contacts), size), 1):
            batch = contacts[start : start + size]
            totals.update(remove_contacts(runtime, client, batch_no, len(batch), batch))
    finally:
        client.close()
        runtime.close()
    create_table_artifact(
        key="close-on-payment-summary",
        table=[{"result": k, "contacts": v} for k, v in sorted(totals.items())]
        or [{"result": "nothing to remove", "contacts": 0}],
        description=f"{sum(totals.values())} contacts of closed cases handled",
    )
    return dict(totals)

"""Flow: a payment arrived, so its case closed: take its pending contact out of the contact
list before the dialer reaches it."""

from __future__ import annotations

from collections import Counter

from prefect import flow

from tasks.artifacts import publish_summary
from tasks.contact_center import find_closed_case_contacts, remove_contacts
from tasks.runtime import flow_runtime


@flow(name="close-on-payment")
def close_on_payment(limit: int = 10_000) -> dict[str, int]:
    """Remove every contact still queued for a closed case (paid, suppressed, expired...)."""
    totals: Counter[str] = Counter()
    with flow_runtime(check_schema=False) as built:
        contacts = find_closed_case_contacts(limit)
        size = built.settings.genesys_batch_size
        for batch_no, start in enumerate(range(0, len(contacts), size), 1):
            batch = tuple(contacts[start : start + size])
            totals.update(remove_contacts(batch_no, len(batch), batch))
    publish_summary(
        "close-on-payment-summary",
        f"{sum(totals.values())} contacts of closed cases handled",
        sorted(totals.items()),
        columns=("result", "contacts"),
        empty="nothing to remove",
    )
    return dict(totals)

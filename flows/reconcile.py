"""Flow: find the outcome of every contact whose outcome is overdue (the analytics details, then
the contact's call records), so a lost notification or data action loses nothing."""

from __future__ import annotations

from collections import Counter

from prefect import flow

from flows._support import publish_summary
from tasks.contact_center import find_overdue_contacts, reconcile_contacts
from tasks.runtime import flow_runtime


@flow(name="reconcile")
def reconcile(limit: int = 10_000) -> dict[str, int]:
    """Look up overdue contacts, batch by batch, and record the outcomes found."""
    totals: Counter[str] = Counter()
    with flow_runtime(check_schema=False) as built:
        contacts = find_overdue_contacts(limit)
        size = built.settings.genesys_batch_size
        for batch_no, start in enumerate(range(0, len(contacts), size), 1):
            batch = tuple(contacts[start : start + size])
            totals.update(reconcile_contacts(batch_no, len(batch), batch))
    publish_summary(
        "reconcile-summary",
        f"Reconcile: {sum(totals.values())} overdue contacts looked up",
        sorted(totals.items()),
        columns=("result", "contacts"),
        empty="nothing overdue",
    )
    return dict(totals)

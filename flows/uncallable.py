"""Flow: contacts the project is done with (outcome recorded, case closed or parked) are made
uncallable at the contact centre, so Genesys never dials them again on its own."""

from __future__ import annotations

from collections import Counter

from prefect import flow

from tasks.artifacts import publish_summary
from tasks.contact_center import find_done_contacts, make_contacts_uncallable
from tasks.runtime import flow_runtime


@flow(name="uncallable")
def uncallable(limit: int = 10_000) -> dict[str, int]:
    """Make every done contact uncallable, one batch of contacts per task."""
    totals: Counter[str] = Counter()
    with flow_runtime(check_schema=False) as built:
        contacts = find_done_contacts(limit)
        size = built.settings.genesys_batch_size
        for batch_no, start in enumerate(range(0, len(contacts), size), 1):
            batch = tuple(contacts[start : start + size])
            totals.update(make_contacts_uncallable(batch_no, len(batch), batch))
    publish_summary(
        "uncallable-summary",
        f"{sum(totals.values())} done contacts handled",
        sorted(totals.items()),
        columns=("result", "contacts"),
    )
    return dict(totals)

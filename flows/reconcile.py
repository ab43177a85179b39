"""Flow: find the outcome of every contact whose outcome is overdue (the analytics details, then
the contact's call records), so a lost notification or data action loses nothing."""

from __future__ import annotations

import time
from collections import Counter

from prefect import flow

from recovery.services.reconcile import wait_for_overdue
from tasks.artifacts import publish_summary
from tasks.contact_center import find_overdue_contacts, reconcile_contacts
from tasks.runtime import flow_runtime


@flow(name="reconcile")
def reconcile(limit: int = 10_000, linger_seconds: float | None = None) -> dict[str, int]:
    """Look up overdue contacts, batch by batch, and record the outcomes found; then, for
    ``linger_seconds`` from the run's start (default ``RECOVERY_RECONCILE_LINGER_SECONDS``),
    keep watching for outcomes that fall overdue (a contact looked up once waits for the next
    run). A run that finds nothing overdue runs no task."""
    totals: Counter[str] = Counter()
    with flow_runtime(check_schema=False) as built:
        settings = built.settings
        linger = settings.reconcile_linger_seconds if linger_seconds is None else linger_seconds
        deadline, size = time.monotonic() + linger, settings.genesys_batch_size
        seen: set[str] = set()
        batch_no = 0
        while wait_for_overdue(
            sessions=built.sessions, clock=built.clock, deadline=deadline, seen=seen
        ):
            contacts = [c for c in find_overdue_contacts(limit) if c[1] not in seen]
            if not contacts:  # recorded meanwhile, or beyond ``limit``: the next run's
                break
            seen.update(contact_id for _, contact_id in contacts)
            for start in range(0, len(contacts), size):
                batch_no += 1
                batch = tuple(contacts[start : start + size])
                totals.update(reconcile_contacts(batch_no, len(batch), batch))
            if linger <= 0:
                break
    publish_summary(
        "reconcile-summary",
        f"Reconcile: {sum(totals.values())} overdue contacts looked up",
        sorted(totals.items()),
        columns=("result", "contacts"),
        empty="nothing overdue",
    )
    return dict(totals)

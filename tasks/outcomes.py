"""Tasks of the dispositions flow: find the outcomes to write back, write one batch to its
contacts at the contact centre, and publish the outcomes (mark them applied)."""

from __future__ import annotations

from collections import Counter

from recovery.services.outcomes import (
    OutcomeUpdate,
    OutcomeUpdates,
    outcome_updates,
    publish_recorded,
    write_outcomes,
)
from tasks.retry import (
    contact_centre_task,
    store_task,
)
from tasks.runtime import runtime


@store_task(
    "find-outcome-updates",
    "find recorded outcomes to write back (up to {limit})",
)
def find_outcome_updates(limit: int) -> OutcomeUpdates:
    """The contact updates of the outcomes not yet published, oldest first."""
    return outcome_updates(sessions=runtime().sessions, limit=limit)


@contact_centre_task(
    "write-outcomes",
    "write batch {batch_no} ({size} outcomes) to their contacts",
)
def write_outcome_batch(
    batch_no: int, size: int, updates: tuple[OutcomeUpdate, ...]
) -> Counter[str]:
    """Write each contact's outcome (dispositionCode) to its contact list, not dialable, with
    doNotQueue=true so the update never queues it again; a retry upserts the same ids."""
    built = runtime()
    # The request takes its slot of the shared rate limit in the client's budget, as every
    # contact-centre request does (taking one here as well counted it twice).
    return write_outcomes(
        sessions=built.sessions,
        client=built.shared_contact_center,
        updates=updates,
        now=built.clock.now(),
    )


@store_task(
    "publish-outcomes",
    "publish recorded outcomes (up to {limit})",
)
def publish_outcomes(limit: int, through_id: int | None = None) -> Counter[str]:
    """Mark up to ``limit`` recorded outcomes (none after ``through_id``) as applied; how
    many of each disposition."""
    built = runtime()
    return publish_recorded(
        sessions=built.sessions, now=built.clock.now(), limit=limit, through_id=through_id
    )

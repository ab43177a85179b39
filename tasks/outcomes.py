"""Tasks of the dispositions flow: find the outcomes to write back, write one batch to its
contacts at the contact centre, and publish the outcomes (mark them applied)."""

from __future__ import annotations

from collections import Counter

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import rate_limit

from recovery.services.outcomes import (
    OutcomeUpdate,
    OutcomeUpdates,
    outcome_updates,
    publish_recorded,
    write_outcomes,
)
from tasks.retry import (
    CONTACT_CENTRE_BACKOFF,
    CONTACT_CENTRE_RETRIES,
    JITTER,
    STORE_BACKOFF,
    STORE_RETRIES,
    retry_transient,
)
from tasks.runtime import runtime


@task(
    name="find-outcome-updates",
    task_run_name="find recorded outcomes to write back (up to {limit})",
    retries=STORE_RETRIES,
    retry_delay_seconds=STORE_BACKOFF,
    retry_jitter_factor=JITTER,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recovery", "store"],
)
def find_outcome_updates(limit: int) -> OutcomeUpdates:
    """The contact updates of the outcomes not yet published, oldest first."""
    return outcome_updates(sessions=runtime().sessions, limit=limit)


@task(
    name="write-outcomes",
    task_run_name="write batch {batch_no} ({size} outcomes) to their contacts",
    retries=CONTACT_CENTRE_RETRIES,
    retry_delay_seconds=CONTACT_CENTRE_BACKOFF,
    retry_jitter_factor=JITTER,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recovery", "contact-centre"],
)
def write_outcome_batch(
    batch_no: int, size: int, updates: tuple[OutcomeUpdate, ...]
) -> Counter[str]:
    """Write each contact's outcome (dispositionCode) to its contact list, not dialable, with
    doNotQueue=true so the update never queues it again; a retry upserts the same ids."""
    built = runtime()
    rate_limit(built.settings.genesys_rate_limit_name, occupy=1, strict=True)
    return write_outcomes(
        sessions=built.sessions,
        client=built.shared_contact_center,
        updates=updates,
        now=built.clock.now(),
    )


@task(
    name="publish-outcomes",
    task_run_name="publish recorded outcomes (up to {limit})",
    retries=STORE_RETRIES,
    retry_delay_seconds=STORE_BACKOFF,
    retry_jitter_factor=JITTER,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recovery", "store"],
)
def publish_outcomes(limit: int, through_id: int | None = None) -> Counter[str]:
    """Mark up to ``limit`` recorded outcomes (none after ``through_id``) as applied; how
    many of each disposition."""
    built = runtime()
    return publish_recorded(
        sessions=built.sessions, now=built.clock.now(), limit=limit, through_id=through_id
    )

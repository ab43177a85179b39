"""Task: publish the call outcomes recorded since the last run (mark them applied)."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from recovery.services.outcomes import publish_recorded
from tasks.retry import JITTER, STORE_BACKOFF, STORE_RETRIES, retry_transient
from tasks.runtime import runtime


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
def publish_outcomes(limit: int) -> list[tuple[str, str, dict[str, str]]]:
    """Mark up to ``limit`` recorded outcomes as applied; their business events."""
    built = runtime()
    return publish_recorded(sessions=built.sessions, now=built.clock.now(), limit=limit)

"""Task: read the review queue (the cases a person must look at, phones masked)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from recovery.services.review import queue
from tasks.retry import JITTER, STORE_BACKOFF, STORE_RETRIES, retry_transient
from tasks.runtime import runtime


@task(
    name="read-review-queue",
    task_run_name="read the review queue (up to {limit} cases)",
    retries=STORE_RETRIES,
    retry_delay_seconds=STORE_BACKOFF,
    retry_jitter_factor=JITTER,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def read_review_queue(limit: int) -> list[dict[str, Any]]:
    """The cases flagged for review or parked in review, newest first, as summaries."""
    return queue(sessions=runtime().sessions, limit=limit)

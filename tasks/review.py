"""Task: read the review queue (the cases a person must look at, phones masked)."""

from __future__ import annotations

from typing import Any

from recovery.services.review import queue
from tasks.retry import store_task
from tasks.runtime import runtime


@store_task(
    "read-review-queue",
    "read the review queue (up to {limit} cases)",
)
def read_review_queue(limit: int) -> list[dict[str, Any]]:
    """The cases flagged for review or parked in review, newest first, as summaries."""
    return queue(sessions=runtime().sessions, limit=limit)

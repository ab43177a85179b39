"""Flow: the review queue: cases a person must look at (disputes, outcomes the contact centre
could not explain, contacts it refused), as one table. Started by a dispute, and on demand."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from recovery.runtime import Runtime
from recovery.services.review import queue
from recovery.settings import Settings


@flow(name="review-queue")
def review_queue(limit: int = 500) -> int:
    """Publish the cases flagged for review (phones masked) as a table artifact."""
    runtime = Runtime(Settings())
    try:
        rows = queue(sessions=runtime.sessions, limit=limit)
    finally:
        runtime.close()
    create_table_artifact(
        key="review-queue",
        table=[
            {
                k: r[k]
                for k in (
                    "key",
                    "status",
                    "outcome",
                    "category",
                    "phone",
                    "amount",
                    "currency",
                    "reason",
                )
            }
            for r in rows
        ]
        or [{"key": "nothing to review"}],
        description=f"{len(rows)} cases need a person",
    )
    return len(rows)

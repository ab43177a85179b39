"""Serving every flow with its schedule from one process (the embedded default), the same
deployments that ``prefect.yaml`` declares for a work pool.

Run as ``python -m flows.deployments``; ``recovery serve`` starts it.
"""

from __future__ import annotations

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.events import DeploymentEventTrigger

from flows.advance import advance
from flows.backfill import backfill
from flows.close_on_payment import close_on_payment
from flows.dispositions import dispositions
from flows.ingest import ingest
from flows.reconcile import reconcile
from flows.report import report
from flows.review import review_queue
from flows.uncallable import uncallable
from recovery.settings import Settings


def one_at_a_time(strategy: ConcurrencyLimitStrategy) -> ConcurrencyLimitConfig:
    return ConcurrencyLimitConfig(limit=1, collision_strategy=strategy)


def deployments(settings: Settings) -> list[object]:
    skip, queue = ConcurrencyLimitStrategy.CANCEL_NEW, ConcurrencyLimitStrategy.ENQUEUE
    return [
        ingest.to_deployment(
            "ingest",
            interval=300,
            concurrency_limit=one_at_a_time(queue),
            tags=["recovery", "purpose:ingest"],
            description="Drain the webhook inbox into cases (the receiver starts it too).",
        ),
        advance.to_deployment(
            "advance",
            interval=settings.advance_interval_seconds,
            concurrency_limit=one_at_a_time(skip),
            tags=["recovery", "purpose:advance"],
            description="Decide every due case; create due contacts within the rate limit.",
        ),
        dispositions.to_deployment(
            "dispositions",
            interval=settings.dispositions_interval_seconds,
            concurrency_limit=one_at_a_time(skip),
            tags=["recovery", "purpose:dispositions"],
            description="Publish recorded call outcomes.",
        ),
        close_on_payment.to_deployment(
            "close-on-payment",
            interval=settings.close_on_payment_interval_seconds,
            concurrency_limit=one_at_a_time(skip),
            tags=["recovery", "purpose:payments"],
            description="Remove contacts of closed cases from the contact list.",
        ),
        reconcile.to_deployment(
            "reconcile",
            interval=settings.reconcile_interval_seconds,
            concurrency_limit=one_at_a_time(skip),
            tags=["recovery", "purpose:reconcile"],
            description="Read back overdue outcomes from the contact centre.",
        ),
        uncallable.to_deployment(
            "uncallable",
            interval=settings.uncallable_interval_seconds,
            concurrency_limit=one_at_a_time(skip),
            tags=["recovery", "purpose:contact-centre"],
            description="Make contacts the project is done with uncallable at the contact centre.",
        ),
        backfill.to_deployment(
            "backfill",
            concurrency_limit=one_at_a_time(queue),
            tags=["recovery", "purpose:backfill"],
            description="Replay an export file into cases (run with path=FILE).",
        ),
        report.to_deployment(
            "report",
            cron="0 6 * * *",
            parameters={"days": 30},
            concurrency_limit=one_at_a_time(skip),
            tags=["recovery", "purpose:report"],
            description="The recovery report for the last 30 days.",
        ),
        review_queue.to_deployment(
            "review-queue",
            concurrency_limit=one_at_a_time(skip),
            tags=["recovery", "purpose:review"],
            description="Publish the cases that need a person; started by every dispute.",
            triggers=[
                DeploymentEventTrigger(
                    name="dispute recorded",
                    expect={"recovery.disposition.recorded"},
                    match={"recovery.disposition": "dispute"},
                    posture="Reactive",
                    threshold=1,
                )
            ],
        ),
    ]


def main() -> None:
    settings = Settings()
    serve(*deployments(settings), limit=4)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()

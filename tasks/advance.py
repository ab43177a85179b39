"""Tasks of the advance flow: decide a chunk of due cases; send one batch of contacts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import rate_limit
from prefect.tasks import exponential_backoff

from recovery.contact_center.client import GenesysClient
from recovery.runtime import Runtime
from recovery.services.advance import Decided, decide_due
from recovery.services.dispatch import Dispatched, dispatch
from tasks.retry import retry_transient


@task(
    name="decide-due-cases",
    task_run_name="decide chunk {chunk_no} (up to {limit} due cases)",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recovery", "store"],
)
def decide_due_cases(runtime: Runtime, chunk_no: int, limit: int, owner: str) -> Decided:
    """Lease due cases, run the state machine on each, apply its step or plan a contact."""
    settings = runtime.settings
    return decide_due(
        sessions=runtime.sessions,
        policy=runtime.policy,
        rules=runtime.rules,
        now=runtime.clock.now(),
        owner=owner,
        limit=limit,
        lease=runtime.real_seconds(settings.lease_seconds),
        contact_list_id=settings.genesys_contact_list_id,
        dial_margin=timedelta(minutes=settings.dial_margin_minutes),
    )


def prefect_rate_limit(name: str) -> Callable[[int], None]:
    """The client's ``acquire`` hook: every request waits for the strict global rate limit."""

    def acquire(requests: int) -> None:
        rate_limit(name, occupy=requests, strict=True)

    return acquire


@task(
    name="create-contacts",
    task_run_name="create contacts batch {batch_no} ({size} cases)",
    retries=5,
    retry_delay_seconds=exponential_backoff(backoff_factor=3),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recovery", "contact-centre"],
)
def create_contacts(
    runtime: Runtime, client: GenesysClient, batch_no: str, size: int, row_ids: list[int]
) -> Dispatched:
    """Check once more, then add one batch of contacts to the contact list (an upsert)."""
    return dispatch(
        sessions=runtime.sessions,
        client=client,
        contact_row_ids=row_ids,
        rules=runtime.rules,
        now=runtime.clock.now(),
        dial_margin=timedelta(minutes=runtime.settings.dial_margin_minutes),
    )

"""Tasks that keep the contact centre in step: DNC appends, read-backs, removals, done
contacts made uncallable."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from recovery.contact_center.client import GenesysClient
from recovery.contact_center.wrapups import WrapupNames
from recovery.runtime import Runtime
from recovery.services.closing import remove_closed
from recovery.services.reconcile import reconcile_from_analytics, reconcile_overdue
from recovery.services.uncallable import make_uncallable
from recovery.store.uncallable import DoneContact
from tasks.retry import retry_transient

# Retried only on transient failures (429, 5xx, connection errors): a retry sends the same
# contact ids again, which the contact centre treats as an update.
RETRIES = 5
BACKOFF = exponential_backoff(backoff_factor=3)


@task(
    name="append-dnc",
    task_run_name="append {size} numbers to the DNC list",
    retries=RETRIES,
    retry_delay_seconds=BACKOFF,
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recovery", "contact-centre"],
)
def append_dnc(runtime: Runtime, client: GenesysClient, size: int, phones: list[str]) -> int:
    """Add suppressed numbers to the contact centre's internal DNC list (a second guard)."""
    return client.append_dnc(runtime.settings.genesys_dnc_list_id, phones)


@task(
    name="reconcile-contacts",
    task_run_name="read back batch {batch_no} ({size} contacts)",
    retries=RETRIES,
    retry_delay_seconds=BACKOFF,
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recovery", "contact-centre"],
)
def reconcile_contacts(
    runtime: Runtime,
    client: GenesysClient,
    batch_no: int,
    size: int,
    contacts: list[tuple[str, str]],
) -> Counter[str]:
    """Bulk-read overdue contacts and record the outcomes the push did not deliver."""
    return reconcile_overdue(
        sessions=runtime.sessions,
        client=client,
        contacts=contacts,
        mapping=runtime.disposition_map,
        phone_column=runtime.settings.genesys_phone_column,
        now=runtime.clock.now(),
    )


@task(
    name="remove-contacts",
    task_run_name="remove batch {batch_no} ({size} contacts)",
    retries=RETRIES,
    retry_delay_seconds=BACKOFF,
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recovery", "contact-centre"],
)
def remove_contacts(
    runtime: Runtime,
    client: GenesysClient,
    batch_no: int,
    size: int,
    contacts: list[tuple[int, str, str]],
) -> Counter[str]:
    """Delete contacts of closed cases from the contact list, so nobody paid is called."""
    return remove_closed(
        sessions=runtime.sessions, client=client, contacts=contacts, now=runtime.clock.now()
    )


@task(
    name="reconcile-from-analytics",
    task_run_name="look up batch {batch_no} ({size} contacts) in analytics",
    retries=RETRIES,
    retry_delay_seconds=BACKOFF,
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recovery", "contact-centre"],
)
def reconcile_from_analytics_task(
    runtime: Runtime,
    client: GenesysClient,
    batch_no: int,
    size: int,
    contacts: list[tuple[str, str]],
) -> Counter[str]:
    """Record the outcomes of overdue contacts from the analytics conversation details (then
    their call records)."""
    settings = runtime.settings
    return reconcile_from_analytics(
        sessions=runtime.sessions,
        client=client,
        contacts=contacts,
        mapping=runtime.disposition_map,
        wrapups=WrapupNames(
            client,
            clock=runtime.clock,
            ttl=timedelta(seconds=settings.genesys_wrapup_cache_seconds),
        ),
        phone_column=settings.genesys_phone_column,
        now=runtime.clock.now(),
        window_days=settings.genesys_analytics_window_days,
        page_size=settings.genesys_analytics_page_size,
    )


@task(
    name="make-uncallable",
    task_run_name="make batch {batch_no} ({size} contacts) uncallable",
    retries=RETRIES,
    retry_delay_seconds=BACKOFF,
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recovery", "contact-centre"],
)
def make_uncallable_task(
    runtime: Runtime,
    client: GenesysClient,
    batch_no: int,
    size: int,
    contacts: list[DoneContact],
) -> Counter[str]:
    """Tell the contact centre never to dial these done contacts again on its own."""
    return make_uncallable(
        sessions=runtime.sessions, client=client, contacts=contacts, now=runtime.clock.now()
    )

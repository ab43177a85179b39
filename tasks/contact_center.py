"""Tasks that keep the contact centre in step: DNC appends, read-backs, removals."""

from __future__ import annotations

from collections import Counter

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from recovery.contact_center.client import AddContactsResult, GenesysClient
from recovery.contact_center.contacts import ContactRequest
from recovery.runtime import Runtime
from recovery.services.closing import remove_closed
from recovery.services.reconcile import reconcile_overdue
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
    name="update-contacts",
    task_run_name="update batch {batch_no} ({size} contacts) after their outcomes",
    retries=RETRIES,
    retry_delay_seconds=BACKOFF,
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recovery", "contact-centre"],
)
def update_contacts(
    client: GenesysClient,
    batch_no: int,
    size: int,
    contact_list_id: str,
    contacts: list[ContactRequest],
) -> AddContactsResult:
    """Write each contact's outcome (dispositionCode) to the contact list, not dialable, with
    doNotQueue=true so the update never queues it again; a retry upserts the same ids."""
    return client.add_contacts(contact_list_id, contacts, do_not_queue=True)

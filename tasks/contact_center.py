"""Tasks that keep the contact centre in step: DNC appends, overdue outcomes found in the
analytics details (then the contacts' call records), removals of contacts of closed cases, done
contacts made uncallable, and finding the contacts each of these works on."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from recovery.contact_center.wrapups import WrapupNames
from recovery.services.closing import closed_case_contacts, remove_closed
from recovery.services.reconcile import overdue_contacts, reconcile_from_analytics
from recovery.services.uncallable import done_contacts, make_uncallable
from recovery.store.uncallable import DoneContact
from tasks.retry import (
    contact_centre_task,
    store_task,
)
from tasks.runtime import runtime

# A retried task sends the same contact ids again, which the contact centre treats as an
# update; tasks/retry.py says which failures are retried here and which by the client.


@contact_centre_task(
    "append-dnc",
    "append {size} numbers to the DNC list",
)
def append_dnc(size: int, phones: tuple[str, ...]) -> int:
    """Add suppressed numbers to the contact centre's internal DNC list (a second guard)."""
    built = runtime()
    return built.shared_contact_center.append_dnc(built.settings.genesys_dnc_list_id, phones)


@store_task(
    "find-overdue-contacts",
    "find contacts with an overdue outcome (up to {limit})",
)
def find_overdue_contacts(limit: int) -> list[tuple[str, str]]:
    """(contact list id, contact id) of contacts whose outcome is overdue, oldest first."""
    built = runtime()
    return overdue_contacts(sessions=built.sessions, now=built.clock.now(), limit=limit)


@contact_centre_task(
    "reconcile-contacts",
    "look up batch {batch_no} ({size} contacts) in analytics",
)
def reconcile_contacts(
    batch_no: int, size: int, contacts: tuple[tuple[str, str], ...]
) -> Counter[str]:
    """Record the outcomes of overdue contacts from the analytics conversation details (then
    their call records): what the notification listener and the data action did not bring."""
    built = runtime()
    settings = built.settings
    client = built.shared_contact_center
    return reconcile_from_analytics(
        sessions=built.sessions,
        client=client,
        contacts=contacts,
        mapping=built.disposition_map,
        wrapups=WrapupNames(
            client,
            clock=built.clock,
            ttl=timedelta(seconds=settings.genesys_wrapup_cache_seconds),
        ),
        phone_column=settings.genesys_phone_column,
        now=built.clock.now(),
        window_days=settings.genesys_analytics_window_days,
        page_size=settings.genesys_analytics_page_size,
    )


@store_task(
    "find-closed-case-contacts",
    "find contacts queued for closed cases (up to {limit})",
)
def find_closed_case_contacts(limit: int) -> list[tuple[int, str, str]]:
    """(row id, contact list id, contact id) of contacts still queued for closed cases."""
    return closed_case_contacts(sessions=runtime().sessions, limit=limit)


@contact_centre_task(
    "remove-contacts",
    "remove batch {batch_no} ({size} contacts)",
)
def remove_contacts(
    batch_no: int, size: int, contacts: tuple[tuple[int, str, str], ...]
) -> Counter[str]:
    """Delete contacts of closed cases from the contact list, so nobody paid is called."""
    built = runtime()
    return remove_closed(
        sessions=built.sessions,
        client=built.shared_contact_center,
        contacts=contacts,
        now=built.clock.now(),
    )


@store_task(
    "find-done-contacts",
    "find done contacts to make uncallable (up to {limit})",
)
def find_done_contacts(limit: int) -> list[DoneContact]:
    """Contacts the project is done with (outcome recorded, case closed or parked) that the
    contact centre may still dial on its own, oldest first."""
    return done_contacts(sessions=runtime().sessions, limit=limit)


@contact_centre_task(
    "make-uncallable",
    "make batch {batch_no} ({size} contacts) uncallable",
)
def make_contacts_uncallable(
    batch_no: int, size: int, contacts: tuple[DoneContact, ...]
) -> Counter[str]:
    """Tell the contact centre never to dial these done contacts again on its own."""
    built = runtime()
    return make_uncallable(
        sessions=built.sessions,
        client=built.shared_contact_center,
        contacts=contacts,
        now=built.clock.now(),
    )

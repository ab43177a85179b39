"""Tasks of the advance flow: decide a chunk of due cases; send a group of batches of contacts
(one request each); withdraw the contacts the contact centre may hold that the last check would
not send. No tags: a task run with tags costs a round trip to the Prefect server for the tags'
concurrency limits, and these run by the hundred."""

from __future__ import annotations

from datetime import timedelta

from recovery.services.advance import Decided, decide_due
from recovery.services.dispatch import Dispatched, Held, check_and_send, withdraw_held
from tasks.retry import (
    contact_centre_task,
    store_task,
)
from tasks.runtime import runtime


@store_task(
    "decide-due-cases",
    "decide chunk {chunk_no} (up to {limit} due cases)",
)
def decide_due_cases(chunk_no: int, limit: int, owner: str) -> Decided:
    """Lease due cases, run the state machine on each, apply its step or plan a contact."""
    built = runtime()
    settings = built.settings
    return decide_due(
        sessions=built.sessions,
        policy=built.policy,
        rules=built.rules,
        now=built.clock.now(),
        owner=owner,
        limit=limit,
        lease=built.real_seconds(settings.lease_seconds),
        contact_list_id=settings.genesys_contact_list_id,
        dial_margin=timedelta(minutes=settings.dial_margin_minutes),
    )


@contact_centre_task(
    "create-contacts",
    "create contacts group {group_no} ({size} cases)",
)
def create_contacts(group_no: str, size: int, batches: tuple[tuple[int, ...], ...]) -> Dispatched:
    """For each batch in turn: check once more, then add the batch's contacts to the contact
    list (one request, an upsert) and record the answer, so that a retry sends only what is
    still planned. Contacts to withdraw that the contact centre may hold come back in
    ``held``, for ``withdraw_contacts``."""
    built = runtime()
    outcome = Dispatched()
    for row_ids in batches:
        outcome.add(
            check_and_send(
                sessions=built.sessions,
                client=built.shared_contact_center,
                contact_row_ids=row_ids,
                rules=built.rules,
                now=built.clock.now(),
                dial_margin=timedelta(minutes=built.settings.dial_margin_minutes),
            )
        )
    return outcome


@store_task(
    "withdraw-contacts",
    "withdraw {size} contacts (withdrawal {withdrawal_no})",
)
def withdraw_contacts(withdrawal_no: int, size: int, held: tuple[Held, ...]) -> Dispatched:
    """Remove withdrawn contacts the contact centre may hold from their contact lists, then
    record them as withdrawn (or refused); one that could not be removed stays planned."""
    built = runtime()
    return withdraw_held(
        sessions=built.sessions,
        client=built.shared_contact_center,
        held=held,
        now=built.clock.now(),
    )

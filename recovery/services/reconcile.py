"""Reconcile: contacts whose outcome is overdue are looked up in the contact centre's records
(the analytics conversation details, then the contact's call records) and their outcome is
recorded as if it had been pushed, so a lost event loses nothing."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.clock import Clock
from recovery.contact_center.analytics import CallOutcome, query_outcomes
from recovery.contact_center.client import GenesysClient
from recovery.contact_center.wrapups import WrapupNames
from recovery.domain.policy import DispositionMap, is_right_party, map_wrapup
from recovery.services.outcomes import record_outcome
from recovery.services.watching import WATCH_POLL_SECONDS, watch_store
from recovery.store.db import transaction
from recovery.store.dispositions import (
    UnknownContact,
    contacts_awaiting_disposition,
    record_disposition,
)
from recovery.store.tables import ContactRow

log = logging.getLogger("recovery.services.reconcile")


def overdue_contacts(
    *, sessions: sessionmaker[Session], now: datetime, limit: int
) -> list[tuple[str, str]]:
    """(contact list id, contact id) of contacts whose outcome is overdue."""
    with sessions() as session:
        return [
            (row.contact_list_id, row.contact_id)
            for row in contacts_awaiting_disposition(session=session, now=now, limit=limit)
        ]


def wait_for_overdue(
    *,
    sessions: sessionmaker[Session],
    clock: Clock,
    deadline: float,
    seen: Collection[str] = (),
    poll_seconds: float = WATCH_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> bool:
    """Watch the store (one indexed read a look) until a contact not in ``seen`` (those this
    run already looked up) has an overdue outcome, or until the ``monotonic`` instant
    ``deadline``: whether one has."""

    def look(session: Session) -> bool:
        overdue = contacts_awaiting_disposition(
            session=session, now=clock.now(), limit=len(seen) + 1
        )
        return any(row.contact_id not in seen for row in overdue)

    return watch_store(
        look,
        sessions=sessions,
        deadline=deadline,
        poll_seconds=poll_seconds,
        sleep=sleep,
        monotonic=monotonic,
    )


def reconcile_overdue(
    *,
    sessions: sessionmaker[Session],
    client: GenesysClient,
    contacts: Sequence[tuple[str, str]],
    mapping: DispositionMap,
    phone_column: str,
    now: datetime,
) -> Counter[str]:
    """Read these contacts back and record every outcome the push did not deliver."""
    counts: Counter[str] = Counter()
    by_list: dict[str, list[str]] = {}
    for list_id, contact_id in contacts:
        by_list.setdefault(list_id, []).append(contact_id)
    for list_id, ids in by_list.items():
        found = {c.id: c for c in client.get_contacts(list_id, ids)}
        with transaction(sessions) as session:
            for contact_id in ids:
                contact = found.get(contact_id)
                record = contact.call_records.get(phone_column) if contact else None
                if contact is None:
                    counts["missing_at_contact_centre"] += 1
                    continue
                if record is None or not record.last_result:
                    counts["not_dialled_yet"] += 1
                    continue
                disposition = map_wrapup(record.last_result, mapping)
                try:
                    result = record_disposition(
                        session=session,
                        contact_id=contact_id,
                        wrapup_code=record.last_result,
                        disposition=disposition,
                        right_party=is_right_party(disposition),
                        source="poll",
                        occurred_at=record.last_attempt or now,
                        now=now,
                        detail={"reconciled": True},
                    )
                except UnknownContact:
                    counts["unknown_contact"] += 1
                    continue
                counts["duplicate" if result.duplicate else "recorded"] += 1
    return counts


def reconcile_from_analytics(
    *,
    sessions: sessionmaker[Session],
    client: GenesysClient,
    contacts: Sequence[tuple[str, str]],
    mapping: DispositionMap,
    wrapups: WrapupNames,
    phone_column: str,
    now: datetime,
    window_days: int = 7,
    page_size: int = 100,
) -> Counter[str]:
    """Record the outcome of every overdue contact that the push channels did not deliver.

    The analytics conversation details of each contact list are the record (the earliest call
    of a contact is the one its attempt planned); a contact analytics does not show (yet), or
    that was never called (a number on the DNC list ends without a conversation), is read back
    with its ``callRecords[phone].lastResult``."""
    counts: Counter[str] = Counter()
    by_list: dict[str, list[str]] = {}
    for list_id, contact_id in contacts:
        by_list.setdefault(list_id, []).append(contact_id)
    sent_at = _sent_at(sessions, [c for _, c in contacts])
    for list_id, ids in by_list.items():
        earliest = min((sent_at[i] for i in ids if i in sent_at), default=now - timedelta(days=1))
        found: dict[str, CallOutcome] = {}
        for outcome in query_outcomes(
            client,
            contact_list_id=list_id,
            start=min(earliest, now) - timedelta(minutes=1),
            end=now + timedelta(minutes=1),
            window_days=window_days,
            page_size=page_size,
        ):
            found.setdefault(outcome.contact_id, outcome)
        rest: list[str] = []
        for contact_id in ids:
            outcome_found = found.get(contact_id)
            if outcome_found is None:
                rest.append(contact_id)
                continue
            outcome = outcome_found
            counts[
                _record(
                    sessions,
                    contact_id=contact_id,
                    name=wrapups.name(outcome.wrapup_code),
                    note=outcome.note,
                    mapping=mapping,
                    channel="analytics",
                    occurred_at=outcome.started_at,
                    now=now,
                    extra={"conversation_id": outcome.conversation_id},
                )
            ] += 1
        if not rest:
            continue
        held = {c.id: c for c in client.get_contacts(list_id, rest)}
        for contact_id in rest:
            contact = held.get(contact_id)
            record = contact.call_records.get(phone_column) if contact else None
            if contact is None:
                counts["missing_at_contact_centre"] += 1
            elif record is None or not record.last_result:
                counts["not_dialled_yet"] += 1
            else:
                counts[
                    _record(
                        sessions,
                        contact_id=contact_id,
                        name=wrapups.name(record.last_result),
                        note="",
                        mapping=mapping,
                        channel="call_records",
                        occurred_at=record.last_attempt or now,
                        now=now,
                        extra={},
                    )
                ] += 1
    return counts


def _sent_at(sessions: sessionmaker[Session], contact_ids: Sequence[str]) -> dict[str, datetime]:
    with sessions() as session:
        rows = session.execute(
            select(ContactRow.contact_id, ContactRow.created_at, ContactRow.requested_at).where(
                ContactRow.contact_id.in_(list(contact_ids))
            )
        ).all()
    return {str(r[0]): r[1] or r[2] for r in rows}


def _record(
    sessions: sessionmaker[Session],
    *,
    contact_id: str,
    name: str,
    note: str,
    mapping: DispositionMap,
    channel: str,
    occurred_at: datetime,
    now: datetime,
    extra: dict[str, str],
) -> str:
    try:
        result = record_outcome(
            sessions=sessions,
            contact_id=contact_id,
            wrapup_name=name,
            note=note,
            mapping=mapping,
            source="poll",
            channel=channel,
            occurred_at=occurred_at,
            now=now,
            extra=extra,
        )
    except UnknownContact:
        return "unknown_contact"
    return "duplicate" if result.duplicate else f"recorded ({channel})"

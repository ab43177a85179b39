"""Erasing personal data in the store: a case's personal fields, its contacts' numbers, the
copies of its events in the inbox, and the audit of each erasure.

Personal fields: the customer reference (kept as a keyed fingerprint, so a later request about
the same customer finds the case), the name (emptied), the phone number (kept as a
fingerprint), the postal code (emptied), and in an inbox event the same, plus the phone as
sent (emptied). What is left (amounts, codes, times, the state, the history of decisions) is
what the reports need and names nobody.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from recovery.domain.events import CaseEvent
from recovery.domain.fingerprint import Fingerprint
from recovery.domain.models import CaseStatus, HistoryKind, Outcome
from recovery.store.cases import append_history, close_case
from recovery.store.tables import CaseRow, ContactRow, HistoryRow, InboxRow, PrivacyAuditRow

# Contact states in which the contact list may hold the contact (and so the number).
AT_CONTACT_CENTRE = ("requested", "created", "dispositioned")
ERASED_RESULT = "erased"


class ErasureRefused(Exception):
    """A case cannot be erased now (a worker is advancing it); nothing changed."""


@dataclass(frozen=True)
class HeldContact:
    row_id: int
    contact_list_id: str
    contact_id: str


@dataclass(frozen=True)
class Held:
    """Cases held for an erasure: how to give each back, and their contacts the contact list
    may hold."""

    owner: str
    previous: dict[int, tuple[str | None, datetime | None]]
    contacts: list[HeldContact]


def cases_of(
    *,
    session: Session,
    fingerprint: Fingerprint,
    customer_ref: str | None = None,
    phone_e164: str | None = None,
    for_update: bool = False,
) -> list[CaseRow]:
    """The cases of a customer reference or a phone number, erased ones included (matched by
    their fingerprint)."""
    if (customer_ref is None) == (phone_e164 is None):
        raise ValueError("give a customer reference or a phone number")
    if customer_ref is not None:
        match = CaseRow.customer_ref.in_([customer_ref, fingerprint(customer_ref)])
    else:
        assert phone_e164 is not None
        match = CaseRow.phone_e164.in_([phone_e164, fingerprint(phone_e164)])
    stmt = select(CaseRow).where(match).order_by(CaseRow.id)
    if for_update and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))


def hold_cases(
    *, session: Session, cases: Sequence[CaseRow], owner: str, now: datetime, until: datetime
) -> Held:
    """Hold the cases not yet erased (as a worker's lease would), so no worker plans a contact
    meanwhile; with their contacts the contact list may hold. Raises ``ErasureRefused`` when a
    worker holds one of them."""
    contacts: list[HeldContact] = []
    previous: dict[int, tuple[str | None, datetime | None]] = {}
    for case in cases:
        if case.erased_at is not None:
            continue
        if case.lease_owner and case.lease_until is not None and case.lease_until > now:
            raise ErasureRefused(
                f"a worker is advancing case {case.gateway}:{case.id} until "
                f"{case.lease_until.isoformat()}; run it again then"
            )
        previous[case.id] = (case.lease_owner, case.lease_until)
        case.lease_owner, case.lease_until = owner, until
        contacts.extend(
            HeldContact(row.id, row.contact_list_id, row.contact_id)
            for row in session.scalars(
                select(ContactRow)
                .where(ContactRow.case_id == case.id, ContactRow.state.in_(AT_CONTACT_CENTRE))
                .order_by(ContactRow.id)
            )
        )
    return Held(owner, previous, contacts)


def release_cases(*, session: Session, held: Held) -> None:
    """Give the held cases back as they were (the erasure did not happen)."""
    for case in session.scalars(select(CaseRow).where(CaseRow.id.in_(list(held.previous)))):
        if case.lease_owner == held.owner:
            case.lease_owner, case.lease_until = held.previous[case.id]


def erase_case(
    *,
    session: Session,
    case: CaseRow,
    fingerprint: Fingerprint,
    now: datetime,
    reason: str,
    removed_contacts: Iterable[int] = (),
) -> tuple[CaseEvent, ...] | None:
    """Erase the case's personal fields (closing it first if it is open: nobody is called on
    data that no longer exists), and its contacts' numbers. The close's events (none when it
    was closed already); None when it was erased before. ``removed_contacts``: contact rows
    just deleted from the contact list."""
    if case.erased_at is not None:
        return None
    events: tuple[CaseEvent, ...] = ()
    if case.status != CaseStatus.closed.value:
        events = close_case(
            session=session,
            case=case,
            outcome=Outcome.suppressed,
            at=now,
            now=now,
            reasons=[reason],
        ).events
    removed = set(removed_contacts)
    for row in session.scalars(select(ContactRow).where(ContactRow.case_id == case.id)):
        row.phone_e164 = fingerprint(row.phone_e164)
        if row.id in removed and row.state in ("requested", "created"):
            row.state = "removed"
    if case.customer_ref is not None:
        case.customer_ref = fingerprint(case.customer_ref)
    if case.phone_e164 is not None:
        case.phone_e164 = fingerprint(case.phone_e164)
    case.customer_name = None
    case.postal_code = None
    case.lease_owner, case.lease_until = None, None
    case.erased_at = now
    case.updated_at = now
    append_history(
        session=session,
        case_id=case.id,
        at=now,
        now=now,
        kind=HistoryKind.note,
        reasons=[f"personal data erased: {reason}"],
        data={"erased": True},
    )
    return events


def event_ids_of(*, session: Session, cases: Sequence[CaseRow]) -> set[tuple[str, str]]:
    """(gateway, event id) of every event recorded on the cases."""
    found = {(case.gateway, case.last_event_id) for case in cases}
    gateways = {case.id: case.gateway for case in cases}
    for case_id, data in session.execute(
        select(HistoryRow.case_id, HistoryRow.data).where(HistoryRow.case_id.in_(list(gateways)))
    ):
        event_id = (data or {}).get("event_id")
        if isinstance(event_id, str):
            found.add((gateways[case_id], event_id))
    return found


def inbox_rows_of(
    *,
    session: Session,
    events: Iterable[tuple[str, str]] = (),
    customer_ref: str | None = None,
    phone_e164: str | None = None,
) -> list[InboxRow]:
    """Inbox rows of these events, or whose stored event names the customer or the number."""
    conditions = [
        and_(InboxRow.gateway == gateway, InboxRow.event_id == event_id)
        for gateway, event_id in events
    ]
    if customer_ref is not None:
        conditions.append(InboxRow.payload["customer_ref"].as_string() == customer_ref)
    if phone_e164 is not None:
        conditions.append(InboxRow.payload["contact"]["phone_e164"].as_string() == phone_e164)
        conditions.append(InboxRow.payload["phone_raw"].as_string() == phone_e164)
    if not conditions:
        return []
    rows: dict[int, InboxRow] = {}
    for start in range(0, len(conditions), 200):
        for row in session.scalars(select(InboxRow).where(or_(*conditions[start : start + 200]))):
            rows[row.id] = row
    return [rows[key] for key in sorted(rows)]


def scrub_inbox_row(*, row: InboxRow, fingerprint: Fingerprint, now: datetime) -> bool:
    """The stored event without its personal fields; an unprocessed one is settled as erased
    (it must not open a case on data that no longer exists). False when nothing changed."""
    payload = scrubbed_payload(row.payload, fingerprint)
    changed = payload != row.payload
    if changed:
        row.payload = payload
    if row.processed_at is None:
        row.processed_at, row.result, row.error = now, ERASED_RESULT, None
        changed = True
    return changed


def scrubbed_payload(payload: dict[str, Any], fingerprint: Fingerprint) -> dict[str, Any]:
    cleaned = copy.deepcopy(payload)
    if isinstance(cleaned.get("customer_ref"), str):
        cleaned["customer_ref"] = fingerprint(cleaned["customer_ref"])
    for name in ("customer_name", "phone_raw"):
        if cleaned.get(name) is not None:
            cleaned[name] = None
    contact = cleaned.get("contact")
    if isinstance(contact, dict):
        if isinstance(contact.get("phone_e164"), str):
            contact["phone_e164"] = fingerprint(contact["phone_e164"])
        if contact.get("postal_code") is not None:
            contact["postal_code"] = None
    return cleaned


def record_audit(
    *,
    session: Session,
    at: datetime,
    action: str,
    subject: str,
    cases: int,
    contacts_removed: int = 0,
    suppressions: int = 0,
    detail: dict[str, Any] | None = None,
) -> PrivacyAuditRow:
    """One audit line; ``subject`` is a fingerprint or a description, never personal data."""
    row = PrivacyAuditRow(
        at=at,
        action=action,
        subject=subject[:80],
        cases=cases,
        contacts_removed=contacts_removed,
        suppressions=suppressions,
        detail=detail or {},
    )
    session.add(row)
    return row


def expired_cases(*, session: Session, closed_before: datetime, limit: int) -> list[CaseRow]:
    """Closed cases not yet erased that closed before ``closed_before`` and have no contact
    the contact list may still hold (the close-on-payment flow removes those first)."""
    queued = select(ContactRow.case_id).where(ContactRow.state.in_(("requested", "created")))
    stmt = (
        select(CaseRow)
        .where(
            CaseRow.status == CaseStatus.closed.value,
            CaseRow.erased_at.is_(None),
            CaseRow.closed_at < closed_before,
            CaseRow.id.not_in(queued),
        )
        .order_by(CaseRow.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))

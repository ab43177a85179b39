"""Erasing personal data: a person's request (``forget``) and the retention run.

``forget`` takes a customer reference or a phone number. Its cases are held (no worker plans a
contact meanwhile), their contacts are deleted from the contact list (if the contact centre
cannot be reached, nothing changes in the store and the person runs it again), then in one
transaction the cases close (if open) and lose their personal fields, the inbox's copies of
their events are scrubbed, the suppressions of their numbers are kept under the numbers'
fingerprints (the numbers stay blocked), and an audit line is stored and logged, naming the
subject by its fingerprint only.

``purge_expired`` erases the personal fields of cases closed longer than the retention period
(``RECOVERY_RETENTION_DAYS``), and forgets PayPal transmission ids older than a day (the replay
guard needs them only within the signature tolerance).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from recovery.contact_center.client import GenesysClient
from recovery.contact_center.errors import ContactCenterError
from recovery.domain.events import CaseEvent
from recovery.domain.fingerprint import Fingerprint
from recovery.store import privacy
from recovery.store.db import transaction
from recovery.store.inbox import forget_transmissions
from recovery.store.suppression import erase_suppressions

log = logging.getLogger("recovery.services.privacy")

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
FORGET_REASON = "erased at the person's request"
RETENTION_REASON = "closed longer than the retention period"
# How long a transmission id is kept for the replay guard (the tolerance is minutes).
TRANSMISSION_MEMORY = timedelta(days=1)


class ForgetRefused(ValueError):
    """Bad arguments: nothing changed."""


class ContactCenterUnavailable(Exception):
    """The contact centre could not remove a contact: nothing changed in the store."""


@dataclass(frozen=True)
class Erasure:
    action: str
    subject: str  # a fingerprint or a description: never personal data
    cases: int
    contacts_removed: int = 0
    contacts_gone: int = 0
    suppressions: int = 0
    inbox_rows: int = 0
    # The closes of the cases that were still open (for the event feed; not in the output).
    events: tuple[CaseEvent, ...] = field(default=(), repr=False, compare=False)

    def as_dict(self) -> dict[str, object]:
        found = asdict(self)
        del found["events"]
        return found

    def line(self) -> str:
        return (
            f"personal data erased ({self.action}) for {self.subject}: {self.cases} case(s), "
            f"{self.contacts_removed} contact(s) removed from the contact list "
            f"({self.contacts_gone} already gone), {self.suppressions} suppression(s) kept as "
            f"fingerprints, {self.inbox_rows} inbox event(s) scrubbed"
        )


def check_subject(customer_ref: str | None, phone_e164: str | None) -> None:
    """Refuse anything but exactly one customer reference or one E.164 number."""
    if (customer_ref is None) == (phone_e164 is None):
        raise ForgetRefused("give --customer REF or --phone E164 (one of them)")
    if customer_ref is not None and not customer_ref.strip():
        raise ForgetRefused("--customer is empty")
    if phone_e164 is not None and not E164.match(phone_e164):
        raise ForgetRefused("--phone must be an E.164 number (+ and 7 to 15 digits)")


def forget(
    *,
    sessions: sessionmaker[Session],
    contact_center: Callable[[], GenesysClient],
    fingerprint: Fingerprint,
    now: datetime,
    hold_until: datetime,
    owner: str,
    customer_ref: str | None = None,
    phone_e164: str | None = None,
) -> Erasure:
    """Erase a person's data (module docstring). Raises ``ForgetRefused`` for bad arguments,
    ``privacy.ErasureRefused`` when a worker holds one of the cases, and
    ``ContactCenterUnavailable`` when a contact could not be removed; in each case nothing
    changed in the store."""
    check_subject(customer_ref, phone_e164)
    kind, value = ("customer", customer_ref) if customer_ref is not None else ("phone", phone_e164)
    assert value is not None
    subject = f"{kind} {fingerprint(value)}"
    with transaction(sessions) as session:
        cases = privacy.cases_of(
            session=session,
            fingerprint=fingerprint,
            customer_ref=customer_ref,
            phone_e164=phone_e164,
            for_update=True,
        )
        held = privacy.hold_cases(
            session=session, cases=cases, owner=owner, now=now, until=hold_until
        )
    removed: list[int] = []
    gone = 0
    if held.contacts:
        client = contact_center()
        try:
            for contact in held.contacts:
                if client.remove_contact(contact.contact_list_id, contact.contact_id):
                    removed.append(contact.row_id)
                else:
                    gone += 1
        except ContactCenterError as exc:
            with transaction(sessions) as session:
                privacy.release_cases(session=session, held=held)
            raise ContactCenterUnavailable(
                f"the contact centre could not remove a contact ({type(exc).__name__}); "
                "nothing changed: run it again"
            ) from None
        finally:
            client.close()
    with transaction(sessions) as session:
        cases = privacy.cases_of(
            session=session,
            fingerprint=fingerprint,
            customer_ref=customer_ref,
            phone_e164=phone_e164,
            for_update=True,
        )
        phones = {case.phone_e164 for case in cases if case.phone_e164 and case.erased_at is None}
        if phone_e164 is not None:
            phones.add(phone_e164)
        events = privacy.event_ids_of(session=session, cases=cases)
        done = [
            privacy.erase_case(
                session=session,
                case=case,
                fingerprint=fingerprint,
                now=now,
                reason=FORGET_REASON,
                removed_contacts=[c.row_id for c in held.contacts],
            )
            for case in cases
        ]
        erased = sum(events is not None for events in done)
        closes = tuple(event for events in done for event in events or ())
        suppressions = sum(
            erase_suppressions(
                session=session,
                phone_e164=phone,
                customer_ref=customer_ref,
                fingerprint=fingerprint,
            )
            for phone in sorted(phones)
        )
        inbox_rows = sum(
            privacy.scrub_inbox_row(row=row, fingerprint=fingerprint, now=now)
            for row in privacy.inbox_rows_of(
                session=session,
                events=events,
                customer_ref=customer_ref,
                phone_e164=phone_e164,
            )
        )
        result = Erasure(
            action="forget",
            subject=subject,
            cases=erased,
            contacts_removed=len(removed),
            contacts_gone=gone,
            suppressions=suppressions,
            inbox_rows=inbox_rows,
            events=closes,
        )
        privacy.record_audit(
            session=session,
            at=now,
            action="forget",
            subject=subject,
            cases=erased,
            contacts_removed=len(removed),
            suppressions=suppressions,
            detail={"contacts_gone": gone, "inbox_rows": inbox_rows},
        )
    log.info("%s", result.line())
    return result


def purge_expired(
    *,
    sessions: sessionmaker[Session],
    fingerprint: Fingerprint,
    now: datetime,
    retention_days: int | None,
    chunk: int = 500,
) -> Erasure:
    """Erase the personal fields of cases closed more than ``retention_days`` before ``now``
    (none when it is None), a chunk per transaction; forget transmission ids older than a
    day. One audit line per run that erased something."""
    with transaction(sessions) as session:
        forget_transmissions(session=session, before=now - TRANSMISSION_MEMORY)
    if retention_days is None:
        return Erasure(action="retention", subject="retention off", cases=0)
    closed_before = now - timedelta(days=retention_days)
    subject = f"cases closed before {closed_before.date().isoformat()}"
    cases = inbox_rows = 0
    while True:
        with transaction(sessions) as session:
            batch = privacy.expired_cases(session=session, closed_before=closed_before, limit=chunk)
            if not batch:
                break
            events = privacy.event_ids_of(session=session, cases=batch)
            for case in batch:
                privacy.erase_case(
                    session=session,
                    case=case,
                    fingerprint=fingerprint,
                    now=now,
                    reason=RETENTION_REASON,
                )
            cases += len(batch)
            inbox_rows += sum(
                privacy.scrub_inbox_row(row=row, fingerprint=fingerprint, now=now)
                for row in privacy.inbox_rows_of(session=session, events=events)
            )
    result = Erasure(action="retention", subject=subject, cases=cases, inbox_rows=inbox_rows)
    if cases:
        with transaction(sessions) as session:
            privacy.record_audit(
                session=session,
                at=now,
                action="retention",
                subject=subject,
                cases=cases,
                detail={"retention_days": retention_days, "inbox_rows": inbox_rows},
            )
        log.info("%s", result.line())
    return result

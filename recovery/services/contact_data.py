"""What one planned contact carries to the contact centre: its columns, built from the case,
the planned contact and the case's history (the failure's payment link and the gateway's last
attempt). Used when a contact is sent, and when it is updated after its outcome."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from recovery.contact_center.contacts import ContactRequest
from recovery.domain.models import HistoryEntry
from recovery.store.cases import case_key, failure_facts
from recovery.store.tables import CaseRow, ContactRow


def contact_request(
    *,
    case: CaseRow,
    row: ContactRow,
    entries: Sequence[HistoryEntry],
    disposition_code: str = "",
) -> ContactRequest:
    """The contact as the contact centre will receive it (with ``disposition_code`` on the
    update after an outcome); raises ``ValidationError`` or ``CardDataRefused`` when a value
    cannot be sent. ``lastAttemptDate`` is the local date, in the contact's zone, of the
    gateway's latest failed attempt."""
    try:
        zone = ZoneInfo(row.time_zone)
        window = row.planned_at.astimezone(zone).isoformat(timespec="minutes")
    except (ZoneInfoNotFoundError, ValueError):
        zone, window = None, ""  # the time zone itself is refused below, by name
    facts = failure_facts(entries)
    last_attempt = facts.last_attempt_at or case.failed_at
    request = ContactRequest(
        case_key=case_key(case.gateway, case.business_key),
        attempt=row.attempt,
        phone_e164=row.phone_e164,
        transaction_id=case.business_key,
        failure_reason=case.category,
        amount=case.amount,
        currency=(case.currency or "").upper(),
        next_retry_window=window,
        time_zone=row.time_zone,
        last_attempt_date=(last_attempt.astimezone(zone) if zone else last_attempt)
        .date()
        .isoformat(),
        payment_link=facts.payment_link or "",
        disposition_code=disposition_code,
    )
    request.data()  # the columns' own last guard, run now so that it refuses this row alone
    return request

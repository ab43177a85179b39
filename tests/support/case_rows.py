"""Case and contact rows made straight in the store, for tests that start from a case in a given
state."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from recovery.store.tables import CaseRow, ContactRow


def case_row(
    session: Session,
    key: str,
    *,
    now: datetime,
    status: str,
    category: str,
    next_due_at: datetime | None = None,
) -> CaseRow:
    """A Stripe case ``key`` in New York that failed a day before ``now``, flushed."""
    row = CaseRow(
        gateway="stripe",
        business_key=key,
        phone_e164="+12125550123",
        country="US",
        explicit_tz="America/New_York",
        category=category,
        amount=None,
        failed_at=now - timedelta(days=1),
        opened_at=now - timedelta(days=1),
        updated_at=now - timedelta(days=1),
        last_event_id=f"evt_{key}",
        status=status,
        next_due_at=next_due_at,
        missing_fields={},
    )
    session.add(row)
    session.flush()
    return row


def contact_row(
    session: Session,
    case: CaseRow,
    contact_id: str,
    *,
    at: datetime,
    disposition_due_at: datetime,
    contact_list_id: str = "recovery-contacts",
    state: str = "created",
    attempt: int = 1,
) -> ContactRow:
    """A contact of ``case`` planned, requested and created at the contact centre at ``at``
    (a New York phone), its outcome due by ``disposition_due_at``; flushed."""
    row = ContactRow(
        case_id=case.id,
        attempt=attempt,
        contact_id=contact_id,
        contact_list_id=contact_list_id,
        phone_e164="+12125550123",
        time_zone="America/New_York",
        planned_at=at,
        requested_at=at,
        created_at=at,
        state=state,
        disposition_due_at=disposition_due_at,
    )
    session.add(row)
    session.flush()
    return row

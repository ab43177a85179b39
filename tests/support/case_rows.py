"""A case row made straight in the store, for tests that start from a case in a given state."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from recovery.store.tables import CaseRow


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

"""Due cases created straight in the store with its own repository function: expired-card
failures spread over several zones and state rules, each number its own, all callable at
``CALLABLE_INSTANT``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from recovery.domain.models import (
    ContactPoint,
    FailureCategory,
    Gateway,
    PaymentFailure,
)
from recovery.store.cases import apply_failure
from recovery.store.db import transaction

# Tuesday 1 December 2026, 13:00 in New York and 10:00 in Los Angeles: calling is lawful in
# every zone the seeded cases live in, for hours (well beyond the dial margin).
CALLABLE_INSTANT = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)

# (state, area code, postal code): several zones and state rules, each number its own.
PLACES = (
    ("CA", "415", "94103"),
    ("NY", "212", "10001"),
    ("TX", "512", "78701"),
    ("IL", "312", "60601"),
    ("CO", "303", "80202"),
)

CLIENT_ID = "advance-test-client"
CLIENT_SECRET = "advance-test-secret-0123456789"
CONTACT_LIST = "recovery-contacts"
DNC_LIST = "recovery-dnc"


def due_failure(index: int, at: datetime, prefix: str) -> PaymentFailure:
    """An expired-card failure at ``at`` (first call at the first lawful instant)."""
    state, area, postal = PLACES[index % len(PLACES)]
    return PaymentFailure(
        gateway=Gateway.stripe,
        event_id=f"evt_{prefix}_{index:07d}",
        event_type="payment_intent.payment_failed",
        business_key=f"{prefix}_{index:07d}",
        customer_ref=f"cus_{prefix}_{index:07d}",
        contact=ContactPoint(
            phone_e164=f"+1{area}{2_000_000 + index:07d}",
            country="US",
            state=state,
            postal_code=postal,
        ),
        failure_code="card_declined",
        decline_code="expired_card",
        amount=Decimal("49.00"),
        currency="usd",
        occurred_at=at,
    )


def seed_due_cases(
    sessions: sessionmaker[Session],
    *,
    count: int,
    at: datetime,
    prefix: str = "in_due",
    start: int = 0,
    per_transaction: int = 1000,
) -> list[str]:
    """Open ``count`` cases due at ``at`` with the store's own repository function; their keys."""
    keys: list[str] = []
    for first in range(start, start + count, per_transaction):
        last = min(first + per_transaction, start + count)
        with transaction(sessions) as session:
            for index in range(first, last):
                result = apply_failure(
                    session=session,
                    failure=due_failure(index, at, prefix),
                    category=FailureCategory.card_expired,
                    category_reason="expired_card",
                    now=at,
                )
                assert result.action == "opened" and result.key is not None, result
                keys.append(result.key)
    return keys

"""The project's vocabulary: normalised payment events, contact points, cases and their history.

Every datetime here is timezone-aware (pydantic's ``AwareDatetime``); amounts are ``Decimal``.
Nothing in this module does I/O.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Gateway(StrEnum):
    stripe = "stripe"
    braintree = "braintree"
    paypal = "paypal"
    generic = "generic"


class FailureCategory(StrEnum):
    card_expired = "card_expired"
    card_invalid_or_lost = "card_invalid_or_lost"
    insufficient_funds = "insufficient_funds"
    authentication_required = "authentication_required"
    processing_error = "processing_error"
    generic_decline = "generic_decline"
    unknown = "unknown"


class CaseStatus(StrEnum):
    open = "open"
    needs_contact_info = "needs_contact_info"
    awaiting_window = "awaiting_window"
    contact_requested = "contact_requested"
    awaiting_disposition = "awaiting_disposition"
    cooling_down = "cooling_down"
    review = "review"
    closed = "closed"


class Outcome(StrEnum):
    recovered = "recovered"
    exhausted = "exhausted"
    suppressed = "suppressed"
    unreachable = "unreachable"
    expired = "expired"
    disputed = "disputed"


class Disposition(StrEnum):
    promise_to_pay = "promise_to_pay"
    callback_requested = "callback_requested"
    no_answer = "no_answer"
    busy = "busy"
    voicemail = "voicemail"
    machine = "machine"
    wrong_number = "wrong_number"
    do_not_call = "do_not_call"
    paid = "paid"
    payment_updated = "payment_updated"
    dispute = "dispute"
    unknown = "unknown"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ContactPoint(_Frozen):
    """Where and how a customer may be reached; the compliance engine's input."""

    phone_e164: str | None = None
    country: str = "US"
    state: str | None = None
    postal_code: str | None = None
    explicit_tz: str | None = None


class PaymentFailure(_Frozen):
    """One gateway's report that a payment failed, normalised and free of card data."""

    gateway: Gateway
    event_id: str
    event_type: str
    business_key: str = Field(description="invoice id, else payment intent id, else charge id")
    customer_ref: str | None = None
    customer_name: str | None = None
    contact: ContactPoint = ContactPoint()
    phone_raw: str | None = Field(default=None, description="the phone as sent, when invalid")
    phone_problem: str | None = Field(default=None, description="why the phone is unusable")
    failure_code: str | None = None
    decline_code: str | None = None
    advice_code: str | None = None
    failure_message: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    attempt_count: int | None = None
    occurred_at: AwareDatetime
    missing_fields: tuple[str, ...] = ()


class PaymentSucceeded(_Frozen):
    """A gateway's report that a payment (or the invoice it belongs to) succeeded."""

    gateway: Gateway
    event_id: str
    event_type: str
    business_key: str
    amount: Decimal | None = None
    currency: str | None = None
    occurred_at: AwareDatetime


class HistoryKind(StrEnum):
    failure_recorded = "failure_recorded"
    failure_updated = "failure_updated"
    payment_succeeded = "payment_succeeded"
    decision = "decision"
    contact_requested = "contact_requested"
    contact_created = "contact_created"
    contact_removed = "contact_removed"
    contact_rejected = "contact_rejected"
    disposition = "disposition"
    suppressed = "suppressed"
    closed = "closed"
    note = "note"


class HistoryEntry(_Frozen):
    """One line of a case's append-only history (the compliance evidence)."""

    at: AwareDatetime
    kind: HistoryKind
    status: CaseStatus | None = None
    disposition: Disposition | None = None
    reasons: tuple[str, ...] = ()
    data: dict[str, Any] = Field(default_factory=dict)


class CaseView(_Frozen):
    """What the state machine knows of a case: a snapshot read from the store."""

    key: str
    gateway: Gateway
    customer_ref: str | None = None
    status: CaseStatus
    outcome: Outcome | None = None
    category: FailureCategory
    contact: ContactPoint
    failed_at: datetime
    opened_at: datetime
    amount: Decimal | None = None
    currency: str | None = None

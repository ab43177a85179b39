"""The project's vocabulary: normalised payment events, contact points, cases and their history.

Every datetime here is timezone-aware (pydantic's ``AwareDatetime``); amounts are ``Decimal``.
Nothing in this module does I/O.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


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
    # the first call waits for the gateway's own retry (or the retry after a card update)
    awaiting_retry = "awaiting_retry"
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


def storable(value: str) -> str:
    """The text with what no store's text column takes (NUL, an unpaired surrogate) replaced
    by U+FFFD, so "a\\x00b" stays distinct from "ab"."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in value)
    return value


def _text(limit: int | None = None) -> AfterValidator:
    """A received text field: made storable, and cut to ``limit`` characters (its column's
    width; the last one an ellipsis) when it is descriptive, not an identity."""

    def check(value: str | None) -> str | None:
        if value is None:
            return None
        value = storable(value)
        if limit is not None and len(value) > limit:
            value = value[: limit - 1] + "\u2026"
        return value

    return AfterValidator(check)


# Received descriptive text, cut to the width of its column. Identities (event id, type,
# business key) are kept as sent: what the store cannot hold of them is refused where they
# arrive (recovery/store/inbox.py, storable_problem).
Short = Annotated[str | None, _text(64)]
Line = Annotated[str | None, _text(255)]
Message = Annotated[str | None, _text(1000)]


class ContactPoint(_Frozen):
    """Where and how a customer may be reached; the compliance engine's input."""

    phone_e164: Annotated[str | None, _text(32)] = None
    country: Annotated[str, _text(2)] = "US"
    state: Annotated[str | None, _text(8)] = None
    postal_code: Annotated[str | None, _text(16)] = None
    explicit_tz: Short = None


class PaymentFailure(_Frozen):
    """One gateway's report that a payment failed, normalised and free of card data."""

    gateway: Gateway
    event_id: str
    event_type: str
    business_key: str = Field(description="invoice id, else payment intent id, else charge id")
    customer_ref: Line = None
    customer_name: Line = None
    contact: ContactPoint = ContactPoint()
    phone_raw: Short = Field(default=None, description="the phone as sent, when invalid")
    phone_problem: Message = Field(default=None, description="why the phone is unusable")
    failure_code: Short = None
    decline_code: Short = None
    advice_code: Short = None
    failure_message: Message = None
    amount: Decimal | None = None
    currency: Annotated[str | None, _text(8)] = None
    attempt_count: int | None = None
    occurred_at: AwareDatetime
    missing_fields: tuple[str, ...] = ()
    next_retry_at: AwareDatetime | None = Field(
        default=None,
        description="when the gateway says it will retry the payment by itself (Stripe "
        "next_payment_attempt, Braintree next_billing_date of a past-due subscription, PayPal "
        "last_failed_payment.next_payment_retry_time); None when it says it will not, or nothing",
    )
    payment_link: Annotated[str | None, _text(1000)] = Field(
        default=None,
        description="a page where the customer can pay this payment (Stripe hosted_invoice_url)",
    )
    invoice_unknown: bool = Field(
        default=False,
        description="a Stripe payment intent or charge that does not say whether it pays an "
        "invoice (current API versions): the invoice is looked up at ingest",
    )


class PaymentSucceeded(_Frozen):
    """A gateway's report that a payment (or the invoice it belongs to) succeeded."""

    gateway: Gateway
    event_id: str
    event_type: str
    business_key: str
    amount: Decimal | None = None
    currency: Annotated[str | None, _text(8)] = None
    occurred_at: AwareDatetime


class CardUpdated(_Frozen):
    """The card network updated a customer's card on file (Stripe's card updater:
    ``payment_method.automatically_updated``): the gateway's next retry uses the new details."""

    gateway: Gateway
    event_id: str
    event_type: str
    # Made storable and cut as a failure's customer_ref is, so the two compare equal.
    customer_ref: Annotated[str, _text(255)]
    occurred_at: AwareDatetime


class HistoryKind(StrEnum):
    failure_recorded = "failure_recorded"
    failure_updated = "failure_updated"
    payment_succeeded = "payment_succeeded"
    card_updated = "card_updated"
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

"""Any source that signs JSON with the ``t=..,v1=..`` HMAC-SHA256 scheme (header
``Recovery-Signature``). Two body shapes are accepted.

**The event shape** (a body with ``type``). A failure: ``{"type": "payment.failed", "event_id",
"business_key", "occurred_at", "customer_ref"?, "customer_name"?, "phone"?, "country"?,
"state"?, "postal_code"?, "time_zone"?, "failure_code"?, "decline_code"?, "advice_code"?,
"failure_message"?, "amount"? (decimal string, major units), "currency"?, "attempt_count"?,
"next_retry_at"? (when the source retries the payment by itself, ISO 8601 with offset),
"payment_link"? (an https page where the customer can pay)}``. A success: ``{"type":
"payment.succeeded", "event_id", "business_key", "occurred_at", "amount"?, "currency"?}``.
Any other ``type`` is recorded as ignored.

**The middleware shape** (a body without ``type``): the payload of the payment-failure
middleware the project's design follows, ``{"transaction_id", "customer_phone_number",
"failure_reason", "original_amount", "currency"?, "occurred_at"?, "event_id"?,
"customer_name"?, "country"?, "state"?, "postal_code"?, "time_zone"?}``.

- ``transaction_id`` (a string or an integer) is the business key: a success in the event
  shape with ``business_key`` equal to it closes the case.
- ``customer_phone_number``: any common national spelling (``(415) 555-2671``,
  ``415.555.2671``, ``1-415-555-2671``) for ``country`` (default US), or E.164; a value that
  is not a valid phone number is refused (400 naming the field), as is a missing one.
- ``failure_reason``: looked up in the taxonomy as a decline code and as a failure code of the
  generic source (a category name, or Stripe's codes through its fallback); case, spaces and
  dashes are ignored (``Insufficient Funds`` is ``insufficient_funds``); an unknown reason is
  accepted and categorised ``unknown``.
- ``original_amount``: major units, a JSON number or a decimal string; negative, not finite,
  10^12 or more, or not a number: refused.
- ``event_id``: when absent, derived from the body (a SHA-256 of its canonical JSON), so a
  network retry of the same body is recorded once; ``occurred_at``: when absent, the time the
  body was received.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from recovery.domain.models import ContactPoint, Gateway, PaymentFailure, PaymentSucceeded
from recovery.gateways.common import (
    AMOUNT_LIMIT,
    Ignored,
    PayloadError,
    normalise_phone,
    payment_link,
)

SEED_TYPE = "payment.failed"
# The middleware shape's own fields: a body without ``type`` that has any of them is one.
SEED_FIELDS = ("transaction_id", "customer_phone_number", "failure_reason", "original_amount")

_Id = Field(min_length=1, max_length=255)


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    event_id: str = _Id
    business_key: str = _Id
    occurred_at: AwareDatetime
    # At most 12 whole digits and 4 decimals (the store's Numeric(18, 4)): a JSON number is not a
    # string, so the card-number guard never reads it, and no 13-digit run may reach the store.
    amount: Decimal | None = Field(
        default=None, allow_inf_nan=False, max_digits=16, decimal_places=4
    )
    currency: str | None = Field(default=None, max_length=8)


class GenericFailure(_In):
    type: Literal["payment.failed"]
    customer_ref: str | None = Field(default=None, max_length=255)
    customer_name: str | None = Field(default=None, max_length=255)
    phone: str | None = Field(default=None, max_length=64)
    country: str = Field(default="US", min_length=2, max_length=2)
    state: str | None = Field(default=None, max_length=8)
    postal_code: str | None = Field(default=None, max_length=16)
    time_zone: str | None = Field(default=None, max_length=64)
    failure_code: str | None = Field(default=None, max_length=64)
    decline_code: str | None = Field(default=None, max_length=64)
    advice_code: str | None = Field(default=None, max_length=64)
    failure_message: str | None = Field(default=None, max_length=1000)
    attempt_count: int | None = Field(default=None, ge=0, le=1000)
    next_retry_at: AwareDatetime | None = None
    payment_link: str | None = Field(default=None, max_length=1000)


class GenericSuccess(_In):
    type: Literal["payment.succeeded"]


class SeedFailure(BaseModel):
    """The middleware shape (module docstring); ``extra="ignore"``: fields of its own that the
    middleware adds are not an error."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    transaction_id: str = Field(min_length=1, max_length=255)
    customer_phone_number: str = Field(min_length=1, max_length=64)
    failure_reason: str = Field(min_length=1, max_length=1000)
    original_amount: Decimal
    currency: str | None = Field(default=None, min_length=3, max_length=3, pattern="^[A-Za-z]{3}$")
    occurred_at: AwareDatetime | None = None
    event_id: str | None = Field(default=None, min_length=1, max_length=255)
    customer_name: str | None = Field(default=None, max_length=255)
    country: str = Field(default="US", min_length=2, max_length=2)
    state: str | None = Field(default=None, max_length=8)
    postal_code: str | None = Field(default=None, max_length=16)
    time_zone: str | None = Field(default=None, max_length=64)

    @field_validator("transaction_id", "customer_phone_number", mode="before")
    @classmethod
    def _integer_text(cls, value: Any) -> Any:
        # An id or a phone sent as a JSON integer is the same digits as text.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("original_amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("must be a number or a decimal string")
        try:
            # repr gives a float's shortest exact spelling: 49.99 stays 49.99.
            amount = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        except InvalidOperation:
            raise ValueError("must be a number or a decimal string") from None
        if not amount.is_finite():
            raise ValueError("must be a finite number")
        if amount < 0:
            raise ValueError("must not be negative")
        if amount >= AMOUNT_LIMIT:
            raise ValueError(f"must be less than {AMOUNT_LIMIT:,}")
        if amount.as_tuple().exponent < -4:  # type: ignore[operator]
            amount = amount.quantize(Decimal("0.0001"))
        return amount


def normalise(
    body: Any, *, received_at: datetime | None = None
) -> PaymentFailure | PaymentSucceeded | Ignored:
    """One generic body (already PAN-redacted). ``received_at``: the time of a middleware-shape
    body that does not say when the payment failed (required for such a body)."""
    if not isinstance(body, dict):
        raise PayloadError("body must be a JSON object")
    if "type" not in body and any(name in body for name in SEED_FIELDS):
        return _seed_failure(body, received_at)
    kind = body.get("type")
    event_id = body.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        if kind is None:
            raise PayloadError(
                "body has no 'type' (an event: payment.failed or payment.succeeded with "
                "event_id) and no 'transaction_id' (a payment failure of the middleware shape)"
            )
        raise PayloadError("body has no string 'event_id'")
    try:
        if kind == "payment.failed":
            return _failure(GenericFailure.model_validate(body))
        if kind == "payment.succeeded":
            ok = GenericSuccess.model_validate(body)
            return PaymentSucceeded(
                gateway=Gateway.generic,
                event_id=ok.event_id,
                event_type=ok.type,
                business_key=ok.business_key,
                amount=ok.amount,
                currency=ok.currency.lower() if ok.currency else None,
                occurred_at=ok.occurred_at,
            )
    except ValidationError as exc:
        raise PayloadError(_describe(exc)) from None
    return Ignored(
        gateway=Gateway.generic,
        event_id=event_id,
        event_type=str(kind)[:128],
        reason=f"type {kind!r} is not payment.failed or payment.succeeded",
    )


def _failure(body: GenericFailure) -> PaymentFailure:
    e164, problem = normalise_phone(body.phone, body.country)
    missing = tuple(
        name
        for name, value in (("amount", body.amount), ("currency", body.currency))
        if value is None
    )
    return PaymentFailure(
        gateway=Gateway.generic,
        event_id=body.event_id,
        event_type=body.type,
        business_key=body.business_key,
        customer_ref=body.customer_ref,
        customer_name=body.customer_name,
        contact=ContactPoint(
            phone_e164=e164,
            country=body.country.upper(),
            state=body.state.upper() if body.state else None,
            postal_code=body.postal_code,
            explicit_tz=body.time_zone,
        ),
        phone_raw=body.phone if problem else None,
        phone_problem=problem,
        failure_code=body.failure_code,
        decline_code=body.decline_code,
        advice_code=body.advice_code,
        failure_message=body.failure_message,
        amount=body.amount,
        currency=body.currency.lower() if body.currency else None,
        attempt_count=body.attempt_count,
        occurred_at=body.occurred_at,
        missing_fields=missing,
        next_retry_at=body.next_retry_at
        if body.next_retry_at is not None and body.next_retry_at > body.occurred_at
        else None,
        payment_link=payment_link(body.payment_link),
    )


_REASON_SEPARATORS = re.compile(r"[\s\-]+")


def reason_code(text: str) -> str:
    """A free-text failure reason as a taxonomy code: ``Insufficient Funds`` and
    ``insufficient-funds`` are ``insufficient_funds``."""
    return _REASON_SEPARATORS.sub("_", text.strip()).lower()[:64]


def derived_event_id(body: dict[str, Any]) -> str:
    """The id of a middleware body that sends none: the same body always gives the same id
    (keys sorted, no spaces), so a network retry of it is a duplicate."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return "seed_" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]


def _seed_failure(body: dict[str, Any], received_at: datetime | None) -> PaymentFailure:
    try:
        seed = SeedFailure.model_validate(body)
    except ValidationError as exc:
        raise PayloadError(_describe(exc)) from None
    e164, problem = normalise_phone(seed.customer_phone_number, seed.country)
    if e164 is None:
        raise PayloadError(f"customer_phone_number: {problem or 'not a phone number'}")
    occurred_at = seed.occurred_at or received_at
    if occurred_at is None:
        raise PayloadError("occurred_at: required when the receipt time is not known")
    code = reason_code(seed.failure_reason)
    missing = () if seed.currency else ("currency",)
    return PaymentFailure(
        gateway=Gateway.generic,
        event_id=seed.event_id or derived_event_id(body),
        event_type=SEED_TYPE,
        business_key=seed.transaction_id,
        customer_name=seed.customer_name,
        contact=ContactPoint(
            phone_e164=e164,
            country=seed.country.upper(),
            state=seed.state.upper() if seed.state else None,
            postal_code=seed.postal_code,
            explicit_tz=seed.time_zone,
        ),
        # Both lookups: a category name is a failure code of the generic source, and Stripe's
        # decline codes are reached through its fallback.
        failure_code=code,
        decline_code=code,
        failure_message=seed.failure_reason,
        amount=seed.original_amount,
        currency=seed.currency.lower() if seed.currency else None,
        occurred_at=occurred_at,
        missing_fields=missing,
    )


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_input=False, include_url=False)[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)

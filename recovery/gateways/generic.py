"""Any source that signs JSON with the ``t=..,v1=..`` HMAC-SHA256 scheme (header
``Recovery-Signature``) and sends the normalised model directly.

Body of a failure: ``{"type": "payment.failed", "event_id", "business_key", "occurred_at",
"customer_ref"?, "customer_name"?, "phone"?, "country"?, "state"?, "postal_code"?,
"time_zone"?, "failure_code"?, "decline_code"?, "advice_code"?, "failure_message"?,
"amount"? (decimal string, major units), "currency"?, "attempt_count"?}``.
Body of a success: ``{"type": "payment.succeeded", "event_id", "business_key", "occurred_at",
"amount"?, "currency"?}``. Any other ``type`` is recorded as ignored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from recovery.domain.models import ContactPoint, Gateway, PaymentFailure, PaymentSucceeded
from recovery.gateways.common import Ignored, PayloadError, normalise_phone

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


class GenericSuccess(_In):
    type: Literal["payment.succeeded"]


def normalise(body: Any) -> PaymentFailure | PaymentSucceeded | Ignored:
    if not isinstance(body, dict):
        raise PayloadError("body must be a JSON object")
    kind = body.get("type")
    event_id = body.get("event_id")
    if not isinstance(event_id, str) or not event_id:
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
    )


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)

"""Stripe: verify a webhook's signature with the ``stripe`` package, and normalise the failure
and success events into the project's models. Card data never survives: the payload is passed
through the PAN guard before it is read.

Retry-aware facts, only where Stripe's objects carry them:

- ``invoice.next_payment_attempt`` (Unix seconds, or null): "the time at which payment will
  next be attempted" by Smart Retries or the account's retry schedule; null when Stripe will
  not retry (a hard decline, retries exhausted, no payment method). Stripe API reference,
  Invoice object (``docs.stripe.com/api/invoices/object#invoice_object-next_payment_attempt``)
  and ``docs.stripe.com/billing/revenue-recovery/smart-retries``. It becomes
  ``PaymentFailure.next_retry_at``. Payment intents and charges carry no such field.
- ``invoice.hosted_invoice_url``: "the URL for the hosted invoice page, which allows customers
  to view and pay an invoice" (same reference): the payment link the agent can send. Kept only
  as an ``https`` URL without any card-number marker.
- ``payment_method.automatically_updated``: "occurs whenever a payment method's details are
  automatically updated by the network" (``docs.stripe.com/api/events/types``): the card
  updater; it names the payment method's ``customer``, not an invoice, so it becomes a
  ``CardUpdated`` for that customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import stripe
from stripe.params import InvoicePaymentListParamsPayment

from recovery.domain.models import (
    CardUpdated,
    ContactPoint,
    Gateway,
    PaymentFailure,
    PaymentSucceeded,
)
from recovery.gateways.common import (
    Ignored,
    PayloadError,
    address_postal_code,
    address_state,
    minor_to_decimal,
    normalise_phone,
    payment_link,
    text_or_none,
)
from recovery.gateways.signing import SignatureError

FAILURE_TYPES = frozenset(
    {"invoice.payment_failed", "payment_intent.payment_failed", "charge.failed"}
)
SUCCESS_TYPES = frozenset(
    {"invoice.paid", "invoice.payment_succeeded", "payment_intent.succeeded", "charge.succeeded"}
)
CARD_UPDATED_TYPE = "payment_method.automatically_updated"
TZ_METADATA_KEYS = ("timezone", "time_zone", "tz")


def verify_signature(
    body: str | bytes, header: str | None, secrets: Sequence[str], tolerance: int
) -> None:
    """Accept the body when any configured secret (rotation) signed it within the tolerance."""
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    # The stripe package compares signatures as text (a non-ASCII one raises TypeError) and
    # reads the timestamp with int() (which takes any script's digits): only printable ASCII
    # reaches it.
    if not (header.isascii() and header.isprintable()):
        raise SignatureError("malformed Stripe-Signature header")
    reasons: list[str] = []
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(body, header, secret, tolerance=tolerance)
            return
        except stripe.SignatureVerificationError as exc:
            reasons.append(str(getattr(exc, "user_message", None) or exc).lower())
        except (TypeError, ValueError, OverflowError):
            raise SignatureError("malformed Stripe-Signature header") from None
    # A stale timestamp is only reported once a secret matched: that is the more useful fact.
    if any("timestamp outside the tolerance" in reason for reason in reasons):
        raise SignatureError(f"signature timestamp outside the {tolerance} s tolerance")
    if any("unable to extract" in reason for reason in reasons):
        raise SignatureError("malformed Stripe-Signature header")
    raise SignatureError("no signature matches any configured secret")


def normalise(
    event: Mapping[str, Any],
) -> PaymentFailure | PaymentSucceeded | CardUpdated | Ignored:
    """One Stripe event (already PAN-redacted) as a failure, a success, a card update, or
    ignored."""
    event_id, event_type, obj, occurred_at = _envelope(event)
    if event_type in FAILURE_TYPES:
        if event_type == "invoice.payment_failed":
            return _invoice_failure(event_id, event_type, obj, occurred_at)
        if event_type == "payment_intent.payment_failed":
            return _intent_failure(event_id, event_type, obj, occurred_at)
        return _charge_failure(event_id, event_type, obj, occurred_at)
    if event_type in SUCCESS_TYPES:
        amount_field = "amount_paid" if obj.get("object") == "invoice" else "amount"
        amount, currency, _ = minor_to_decimal(obj.get(amount_field), obj.get("currency"))
        return PaymentSucceeded(
            gateway=Gateway.stripe,
            event_id=event_id,
            event_type=event_type,
            business_key=_business_key(obj),
            amount=amount,
            currency=currency,
            occurred_at=occurred_at,
        )
    if event_type == CARD_UPDATED_TYPE:
        customer = _ref(obj.get("customer"))
        if customer is None:
            return Ignored(
                gateway=Gateway.stripe,
                event_id=event_id,
                event_type=event_type,
                reason="the updated payment method belongs to no customer",
            )
        return CardUpdated(
            gateway=Gateway.stripe,
            event_id=event_id,
            event_type=event_type,
            customer_ref=customer,
            occurred_at=occurred_at,
        )
    return Ignored(
        gateway=Gateway.stripe,
        event_id=event_id,
        event_type=event_type,
        reason=f"event type {event_type!r} is not a payment failure or success",
    )


def event_identity(event: Mapping[str, Any]) -> tuple[str, str]:
    """The event id and type, for recording a delivery even when it cannot be normalised."""
    event_id = event.get("id")
    event_type = event.get("type")
    if not isinstance(event_id, str) or not event_id:
        raise PayloadError("event has no string 'id'")
    if not isinstance(event_type, str) or not event_type:
        raise PayloadError("event has no string 'type'")
    return event_id, event_type


def _envelope(event: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any], datetime]:
    event_id, event_type = event_identity(event)
    created = event.get("created")
    if isinstance(created, bool) or not isinstance(created, int):
        raise PayloadError("event has no integer 'created' timestamp")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping):
        raise PayloadError("event has no 'data.object'")
    if not isinstance(obj.get("id"), str):
        raise PayloadError("event's data.object has no string 'id'")
    return event_id, event_type, obj, created_at(created)


def created_at(created: int) -> datetime:
    """An event's ``created`` (Unix seconds) as a time; a value outside the calendar (before
    year 1, after 9999, beyond the platform's time_t) is a malformed event."""
    try:
        return datetime.fromtimestamp(created, UTC)
    except (OverflowError, OSError, ValueError):
        raise PayloadError("event 'created' timestamp is out of range") from None


def _obj(value: Any) -> Mapping[str, Any]:
    """A nested object, or an empty one when the field is absent, null or not an object."""
    return value if isinstance(value, Mapping) else {}


def _ref(value: Any) -> str | None:
    """An expandable field: an id string, or an expanded object with an id."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _business_key(obj: Mapping[str, Any]) -> str:
    """Invoice id, else payment intent id, else charge id (older API versions link a charge
    or payment intent to its invoice directly; use that link when it is there)."""
    kind = obj.get("object")
    if kind == "invoice":
        return str(obj["id"])
    invoice = _ref(obj.get("invoice"))
    if invoice:
        return invoice
    if kind == "payment_intent":
        return str(obj["id"])
    intent = _ref(obj.get("payment_intent"))
    return intent or str(obj["id"])


def _tz_from_metadata(*metadatas: Any) -> str | None:
    for metadata in metadatas:
        if isinstance(metadata, Mapping):
            for key in TZ_METADATA_KEYS:
                value = metadata.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()
    return None


def _contact(
    phone: Any, address: Any, explicit_tz: str | None
) -> tuple[ContactPoint, str | None, str | None]:
    """The contact point, the raw phone when it is not a valid number, and why."""
    address = _obj(address)
    country = text_or_none(address.get("country")) or "US"
    e164, problem = normalise_phone(phone, country)
    contact = ContactPoint(
        phone_e164=e164,
        country=country.upper()[:2],
        state=address_state(address.get("state"), country),
        postal_code=address_postal_code(address.get("postal_code")),
        explicit_tz=explicit_tz,
    )
    raw = text_or_none(phone) if problem else None
    return contact, raw, problem


def _missing(amount: Any, currency: Any) -> tuple[str, ...]:
    missing = []
    if amount is None:
        missing.append("amount")
    if not currency:
        missing.append("currency")
    return tuple(missing)


def _failure(
    event_id: str,
    event_type: str,
    occurred_at: datetime,
    obj: Mapping[str, Any],
    *,
    business_key: str,
    amount: Any,
    contact: tuple[ContactPoint, str | None, str | None],
    customer_name: str | None,
    codes: tuple[Any, Any, Any, Any],
    attempt: Any = None,
    invoice_unknown: bool = False,
    next_retry_at: datetime | None = None,
    payment_link: str | None = None,
) -> PaymentFailure:
    """The failure as every Stripe object reports it: ``codes`` are the failure code, decline
    code, advice code and message, as found on the object."""
    point, raw, problem = contact
    value, currency, _ = minor_to_decimal(amount, obj.get("currency"))
    failure_code, decline_code, advice_code, message = (text_or_none(c) for c in codes)
    return PaymentFailure(
        gateway=Gateway.stripe,
        event_id=event_id,
        event_type=event_type,
        business_key=business_key,
        customer_ref=_ref(obj.get("customer")),
        customer_name=customer_name,
        contact=point,
        phone_raw=raw,
        phone_problem=problem,
        failure_code=failure_code,
        decline_code=decline_code,
        advice_code=advice_code,
        failure_message=message,
        amount=value,
        currency=currency,
        attempt_count=attempt
        if isinstance(attempt, int) and not isinstance(attempt, bool)
        else None,
        occurred_at=occurred_at,
        missing_fields=_missing(value, currency),
        invoice_unknown=invoice_unknown,
        next_retry_at=next_retry_at,
        payment_link=payment_link,
    )


def _invoice_failure(
    event_id: str, event_type: str, inv: Mapping[str, Any], occurred_at: datetime
) -> PaymentFailure:
    # Expanded payment intent or charge (when the endpoint asks Stripe to expand them).
    error = _obj(_obj(inv.get("payment_intent")).get("last_payment_error"))
    charge = _obj(inv.get("charge"))
    subscription_meta = _obj(_obj(inv.get("parent")).get("subscription_details")).get("metadata")
    return _failure(
        event_id,
        event_type,
        occurred_at,
        inv,
        business_key=str(inv["id"]),
        amount=inv.get("amount_remaining", inv.get("amount_due")),
        contact=_contact(
            inv.get("customer_phone"),
            inv.get("customer_address"),
            _tz_from_metadata(inv.get("metadata"), subscription_meta),
        ),
        customer_name=text_or_none(inv.get("customer_name")),
        codes=(
            text_or_none(error.get("code")) or charge.get("failure_code"),
            text_or_none(error.get("decline_code")) or _obj(charge.get("outcome")).get("reason"),
            error.get("advice_code"),
            text_or_none(error.get("message")) or charge.get("failure_message"),
        ),
        attempt=inv.get("attempt_count"),
        next_retry_at=_next_attempt(inv.get("next_payment_attempt"), occurred_at),
        payment_link=payment_link(inv.get("hosted_invoice_url")),
    )


def _next_attempt(value: Any, occurred_at: datetime) -> datetime | None:
    """``next_payment_attempt`` as an instant, when it is a time after the failure (a draft
    invoice's first attempt, or a stale value, says nothing about a retry)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    try:
        at = datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return at if at > occurred_at else None


def _intent_failure(
    event_id: str, event_type: str, pi: Mapping[str, Any], occurred_at: datetime
) -> PaymentFailure:
    error = _obj(pi.get("last_payment_error"))
    billing = _obj(_obj(error.get("payment_method")).get("billing_details"))
    shipping = _obj(pi.get("shipping"))
    return _failure(
        event_id,
        event_type,
        occurred_at,
        pi,
        business_key=_business_key(pi),
        amount=pi.get("amount"),
        contact=_contact(
            billing.get("phone") or shipping.get("phone"),
            billing.get("address") or shipping.get("address"),
            _tz_from_metadata(pi.get("metadata")),
        ),
        customer_name=text_or_none(billing.get("name")) or text_or_none(shipping.get("name")),
        codes=(
            error.get("code"),
            error.get("decline_code"),
            error.get("advice_code"),
            error.get("message"),
        ),
        invoice_unknown=_invoice_unknown(pi),
    )


def _invoice_unknown(obj: Mapping[str, Any]) -> bool:
    """Whether a payment intent or charge leaves open which invoice it pays: API versions
    since 2025-03-31 dropped the ``invoice`` field (older ones say ``null`` for a payment
    outside any invoice). Such a payment is looked up at ingest (``StripeLookup``), so that a
    renewal's intent, charge and invoice failures make one case, not three."""
    # Invoices are paid through payment intents: a charge names its intent, which is the key.
    return "invoice" not in obj and _business_key(obj).startswith("pi_")


def _charge_failure(
    event_id: str, event_type: str, ch: Mapping[str, Any], occurred_at: datetime
) -> PaymentFailure:
    billing = _obj(ch.get("billing_details"))
    outcome = _obj(ch.get("outcome"))
    return _failure(
        event_id,
        event_type,
        occurred_at,
        ch,
        business_key=_business_key(ch),
        amount=ch.get("amount"),
        contact=_contact(
            billing.get("phone"), billing.get("address"), _tz_from_metadata(ch.get("metadata"))
        ),
        customer_name=text_or_none(billing.get("name")),
        codes=(
            ch.get("failure_code"),
            outcome.get("reason"),
            outcome.get("advice_code"),
            ch.get("failure_message"),
        ),
        invoice_unknown=_invoice_unknown(ch),
    )


class StripeLookup:
    """What ingest reads from Stripe's API (with the ``stripe`` package): a customer's phone
    and address when an event has no phone, and the invoice a payment intent or charge pays
    when the event does not say (``PaymentFailure.invoice_unknown``).

    Calling it looks up a customer (the ``CustomerLookup`` of recovery/services/intake.py)."""

    def __init__(self, *, api_key: str, api_base: str, timeout: float = 10.0) -> None:
        self._client = _client(api_key, api_base, timeout)
        # A renewal's intent and charge name the same payment: one request for both.
        self._invoices: dict[str, str | None] = {}

    def __call__(self, customer_id: str) -> tuple[ContactPoint, str | None, str | None] | None:
        return _customer_contact(self._client, customer_id)

    def invoice_for_payment(self, payment_id: str) -> str | None:
        """The invoice a payment intent (``pi_...``) pays, or None when it pays none (a
        one-off payment). Raises the package's errors when Stripe cannot answer."""
        if payment_id in self._invoices:
            return self._invoices[payment_id]
        payment: InvoicePaymentListParamsPayment = {
            "type": "payment_intent",
            "payment_intent": payment_id,
        }
        page = self._client.v1.invoice_payments.list(params={"payment": payment, "limit": 1})
        found = next((_ref(item.to_dict().get("invoice")) for item in page.data), None)
        if len(self._invoices) > 10_000:
            self._invoices.clear()
        self._invoices[payment_id] = found
        return found


def _client(api_key: str, api_base: str, timeout: float) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        max_network_retries=2,
        http_client=stripe.HTTPXClient(timeout=timeout, allow_sync_methods=True),
    )


def fetch_customer_contact(
    customer_id: str, *, api_key: str, api_base: str, timeout: float = 10.0
) -> tuple[ContactPoint, str | None, str | None] | None:
    """The customer's phone and address from Stripe's Customer object (None: no phone)."""
    return _customer_contact(_client(api_key, api_base, timeout), customer_id)


def _customer_contact(
    client: stripe.StripeClient, customer_id: str
) -> tuple[ContactPoint, str | None, str | None] | None:
    customer = client.v1.customers.retrieve(customer_id)
    data = customer.to_dict()
    phone = data.get("phone")
    address = data.get("address")
    shipping = _obj(data.get("shipping"))
    if not phone and shipping:
        phone = shipping.get("phone")
        address = address or shipping.get("address")
    if not phone:
        return None
    if not isinstance(address, Mapping) or not any(address.values()):
        address = shipping.get("address") if shipping else address
    return _contact(phone, address, _tz_from_metadata(data.get("metadata")))

"""Braintree: verify and parse a webhook notification with the ``braintree`` package, strip card
data from everything it parsed, and normalise the subscription kinds into the project's models.

A notification arrives form-encoded as ``bt_signature`` (``public_key|hmac_sha1`` pairs joined by
``&``) and ``bt_payload`` (base64 XML). ``gateway.webhook_notification.parse`` checks the HMAC
with the configured key pair and builds the package's objects; nothing is read before that.

Kinds:
- ``subscription_charged_unsuccessfully``, ``subscription_went_past_due``: a failure;
- ``subscription_charged_successfully``: a success;
- anything else (``subscription_canceled``, disputes, ``check``...): ignored.

Business key: ``"{subscription id}@{billing period start date}"``. Braintree's automatic and
manual retries of a past-due subscription do not move the current billing period, so the failed
charge, the ``went_past_due`` notice about it and the successful retry all share this key: the
success closes the failure's case, and the next period's failure opens a new one. A transaction
id would not do: the successful retry is a different transaction from the failed one, so the
success could never close the case. When a notification carries no billing period (Braintree's
sample notifications do not), the key falls back to the latest transaction id, then to the
subscription id alone.

Event id: notifications have none, so one is derived from the kind, the source merchant, the
subscription and its latest transaction (or the notification's timestamp when there is no
transaction), hashed: a redelivery of the same notification gets the same id and is deduplicated.

Codes: the latest transaction's processor response code goes in ``decline_code`` (e.g.
``"2001"``); its processor response type (``soft_declined`` / ``hard_declined``), else its gateway
rejection reason, else its failed status goes in ``failure_code``; the network's merchant advice
code in ``advice_code``.

Next automatic retry: the subscription's ``next_billing_date``, "the date when the system will
attempt to bill the subscription again [...] For past due subscriptions with automatic retry
enabled, this date will advance based on your configured retry settings" (Braintree GraphQL
reference, ``RecurringBillingSubscriptionTimeline.nextBillingDate``,
``developer.paypal.com/braintree/graphql/reference/types/recurring-billing-subscription-timeline``;
the server SDKs' Subscription response object carries it as ``next_billing_date``,
``developer.paypal.com/braintree/docs/reference/response/subscription/python``). It is a date
without a time or zone (the merchant account's), so the retry is taken to happen by the end of
that date anywhere on Earth (UTC-12), and a call never comes before it. ``failure_count`` is the
attempt count; ``billing_period_end_date`` and ``days_past_due`` say nothing about a retry and
are not read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import braintree
from braintree.attribute_getter import AttributeGetter
from braintree.exceptions.configuration_error import ConfigurationError
from braintree.exceptions.invalid_signature_error import InvalidSignatureError

from recovery.domain.models import ContactPoint, Gateway, PaymentFailure, PaymentSucceeded
from recovery.domain.pan import Marker, plain_marker, redact_payload
from recovery.gateways.common import (
    Ignored,
    PayloadError,
    address_postal_code,
    address_state,
    amount_in_range,
    guard_normalised,
    normalise_phone,
    text_or_none,
)
from recovery.gateways.signing import SignatureError
from recovery.settings import Settings

FAILURE_KINDS = frozenset({"subscription_charged_unsuccessfully", "subscription_went_past_due"})
SUCCESS_KINDS = frozenset({"subscription_charged_successfully"})
# Transaction statuses that mean the charge did not go through.
FAILED_STATUSES = frozenset(
    {"processor_declined", "gateway_rejected", "failed", "settlement_declined"}
)
TZ_FIELD_KEYS = ("timezone", "time_zone", "tz")
# Attributes of the package's objects that are plumbing, not notification data.
_SKIP_ATTRS = frozenset({"gateway", "config"})
# A date-only retry is done by the end of that date in the last zone to finish it.
_LAST_ZONE = timezone(timedelta(hours=-12))
_MAX_DEPTH = 32

Normalised = PaymentFailure | PaymentSucceeded | Ignored


def gateway_from_settings(settings: Settings) -> braintree.BraintreeGateway:
    """A gateway object for verifying notifications (no network I/O happens here)."""
    try:
        environment = braintree.Environment.parse_environment(settings.braintree_environment)
    except ConfigurationError:
        known = ", ".join(sorted(braintree.Environment.All))
        raise ValueError(
            f"RECOVERY_BRAINTREE_ENVIRONMENT {settings.braintree_environment!r} is not one of "
            f"{known}"
        ) from None
    return braintree.BraintreeGateway(
        braintree.Configuration(
            environment=environment,
            merchant_id=settings.braintree_merchant_id,
            public_key=settings.braintree_public_key,
            private_key=settings.braintree_private_key.get_secret_value(),
        )
    )


def parse_notification(
    bt_signature: str, bt_payload: str | bytes, *, gateway: braintree.BraintreeGateway
) -> Normalised:
    """Verify one notification and normalise it (card numbers already removed)."""
    return read_notification(bt_signature, bt_payload, gateway=gateway)[0]


def read_notification(
    bt_signature: str | None,
    bt_payload: str | bytes | None,
    *,
    gateway: braintree.BraintreeGateway,
    marker: Marker = plain_marker,
) -> tuple[Normalised, int]:
    """``parse_notification``, and how many card numbers were redacted (to flag the event; the
    package keeps some values twice, raw and as an object, and each copy counts).

    Raises ``SignatureError`` when the signature does not verify with the configured key pair,
    ``PayloadError`` when a verified payload is not a well-formed notification. Neither message
    repeats anything from the payload."""
    if isinstance(bt_payload, str):
        try:
            bt_payload = bt_payload.encode("ascii")
        except UnicodeEncodeError:
            raise SignatureError("payload contains illegal characters") from None
    try:
        notification = gateway.webhook_notification.parse(bt_signature, bt_payload)
    except InvalidSignatureError as exc:
        # The package's messages ("no matching public key", "signature does not match payload
        # - one has been modified"...) never quote the payload.
        raise SignatureError(str(exc) or "invalid signature") from None
    except Exception as exc:
        # The signature matched, so Braintree sent it; whatever the package's XML walk or its
        # resource constructors raise means a malformed payload. The exception text may quote
        # the payload, so only its type is reported.
        raise PayloadError(f"malformed Braintree notification ({type(exc).__name__})") from None
    plain, found = redact_payload(_plain(notification, ()), marker)
    if not isinstance(plain, dict):
        raise PayloadError("malformed Braintree notification")
    # The name is joined from the first and last names: checked again as a whole.
    result, again = guard_normalised(normalise(plain), marker)
    return result, found + again


def normalise(notification: Mapping[str, Any]) -> Normalised:
    """A parsed, PAN-redacted notification (the package's objects as plain data) normalised."""
    kind = text_or_none(notification.get("kind"))
    if kind is None:
        raise PayloadError("notification has no kind")
    timestamp = notification.get("timestamp")
    if not isinstance(timestamp, datetime):
        raise PayloadError("notification has no timestamp")
    occurred_at = _aware(timestamp)
    subscription = notification.get("subscription")
    sub = subscription if isinstance(subscription, Mapping) else None
    sub_id = text_or_none(sub.get("id")) if sub else None
    transactions = _transactions(sub)
    latest = _latest(transactions)
    event_id = _event_id(
        kind,
        text_or_none(notification.get("source_merchant_id")),
        sub_id,
        text_or_none(latest.get("id")) if latest else None,
        occurred_at,
    )
    if kind not in FAILURE_KINDS and kind not in SUCCESS_KINDS:
        return Ignored(
            gateway=Gateway.braintree,
            event_id=event_id,
            event_type=kind[:128],
            reason=f"kind {kind!r} is not a subscription payment failure or success",
        )
    if sub is None or sub_id is None:
        raise PayloadError(f"{kind} notification has no subscription id")
    key = business_key(sub_id, _date(sub.get("billing_period_start_date")), latest)
    if kind in SUCCESS_KINDS:
        amount = _decimal(latest.get("amount")) if latest else None
        return PaymentSucceeded(
            gateway=Gateway.braintree,
            event_id=event_id,
            event_type=kind,
            business_key=key,
            amount=amount,
            currency=_currency(latest),
            occurred_at=occurred_at,
        )
    return _failure(kind, event_id, key, sub, latest, occurred_at)


def business_key(
    subscription_id: str, period_start: date | None, latest: Mapping[str, Any] | None
) -> str:
    """The subscription and its billing period; see the module docstring for why."""
    if period_start is not None:
        return f"{subscription_id}@{period_start.isoformat()}"
    txn_id = text_or_none(latest.get("id")) if latest else None
    return txn_id or subscription_id


def _failure(
    kind: str,
    event_id: str,
    key: str,
    sub: Mapping[str, Any],
    latest: Mapping[str, Any] | None,
    occurred_at: datetime,
) -> PaymentFailure:
    # A went_past_due notice may list a later, successful transaction: its codes say nothing
    # about the failure.
    failed = latest if latest and latest.get("status") in FAILED_STATUSES else None
    txn = latest or {}
    customer = _obj(txn.get("customer_details"))
    billing = _obj(txn.get("billing_details"))
    country = (text_or_none(billing.get("country_code_alpha2")) or "US").upper()[:2]
    phone = customer.get("phone")
    e164, problem = normalise_phone(phone, country)
    contact = ContactPoint(
        phone_e164=e164,
        country=country,
        state=address_state(billing.get("region"), country),
        postal_code=address_postal_code(billing.get("postal_code")),
        explicit_tz=_tz(customer.get("custom_fields"), txn.get("custom_fields")),
    )
    amount, currency = _amount_owed(sub, failed or {}, txn)
    missing = tuple(
        name for name, value in (("amount", amount), ("currency", currency)) if value is None
    )
    failure_count = sub.get("failure_count")
    return PaymentFailure(
        gateway=Gateway.braintree,
        event_id=event_id,
        event_type=kind,
        business_key=key,
        customer_ref=text_or_none(customer.get("id")),
        customer_name=_name(customer) or _name(billing),
        contact=contact,
        phone_raw=text_or_none(phone) if problem else None,
        phone_problem=problem,
        failure_code=_failure_code(failed),
        decline_code=text_or_none(failed.get("processor_response_code")) if failed else None,
        advice_code=text_or_none(failed.get("merchant_advice_code")) if failed else None,
        failure_message=(
            text_or_none(failed.get("processor_response_text"))
            or text_or_none(failed.get("additional_processor_response"))
            if failed
            else None
        ),
        amount=amount,
        currency=currency,
        attempt_count=failure_count
        if isinstance(failure_count, int) and not isinstance(failure_count, bool)
        else None,
        occurred_at=occurred_at,
        missing_fields=missing,
        next_retry_at=next_retry(sub.get("next_billing_date"), occurred_at),
    )


def next_retry(value: Any, occurred_at: datetime) -> datetime | None:
    """The latest instant the retry Braintree plans for ``next_billing_date`` can happen (the
    end of that date at UTC-12), when that date is after the failure's; else None."""
    day = _date(value)
    if day is None or day <= occurred_at.date():
        return None
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=_LAST_ZONE).astimezone(UTC)


def _failure_code(failed: Mapping[str, Any] | None) -> str | None:
    if not failed:
        return None
    for field in ("processor_response_type", "gateway_rejection_reason", "status"):
        value = text_or_none(failed.get(field))
        # "approved" is the response type of an authorised charge that failed later on.
        if value and value != "approved":
            return value
    return None


def _amount_owed(
    sub: Mapping[str, Any], failed: Mapping[str, Any], latest: Mapping[str, Any]
) -> tuple[Decimal | None, str | None]:
    """The subscription's balance when positive (it accumulates every failed charge), else the
    failed transaction's amount. Braintree amounts are already in major units; the currency is
    the latest transaction's (the merchant account's otherwise, which the notification does not
    carry: then it is left unknown and recorded as missing)."""
    balance = _decimal(sub.get("balance"))
    amount = balance if balance is not None and balance > 0 else _decimal(failed.get("amount"))
    return amount, _currency(latest)


def _currency(txn: Mapping[str, Any] | None) -> str | None:
    code = text_or_none(txn.get("currency_iso_code")) if txn else None
    return code.lower() if code else None


def _transactions(sub: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    items = sub.get("transactions") if sub else None
    if not isinstance(items, list):
        return []
    return [item for item in items if isinstance(item, Mapping)]


def _latest(transactions: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The most recent transaction: by creation time when every one has it, else the first
    (Braintree lists a subscription's transactions newest first)."""
    if not transactions:
        return None
    stamps = [txn.get("created_at") for txn in transactions]
    if all(isinstance(stamp, datetime) for stamp in stamps):
        return max(transactions, key=lambda txn: _aware(txn["created_at"]))
    return transactions[0]


def _event_id(
    kind: str,
    source_merchant: str | None,
    subscription_id: str | None,
    transaction_id: str | None,
    at: datetime,
) -> str:
    moment = transaction_id or at.isoformat()
    identity = "|".join((kind, source_merchant or "", subscription_id or "", moment))
    return "btn_" + hashlib.sha256(identity.encode()).hexdigest()[:40]


def _name(party: Mapping[str, Any]) -> str | None:
    parts = [text_or_none(party.get("first_name")), text_or_none(party.get("last_name"))]
    joined = " ".join(part for part in parts if part)
    return joined or None


def _tz(*field_sets: Any) -> str | None:
    for fields in field_sets:
        if isinstance(fields, Mapping):
            for key in TZ_FIELD_KEYS:
                value = text_or_none(fields.get(key))
                if value:
                    return value
    return None


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _aware(value: datetime) -> datetime:
    # The package parses Braintree's UTC timestamps into naive datetimes.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return _aware(value).date()
    if isinstance(value, date):
        return value
    text = text_or_none(value)
    if text:
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            return None
    return None


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return amount_in_range(number)


def _plain(value: Any, ancestors: tuple[int, ...]) -> Any:
    """The package's objects as dicts and lists, so that the PAN guard sees every string.

    Decimals become strings (a card number could hide in an "amount"); dates stay dates (they
    cannot hold one). Anything else that is not data (the gateway, callables) is dropped."""
    if value is None or isinstance(value, bool | int | str | datetime | date):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float):
        return value
    if id(value) in ancestors or len(ancestors) >= _MAX_DEPTH:
        return None
    inner = (*ancestors, id(value))
    if isinstance(value, Mapping):
        return {str(key): _plain(item, inner) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, inner) for item in value]
    if isinstance(value, AttributeGetter):
        return {
            key: _plain(item, inner)
            for key, item in vars(value).items()
            if not key.startswith("_") and key not in _SKIP_ATTRS and not callable(item)
        }
    return None

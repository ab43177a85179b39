"""PayPal: verify a webhook offline with PayPal's signing certificate, and normalise the
subscription payment events into the project's models.

Verification (no call to PayPal's ``verify-webhook-signature`` API): the ``PAYPAL-TRANSMISSION-SIG``
header is an RSA-SHA256 (PKCS #1 v1.5) signature, by the certificate at ``PAYPAL-CERT-URL``, over
``"{transmission id}|{transmission time}|{webhook id}|{CRC32 of the raw body, unsigned decimal}"``.

The certificate is trusted because of where it comes from, so its URL is checked before anything
is fetched: ``https``, no user info, the default port, and a host that is one of PayPal's API hosts
(``api.paypal.com``, ``api.sandbox.paypal.com``, ``api-m.paypal.com``,
``api-m.sandbox.paypal.com``) or any other host under ``paypal.com``. PayPal owns the whole
``paypal.com`` zone and has moved its API between hosts before (``api`` to ``api-m``), so the
suffix rule keeps verification working across such a move, while a look-alike such as
``paypal.com.example`` or ``evilpaypal.com`` is refused. The default fetcher verifies TLS and does
not follow redirects, so the bytes really come from that host.

Business keys. A failure (``BILLING.SUBSCRIPTION.PAYMENT.FAILED``) is keyed
``"{subscription id}@{time of the last successful payment}"`` (the subscription's start time when
it has never been paid): every retry of the same unpaid period reports the same last successful
payment, so PayPal's retries update one case instead of each opening its own, and the next time
the subscription falls behind, after a payment went through, a new case opens. A success
(``PAYMENT.SALE.COMPLETED``) only names the subscription (``billing_agreement_id``) and carries
nothing about the period it pays, so no key computed from it alone can equal the failure's: its
key is the subscription id, and closing the failure's case needs the store to match a success
keyed ``S`` to the open cases keyed ``S@...`` (``subscription_of`` gives ``S`` from a failure's
key). A key of the subscription id alone on both sides would close the case, but would also make
every later failure of that subscription land on the closed case and be dropped.

Next automatic retry: ``billing_info.last_failed_payment.next_payment_retry_time``, "the time
when the retry attempt for the failed payment occurs" (PayPal Subscriptions API v1,
``failed_payment_details``, ``developer.paypal.com/docs/api/subscriptions/v1/``), becomes
``PaymentFailure.next_retry_at``. ``billing_info.next_billing_time`` is the next billing cycle,
not a retry of the failed payment, and ``failed_payments_count`` is the attempt count.
"""

from __future__ import annotations

import base64
import binascii
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from recovery.domain.models import ContactPoint, Gateway, PaymentFailure, PaymentSucceeded
from recovery.gateways.common import (
    Ignored,
    PayloadError,
    address_postal_code,
    address_state,
    amount_in_range,
    normalise_phone,
    text_or_none,
)
from recovery.gateways.signing import SignatureError

CertificateFetcher = Callable[[str], bytes]

FAILURE_TYPE = "BILLING.SUBSCRIPTION.PAYMENT.FAILED"
SUCCESS_TYPE = "PAYMENT.SALE.COMPLETED"
SUSPENDED_TYPE = "BILLING.SUBSCRIPTION.SUSPENDED"

PAYPAL_API_HOSTS = frozenset(
    {"api.paypal.com", "api.sandbox.paypal.com", "api-m.paypal.com", "api-m.sandbox.paypal.com"}
)
PAYPAL_DOMAIN_SUFFIX = ".paypal.com"
AUTH_ALGO = "SHA256withRSA"
HEADER_ID = "PAYPAL-TRANSMISSION-ID"
HEADER_TIME = "PAYPAL-TRANSMISSION-TIME"
HEADER_SIG = "PAYPAL-TRANSMISSION-SIG"
HEADER_CERT_URL = "PAYPAL-CERT-URL"
HEADER_AUTH_ALGO = "PAYPAL-AUTH-ALGO"
MAX_CERTIFICATE_BYTES = 64 * 1024
KEY_SEPARATOR = "@"

Normalised = PaymentFailure | PaymentSucceeded | Ignored


class CertificateUnavailable(Exception):
    """PayPal's certificate could not be fetched right now (network, timeout, 5xx): answer 503
    so PayPal delivers again, rather than rejecting the event."""


# --- verification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cached:
    certificate: x509.Certificate
    fetched_at: datetime


class CertificateCache:
    """PayPal signing certificates by URL: at most ``max_size`` (least recently used evicted),
    each kept ``ttl`` after it was fetched. Safe to share between threads."""

    def __init__(self, *, max_size: int = 16, ttl: timedelta = timedelta(hours=12)) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        self.max_size = max_size
        self.ttl = ttl
        self._entries: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, url: str, *, now: datetime) -> x509.Certificate | None:
        with self._lock:
            entry = self._entries.get(url)
            if entry is None:
                return None
            if not entry.fetched_at <= now < entry.fetched_at + self.ttl:
                del self._entries[url]
                return None
            self._entries.move_to_end(url)
            return entry.certificate

    def put(self, url: str, certificate: x509.Certificate, *, now: datetime) -> None:
        with self._lock:
            self._entries[url] = _Cached(certificate, now)
            self._entries.move_to_end(url)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def make_fetcher(
    *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None
) -> CertificateFetcher:
    """A fetcher over httpx: TLS verified, no redirects, at most 64 KiB. Network errors, timeouts,
    429 and 5xx raise ``CertificateUnavailable``; any other non-200 raises ``SignatureError``
    (the header points at no certificate)."""

    def fetch(url: str) -> bytes:
        try:
            with httpx.Client(
                timeout=timeout, follow_redirects=False, transport=transport
            ) as client:
                with client.stream("GET", url) as response:
                    if response.status_code == 429 or response.status_code >= 500:
                        raise CertificateUnavailable(
                            f"PayPal certificate fetch answered {response.status_code}"
                        )
                    if response.status_code != 200:
                        raise SignatureError(
                            f"{HEADER_CERT_URL} answered {response.status_code}, not a certificate"
                        )
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > MAX_CERTIFICATE_BYTES:
                            raise SignatureError(f"{HEADER_CERT_URL} body is too large")
                    return bytes(body)
        except httpx.HTTPError as exc:
            raise CertificateUnavailable(
                f"PayPal certificate fetch failed: {type(exc).__name__}"
            ) from None

    return fetch


def fetch_certificate(url: str) -> bytes:
    """The default fetcher (``make_fetcher()`` with a 10 s timeout)."""
    return make_fetcher()(url)


def check_certificate_url(url: str) -> None:
    """Refuse a certificate URL that is not ``https`` on a PayPal host (module docstring)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise SignatureError(f"{HEADER_CERT_URL} is not a valid URL") from None
    if parts.scheme.lower() != "https":
        raise SignatureError(f"{HEADER_CERT_URL} must use https")
    if parts.username is not None or parts.password is not None:
        raise SignatureError(f"{HEADER_CERT_URL} must not carry user info")
    if port not in (None, 443):
        raise SignatureError(f"{HEADER_CERT_URL} must use the default https port")
    host = (parts.hostname or "").lower()
    if not (host in PAYPAL_API_HOSTS or host.endswith(PAYPAL_DOMAIN_SUFFIX)):
        raise SignatureError(f"{HEADER_CERT_URL} host {host or '(none)'!r} is not a PayPal host")


def verify(
    headers: Mapping[str, str],
    body: bytes,
    *,
    webhook_id: str,
    now: datetime,
    fetch: CertificateFetcher,
    cache: CertificateCache | None = None,
    tolerance_seconds: int = 300,
) -> None:
    """Accept ``body`` only when PayPal signed it for ``webhook_id`` within the tolerance of
    ``now``. Raises ``SignatureError`` naming the header at fault, or ``CertificateUnavailable``.

    Cheap checks come first, and the certificate URL is vetted before any fetch, so a forged
    request never makes this process call a host of the sender's choosing."""
    if not webhook_id:
        raise ValueError("no PayPal webhook id configured")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    lowered = {key.lower(): value for key, value in headers.items()}

    def header(name: str) -> str:
        value = lowered.get(name.lower())
        value = value.strip() if isinstance(value, str) else ""
        if not value:
            raise SignatureError(f"missing {name} header")
        return value

    transmission_id = header(HEADER_ID)
    transmission_time = header(HEADER_TIME)
    signature_b64 = header(HEADER_SIG)
    cert_url = header(HEADER_CERT_URL)
    if header(HEADER_AUTH_ALGO) != AUTH_ALGO:
        raise SignatureError(f"{HEADER_AUTH_ALGO} must be {AUTH_ALGO}")
    sent_at = _parse_time(transmission_time)
    if sent_at is None:
        raise SignatureError(f"{HEADER_TIME} is not an ISO 8601 time with a zone")
    if abs((now - sent_at).total_seconds()) > tolerance_seconds:
        raise SignatureError(f"{HEADER_TIME} outside the {tolerance_seconds} s tolerance")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{HEADER_SIG} is not base64") from None
    check_certificate_url(cert_url)

    certificate = cache.get(cert_url, now=now) if cache is not None else None
    if certificate is None:
        certificate = _load_certificate(fetch(cert_url))
        if cache is not None:
            cache.put(cert_url, certificate, now=now)
    if not certificate.not_valid_before_utc <= sent_at <= certificate.not_valid_after_utc:
        raise SignatureError(f"{HEADER_CERT_URL} certificate is not valid at {HEADER_TIME}")
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SignatureError(f"{HEADER_CERT_URL} certificate does not hold an RSA key")
    message = f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()
    try:
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureError(f"{HEADER_SIG} does not match the body") from None


def _load_certificate(data: bytes) -> x509.Certificate:
    """The first (leaf) certificate of a PEM chain, or a DER certificate."""
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificates(data)[0]
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise SignatureError(f"{HEADER_CERT_URL} did not serve a certificate") from None


# --- normalisation ------------------------------------------------------------------------------


def normalise(event: Mapping[str, Any]) -> Normalised:
    """One PayPal webhook event (already PAN-redacted) as a failure, a success, or ignored.

    ``BILLING.SUBSCRIPTION.SUSPENDED`` is ignored: PayPal suspends after the failures it has
    already reported (each one a ``PAYMENT.FAILED`` event that opened or updated the case), or
    because the merchant chose to, which is no payment failure at all."""
    event_id, event_type = event_identity(event)
    created = _parse_time(event.get("create_time"))
    if created is None:
        raise PayloadError("event has no ISO 8601 'create_time'")
    resource = event.get("resource")
    if not isinstance(resource, Mapping):
        raise PayloadError("event has no 'resource' object")
    if event_type == FAILURE_TYPE:
        return _failure(event_id, event_type, resource, created)
    if event_type == SUCCESS_TYPE:
        subscription_id = text_or_none(resource.get("billing_agreement_id"))
        if subscription_id is None:
            return Ignored(
                gateway=Gateway.paypal,
                event_id=event_id,
                event_type=event_type,
                reason="sale is not a subscription payment (no billing_agreement_id)",
            )
        amount = _obj(resource.get("amount"))
        value, currency = _money(amount.get("total"), amount.get("currency"))
        return PaymentSucceeded(
            gateway=Gateway.paypal,
            event_id=event_id,
            event_type=event_type,
            business_key=subscription_id,
            amount=value,
            currency=currency,
            occurred_at=_parse_time(resource.get("create_time")) or created,
        )
    reason = (
        "a suspension follows failures already reported, or is the merchant's choice"
        if event_type == SUSPENDED_TYPE
        else f"event type {event_type!r} is not a subscription payment failure or success"
    )
    return Ignored(gateway=Gateway.paypal, event_id=event_id, event_type=event_type, reason=reason)


def event_identity(event: Mapping[str, Any]) -> tuple[str, str]:
    """The event id (``WH-...``) and type, for recording a delivery that cannot be normalised."""
    event_id = text_or_none(event.get("id"))
    event_type = text_or_none(event.get("event_type"))
    if event_id is None:
        raise PayloadError("event has no string 'id'")
    if event_type is None:
        raise PayloadError("event has no string 'event_type'")
    if len(event_id) > 255 or len(event_type) > 128:
        raise PayloadError("event id or type is too long")
    return event_id, event_type


def failure_key(subscription_id: str, episode_start: str) -> str:
    return f"{subscription_id}{KEY_SEPARATOR}{episode_start}"


def subscription_of(business_key: str) -> str:
    """The subscription id of a PayPal business key (a success's key is the id itself)."""
    return business_key.split(KEY_SEPARATOR, 1)[0]


def _failure(
    event_id: str, event_type: str, sub: Mapping[str, Any], created: datetime
) -> PaymentFailure:
    subscription_id = text_or_none(sub.get("id"))
    if subscription_id is None:
        raise PayloadError("subscription resource has no 'id'")
    billing = _obj(sub.get("billing_info"))
    last_failed = _obj(billing.get("last_failed_payment"))
    last_paid = _obj(billing.get("last_payment"))
    episode = _key_time(last_paid.get("time")) or _key_time(sub.get("start_time")) or "unpaid"

    subscriber = _obj(sub.get("subscriber"))
    shipping = _obj(subscriber.get("shipping_address"))
    address = _obj(shipping.get("address"))
    country = (text_or_none(address.get("country_code")) or "US").upper()[:2]
    phone = _phone(subscriber, shipping)
    e164, problem = normalise_phone(phone, country)
    contact = ContactPoint(
        phone_e164=e164,
        country=country,
        state=address_state(address.get("admin_area_1"), country),
        postal_code=address_postal_code(address.get("postal_code")),
    )
    amount, currency = _amount_owed(billing, last_failed)
    missing = tuple(
        name for name, value in (("amount", amount), ("currency", currency)) if value is None
    )
    count = billing.get("failed_payments_count")
    occurred = _parse_time(last_failed.get("time")) or created
    return PaymentFailure(
        gateway=Gateway.paypal,
        event_id=event_id,
        event_type=event_type,
        business_key=failure_key(subscription_id, episode),
        customer_ref=text_or_none(subscriber.get("payer_id")),
        customer_name=_name(subscriber, shipping),
        contact=contact,
        phone_raw=phone if problem else None,
        phone_problem=problem,
        failure_code=text_or_none(last_failed.get("reason_code")),
        amount=amount,
        currency=currency,
        attempt_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        occurred_at=occurred,
        missing_fields=missing,
        next_retry_at=_after(_parse_time(last_failed.get("next_payment_retry_time")), occurred),
    )


def _after(at: datetime | None, occurred: datetime) -> datetime | None:
    return at if at is not None and at > occurred else None


def _amount_owed(
    billing: Mapping[str, Any], last_failed: Mapping[str, Any]
) -> tuple[Decimal | None, str | None]:
    """The outstanding balance when positive (PayPal adds failed payments to it unless the plan
    says otherwise), else the failed payment's amount. PayPal amounts are in major units."""
    balance = _obj(billing.get("outstanding_balance"))
    value, currency = _money(balance.get("value"), balance.get("currency_code"))
    if value is not None and value > 0:
        return value, currency
    failed = _obj(last_failed.get("amount"))
    return _money(failed.get("value"), failed.get("currency_code"))


def _phone(subscriber: Mapping[str, Any], shipping: Mapping[str, Any]) -> str | None:
    """The subscriber's phone (PayPal sends only the national number there), else the shipping
    phone, which may carry its country calling code."""
    for holder in (_obj(subscriber.get("phone")).get("phone_number"), shipping.get("phone_number")):
        number = _obj(holder)
        national = text_or_none(number.get("national_number"))
        if national:
            calling_code = text_or_none(number.get("country_code"))
            return f"+{calling_code.lstrip('+')}{national}" if calling_code else national
    return None


def _name(subscriber: Mapping[str, Any], shipping: Mapping[str, Any]) -> str | None:
    name = _obj(subscriber.get("name"))
    parts = [text_or_none(name.get("given_name")), text_or_none(name.get("surname"))]
    joined = " ".join(part for part in parts if part)
    return joined or text_or_none(_obj(shipping.get("name")).get("full_name"))


def _money(value: Any, currency: Any) -> tuple[Decimal | None, str | None]:
    code = text_or_none(currency)
    code = code.lower() if code else None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None, code
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None, code
    return amount_in_range(amount), code


def _parse_time(value: Any) -> datetime | None:
    text = text_or_none(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None


def _key_time(value: Any) -> str | None:
    """A time as it goes into a business key: UTC, whole seconds, so the same instant written
    with or without fractions or an offset gives the same key."""
    parsed = _parse_time(value)
    if parsed is not None:
        return parsed.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = text_or_none(value)
    return text[:64] if text else None


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}

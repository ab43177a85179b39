"""PayPal: verify a webhook (offline with PayPal's signing certificate, or with PayPal's
``verify-webhook-signature`` API), and normalise the subscription payment events into the
project's models.

Offline verification: the ``PAYPAL-TRANSMISSION-SIG`` header is an RSA-SHA256 (PKCS #1 v1.5)
signature, by the certificate at ``PAYPAL-CERT-URL``, over ``"{transmission id}|{transmission
time}|{webhook id}|{CRC32 of the raw body, unsigned decimal}"``. Every cheap check comes first:
the five headers within bounds, the algorithm exactly ``SHA256withRSA``, the transmission time
within the tolerance of now, the signature strict base64, and the certificate URL exactly
``https://<host>/v1/notifications/certs/CERT-<id>`` with the host one of PayPal's certificate
hosts for the environment (``api.paypal.com``/``api-m.paypal.com`` live,
``api.sandbox.paypal.com``/``api-m.sandbox.paypal.com`` sandbox; a setting). Only then is the
certificate fetched (one shared client, TLS verified, no redirects, 64 KiB at most, a cap on
concurrent fetches, one fetch per URL at a time), and only a body that is exactly a PEM chain
is read. The leaf must chain to a pinned trust anchor (DigiCert High Assurance EV Root CA and
DigiCert Global Root G2, shipped in ``recovery/data/paypal/`` with the intermediate PayPal's
leaf is issued by; never the system's or certifi's store) and name the environment's
``messageverificationcerts`` host in its subjectAltName and common name, with an RSA key of
2048 bits or more. Verified certificates are cached by URL until they expire (a day at most),
failures for a few minutes, so a flood of forged requests costs one fetch.

The signature covers only a CRC32 of the body, which anyone can match with another body, so a
captured delivery could be replayed with a body of the attacker's choice. Each verified
transmission is therefore returned (``Transmission``) and the store keeps its id with a
digest of the body: the same id with another body is refused (``recovery.store.inbox``).

With ``RECOVERY_PAYPAL_VERIFICATION=api`` the signature is checked by PayPal's
``POST /v1/notifications/verify-webhook-signature`` instead (OAuth client credentials; the
raw body is sent verbatim as ``webhook_event``; only ``verification_status: SUCCESS`` passes),
after the same cheap checks, and with the same replay protection.

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
import hashlib
import json
import logging
import re
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

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

log = logging.getLogger("recovery.gateways.paypal")

CertificateFetcher = Callable[[str], bytes]
Environment = Literal["live", "sandbox"]

FAILURE_TYPE = "BILLING.SUBSCRIPTION.PAYMENT.FAILED"
SUCCESS_TYPE = "PAYMENT.SALE.COMPLETED"
SUSPENDED_TYPE = "BILLING.SUBSCRIPTION.SUSPENDED"

# Where PayPal serves its webhook signing certificates, and the name its certificate carries.
CERT_HOSTS: dict[str, tuple[str, ...]] = {
    "live": ("api.paypal.com", "api-m.paypal.com"),
    "sandbox": ("api.sandbox.paypal.com", "api-m.sandbox.paypal.com"),
}
LEAF_NAMES = {
    "live": "messageverificationcerts.paypal.com",
    "sandbox": "messageverificationcerts.sandbox.paypal.com",
}
API_BASES = {"live": "https://api-m.paypal.com", "sandbox": "https://api-m.sandbox.paypal.com"}
CERT_PATH = re.compile(r"/v1/notifications/certs/CERT-[A-Za-z0-9-]{1,64}")
AUTH_ALGO = "SHA256withRSA"
HEADER_ID = "PAYPAL-TRANSMISSION-ID"
HEADER_TIME = "PAYPAL-TRANSMISSION-TIME"
HEADER_SIG = "PAYPAL-TRANSMISSION-SIG"
HEADER_CERT_URL = "PAYPAL-CERT-URL"
HEADER_AUTH_ALGO = "PAYPAL-AUTH-ALGO"
# Bounds from the verify-webhook-signature request schema (a signature of a 4096-bit key is
# 684 characters of base64; PayPal's 2048-bit key gives 344).
HEADER_LIMITS = {HEADER_ID: 50, HEADER_TIME: 100, HEADER_SIG: 1024, HEADER_CERT_URL: 500}
MAX_CERTIFICATE_BYTES = 64 * 1024
MIN_RSA_BITS = 2048
KEY_SEPARATOR = "@"
# A body that is a PEM chain and nothing else: one to four certificates, whitespace around.
_PEM_CHAIN = re.compile(
    rb"\s*(?:-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]{1,16384}"
    rb"-----END CERTIFICATE-----\s*){1,4}"
)
DATA = resources.files("recovery") / "data" / "paypal"

Normalised = PaymentFailure | PaymentSucceeded | Ignored


class CertificateUnavailable(Exception):
    """PayPal could not be asked right now (network, timeout, 429, 5xx, too many fetches at
    once): answer 503 so PayPal delivers again, rather than rejecting the event."""


# --- trust ---------------------------------------------------------------------------------------


def load_certificates(source: Path | bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM file (comment lines between them are allowed)."""
    data = source if isinstance(source, bytes) else source.read_bytes()
    try:
        found = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ValueError(f"no PEM certificates in {source!s:.200}") from exc
    return found


def shipped_anchors() -> list[x509.Certificate]:
    """The pinned roots: DigiCert High Assurance EV Root CA and DigiCert Global Root G2."""
    return load_certificates((DATA / "trust_anchors.pem").read_bytes())


def shipped_intermediates() -> list[x509.Certificate]:
    """DigiCert SHA2 Extended Validation Server CA, which issues PayPal's signing certificate
    (PayPal's cert URL serves the leaf alone)."""
    return load_certificates((DATA / "intermediates.pem").read_bytes())


@dataclass(frozen=True)
class Trust:
    """What a PayPal signing certificate must satisfy."""

    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]
    leaf_name: str
    cert_hosts: frozenset[str]

    @classmethod
    def for_environment(
        cls,
        environment: Environment,
        *,
        anchors: Iterable[x509.Certificate] | None = None,
        intermediates: Iterable[x509.Certificate] | None = None,
        cert_hosts: Iterable[str] | None = None,
    ) -> Trust:
        hosts = [h.strip().lower().rstrip(".") for h in (cert_hosts or CERT_HOSTS[environment])]
        chosen = tuple(shipped_anchors() if anchors is None else anchors)
        if not chosen:
            raise ValueError("no PayPal trust anchors configured")
        return cls(
            anchors=chosen,
            intermediates=tuple(
                shipped_intermediates() if intermediates is None else intermediates
            ),
            leaf_name=LEAF_NAMES[environment],
            cert_hosts=frozenset(h for h in hosts if h),
        )


def check_certificate_url(url: str, hosts: frozenset[str]) -> None:
    """Refuse a certificate URL that is not ``https://<host>/v1/notifications/certs/CERT-<id>``
    on one of ``hosts``: no user info, the default port, no query or fragment, printable
    ASCII only (no tab, no space, no IDNA)."""
    if not url.isascii() or not url.isprintable() or " " in url:
        raise SignatureError(f"{HEADER_CERT_URL} is not a plain https URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise SignatureError(f"{HEADER_CERT_URL} is not a valid URL") from None
    if parts.scheme != "https" or not url.startswith("https://"):
        raise SignatureError(f"{HEADER_CERT_URL} must use https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise SignatureError(f"{HEADER_CERT_URL} must not carry user info")
    if port not in (None, 443):
        raise SignatureError(f"{HEADER_CERT_URL} must use the default https port")
    host = (parts.hostname or "").lower()
    if host not in hosts:
        raise SignatureError(
            f"{HEADER_CERT_URL} host {host[:80] or '(none)'!r} is not a PayPal certificate host"
        )
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise SignatureError(f"{HEADER_CERT_URL} must not carry a query or a fragment")
    if not CERT_PATH.fullmatch(parts.path):
        raise SignatureError(f"{HEADER_CERT_URL} path is not PayPal's certificate path")


def verified_leaf(body: bytes, *, trust: Trust, now: datetime) -> x509.Certificate:
    """The signing certificate of a cert-URL body, once the body is exactly a PEM chain and its
    first certificate chains to a trust anchor (the body's other certificates and the shipped
    intermediates as untrusted helpers) as the environment's PayPal signing host."""
    if not _PEM_CHAIN.fullmatch(body):
        raise SignatureError(f"{HEADER_CERT_URL} did not serve a PEM certificate chain")
    try:
        certificates = x509.load_pem_x509_certificates(body)
    except ValueError:
        raise SignatureError(f"{HEADER_CERT_URL} did not serve a PEM certificate chain") from None
    leaf, served = certificates[0], certificates[1:]
    try:
        verifier = (
            PolicyBuilder()
            .store(Store(list(trust.anchors)))
            .time(now)
            .max_chain_depth(3)
            .build_server_verifier(x509.DNSName(trust.leaf_name))
        )
        verifier.verify(leaf, [*served, *trust.intermediates])
    except VerificationError as exc:
        raise SignatureError(
            f"{HEADER_CERT_URL} certificate is not PayPal's signing certificate ({str(exc)[:160]})"
        ) from None
    names = [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if names != [trust.leaf_name]:
        raise SignatureError(f"{HEADER_CERT_URL} certificate does not name {trust.leaf_name}")
    key = leaf.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        raise SignatureError(
            f"{HEADER_CERT_URL} certificate does not hold an RSA key of 2048 bits or more"
        )
    return leaf


# --- the certificate cache -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Cached:
    certificate: x509.Certificate | None
    failure: SignatureError | CertificateUnavailable | None
    until: datetime


class CertificateCache:
    """Cert-URL outcomes by URL: a verified certificate until it expires (``ttl`` at most), a
    refusal for ``failure_ttl``, an unavailable certificate for ``unavailable_ttl``. At most
    ``max_size`` URLs (least recently used evicted). Safe to share between threads."""

    def __init__(
        self,
        *,
        max_size: int = 64,
        ttl: timedelta = timedelta(hours=24),
        failure_ttl: timedelta = timedelta(minutes=5),
        unavailable_ttl: timedelta = timedelta(seconds=15),
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        if min(ttl, failure_ttl, unavailable_ttl) <= timedelta(0):
            raise ValueError("cache lifetimes must be positive")
        self.max_size = max_size
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.unavailable_ttl = unavailable_ttl
        self._entries: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, url: str, *, now: datetime) -> _Cached | None:
        with self._lock:
            entry = self._entries.get(url)
            if entry is None:
                return None
            if now >= entry.until:
                del self._entries[url]
                return None
            self._entries.move_to_end(url)
            return entry

    def put(self, url: str, certificate: x509.Certificate, *, now: datetime) -> None:
        until = min(now + self.ttl, certificate.not_valid_after_utc)
        self._store(url, _Cached(certificate, None, until))

    def put_failure(
        self, url: str, failure: SignatureError | CertificateUnavailable, *, now: datetime
    ) -> None:
        lifetime = (
            self.unavailable_ttl
            if isinstance(failure, CertificateUnavailable)
            else self.failure_ttl
        )
        self._store(url, _Cached(None, failure, now + lifetime))

    def _store(self, url: str, entry: _Cached) -> None:
        with self._lock:
            self._entries[url] = entry
            self._entries.move_to_end(url)
            while len(self._entries) > self.max_size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class HttpFetcher:
    """Fetches cert URLs over one shared httpx client: TLS verified, no redirects, at most
    64 KiB. Network errors, timeouts, 429 and 5xx raise ``CertificateUnavailable``; any other
    non-200 raises ``SignatureError`` (the header points at no certificate)."""

    def __init__(
        self, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._timeout = timeout
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def _shared(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self._timeout,
                    follow_redirects=False,
                    transport=self._transport,
                    headers={"Accept": "application/x-pem-file"},
                )
            return self._client

    def __call__(self, url: str) -> bytes:
        try:
            with self._shared().stream("GET", url) as response:
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
        except httpx.InvalidURL:
            raise SignatureError(f"{HEADER_CERT_URL} is not a valid URL") from None
        except httpx.HTTPError as exc:
            raise CertificateUnavailable(
                f"PayPal certificate fetch failed: {type(exc).__name__}"
            ) from None

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


# --- PayPal's verify-webhook-signature API -----------------------------------------------------


class SignatureApi:
    """PayPal's ``POST /v1/notifications/verify-webhook-signature``, with an OAuth token
    (client credentials) kept until shortly before it expires."""

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("PayPal API verification needs a client id and secret")
        self._base = base_url.rstrip("/")
        self._auth = (client_id, client_secret)
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)
        self._monotonic = monotonic
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def _bearer(self) -> str:
        with self._lock:
            if self._token is not None and self._monotonic() < self._token[1]:
                return self._token[0]
            response = self._client.post(
                f"{self._base}/v1/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=self._auth,
                headers={"Accept": "application/json"},
            )
            if response.status_code == 429 or response.status_code >= 500:
                raise CertificateUnavailable(
                    f"PayPal token request answered {response.status_code}"
                )
            if response.status_code != 200:
                # Our credentials, not the sender's fault: PayPal retries once this is fixed.
                log.error("PayPal refused the client credentials (%d)", response.status_code)
                raise CertificateUnavailable("PayPal refused the client credentials")
            try:
                document = response.json()
                token = str(document["access_token"])
                lifetime = float(document.get("expires_in", 300))
            except (ValueError, KeyError, TypeError):
                raise CertificateUnavailable("PayPal token answer unreadable") from None
            self._token = (token, self._monotonic() + max(0.0, lifetime - 60))
            return token

    def check(self, headers: Mapping[str, str], body: bytes, *, webhook_id: str) -> None:
        """Raise ``SignatureError`` unless PayPal answers SUCCESS for this delivery."""
        try:
            fields = {
                "auth_algo": headers[HEADER_AUTH_ALGO],
                "cert_url": headers[HEADER_CERT_URL],
                "transmission_id": headers[HEADER_ID],
                "transmission_sig": headers[HEADER_SIG],
                "transmission_time": headers[HEADER_TIME],
                "webhook_id": webhook_id,
            }
            # The event verbatim: PayPal checks the CRC32 of exactly these bytes.
            document = json.dumps(fields)[:-1] + ',"webhook_event":' + body.decode("utf-8") + "}"
            response = self._client.post(
                f"{self._base}/v1/notifications/verify-webhook-signature",
                content=document.encode("utf-8"),
                headers={
                    "Authorization": f"Bearer {self._bearer()}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
            )
        except httpx.HTTPError as exc:
            raise CertificateUnavailable(f"PayPal API unreachable: {type(exc).__name__}") from None
        if response.status_code == 401:
            with self._lock:
                self._token = None
            raise CertificateUnavailable("PayPal API token refused; retry")
        if response.status_code == 429 or response.status_code >= 500:
            raise CertificateUnavailable(f"PayPal API answered {response.status_code}")
        if response.status_code != 200:
            raise SignatureError(
                f"PayPal API refused the verification request ({response.status_code})"
            )
        try:
            status = response.json().get("verification_status")
        except (ValueError, AttributeError):
            raise CertificateUnavailable("PayPal API answer unreadable") from None
        if status != "SUCCESS":
            raise SignatureError("PayPal API says the signature does not verify")

    def close(self) -> None:
        self._client.close()


# --- the verifier ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transmission:
    """A verified delivery's transmission, for replay protection: its id and a digest of its
    body (a second body under the same id is a replay, whatever its CRC32)."""

    transmission_id: str
    body_sha256: str
    sent_at: datetime


class Verifier:
    """Verifies PayPal deliveries for one webhook id (thread-safe; one per receiver)."""

    STRIPES = 64

    def __init__(
        self,
        *,
        webhook_id: str,
        trust: Trust,
        fetch: CertificateFetcher | None = None,
        cache: CertificateCache | None = None,
        tolerance_seconds: int = 300,
        max_fetches: int = 4,
        fetch_wait_seconds: float = 10.0,
        api: SignatureApi | None = None,
    ) -> None:
        if not webhook_id:
            raise ValueError("no PayPal webhook id configured")
        if max_fetches < 1:
            raise ValueError("max_fetches must be at least 1")
        self.webhook_id = webhook_id
        self.trust = trust
        self._owned = fetch is None
        self._fetch: CertificateFetcher = fetch or HttpFetcher()
        self.cache = cache if cache is not None else CertificateCache()
        self.tolerance_seconds = tolerance_seconds
        self._slots = threading.BoundedSemaphore(max_fetches)
        self._fetch_wait = fetch_wait_seconds
        self._stripes = [threading.Lock() for _ in range(self.STRIPES)]
        self.api = api

    def verify(self, headers: Mapping[str, str], body: bytes, *, now: datetime) -> Transmission:
        """Accept ``body`` only when PayPal signed it for the webhook id within the tolerance
        of ``now``. Raises ``SignatureError`` naming the header at fault, or
        ``CertificateUnavailable``."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        lowered = {key.lower(): value for key, value in headers.items()}

        def header(name: str) -> str:
            value = lowered.get(name.lower())
            value = value.strip() if isinstance(value, str) else ""
            if not value:
                raise SignatureError(f"missing {name} header")
            limit = HEADER_LIMITS.get(name)
            if limit is not None and len(value) > limit:
                raise SignatureError(f"{name} longer than {limit} characters")
            if not (value.isascii() and value.isprintable()):
                raise SignatureError(f"{name} holds characters outside printable ASCII")
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
        if abs((now - sent_at).total_seconds()) > self.tolerance_seconds:
            raise SignatureError(f"{HEADER_TIME} outside the {self.tolerance_seconds} s tolerance")
        try:
            signature = base64.b64decode(signature_b64, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError(f"{HEADER_SIG} is not base64") from None
        check_certificate_url(cert_url, self.trust.cert_hosts)
        transmission = Transmission(transmission_id, hashlib.sha256(body).hexdigest(), sent_at)
        if self.api is not None:
            self.api.check(
                {
                    HEADER_ID: transmission_id,
                    HEADER_TIME: transmission_time,
                    HEADER_SIG: signature_b64,
                    HEADER_CERT_URL: cert_url,
                    HEADER_AUTH_ALGO: AUTH_ALGO,
                },
                body,
                webhook_id=self.webhook_id,
            )
            return transmission
        certificate = self.certificate(cert_url, now=now)
        public_key = certificate.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)  # verified_leaf refuses any other
        message = f"{transmission_id}|{transmission_time}|{self.webhook_id}|{zlib.crc32(body)}"
        try:
            public_key.verify(signature, message.encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise SignatureError(f"{HEADER_SIG} does not match the body") from None
        return transmission

    def certificate(self, url: str, *, now: datetime) -> x509.Certificate:
        """The verified signing certificate at ``url``: from the cache, else fetched (one
        fetch per URL at a time, at most ``max_fetches`` at once) and verified."""
        cached = self._cached(url, now)
        if cached is not None:
            return cached
        with self._stripes[hash(url) % self.STRIPES]:
            cached = self._cached(url, now)  # another request may have fetched it meanwhile
            if cached is not None:
                return cached
            if not self._slots.acquire(timeout=self._fetch_wait):
                raise CertificateUnavailable("too many PayPal certificate fetches at once")
            try:
                body = self._fetch(url)
                certificate = verified_leaf(body, trust=self.trust, now=now)
            except (SignatureError, CertificateUnavailable) as exc:
                self.cache.put_failure(url, exc, now=now)
                raise
            finally:
                self._slots.release()
            self.cache.put(url, certificate, now=now)
            return certificate

    def _cached(self, url: str, now: datetime) -> x509.Certificate | None:
        entry = self.cache.get(url, now=now)
        if entry is None:
            return None
        if entry.failure is not None:
            raise type(entry.failure)(*entry.failure.args)
        certificate = entry.certificate
        assert certificate is not None
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise SignatureError(f"{HEADER_CERT_URL} certificate is not valid now")
        return certificate

    def close(self) -> None:
        if self._owned and isinstance(self._fetch, HttpFetcher):
            self._fetch.close()
        if self.api is not None:
            self.api.close()


def api_base_allowed(url: str) -> bool:
    """https, or http to a loopback address (a local stand-in for PayPal)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and (parts.hostname or "") in ("127.0.0.1", "localhost", "::1")


def verifier_from_settings(settings: Any) -> Verifier:
    """The receiver's verifier, from ``recovery.settings.Settings``."""
    environment: Environment = settings.paypal_environment
    anchors = (
        load_certificates(settings.paypal_trust_anchors_file)
        if settings.paypal_trust_anchors_file
        else None
    )
    intermediates = (
        load_certificates(settings.paypal_intermediates_file)
        if settings.paypal_intermediates_file
        else None
    )
    trust = Trust.for_environment(
        environment,
        anchors=anchors,
        intermediates=intermediates,
        cert_hosts=settings.paypal_cert_hosts or None,
    )
    api = None
    if settings.paypal_verification == "api":
        base = settings.paypal_api_base or API_BASES[environment]
        if not api_base_allowed(base):
            raise ValueError("RECOVERY_PAYPAL_API_BASE must be https (http only on loopback)")
        api = SignatureApi(
            base_url=base,
            client_id=settings.paypal_client_id,
            client_secret=settings.paypal_client_secret.get_secret_value(),
        )
    return Verifier(
        webhook_id=settings.paypal_webhook_id,
        trust=trust,
        tolerance_seconds=settings.paypal_tolerance_seconds,
        max_fetches=settings.paypal_max_concurrent_fetches,
        api=api,
    )


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
        # Year 1 at +14:00 (or 9999 at -14:00) has no UTC time: out of range, not a crash.
        return parsed.astimezone(UTC) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


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

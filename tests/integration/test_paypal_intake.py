"""PayPal webhooks: offline verification against a certificate this test issues (served through
the pluggable fetcher), the httpx fetcher, and normalisation of PayPal's documented event shapes.
"""

from __future__ import annotations

import base64
import copy
import json
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from recovery.domain.models import FailureCategory, PaymentFailure, PaymentSucceeded
from recovery.domain.pan import REDACTED, redact_parsed_json
from recovery.domain.taxonomy import categorize, load_failure_codes
from recovery.gateways import paypal
from recovery.gateways.common import Ignored, PayloadError
from recovery.gateways.signing import SignatureError
from tests.factories import T0

WEBHOOK_ID = "8PT597110X687430LKGECATA"
CERT_URL = "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77"
TRANSMISSION_ID = "69cd13f0-d67a-11e5-baa3-778b53f4ae55"
PAN = "4000056655665556"


def issue(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    not_before: datetime,
    not_after: datetime,
    name: str = "messageverificationcerts.paypal.com",
) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def certificate(key: rsa.RSAPrivateKey) -> bytes:
    return issue(key, not_before=T0 - timedelta(days=30), not_after=T0 + timedelta(days=335))


class Server:
    """The fetcher the receiver is given: serves certificates by URL and remembers each call."""

    def __init__(self, documents: dict[str, bytes]) -> None:
        self.documents = documents
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        return self.documents[url]


def headers_for(
    body: bytes,
    key: rsa.RSAPrivateKey,
    *,
    sent_at: datetime = T0,
    webhook_id: str = WEBHOOK_ID,
    cert_url: str = CERT_URL,
    algo: str = "SHA256withRSA",
) -> dict[str, str]:
    """Headers exactly as PayPal sends them, signed the way PayPal signs."""
    when = sent_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    message = f"{TRANSMISSION_ID}|{when}|{webhook_id}|{zlib.crc32(body)}".encode()
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return {
        "PAYPAL-TRANSMISSION-ID": TRANSMISSION_ID,
        "PAYPAL-TRANSMISSION-TIME": when,
        "PAYPAL-TRANSMISSION-SIG": base64.b64encode(signature).decode(),
        "PAYPAL-CERT-URL": cert_url,
        "PAYPAL-AUTH-ALGO": algo,
    }


# --- PayPal's documented event shapes ----------------------------------------------------------


def failed_event(
    *,
    event_id: str = "WH-9ES33478E1234567K-0Y391538X12345678",
    subscription_id: str = "I-BW452GLLEP1G",
    last_payment_time: str | None = "2026-11-01T10:00:04Z",
    failed_time: str = "2026-12-01T10:00:11Z",
    reason: str = "PAYMENT_DENIED",
    outstanding: str = "10.00",
    failed_amount: str = "10.00",
    failed_count: int = 1,
    phone: dict[str, Any] | None = None,
) -> dict[str, Any]:
    billing_info: dict[str, Any] = {
        "outstanding_balance": {"currency_code": "USD", "value": outstanding},
        "cycle_executions": [
            {
                "tenure_type": "REGULAR",
                "sequence": 1,
                "cycles_completed": 1,
                "cycles_remaining": 0,
                "current_pricing_scheme_version": 1,
                "total_cycles": 0,
            }
        ],
        "next_billing_time": "2027-01-01T10:00:00Z",
        "failed_payments_count": failed_count,
        "last_failed_payment": {
            "amount": {"currency_code": "USD", "value": failed_amount},
            "time": failed_time,
            "reason_code": reason,
            "next_payment_retry_time": "2026-12-06T10:00:00Z",
        },
    }
    if last_payment_time is not None:
        billing_info["last_payment"] = {
            "amount": {"currency_code": "USD", "value": "10.00"},
            "time": last_payment_time,
        }
    return {
        "id": event_id,
        "event_version": "1.0",
        "create_time": "2026-12-01T10:00:15.210Z",
        "resource_type": "subscription",
        "resource_version": "2.0",
        "event_type": "BILLING.SUBSCRIPTION.PAYMENT.FAILED",
        "summary": "Subscription payment failed",
        "resource": {
            "id": subscription_id,
            "plan_id": "P-5ML4271244454362WXNWU5NQ",
            "status": "ACTIVE",
            "status_update_time": "2026-10-01T10:00:00Z",
            "start_time": "2026-10-01T10:00:00Z",
            "quantity": "1",
            "custom_id": "account-5521",
            "subscriber": {
                "name": {"given_name": "Grace", "surname": "Hopper"},
                "email_address": "grace@example.com",
                "payer_id": "2J6QB8YJQSJRJ",
                "phone": phone
                if phone is not None
                else {"phone_type": "MOBILE", "phone_number": {"national_number": "3055550143"}},
                "shipping_address": {
                    "name": {"full_name": "Grace Hopper"},
                    "address": {
                        "address_line_1": "2211 N First Street",
                        "admin_area_2": "Miami",
                        "admin_area_1": "FL",
                        "postal_code": "33101",
                        "country_code": "US",
                    },
                },
            },
            "billing_info": billing_info,
            "create_time": "2026-10-01T09:59:00Z",
            "update_time": "2026-12-01T10:00:12Z",
            "links": [
                {
                    "href": f"https://api.paypal.com/v1/billing/subscriptions/{subscription_id}",
                    "rel": "self",
                    "method": "GET",
                }
            ],
        },
        "links": [
            {
                "href": f"https://api.paypal.com/v1/notifications/webhooks-events/{event_id}",
                "rel": "self",
                "method": "GET",
            }
        ],
    }


def sale_event(
    *, subscription_id: str | None = "I-BW452GLLEP1G", total: str = "10.00"
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "id": "80021663DE681814L",
        "state": "completed",
        "amount": {"total": total, "currency": "USD", "details": {"subtotal": total}},
        "payment_mode": "INSTANT_TRANSFER",
        "protection_eligibility": "ELIGIBLE",
        "protection_eligibility_type": "ITEM_NOT_RECEIVED_ELIGIBLE,UNAUTHORIZED_PAYMENT_ELIGIBLE",
        "transaction_fee": {"value": "0.59", "currency": "USD"},
        "create_time": "2026-12-06T10:00:09Z",
        "update_time": "2026-12-06T10:00:09Z",
        "links": [],
    }
    if subscription_id is not None:
        resource["billing_agreement_id"] = subscription_id
    return {
        "id": "WH-2WR32451HC0233532-67976317FL4543714",
        "event_version": "1.0",
        "create_time": "2026-12-06T10:00:12.021Z",
        "resource_type": "sale",
        "event_type": "PAYMENT.SALE.COMPLETED",
        "summary": f"Payment completed for $ {total} USD",
        "resource": resource,
        "links": [],
    }


def suspended_event() -> dict[str, Any]:
    event = failed_event()
    event.update(
        id="WH-55TG7562XN2588878-8YH955435R661687G",
        event_type="BILLING.SUBSCRIPTION.SUSPENDED",
        summary="Subscription suspended",
    )
    event["resource"]["status"] = "SUSPENDED"
    return event


# --- verification ------------------------------------------------------------------------------


def test_good_signature(key: rsa.RSAPrivateKey, certificate: bytes) -> None:
    body = json.dumps(failed_event()).encode()
    server = Server({CERT_URL: certificate})
    paypal.verify(headers_for(body, key), body, webhook_id=WEBHOOK_ID, now=T0, fetch=server)
    assert server.calls == [CERT_URL]


def test_header_names_are_case_insensitive(key: rsa.RSAPrivateKey, certificate: bytes) -> None:
    body = b'{"id": "WH-1"}'
    lowered = {name.lower(): value for name, value in headers_for(body, key).items()}
    paypal.verify(
        lowered, body, webhook_id=WEBHOOK_ID, now=T0, fetch=Server({CERT_URL: certificate})
    )


def test_bad_signature(
    key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey, certificate: bytes
) -> None:
    body = json.dumps(failed_event()).encode()
    with pytest.raises(SignatureError, match="PAYPAL-TRANSMISSION-SIG does not match"):
        paypal.verify(
            headers_for(body, other_key),
            body,
            webhook_id=WEBHOOK_ID,
            now=T0,
            fetch=Server({CERT_URL: certificate}),
        )


def test_tampered_body(key: rsa.RSAPrivateKey, certificate: bytes) -> None:
    body = json.dumps(failed_event()).encode()
    headers = headers_for(body, key)
    tampered = body.replace(b'"10.00"', b'"1.00"', 1)
    assert tampered != body
    with pytest.raises(SignatureError, match="does not match"):
        paypal.verify(
            headers, tampered, webhook_id=WEBHOOK_ID, now=T0, fetch=Server({CERT_URL: certificate})
        )


def test_signed_for_another_webhook(key: rsa.RSAPrivateKey, certificate: bytes) -> None:
    body = b"{}"
    headers = headers_for(body, key, webhook_id="SOMEONE-ELSES-WEBHOOK")
    with pytest.raises(SignatureError, match="does not match"):
        paypal.verify(
            headers, body, webhook_id=WEBHOOK_ID, now=T0, fetch=Server({CERT_URL: certificate})
        )


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/v1/notifications/certs/CERT-1",
        "https://api.paypal.com.evil.example/v1/notifications/certs/CERT-1",
        "https://evilpaypal.com/v1/notifications/certs/CERT-1",
        "https://paypal.com/v1/notifications/certs/CERT-1",
        "https://api.paypal.com@evil.example/v1/notifications/certs/CERT-1",
        "https://user:pw@api.paypal.com/v1/notifications/certs/CERT-1",
        "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
        "https://127.0.0.1/v1/notifications/certs/CERT-1",
        "https:///v1/notifications/certs/CERT-1",
        "file:///etc/ssl/cert.pem",
        "https://api.paypal.com:notaport/",
    ],
)
def test_certificate_url_off_paypal_is_refused_before_any_fetch(
    key: rsa.RSAPrivateKey, certificate: bytes, url: str
) -> None:
    body = b"{}"
    server = Server({url: certificate})
    with pytest.raises(SignatureError, match="PAYPAL-CERT-URL"):
        paypal.verify(
            headers_for(body, key, cert_url=url), body, webhook_id=WEBHOOK_ID, now=T0, fetch=server
        )
    assert server.calls == []


def test_http_scheme_is_refused_before_any_fetch(
    key: rsa.RSAPrivateKey, certificate: bytes
) -> None:
    url = CERT_URL.replace("https://", "http://")
    server = Server({url: certificate})
    with pytest.raises(SignatureError, match="PAYPAL-CERT-URL must use https"):
        paypal.verify(
            headers_for(b"{}", key, cert_url=url),
            b"{}",
            webhook_id=WEBHOOK_ID,
            now=T0,
            fetch=server,
        )
    assert server.calls == []


@pytest.mark.parametrize(
    "host",
    [
        "api.paypal.com",
        "api.sandbox.paypal.com",
        "api-m.paypal.com",
        "api-m.sandbox.paypal.com",
        "API.PayPal.com",
        "messageverificationcerts.paypal.com",
    ],
)
def test_paypal_hosts_are_accepted(host: str) -> None:
    paypal.check_certificate_url(f"https://{host}/v1/notifications/certs/CERT-1")
    paypal.check_certificate_url(f"https://{host}:443/v1/notifications/certs/CERT-1")


@pytest.mark.parametrize(
    ("valid_from", "valid_until"),
    [
        (T0 - timedelta(days=400), T0 - timedelta(days=1)),  # expired
        (T0 + timedelta(days=1), T0 + timedelta(days=400)),  # not yet valid
    ],
)
def test_certificate_not_valid_at_transmission_time(
    key: rsa.RSAPrivateKey, valid_from: datetime, valid_until: datetime
) -> None:
    pem = issue(key, not_before=valid_from, not_after=valid_until)
    body = b"{}"
    with pytest.raises(SignatureError, match="certificate is not valid at PAYPAL-TRANSMISSION"):
        paypal.verify(
            headers_for(body, key),
            body,
            webhook_id=WEBHOOK_ID,
            now=T0,
            fetch=Server({CERT_URL: pem}),
        )


def test_certificate_without_an_rsa_key() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem = issue(ec_key, not_before=T0 - timedelta(days=1), not_after=T0 + timedelta(days=1))
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(SignatureError, match="RSA"):
        paypal.verify(
            headers_for(b"{}", rsa_key),
            b"{}",
            webhook_id=WEBHOOK_ID,
            now=T0,
            fetch=Server({CERT_URL: pem}),
        )


@pytest.mark.parametrize("served", [b"", b"<html>not found</html>", b"-----BEGIN CERTIFICATE-----"])
def test_url_that_serves_no_certificate(key: rsa.RSAPrivateKey, served: bytes) -> None:
    with pytest.raises(SignatureError, match="did not serve a certificate"):
        paypal.verify(
            headers_for(b"{}", key),
            b"{}",
            webhook_id=WEBHOOK_ID,
            now=T0,
            fetch=Server({CERT_URL: served}),
        )


def test_chain_uses_the_leaf(
    key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey, certificate: bytes
) -> None:
    intermediate = issue(
        other_key, not_before=T0 - timedelta(days=1), not_after=T0 + timedelta(days=1)
    )
    body = b"{}"
    paypal.verify(
        headers_for(body, key),
        body,
        webhook_id=WEBHOOK_ID,
        now=T0,
        fetch=Server({CERT_URL: certificate + intermediate}),
    )


def test_der_certificate(key: rsa.RSAPrivateKey, certificate: bytes) -> None:
    der = x509.load_pem_x509_certificate(certificate).public_bytes(serialization.Encoding.DER)
    body = b"{}"
    paypal.verify(
        headers_for(body, key), body, webhook_id=WEBHOOK_ID, now=T0, fetch=Server({CERT_URL: der})
    )


@pytest.mark.parametrize("algo", ["SHA1withRSA", "sha256withrsa", "SHA256withECDSA"])
def test_wrong_auth_algo(key: rsa.RSAPrivateKey, certificate: bytes, algo: str) -> None:
    server = Server({CERT_URL: certificate})
    with pytest.raises(SignatureError, match="PAYPAL-AUTH-ALGO must be SHA256withRSA"):
        paypal.verify(
            headers_for(b"{}", key, algo=algo), b"{}", webhook_id=WEBHOOK_ID, now=T0, fetch=server
        )
    assert server.calls == []


@pytest.mark.parametrize(
    "name",
    [
        "PAYPAL-TRANSMISSION-ID",
        "PAYPAL-TRANSMISSION-TIME",
        "PAYPAL-TRANSMISSION-SIG",
        "PAYPAL-CERT-URL",
        "PAYPAL-AUTH-ALGO",
    ],
)
@pytest.mark.parametrize("blank", [None, "", "   "])
def test_missing_header(
    key: rsa.RSAPrivateKey, certificate: bytes, name: str, blank: str | None
) -> None:
    headers = headers_for(b"{}", key)
    if blank is None:
        del headers[name]
    else:
        headers[name] = blank
    server = Server({CERT_URL: certificate})
    with pytest.raises(SignatureError, match=f"missing {name} header"):
        paypal.verify(headers, b"{}", webhook_id=WEBHOOK_ID, now=T0, fetch=server)
    assert server.calls == []


@pytest.mark.parametrize(
    ("sent_at", "ok"),
    [
        (T0 - timedelta(seconds=300), True),
        (T0 + timedelta(seconds=300), True),
        (T0 - timedelta(seconds=301), False),
        (T0 + timedelta(seconds=301), False),
        (T0 - timedelta(days=3), False),
    ],
)
def test_transmission_time_tolerance(
    key: rsa.RSAPrivateKey, certificate: bytes, sent_at: datetime, ok: bool
) -> None:
    headers = headers_for(b"{}", key, sent_at=sent_at)
    server = Server({CERT_URL: certificate})
    if ok:
        paypal.verify(headers, b"{}", webhook_id=WEBHOOK_ID, now=T0, fetch=server)
        return
    with pytest.raises(SignatureError, match="PAYPAL-TRANSMISSION-TIME outside the 300 s"):
        paypal.verify(headers, b"{}", webhook_id=WEBHOOK_ID, now=T0, fetch=server)
    assert server.calls == []


@pytest.mark.parametrize("value", ["yesterday", "2026-12-01T17:00:00", "1764608400"])
def test_transmission_time_must_be_an_aware_iso_time(
    key: rsa.RSAPrivateKey, certificate: bytes, value: str
) -> None:
    headers = headers_for(b"{}", key)
    headers["PAYPAL-TRANSMISSION-TIME"] = value
    with pytest.raises(SignatureError, match="PAYPAL-TRANSMISSION-TIME is not an ISO 8601"):
        paypal.verify(
            headers, b"{}", webhook_id=WEBHOOK_ID, now=T0, fetch=Server({CERT_URL: certificate})
        )


def test_transmission_time_with_an_offset_is_signed_verbatim(
    key: rsa.RSAPrivateKey, certificate: bytes
) -> None:
    body = b"{}"
    when = "2026-12-01T18:00:00+01:00"  # the same instant as T0
    message = f"{TRANSMISSION_ID}|{when}|{WEBHOOK_ID}|{zlib.crc32(body)}".encode()
    headers = headers_for(body, key)
    headers["PAYPAL-TRANSMISSION-TIME"] = when
    headers["PAYPAL-TRANSMISSION-SIG"] = base64.b64encode(
        key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    ).decode()
    paypal.verify(
        headers, body, webhook_id=WEBHOOK_ID, now=T0, fetch=Server({CERT_URL: certificate})
    )


def test_signature_not_base64(key: rsa.RSAPrivateKey, certificate: bytes) -> None:
    headers = headers_for(b"{}", key)
    headers["PAYPAL-TRANSMISSION-SIG"] = "not*base64!"
    with pytest.raises(SignatureError, match="PAYPAL-TRANSMISSION-SIG is not base64"):
        paypal.verify(
            headers, b"{}", webhook_id=WEBHOOK_ID, now=T0, fetch=Server({CERT_URL: certificate})
        )


def test_configuration_mistakes_are_not_signature_errors(
    key: rsa.RSAPrivateKey, certificate: bytes
) -> None:
    headers = headers_for(b"{}", key)
    server = Server({CERT_URL: certificate})
    with pytest.raises(ValueError, match="webhook id"):
        paypal.verify(headers, b"{}", webhook_id="", now=T0, fetch=server)
    with pytest.raises(ValueError, match="timezone-aware"):
        paypal.verify(
            headers, b"{}", webhook_id=WEBHOOK_ID, now=T0.replace(tzinfo=None), fetch=server
        )


# --- the certificate cache ---------------------------------------------------------------------


def test_cache_hit_fetches_once(key: rsa.RSAPrivateKey, certificate: bytes) -> None:
    server = Server({CERT_URL: certificate})
    cache = paypal.CertificateCache()
    for n, event in enumerate([failed_event(), sale_event()]):
        body = json.dumps(event).encode()
        sent = T0 + timedelta(seconds=30 * n)
        paypal.verify(
            headers_for(body, key, sent_at=sent),
            body,
            webhook_id=WEBHOOK_ID,
            now=sent,
            fetch=server,
            cache=cache,
        )
    assert server.calls == [CERT_URL] and len(cache) == 1


def test_cached_certificate_still_checks_the_signature(
    key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey, certificate: bytes
) -> None:
    server = Server({CERT_URL: certificate})
    cache = paypal.CertificateCache()
    paypal.verify(
        headers_for(b"{}", key), b"{}", webhook_id=WEBHOOK_ID, now=T0, fetch=server, cache=cache
    )
    with pytest.raises(SignatureError, match="does not match"):
        paypal.verify(
            headers_for(b"{}", other_key),
            b"{}",
            webhook_id=WEBHOOK_ID,
            now=T0,
            fetch=server,
            cache=cache,
        )
    assert server.calls == [CERT_URL]


def test_cache_expiry_fetches_again(key: rsa.RSAPrivateKey, certificate: bytes) -> None:
    server = Server({CERT_URL: certificate})
    cache = paypal.CertificateCache(ttl=timedelta(hours=1))
    for sent in (T0, T0 + timedelta(minutes=59), T0 + timedelta(minutes=61)):
        paypal.verify(
            headers_for(b"{}", key, sent_at=sent),
            b"{}",
            webhook_id=WEBHOOK_ID,
            now=sent,
            fetch=server,
            cache=cache,
        )
    assert server.calls == [CERT_URL, CERT_URL]


def test_cache_keeps_the_most_recently_used(certificate: bytes) -> None:
    cert = x509.load_pem_x509_certificate(certificate)
    cache = paypal.CertificateCache(max_size=2)
    cache.put("a", cert, now=T0)
    cache.put("b", cert, now=T0)
    assert cache.get("a", now=T0) is cert  # "a" is now the most recently used
    cache.put("c", cert, now=T0)
    assert len(cache) == 2
    assert cache.get("b", now=T0) is None
    assert cache.get("a", now=T0) is cert and cache.get("c", now=T0) is cert


def test_cache_refuses_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        paypal.CertificateCache(max_size=0)
    with pytest.raises(ValueError):
        paypal.CertificateCache(ttl=timedelta(0))


def test_a_refused_certificate_is_not_cached(key: rsa.RSAPrivateKey) -> None:
    server = Server({CERT_URL: b"garbage"})
    cache = paypal.CertificateCache()
    with pytest.raises(SignatureError):
        paypal.verify(
            headers_for(b"{}", key), b"{}", webhook_id=WEBHOOK_ID, now=T0, fetch=server, cache=cache
        )
    assert len(cache) == 0


# --- the httpx fetcher -------------------------------------------------------------------------


def fetcher_answering(
    handler: Callable[[httpx.Request], httpx.Response],
) -> paypal.CertificateFetcher:
    return paypal.make_fetcher(timeout=2.0, transport=httpx.MockTransport(handler))


def test_fetcher_returns_the_certificate(certificate: bytes) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=certificate)

    assert fetcher_answering(handler)(CERT_URL) == certificate
    assert seen == [CERT_URL]


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_fetcher_transient_answers(status: int) -> None:
    fetch = fetcher_answering(lambda _request: httpx.Response(status))
    with pytest.raises(paypal.CertificateUnavailable, match=str(status)):
        fetch(CERT_URL)


def test_fetcher_network_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    with pytest.raises(paypal.CertificateUnavailable, match="ConnectTimeout"):
        fetcher_answering(handler)(CERT_URL)


@pytest.mark.parametrize("status", [301, 302, 404, 403])
def test_fetcher_does_not_follow_redirects_or_accept_errors(status: int) -> None:
    fetch = fetcher_answering(
        lambda _request: httpx.Response(status, headers={"location": "https://evil.example/c"})
    )
    with pytest.raises(SignatureError, match=f"answered {status}"):
        fetch(CERT_URL)


def test_fetcher_refuses_a_huge_body() -> None:
    fetch = fetcher_answering(lambda _request: httpx.Response(200, content=b"x" * 70_000))
    with pytest.raises(SignatureError, match="too large"):
        fetch(CERT_URL)


def test_unavailable_certificate_propagates(key: rsa.RSAPrivateKey) -> None:
    fetch = fetcher_answering(lambda _request: httpx.Response(503))
    with pytest.raises(paypal.CertificateUnavailable):
        paypal.verify(headers_for(b"{}", key), b"{}", webhook_id=WEBHOOK_ID, now=T0, fetch=fetch)


# --- normalisation -----------------------------------------------------------------------------


def test_payment_failed() -> None:
    result = paypal.normalise(failed_event())
    assert isinstance(result, PaymentFailure)
    assert result.event_id == "WH-9ES33478E1234567K-0Y391538X12345678"
    assert result.event_type == "BILLING.SUBSCRIPTION.PAYMENT.FAILED"
    assert result.business_key == "I-BW452GLLEP1G@2026-11-01T10:00:04Z"
    assert result.customer_ref == "2J6QB8YJQSJRJ" and result.customer_name == "Grace Hopper"
    assert result.contact.phone_e164 == "+13055550143"
    assert (result.contact.country, result.contact.state, result.contact.postal_code) == (
        "US",
        "FL",
        "33101",
    )
    assert result.failure_code == "PAYMENT_DENIED" and result.decline_code is None
    assert (result.amount, result.currency, result.attempt_count) == (Decimal("10.00"), "usd", 1)
    assert result.occurred_at == datetime(2026, 12, 1, 10, 0, 11, tzinfo=UTC)
    assert result.missing_fields == ()
    category, _ = categorize(
        gateway=result.gateway, failure_code=result.failure_code, codes=load_failure_codes()
    )
    assert category is FailureCategory.generic_decline


@pytest.mark.parametrize(
    ("reason", "category"),
    [
        ("PAYMENT_DENIED", FailureCategory.generic_decline),
        ("INTERNAL_SERVER_ERROR", FailureCategory.processing_error),
        ("PAYER_ACCOUNT_RESTRICTED", FailureCategory.card_invalid_or_lost),
        ("PAYER_CANNOT_PAY", FailureCategory.card_invalid_or_lost),
        ("SENDING_LIMIT_EXCEEDED", FailureCategory.insufficient_funds),
        ("PAYEE_ACCOUNT_RESTRICTED", FailureCategory.processing_error),
        ("TRANSACTION_RECEIVING_LIMIT_EXCEEDED", FailureCategory.processing_error),
        ("CURRENCY_MISMATCH", FailureCategory.processing_error),
    ],
)
def test_every_documented_reason_has_a_category(reason: str, category: FailureCategory) -> None:
    result = paypal.normalise(failed_event(reason=reason))
    assert isinstance(result, PaymentFailure)
    found, why = categorize(
        gateway=result.gateway, failure_code=result.failure_code, codes=load_failure_codes()
    )
    assert found is category, why


def test_retries_of_one_unpaid_period_share_a_key_and_the_next_one_does_not() -> None:
    first = paypal.normalise(failed_event())
    retry = paypal.normalise(
        failed_event(
            event_id="WH-RETRY",
            failed_time="2026-12-06T10:00:09Z",
            failed_count=2,
            outstanding="10.00",
        )
    )
    later = paypal.normalise(
        failed_event(
            event_id="WH-LATER",
            last_payment_time="2026-12-09T10:00:03.5+00:00",
            failed_time="2027-01-01T10:00:11Z",
        )
    )
    assert isinstance(first, PaymentFailure) and isinstance(retry, PaymentFailure)
    assert isinstance(later, PaymentFailure)
    assert first.business_key == retry.business_key
    assert later.business_key == "I-BW452GLLEP1G@2026-12-09T10:00:03Z"
    assert retry.attempt_count == 2


def test_never_paid_subscription_is_keyed_by_its_start() -> None:
    result = paypal.normalise(failed_event(last_payment_time=None))
    assert isinstance(result, PaymentFailure)
    assert result.business_key == "I-BW452GLLEP1G@2026-10-01T10:00:00Z"


def test_success_names_the_failures_subscription() -> None:
    failure = paypal.normalise(failed_event())
    success = paypal.normalise(sale_event())
    assert isinstance(failure, PaymentFailure) and isinstance(success, PaymentSucceeded)
    assert success.business_key == "I-BW452GLLEP1G"
    assert paypal.subscription_of(failure.business_key) == success.business_key
    assert paypal.subscription_of(success.business_key) == success.business_key
    assert (success.amount, success.currency) == (Decimal("10.00"), "usd")
    assert success.occurred_at == datetime(2026, 12, 6, 10, 0, 9, tzinfo=UTC)
    assert success.event_id == "WH-2WR32451HC0233532-67976317FL4543714"


def test_sale_outside_a_subscription_is_ignored() -> None:
    result = paypal.normalise(sale_event(subscription_id=None))
    assert isinstance(result, Ignored) and "billing_agreement_id" in result.reason


def test_suspension_and_other_events_are_ignored() -> None:
    suspended = paypal.normalise(suspended_event())
    assert isinstance(suspended, Ignored)
    assert suspended.event_type == "BILLING.SUBSCRIPTION.SUSPENDED"
    other = failed_event()
    other["event_type"] = "BILLING.SUBSCRIPTION.CANCELLED"
    cancelled = paypal.normalise(other)
    assert isinstance(cancelled, Ignored) and "not a subscription payment" in cancelled.reason


def test_amount_owed_prefers_a_positive_outstanding_balance() -> None:
    both = paypal.normalise(failed_event(outstanding="20.00", failed_amount="10.00"))
    nothing_outstanding = paypal.normalise(failed_event(outstanding="0.0", failed_amount="10.00"))
    assert isinstance(both, PaymentFailure) and isinstance(nothing_outstanding, PaymentFailure)
    assert both.amount == Decimal("20.00")
    assert nothing_outstanding.amount == Decimal("10.00")


def test_missing_amount_is_recorded() -> None:
    event = failed_event()
    billing = event["resource"]["billing_info"]
    del billing["outstanding_balance"]
    del billing["last_failed_payment"]["amount"]
    result = paypal.normalise(event)
    assert isinstance(result, PaymentFailure)
    assert result.amount is None and result.missing_fields == ("amount", "currency")
    # Without the failed payment's time, the event's own time stands for it.
    del billing["last_failed_payment"]["time"]
    again = paypal.normalise(event)
    assert isinstance(again, PaymentFailure)
    assert again.occurred_at == datetime(2026, 12, 1, 10, 0, 15, 210000, tzinfo=UTC)


def test_phones() -> None:
    shipping_phone = failed_event(phone={})
    shipping_phone["resource"]["subscriber"]["shipping_address"]["phone_number"] = {
        "country_code": "44",
        "national_number": "2079460958",
    }
    from_shipping = paypal.normalise(shipping_phone)
    invalid = paypal.normalise(failed_event(phone={"phone_number": {"national_number": "12"}}))
    none = paypal.normalise(failed_event(phone={}))
    assert isinstance(from_shipping, PaymentFailure)
    assert from_shipping.contact.phone_e164 == "+442079460958"
    assert isinstance(invalid, PaymentFailure)
    assert invalid.contact.phone_e164 is None
    assert invalid.phone_raw == "12" and invalid.phone_problem
    # No phone at all: the case opens as needs_contact_info.
    assert isinstance(none, PaymentFailure)
    assert none.contact.phone_e164 is None and none.phone_problem is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.pop("id"), "'id'"),
        (lambda e: e.update(id=""), "'id'"),
        (lambda e: e.pop("event_type"), "'event_type'"),
        (lambda e: e.pop("create_time"), "'create_time'"),
        (lambda e: e.update(create_time="2026-12-01T10:00:15"), "'create_time'"),
        (lambda e: e.update(resource=[]), "'resource'"),
        (lambda e: e["resource"].pop("id"), "subscription resource has no 'id'"),
    ],
)
def test_malformed_events(mutate: Callable[[dict[str, Any]], object], message: str) -> None:
    event = failed_event()
    mutate(event)
    with pytest.raises(PayloadError, match=message):
        paypal.normalise(event)


def test_event_identity() -> None:
    assert paypal.event_identity(sale_event()) == (
        "WH-2WR32451HC0233532-67976317FL4543714",
        "PAYMENT.SALE.COMPLETED",
    )


# --- the receiver's sequence: verify the raw bytes, parse, redact, normalise -------------------


def test_verified_body_with_a_card_number_normalises_without_it(
    key: rsa.RSAPrivateKey, certificate: bytes
) -> None:
    event = copy.deepcopy(failed_event())
    event["resource"]["subscriber"]["name"]["surname"] = f"Hopper {PAN}"
    body = json.dumps(event).encode()
    paypal.verify(
        headers_for(body, key),
        body,
        webhook_id=WEBHOOK_ID,
        now=T0,
        fetch=Server({CERT_URL: certificate}),
    )
    text = body.decode()
    parsed, found = redact_parsed_json(text, json.loads(text))
    result = paypal.normalise(parsed)
    # PayPal's sample plan id holds a Luhn-valid 13-digit run too: the guard errs on the side
    # of redaction, and the plan id is not read.
    assert found == 2
    assert isinstance(result, PaymentFailure)
    assert result.customer_name == f"Grace Hopper {REDACTED}"
    assert PAN not in result.model_dump_json()


def test_the_next_retry_is_paypal_s_next_payment_retry_time() -> None:
    result = paypal.normalise(failed_event())
    assert isinstance(result, PaymentFailure)
    assert result.next_retry_at == datetime(2026, 12, 6, 10, tzinfo=UTC)
    # next_billing_time is the next cycle, not a retry: without a retry time, none is known
    event = failed_event()
    del event["resource"]["billing_info"]["last_failed_payment"]["next_payment_retry_time"]
    result = paypal.normalise(event)
    assert isinstance(result, PaymentFailure) and result.next_retry_at is None

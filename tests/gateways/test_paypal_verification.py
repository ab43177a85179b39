"""PayPal webhook verification: only PayPal's certificate hosts and path, only a body that is
exactly a PEM chain, the chain verified to a pinned root with the signing host's name, every
cheap check before a fetch, failures cached, one fetch per URL and a cap on fetches at once;
PayPal's published test vector against the shipped anchors; the httpx fetcher; and PayPal's
verify-webhook-signature API (a local server stands in for PayPal). Nothing here uses the
network."""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from recovery.gateways import paypal
from recovery.gateways.signing import SignatureError
from tests.factories import T0, serve
from tests.support.paypal_pki import (
    CERT_URL,
    SANDBOX_NAME,
    TRANSMISSION_ID,
    WEBHOOK_ID,
    Server,
    authority,
    headers_for,
    key,
    leaf,
    pem,
    pki,
    sign_message,
    verifier,
)

BODY = b'{"id": "WH-1", "event_type": "PAYMENT.SALE.COMPLETED"}'
VECTOR = json.loads((Path(__file__).parent / "fixtures" / "paypal_sandbox_2015.json").read_text())


def check(
    made: Any, body: bytes = BODY, *, now: datetime = T0, **header_options: Any
) -> paypal.Transmission:
    headers = header_options.pop("headers", None) or headers_for(
        body, sent_at=now, **header_options
    )
    return made.verifier.verify(headers, body, now=now)


# --- what is accepted ----------------------------------------------------------------------------


def test_a_signing_certificate_chaining_to_the_anchor_is_accepted() -> None:
    made = verifier()
    transmission = check(made)
    assert made.server.calls == [CERT_URL]
    assert transmission.transmission_id == TRANSMISSION_ID
    assert len(transmission.body_sha256) == 64


def test_the_intermediate_may_come_with_the_leaf() -> None:
    """The cert URL serves the leaf alone; a body with the intermediate too is accepted, and
    the served intermediate is only a helper, never trusted itself."""
    trust = paypal.Trust.for_environment("live", anchors=[pki().root], intermediates=[])
    served = Server({CERT_URL: pem(pki().signer, pki().intermediate)})
    made = paypal.Verifier(webhook_id=WEBHOOK_ID, trust=trust, fetch=served)
    made.verify(headers_for(BODY, sent_at=T0), BODY, now=T0)
    alone = paypal.Verifier(
        webhook_id=WEBHOOK_ID, trust=trust, fetch=Server({CERT_URL: pki().served})
    )
    with pytest.raises(SignatureError, match="not PayPal's signing certificate"):
        alone.verify(headers_for(BODY, sent_at=T0), BODY, now=T0)


def test_header_names_are_case_insensitive() -> None:
    lowered = {k.lower(): v for k, v in headers_for(BODY, sent_at=T0).items()}
    check(verifier(), headers=lowered)


def test_a_transmission_time_with_an_offset_is_signed_verbatim() -> None:
    when = "2026-12-01T18:00:00+01:00"  # the same instant as T0
    headers = headers_for(BODY, sent_at=T0)
    headers["PAYPAL-TRANSMISSION-TIME"] = when
    headers["PAYPAL-TRANSMISSION-SIG"] = sign_message(
        pki().signing_key, f"{TRANSMISSION_ID}|{when}|{WEBHOOK_ID}|{zlib.crc32(BODY)}"
    )
    check(verifier(), headers=headers)


@pytest.mark.parametrize(
    "host", ["api.paypal.com", "api-m.paypal.com", "API.PayPal.com", "api.paypal.com:443"]
)
def test_the_live_certificate_hosts_are_accepted(host: str) -> None:
    paypal.check_certificate_url(
        f"https://{host}/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
        pki().trust("live").cert_hosts,
    )


# --- PayPal's own test vector against the shipped anchors ---------------------------------------


def vector_verifier(**options: Any) -> tuple[paypal.Verifier, Server]:
    served = Server({VECTOR["headers"]["PAYPAL-CERT-URL"]: VECTOR["certificate"].encode()})
    made = paypal.Verifier(
        webhook_id=VECTOR["webhook_id"],
        trust=paypal.Trust.for_environment("sandbox", **options),
        fetch=served,
    )
    return made, served


VECTOR_NOW = datetime(2015, 5, 18, 15, 46, tzinfo=UTC)


def test_paypals_published_delivery_verifies_against_the_pinned_digicert_root() -> None:
    """A delivery PayPal signed in its sandbox in 2015, and the certificate it served, chain to
    the shipped DigiCert High Assurance EV Root through the shipped intermediate (at the time
    of the delivery; the certificate has long expired)."""
    made, served = vector_verifier()
    made.verify(VECTOR["headers"], VECTOR["body"].encode(), now=VECTOR_NOW)
    assert served.calls == [VECTOR["headers"]["PAYPAL-CERT-URL"]]
    tampered = VECTOR["body"].replace('"20.00"', '"99.00"').encode()
    with pytest.raises(SignatureError, match="does not match"):
        made.verify(VECTOR["headers"], tampered, now=VECTOR_NOW)


def test_the_shipped_anchors_are_the_pinned_digicert_roots() -> None:
    from cryptography.hazmat.primitives import hashes

    prints = {c.fingerprint(hashes.SHA256()).hex().upper() for c in paypal.shipped_anchors()}
    assert prints == {
        "7431E5F4C3C1CE4690774F0B61E05440883BA9A01ED00BA6ABD7806ED3B118CF",
        "CB3CCBB76031E5E0138F8DD39A23F9DE47FFC35E43C1144CEA27D46A5AB1CB5F",
    }
    (intermediate,) = paypal.shipped_intermediates()
    assert intermediate.fingerprint(hashes.SHA256()).hex().upper() == (
        "403E062A2653059113285BAF80A0D4AE422C848C9F78FAD01FC94BC5B87FEF1A"
    )


def test_paypals_delivery_is_refused_without_the_pinned_anchor_or_for_live() -> None:
    made, _ = vector_verifier(anchors=[pki().root])
    with pytest.raises(SignatureError, match="not PayPal's signing certificate"):
        made.verify(VECTOR["headers"], VECTOR["body"].encode(), now=VECTOR_NOW)
    live = paypal.Verifier(
        webhook_id=VECTOR["webhook_id"],
        trust=paypal.Trust.for_environment("live", cert_hosts=["api.sandbox.paypal.com"]),
        fetch=Server({VECTOR["headers"]["PAYPAL-CERT-URL"]: VECTOR["certificate"].encode()}),
    )
    with pytest.raises(SignatureError, match="not PayPal's signing certificate"):
        live.verify(VECTOR["headers"], VECTOR["body"].encode(), now=VECTOR_NOW)


def test_a_crc32_twin_of_paypals_delivery_carries_the_same_valid_signature() -> None:
    """Why replay protection is needed: PayPal signs only the CRC32 of the body, and a body of
    the attacker's choice with the same CRC32 verifies under PayPal's real signature (the
    store then refuses the second body under the same transmission id)."""
    from tests.support.paypal_pki import forge_crc32

    original = VECTOR["body"].encode()
    changed = original.replace(b'"total":"20.00"', b'"total":"99999"')
    assert changed != original
    at = changed.index(b"Payment completed") + len(b"Payment ")
    twin = forge_crc32(changed, zlib.crc32(original), at)
    made, _ = vector_verifier()
    made.verify(VECTOR["headers"], twin, now=VECTOR_NOW)
    assert twin != original


# --- what is refused, and before any fetch -------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/v1/notifications/certs/CERT-1",
        "https://api.paypal.com.evil.example/v1/notifications/certs/CERT-1",
        "https://evilpaypal.com/v1/notifications/certs/CERT-1",
        "https://paypal.com/v1/notifications/certs/CERT-1",
        "https://www.paypal.com/v1/notifications/certs/CERT-1",
        "https://messageverificationcerts.paypal.com/v1/notifications/certs/CERT-1",
        "https://developer.paypal.com/v1/notifications/certs/CERT-1",
        "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",  # sandbox, while live
        "https://api.paypal.com@evil.example/v1/notifications/certs/CERT-1",
        "https://user:pw@api.paypal.com/v1/notifications/certs/CERT-1",
        "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
        "https://127.0.0.1/v1/notifications/certs/CERT-1",
        "https:///v1/notifications/certs/CERT-1",
        "http://api.paypal.com/v1/notifications/certs/CERT-1",
        "HTTPS://api.paypal.com/v1/notifications/certs/CERT-1",
        "file:///etc/ssl/cert.pem",
        "https://api.paypal.com:notaport/",
        "https://api.paypal.com/",
        "https://api.paypal.com/v1/notifications/certs/",
        "https://api.paypal.com/v1/notifications/certs/CERT-1/../../../echo",
        "https://api.paypal.com/v1/notifications/certs/../../search",
        "https://api.paypal.com/v1/notifications/certs/CERT-1?x=1",
        "https://api.paypal.com/v1/notifications/certs/CERT-1#frag",
        "https://api.paypal.com/v1/notifications/certs/CERT-%31",
        "https://api.pay\tpal.com/v1/notifications/certs/CERT-1",
        "https://xn--a.paypal.com/v1/notifications/certs/CERT-1",
        "https://api.paypal.com./v1/notifications/certs/CERT-1",
        "https://api.paypal.com\\@evil.example/v1/notifications/certs/CERT-1",
        "https://api.paypal.com/v1/echo?url=/v1/notifications/certs/CERT-1",
        "https://api.paypal.com/v2/checkout/callback/certs/CERT-1",
    ],
)
def test_a_certificate_url_other_than_paypals_is_refused_before_any_fetch(url: str) -> None:
    made = verifier({url: pki().served})
    with pytest.raises(SignatureError, match="PAYPAL-CERT-URL"):
        check(made, cert_url=url)
    assert made.server.calls == []


def test_sandbox_hosts_only_in_the_sandbox() -> None:
    url = "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1"
    paypal.check_certificate_url(url, pki().trust("sandbox").cert_hosts)
    with pytest.raises(SignatureError, match="not a PayPal certificate host"):
        paypal.check_certificate_url(url, pki().trust("live").cert_hosts)


@pytest.mark.parametrize(
    "served",
    [
        b"",
        b"<html>not found</html>",
        b"-----BEGIN CERTIFICATE-----",
        b"<html><pre>" + pki().served + b"</pre></html>",  # an echo page around a PEM block
        b"Echo: " + pki().served,
        pki().served + b"<script>",
        pki().signer.public_bytes(serialization.Encoding.DER),
        pki().served.replace(b"CERTIFICATE", b"PUBLIC KEY"),
    ],
)
def test_only_a_body_that_is_exactly_a_pem_chain_is_read(served: bytes) -> None:
    with pytest.raises(SignatureError, match="did not serve a PEM certificate chain"):
        check(verifier({CERT_URL: served}))


def chain_of(
    signer: x509.Certificate, *, intermediate: x509.Certificate | None = None
) -> dict[str, bytes]:
    return {CERT_URL: pem(signer, *([intermediate] if intermediate else []))}


def test_a_self_signed_certificate_is_refused() -> None:
    own = authority("messageverificationcerts.paypal.com", key("attacker"), is_ca=False)
    made = verifier(chain_of(own))
    with pytest.raises(SignatureError, match="not PayPal's signing certificate"):
        check(made, signing_key=key("attacker"))


def test_a_certificate_from_another_root_with_the_right_name_is_refused() -> None:
    root = authority("Attacker Root", key("attacker-root"))
    middle = authority(
        "Attacker CA", key("attacker-ca"), issuer=root, issuer_key=key("attacker-root")
    )
    forged = leaf(key("attacker"), middle, key("attacker-ca"))
    made = verifier(chain_of(forged, intermediate=middle))
    with pytest.raises(SignatureError, match="not PayPal's signing certificate"):
        check(made, signing_key=key("attacker"))


@pytest.mark.parametrize(
    ("dns", "common_name"),
    [
        (SANDBOX_NAME, None),  # the sandbox's certificate, while live
        ("www.paypal.com", None),
        ("evil.example", "messageverificationcerts.paypal.com"),
        ("messageverificationcerts.paypal.com", "someone else"),
    ],
)
def test_a_certificate_for_another_name_is_refused(dns: str, common_name: str | None) -> None:
    other = leaf(
        key("other-host"), pki().intermediate, key("intermediate"), dns=dns, common_name=common_name
    )
    made = verifier(chain_of(other))
    with pytest.raises(SignatureError, match="PAYPAL-CERT-URL certificate"):
        check(made, signing_key=key("other-host"))


@pytest.mark.parametrize(
    ("valid_from", "valid_until"),
    [
        (T0 - timedelta(days=400), T0 - timedelta(days=1)),  # expired
        (T0 + timedelta(days=1), T0 + timedelta(days=400)),  # not yet valid
    ],
)
def test_a_certificate_not_valid_now_is_refused(
    valid_from: datetime, valid_until: datetime
) -> None:
    dated = leaf(
        key("signer"),
        pki().intermediate,
        key("intermediate"),
        not_before=valid_from,
        not_after=valid_until,
    )
    with pytest.raises(SignatureError, match="not PayPal's signing certificate"):
        check(verifier(chain_of(dated)))


def test_a_certificate_issued_by_a_non_authority_is_refused() -> None:
    not_ca = authority(
        "Test Leaf As CA",
        key("not-ca"),
        issuer=pki().intermediate,
        issuer_key=key("intermediate"),
        is_ca=False,
    )
    below = leaf(key("below"), not_ca, key("not-ca"))
    with pytest.raises(SignatureError, match="not PayPal's signing certificate"):
        check(verifier(chain_of(below, intermediate=not_ca)), signing_key=key("below"))


def test_a_small_rsa_key_is_refused() -> None:
    small = leaf(key("small", 1024), pki().intermediate, key("intermediate"))
    with pytest.raises(SignatureError, match="PAYPAL-CERT-URL certificate"):
        check(verifier(chain_of(small)), signing_key=key("small", 1024))


def test_a_bad_signature_a_tampered_body_and_another_webhook_are_refused() -> None:
    made = verifier()
    with pytest.raises(SignatureError, match="does not match"):
        check(made, signing_key=key("attacker"))
    headers = headers_for(BODY, sent_at=T0)
    with pytest.raises(SignatureError, match="does not match"):
        made.verifier.verify(headers, BODY.replace(b"WH-1", b"WH-2"), now=T0)
    with pytest.raises(SignatureError, match="does not match"):
        check(made, webhook_id="SOMEONE-ELSES-WEBHOOK")


@pytest.mark.parametrize("algo", ["SHA1withRSA", "sha256withrsa", "SHA256withECDSA"])
def test_another_algorithm_is_refused_before_any_fetch(algo: str) -> None:
    made = verifier()
    with pytest.raises(SignatureError, match="PAYPAL-AUTH-ALGO must be SHA256withRSA"):
        check(made, algo=algo)
    assert made.server.calls == []


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
def test_a_missing_header_is_refused_before_any_fetch(name: str, blank: str | None) -> None:
    headers = headers_for(BODY, sent_at=T0)
    if blank is None:
        del headers[name]
    else:
        headers[name] = blank
    made = verifier()
    with pytest.raises(SignatureError, match=f"missing {name} header"):
        check(made, headers=headers)
    assert made.server.calls == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PAYPAL-TRANSMISSION-ID", "x" * 51),
        ("PAYPAL-TRANSMISSION-ID", "idé"),
        ("PAYPAL-TRANSMISSION-SIG", "A" * 1028),
        ("PAYPAL-CERT-URL", CERT_URL + "0" * 500),
        ("PAYPAL-TRANSMISSION-TIME", "2026-12-01T17:00:00Z" + " " * 90 + "x"),
    ],
)
def test_headers_out_of_bounds_are_refused_before_any_fetch(name: str, value: str) -> None:
    headers = headers_for(BODY, sent_at=T0)
    headers[name] = value
    made = verifier()
    with pytest.raises(SignatureError, match=name):
        check(made, headers=headers)
    assert made.server.calls == []


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
def test_the_transmission_time_tolerance(sent_at: datetime, ok: bool) -> None:
    made = verifier()
    headers = headers_for(BODY, sent_at=sent_at)
    if ok:
        made.verifier.verify(headers, BODY, now=T0)
        return
    with pytest.raises(SignatureError, match="PAYPAL-TRANSMISSION-TIME outside the 300 s"):
        made.verifier.verify(headers, BODY, now=T0)
    assert made.server.calls == []


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2026-12-01T17:00:00", "1764608400", "0001-01-01T00:00:00+14:00"],
)
def test_the_transmission_time_must_be_an_aware_iso_time(value: str) -> None:
    headers = headers_for(BODY, sent_at=T0)
    headers["PAYPAL-TRANSMISSION-TIME"] = value
    with pytest.raises(SignatureError, match="PAYPAL-TRANSMISSION-TIME is not an ISO 8601"):
        check(verifier(), headers=headers)


def test_a_signature_that_is_not_base64_is_refused() -> None:
    headers = headers_for(BODY, sent_at=T0)
    headers["PAYPAL-TRANSMISSION-SIG"] = "not*base64!"
    with pytest.raises(SignatureError, match="PAYPAL-TRANSMISSION-SIG is not base64"):
        check(verifier(), headers=headers)


def test_configuration_mistakes_are_not_signature_errors() -> None:
    with pytest.raises(ValueError, match="webhook id"):
        paypal.Verifier(webhook_id="", trust=pki().trust())
    with pytest.raises(ValueError, match="timezone-aware"):
        verifier().verifier.verify(headers_for(BODY, sent_at=T0), BODY, now=T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match="trust anchors"):
        paypal.Trust.for_environment("live", anchors=[])


# --- the cache, one fetch per URL, a cap on fetches at once ---------------------------------------


def test_a_verified_certificate_is_fetched_once() -> None:
    made = verifier()
    for n in range(3):
        sent = T0 + timedelta(seconds=30 * n)
        check(made, now=sent, transmission_id=f"t-{n}")
    assert made.server.calls == [CERT_URL] and len(made.verifier.cache) == 1


def test_a_cached_certificate_still_checks_the_signature() -> None:
    made = verifier()
    check(made)
    with pytest.raises(SignatureError, match="does not match"):
        check(made, signing_key=key("attacker"))
    assert made.server.calls == [CERT_URL]


def test_the_cache_keeps_a_certificate_a_day_at_most() -> None:
    made = verifier(cache=paypal.CertificateCache(ttl=timedelta(hours=1)))
    for sent in (T0, T0 + timedelta(minutes=59), T0 + timedelta(minutes=61)):
        check(made, now=sent)
    assert made.server.calls == [CERT_URL, CERT_URL]


def test_the_cache_never_outlives_the_certificate() -> None:
    short = leaf(
        key("signer"),
        pki().intermediate,
        key("intermediate"),
        not_before=T0 - timedelta(days=1),
        not_after=T0 + timedelta(minutes=10),
    )
    made = verifier(chain_of(short))
    check(made)
    with pytest.raises(SignatureError, match="not PayPal's signing certificate"):
        check(made, now=T0 + timedelta(minutes=11))
    assert made.server.calls == [CERT_URL, CERT_URL]


def test_a_refusal_is_cached_so_a_flood_costs_one_fetch() -> None:
    made = verifier({CERT_URL: b"<html>echo</html>"})
    for _ in range(5):
        with pytest.raises(SignatureError, match="did not serve a PEM"):
            check(made)
    assert made.server.calls == [CERT_URL]
    # Once the refusal has aged out, the URL is fetched again.
    with pytest.raises(SignatureError):
        check(made, now=T0 + timedelta(minutes=6))
    assert made.server.calls == [CERT_URL, CERT_URL]


def test_an_unavailable_certificate_is_cached_briefly() -> None:
    calls: list[str] = []

    def down(url: str) -> bytes:
        calls.append(url)
        raise paypal.CertificateUnavailable("PayPal certificate fetch answered 503")

    made = paypal.Verifier(webhook_id=WEBHOOK_ID, trust=pki().trust(), fetch=down)
    for _ in range(3):
        with pytest.raises(paypal.CertificateUnavailable):
            made.verify(headers_for(BODY, sent_at=T0), BODY, now=T0)
    assert len(calls) == 1
    with pytest.raises(paypal.CertificateUnavailable):
        made.verify(
            headers_for(BODY, sent_at=T0 + timedelta(seconds=20)),
            BODY,
            now=T0 + timedelta(seconds=20),
        )
    assert len(calls) == 2


def test_the_cache_keeps_the_most_recently_used() -> None:
    cert = pki().signer
    cache = paypal.CertificateCache(max_size=2)
    cache.put("a", cert, now=T0)
    cache.put("b", cert, now=T0)
    assert cache.get("a", now=T0) is not None  # "a" is now the most recently used
    cache.put("c", cert, now=T0)
    assert len(cache) == 2
    assert cache.get("b", now=T0) is None
    assert cache.get("a", now=T0) is not None and cache.get("c", now=T0) is not None


def test_the_cache_refuses_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        paypal.CertificateCache(max_size=0)
    with pytest.raises(ValueError):
        paypal.CertificateCache(ttl=timedelta(0))


class SlowServer:
    """Serves the signing certificate at every cert URL, slowly, counting fetches at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls: list[str] = []
        self.now_running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, url: str) -> bytes:
        with self._lock:
            self.calls.append(url)
            self.now_running += 1
            self.most_at_once = max(self.most_at_once, self.now_running)
        time.sleep(self.delay)
        with self._lock:
            self.now_running -= 1
        return pki().served


def run_at_once(count: int, work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def one(n: int) -> None:
        start.wait()
        try:
            work(n)
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return errors


def test_concurrent_requests_for_one_url_fetch_it_once() -> None:
    slow = SlowServer(0.3)
    made = paypal.Verifier(webhook_id=WEBHOOK_ID, trust=pki().trust(), fetch=slow)
    errors = run_at_once(
        8,
        lambda n: made.verify(
            headers_for(BODY, sent_at=T0, transmission_id=f"t-{n}"), BODY, now=T0
        ),
    )
    assert errors == [] and slow.calls == [CERT_URL]


def test_fetches_at_once_are_capped() -> None:
    slow = SlowServer(0.3)
    made = paypal.Verifier(webhook_id=WEBHOOK_ID, trust=pki().trust(), fetch=slow, max_fetches=2)

    def one(n: int) -> None:
        url = f"https://api.paypal.com/v1/notifications/certs/CERT-{n}"
        made.verify(headers_for(BODY, sent_at=T0, cert_url=url), BODY, now=T0)

    errors = run_at_once(8, one)
    assert errors == []
    assert len(slow.calls) == 8 and slow.most_at_once <= 2


def test_a_fetch_that_waits_too_long_for_a_slot_answers_unavailable() -> None:
    slow = SlowServer(1.0)
    made = paypal.Verifier(
        webhook_id=WEBHOOK_ID,
        trust=pki().trust(),
        fetch=slow,
        max_fetches=1,
        fetch_wait_seconds=0.1,
    )

    def one(n: int) -> None:
        url = f"https://api.paypal.com/v1/notifications/certs/CERT-{n}"
        made.verify(headers_for(BODY, sent_at=T0, cert_url=url), BODY, now=T0)

    errors = run_at_once(3, one)
    assert len(slow.calls) == 1
    assert len(errors) == 2
    assert all(isinstance(e, paypal.CertificateUnavailable) for e in errors)


# --- the httpx fetcher (an in-process transport) -------------------------------------------------


def fetcher_answering(handler: Callable[[httpx.Request], httpx.Response]) -> paypal.HttpFetcher:
    return paypal.HttpFetcher(timeout=2.0, transport=httpx.MockTransport(handler))


def test_the_fetcher_returns_the_body_over_one_client() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=pki().served)

    fetch = fetcher_answering(handler)
    assert fetch(CERT_URL) == pki().served
    client = fetch._shared()
    assert fetch(CERT_URL) == pki().served and fetch._shared() is client
    assert seen == [CERT_URL, CERT_URL]
    fetch.close()


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_the_fetcher_reports_transient_answers(status: int) -> None:
    with pytest.raises(paypal.CertificateUnavailable, match=str(status)):
        fetcher_answering(lambda _request: httpx.Response(status))(CERT_URL)


def test_the_fetcher_reports_a_network_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    with pytest.raises(paypal.CertificateUnavailable, match="ConnectTimeout"):
        fetcher_answering(handler)(CERT_URL)


@pytest.mark.parametrize("status", [301, 302, 404, 403])
def test_the_fetcher_follows_no_redirect_and_takes_no_error(status: int) -> None:
    fetch = fetcher_answering(
        lambda _request: httpx.Response(status, headers={"location": "https://evil.example/c"})
    )
    with pytest.raises(SignatureError, match=f"answered {status}"):
        fetch(CERT_URL)


def test_the_fetcher_refuses_a_huge_body() -> None:
    fetch = fetcher_answering(lambda _request: httpx.Response(200, content=b"x" * 70_000))
    with pytest.raises(SignatureError, match="too large"):
        fetch(CERT_URL)


# --- PayPal's verify-webhook-signature API, against a local stand-in ----------------------------


class FakePayPal:
    """PayPal's token and verify-webhook-signature endpoints, as documented: client
    credentials with HTTP Basic auth; the verification request's fields; ``SUCCESS`` only when
    the signature verifies with the signing certificate over the CRC32 of the event exactly as
    sent."""

    CLIENT = ("client-id-1", "client-secret-1")

    def __init__(self) -> None:
        self.tokens = 0
        self.requests: list[dict[str, Any]] = []
        self.raw_events: list[bytes] = []
        self.fail_with: int | None = None
        self.app = FastAPI()

        @self.app.get("/healthz")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        @self.app.post("/v1/oauth2/token")
        async def token(request: Request) -> JSONResponse:
            import base64

            expected = base64.b64encode(":".join(self.CLIENT).encode()).decode()
            form = (await request.body()).decode()
            if request.headers.get("authorization") != f"Basic {expected}" or (
                form != "grant_type=client_credentials"
            ):
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            self.tokens += 1
            return JSONResponse(
                {"access_token": f"A21-{self.tokens}", "token_type": "Bearer", "expires_in": 32400}
            )

        @self.app.post("/v1/notifications/verify-webhook-signature")
        async def verify(request: Request) -> JSONResponse:
            if self.fail_with is not None:
                return JSONResponse({"name": "INTERNAL_SERVICE_ERROR"}, status_code=self.fail_with)
            if not (request.headers.get("authorization") or "").startswith("Bearer A21-"):
                return JSONResponse({"name": "AUTHENTICATION_FAILURE"}, status_code=401)
            raw = await request.body()
            document = json.loads(raw)
            self.requests.append(document)
            # The event as sent, byte for byte: the text after "webhook_event": up to the end.
            marker = b'"webhook_event":'
            event = raw[raw.index(marker) + len(marker) : -1]
            self.raw_events.append(event)
            message = (
                f"{document['transmission_id']}|{document['transmission_time']}|"
                f"{document['webhook_id']}|{zlib.crc32(event)}"
            )
            try:
                import base64

                from cryptography.hazmat.primitives import hashes
                from cryptography.hazmat.primitives.asymmetric import padding

                pki().signer.public_key().verify(  # type: ignore[union-attr]
                    base64.b64decode(document["transmission_sig"]),
                    message.encode(),
                    padding.PKCS1v15(),  # type: ignore[call-arg]
                    hashes.SHA256(),  # type: ignore[call-arg]
                )
                status = "SUCCESS"
            except Exception:
                status = "FAILURE"
            return JSONResponse({"verification_status": status})


@pytest.fixture
def fake_paypal() -> Iterator[tuple[FakePayPal, str]]:
    fake = FakePayPal()
    with serve(fake.app) as base:
        yield fake, base


def api_verifier(base: str, secret: str = FakePayPal.CLIENT[1]) -> paypal.Verifier:
    def no_fetch(url: str) -> bytes:
        raise AssertionError(f"no certificate is fetched in API mode ({url})")

    return paypal.Verifier(
        webhook_id=WEBHOOK_ID,
        trust=pki().trust(),
        fetch=no_fetch,
        api=paypal.SignatureApi(
            base_url=base, client_id=FakePayPal.CLIENT[0], client_secret=secret
        ),
    )


def test_the_api_accepts_what_paypal_verifies(fake_paypal: tuple[FakePayPal, str]) -> None:
    fake, base = fake_paypal
    made = api_verifier(base)
    now = datetime.now(UTC)
    body = b'{"id":"WH-1",  "event_type":"PAYMENT.SALE.COMPLETED", "x": [1, 2.50]}'
    made.verify(headers_for(body, sent_at=now), body, now=now)
    made.verify(headers_for(body, sent_at=now, transmission_id="t-2"), body, now=now)
    assert fake.tokens == 1  # the token is kept
    assert fake.raw_events == [body, body]  # the event went verbatim (spacing, 2.50)
    sent = fake.requests[0]
    assert sent["webhook_id"] == WEBHOOK_ID and sent["auth_algo"] == "SHA256withRSA"
    assert sent["cert_url"] == CERT_URL and sent["transmission_id"] == TRANSMISSION_ID
    made.close()


def test_the_api_refuses_what_paypal_does_not_verify(fake_paypal: tuple[FakePayPal, str]) -> None:
    _fake, base = fake_paypal
    made = api_verifier(base)
    now = datetime.now(UTC)
    headers = headers_for(BODY, sent_at=now)
    with pytest.raises(SignatureError, match="PayPal API says the signature does not verify"):
        made.verify(headers, BODY.replace(b"WH-1", b"WH-9"), now=now)
    made.close()


def test_the_api_still_makes_the_cheap_checks_first(fake_paypal: tuple[FakePayPal, str]) -> None:
    fake, base = fake_paypal
    made = api_verifier(base)
    now = datetime.now(UTC)
    with pytest.raises(SignatureError, match="PAYPAL-CERT-URL"):
        made.verify(
            headers_for(BODY, sent_at=now, cert_url="https://evil.example/c"), BODY, now=now
        )
    with pytest.raises(SignatureError, match="tolerance"):
        made.verify(headers_for(BODY, sent_at=now - timedelta(hours=1)), BODY, now=now)
    assert fake.requests == [] and fake.tokens == 0
    made.close()


def test_the_api_unavailable_or_our_credentials_refused_answer_retry_later(
    fake_paypal: tuple[FakePayPal, str],
) -> None:
    fake, base = fake_paypal
    now = datetime.now(UTC)
    wrong = api_verifier(base, secret="not-the-secret")
    with pytest.raises(paypal.CertificateUnavailable, match="client credentials"):
        wrong.verify(headers_for(BODY, sent_at=now), BODY, now=now)
    wrong.close()
    fake.fail_with = 503
    made = api_verifier(base)
    with pytest.raises(paypal.CertificateUnavailable, match="503"):
        made.verify(headers_for(BODY, sent_at=now), BODY, now=now)
    made.close()


def test_the_api_base_must_be_https_off_loopback() -> None:
    assert paypal.api_base_allowed("https://api-m.paypal.com")
    assert paypal.api_base_allowed("http://127.0.0.1:8080")
    assert not paypal.api_base_allowed("http://api-m.paypal.com")
    assert not paypal.api_base_allowed("ftp://127.0.0.1")

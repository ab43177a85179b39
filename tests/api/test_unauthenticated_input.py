"""Unauthenticated input that once answered 500 (or aborted a backfill) now gets a clear 4xx
or a reported malformed line: non-ASCII signature values, PayPal transmission times at the
edge of the calendar, certificate URLs that are not URLs, timestamps past the year 9999, and
integers too long for Python to convert."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from recovery.api.receiver import build_receiver
from recovery.api.routes.callbacks import OUTCOME_PATH
from recovery.cli import app
from recovery.clock import FixedClock
from recovery.gateways import stripe as stripe_gateway
from recovery.gateways.common import PayloadError
from recovery.gateways.signing import sign
from recovery.runtime import Runtime
from tests.factories import STRIPE_SECRET, T0, invoice_failed, settings_for


@pytest.fixture
def client(store_url: str) -> Iterator[TestClient]:
    runtime = Runtime(settings_for(store_url), clock_override=FixedClock(T0))
    app_, stop = build_receiver(runtime, trigger=False)
    # raise_server_exceptions: an exception in a route fails the test, not only a 500.
    yield TestClient(app_, raise_server_exceptions=False)
    stop()
    app_.state.inbox_writer.stop()
    runtime.close()


NON_ASCII_SIGNATURES = [
    "v1=é",
    "v1=" + "ä" * 64,
    "v1=\u0660" * 2,
    "v1=\U0001f600",
    "v1=\xff\xfe",
]


@pytest.mark.parametrize("value", NON_ASCII_SIGNATURES)
@pytest.mark.parametrize(
    ("path", "header", "expected"),
    [
        ("/webhooks/generic", "Recovery-Signature", 400),
        ("/webhooks/stripe", "Stripe-Signature", 400),
    ],
)
def test_a_non_ascii_signature_value_is_refused(
    client: TestClient, path: str, header: str, expected: int, value: str
) -> None:
    signature = f"t={int(time.time())},{value}".encode()
    response = client.post(
        path,
        content=b"{}",
        # Raw header bytes (latin-1 on the wire), as a client that sends UTF-8 bytes would.
        headers=[(b"content-type", b"application/json"), (header.encode(), signature)],
    )
    assert response.status_code == expected, response.text
    assert "signature" in response.json()["error"]


@pytest.mark.parametrize("value", NON_ASCII_SIGNATURES)
@pytest.mark.parametrize("header", ["Authorization", "X-Recovery-Key"])
def test_a_non_ascii_outcome_credential_is_refused(
    client: TestClient, header: str, value: str
) -> None:
    raw = ("Basic " + value if header == "Authorization" else value).encode()
    response = client.post(
        OUTCOME_PATH,
        content=b"{}",
        headers=[(b"content-type", b"application/json"), (header.encode(), raw)],
    )
    assert response.status_code == 401, response.text


def paypal_headers(**overrides: str) -> dict[str, str]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    headers = {
        "Content-Type": "application/json",
        "PAYPAL-TRANSMISSION-ID": "69cd13f0-d67a-11e5-baa3-778b53f4ae55",
        "PAYPAL-TRANSMISSION-TIME": now,
        "PAYPAL-TRANSMISSION-SIG": "c2lnbmF0dXJl",
        "PAYPAL-CERT-URL": "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
    }
    headers.update(overrides)
    return headers


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+23:59",
    ],
)
def test_a_paypal_transmission_time_at_the_calendars_edge_is_refused(
    client: TestClient, when: str
) -> None:
    response = client.post(
        "/webhooks/paypal",
        content=b"{}",
        headers=paypal_headers(**{"PAYPAL-TRANSMISSION-TIME": when}),
    )
    assert response.status_code == 400, response.text
    assert "PAYPAL-TRANSMISSION-TIME" in response.json()["error"]


@pytest.mark.parametrize(
    "url",
    [
        "https://api.paypal.com/v1/notifications/certs/CERT-\t360caa42",
        "https://api.pay\tpal.com/v1/notifications/certs/CERT-360caa42",
        "https://xn--a.paypal.com/v1/notifications/certs/CERT-360caa42",
        "https://xn--.paypal.com/v1/notifications/certs/CERT-360caa42",
        "https://a..paypal.com/v1/notifications/certs/CERT-360caa42",
        "https://" + "a" * 64 + ".paypal.com/v1/notifications/certs/CERT-360caa42",
        "https://api.paypal.com:99999/v1/notifications/certs/CERT-360caa42",
        "https://[::1/v1/notifications/certs/CERT-360caa42",
    ],
)
def test_a_paypal_cert_url_that_is_no_url_is_refused(client: TestClient, url: str) -> None:
    response = client.post(
        "/webhooks/paypal", content=b"{}", headers=paypal_headers(**{"PAYPAL-CERT-URL": url})
    )
    assert response.status_code == 400, response.text
    assert "PAYPAL-CERT-URL" in response.json()["error"]


@pytest.mark.parametrize("created", [10**20, -(10**20), 2**63, 253402300800, 31556952000000])
def test_a_stripe_created_past_the_calendar_is_refused(client: TestClient, created: int) -> None:
    event = invoice_failed(event_id="evt_far", invoice_id="in_far", created=T0)
    event["created"] = created
    body = json.dumps(event).encode()
    response = client.post(
        "/webhooks/stripe",
        content=body,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": sign(body, STRIPE_SECRET, int(time.time())),
        },
    )
    assert response.status_code == 400, response.text
    assert "created" in response.json()["error"]


@pytest.mark.parametrize("created", [10**20, -(10**20), 2**63, 253402300800, -62135596801])
def test_the_stripe_normaliser_refuses_a_created_past_the_calendar(created: int) -> None:
    """Whether or not the card-number guard happened to redact it first (10^20 holds a
    Luhn-valid run of zeros), the normaliser itself refuses the timestamp."""
    event = invoice_failed(event_id="evt_far", invoice_id="in_far", created=T0)
    event["created"] = created
    with pytest.raises(PayloadError, match="created"):
        stripe_gateway.normalise(event)


def test_backfill_reports_huge_integers_and_far_timestamps_as_malformed_lines(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECOVERY_DATABASE_URL", store_url)
    monkeypatch.setenv("RECOVERY_STRIPE_API_BASE", "http://127.0.0.1:9")
    far = invoice_failed(event_id="evt_far", invoice_id="in_far", created=T0)
    far["created"] = 10**20
    lines = [
        json.dumps(invoice_failed(event_id="evt_ok", invoice_id="in_ok", created=T0)),
        '{"id": "evt_big", "amount": ' + "9" * 4301 + "}",
        json.dumps(far),
        json.dumps(invoice_failed(event_id="evt_ok2", invoice_id="in_ok2", created=T0)),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["backfill", str(path), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["cases"] == {"opened": 2}
    assert [line.split(":")[0] for line in document["malformed"]] == ["line 2", "line 3"]
    assert "number too long" in document["malformed"][0]
    assert "created" in document["malformed"][1]


def test_backfill_csv_with_a_huge_attempt_count_is_a_malformed_line(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECOVERY_DATABASE_URL", store_url)
    path = tmp_path / "failures.csv"
    path.write_text(
        "event_id,business_key,occurred_at,phone,attempt_count,amount\n"
        "e1,k1,2026-10-01T09:00:00+00:00,+14155552671,1,10.00\n"
        f"e2,k2,2026-10-01T09:00:00+00:00,+14155552671,{'9' * 4400},10.00\n"
        f"e3,k3,2026-10-01T09:00:00+00:00,+14155552671,1,{'9' * 4400}\n"
        "e4,k4,9999-12-31T23:59:59-14:00,+14155552671,1,10.00\n"
    )
    result = CliRunner().invoke(app, ["backfill", str(path), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["cases"].get("opened", 0) >= 1
    assert all(
        not line.startswith("line 2:") or "attempt" in line for line in document["malformed"]
    )

"""Braintree and PayPal through the receiver: verified, recorded once, bad input refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from braintree import WebhookNotification
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from recovery.api.app import create_app
from recovery.clock import FixedClock
from recovery.gateways.braintree import gateway_from_settings
from recovery.runtime import Runtime
from recovery.services.intake import drain
from recovery.store.tables import CaseRow, InboxRow
from tests.factories import T0, settings_for

# Transmission times are checked against real time (a transport matter).
NOW_REAL = "<now>"  # replaced with the wall time when the test runs


@pytest.fixture
def runtime(store_url: str) -> Runtime:
    return Runtime(settings_for(store_url), clock_override=FixedClock(T0))


def form(signature: str, payload: str) -> tuple[bytes, dict[str, str]]:
    body = urlencode({"bt_signature": signature, "bt_payload": payload}).encode()
    return body, {"Content-Type": "application/x-www-form-urlencoded"}


def test_braintree_notifications_are_recorded_once(runtime: Runtime) -> None:
    client = TestClient(
        create_app(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock)
    )
    gateway = gateway_from_settings(runtime.settings)
    sample = gateway.webhook_testing.sample_notification(
        WebhookNotification.Kind.SubscriptionChargedUnsuccessfully, "sub_123"
    )
    body, headers = form(sample["bt_signature"], sample["bt_payload"])
    first = client.post("/webhooks/braintree", content=body, headers=headers)
    assert first.status_code == 200 and first.json()["status"] == "recorded"
    again = client.post("/webhooks/braintree", content=body, headers=headers)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    tampered, _ = form(sample["bt_signature"][:-2] + "00", sample["bt_payload"])
    assert client.post("/webhooks/braintree", content=tampered, headers=headers).status_code == 400
    missing, _ = form("", sample["bt_payload"])
    assert client.post("/webhooks/braintree", content=missing, headers=headers).status_code == 400
    assert (
        client.post(
            "/webhooks/braintree", content=body, headers={"Content-Type": "application/json"}
        ).status_code
        == 415
    )
    summary = drain(
        sessions=runtime.sessions,
        codes=runtime.failure_codes,
        clock_now=runtime.clock.now,
        batch_size=10,
    )
    assert dict(summary.results) == {"opened": 1}
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(InboxRow)) == 1
        case = s.scalars(select(CaseRow)).one()
        assert case.gateway == "braintree" and case.status == "needs_contact_info"
    runtime.close()


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing"),
        (
            {
                "PAYPAL-TRANSMISSION-ID": "t1",
                "PAYPAL-TRANSMISSION-TIME": NOW_REAL,
                "PAYPAL-TRANSMISSION-SIG": "c2ln",
                "PAYPAL-AUTH-ALGO": "SHA256withRSA",
                "PAYPAL-CERT-URL": "https://evil.example.com/cert.pem",
            },
            "cert",
        ),
        (
            {
                "PAYPAL-TRANSMISSION-ID": "t1",
                "PAYPAL-TRANSMISSION-TIME": NOW_REAL,
                "PAYPAL-TRANSMISSION-SIG": "c2ln",
                "PAYPAL-AUTH-ALGO": "SHA256withRSA",
                "PAYPAL-CERT-URL": "http://api.paypal.com/v1/notifications/certs/CERT",
            },
            "https",
        ),
    ],
)
def test_paypal_refuses_unverifiable_events_before_any_fetch(
    runtime: Runtime, headers: dict[str, str], message: str
) -> None:
    client = TestClient(
        create_app(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock)
    )
    headers = {
        name: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value == NOW_REAL else value
        for name, value in headers.items()
    }
    body = json.dumps(
        {"id": "WH-1", "event_type": "PAYMENT.SALE.COMPLETED", "resource": {}}
    ).encode()
    response = client.post(
        "/webhooks/paypal", content=body, headers={"Content-Type": "application/json", **headers}
    )
    assert response.status_code == 400
    assert message in response.json()["error"].lower()
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(InboxRow)) == 0
    runtime.close()

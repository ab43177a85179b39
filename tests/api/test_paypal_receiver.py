"""PayPal through the receiver, on SQLite and PostgreSQL: a verified delivery is recorded; the
same transmission replayed with another body of equal CRC32 is refused (the store remembers
transmission ids); the same request again is a duplicate; a certificate that cannot be fetched
answers 503; the trust anchors and hosts come from the settings."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from recovery.api.app import create_app
from recovery.clock import FixedClock
from recovery.gateways import paypal
from recovery.runtime import Runtime
from recovery.store.db import transaction
from recovery.store.inbox import forget_transmissions
from recovery.store.tables import InboxRow, TransmissionRow
from tests.factories import T0, settings_for
from tests.gateways.test_paypal_intake import failed_event
from tests.support.paypal_pki import (
    CERT_URL,
    WEBHOOK_ID,
    Server,
    forge_crc32,
    headers_for,
    pki,
)


@pytest.fixture
def receiver(store_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime, Server]]:
    settings = settings_for(
        store_url,
        paypal_webhook_id=WEBHOOK_ID,
        paypal_trust_anchors_file=pki().anchors_file(tmp_path),
        paypal_intermediates_file=pki().intermediates_file(tmp_path),
    )
    runtime = Runtime(settings, clock_override=FixedClock(T0))
    served = Server({CERT_URL: pki().served})
    built = paypal.verifier_from_settings(settings)
    # The settings' trust with this test's fetcher in place of the network.
    verifier = paypal.Verifier(webhook_id=WEBHOOK_ID, trust=built.trust, fetch=served)
    app = create_app(
        settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock, paypal=verifier
    )
    with TestClient(app) as client:
        yield client, runtime, served
    runtime.close()


def post(client: TestClient, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(
        "/webhooks/paypal", content=body, headers={"Content-Type": "application/json", **headers}
    )


def inbox_rows(runtime: Runtime) -> list[str]:
    with runtime.sessions() as s:
        return list(s.scalars(select(InboxRow.event_id).order_by(InboxRow.id)))


def test_a_replay_with_a_crc32_twin_is_refused(
    receiver: tuple[TestClient, Runtime, Server],
) -> None:
    client, runtime, served = receiver
    body = json.dumps(failed_event(), separators=(",", ":")).encode()
    now = datetime.now(UTC)
    headers = headers_for(body, sent_at=now)
    first = post(client, body, headers)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "recorded"
    # A body of the attacker's choosing (another event id, another subscription) with the
    # same CRC32 carries the same, valid signature...
    changed = body.replace(b"WH-9ES33478E1234567K", b"WH-FORGEDFORGEDFORGE").replace(
        b"I-BW452GLLEP1G", b"I-ATTACKERSUB1"
    )
    at = changed.index(b"Subscription payment failed")
    twin = forge_crc32(changed, zlib.crc32(body), at)
    assert twin != body and zlib.crc32(twin) == zlib.crc32(body)
    json.loads(twin)
    # ...but its transmission id was already used for another body.
    replay = post(client, twin, headers)
    assert replay.status_code == 400, replay.text
    assert "transmission id was already used" in replay.json()["error"]
    # The same request again (a network retry) is a duplicate, as any redelivery.
    again = post(client, body, headers)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert inbox_rows(runtime) == ["WH-9ES33478E1234567K-0Y391538X12345678"]
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(TransmissionRow)) == 1
    assert served.calls == [CERT_URL]


def test_an_old_transmission_is_forgotten_by_the_store(
    receiver: tuple[TestClient, Runtime, Server],
) -> None:
    client, runtime, _served = receiver
    body = json.dumps(failed_event()).encode()
    assert post(client, body, headers_for(body, sent_at=datetime.now(UTC))).status_code == 200
    with transaction(runtime.sessions) as session:
        assert forget_transmissions(session=session, before=T0 - timedelta(minutes=1)) == 0
        assert forget_transmissions(session=session, before=T0 + timedelta(days=1)) == 1


def test_an_unavailable_certificate_answers_503(store_url: str) -> None:
    runtime = Runtime(settings_for(store_url), clock_override=FixedClock(T0))

    def down(url: str) -> bytes:
        raise paypal.CertificateUnavailable("PayPal certificate fetch answered 503")

    verifier = paypal.Verifier(webhook_id=WEBHOOK_ID, trust=pki().trust(), fetch=down)
    app = create_app(
        settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock, paypal=verifier
    )
    body = json.dumps(failed_event()).encode()
    with TestClient(app) as client:
        answer = post(client, body, headers_for(body, sent_at=datetime.now(UTC)))
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert inbox_rows(runtime) == []
    runtime.close()


def test_the_default_receiver_trusts_only_the_pinned_roots(store_url: str) -> None:
    """Without a trust setting, a certificate from the test PKI (any root but DigiCert's) is
    refused, whatever it is named."""
    runtime = Runtime(
        settings_for(store_url, paypal_webhook_id=WEBHOOK_ID), clock_override=FixedClock(T0)
    )
    built = paypal.verifier_from_settings(runtime.settings)
    assert built.trust.anchors == tuple(paypal.shipped_anchors())
    assert built.trust.cert_hosts == frozenset({"api.paypal.com", "api-m.paypal.com"})
    verifier = paypal.Verifier(
        webhook_id=WEBHOOK_ID,
        trust=built.trust,
        fetch=Server({CERT_URL: pki().served + b"\n" + pki().served}),
    )
    app = create_app(
        settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock, paypal=verifier
    )
    body = json.dumps(failed_event()).encode()
    with TestClient(app) as client:
        answer = post(client, body, headers_for(body, sent_at=datetime.now(UTC)))
    assert answer.status_code == 400
    assert "not PayPal's signing certificate" in answer.json()["error"]
    runtime.close()

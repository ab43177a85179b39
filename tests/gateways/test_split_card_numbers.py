"""A card number split across the fields a normaliser joins (PayPal's given name and surname,
its phone's country code and national number; Braintree's first and last names) is found in
what the normaliser builds, in every generated spelling, and never reaches the stored event."""

from __future__ import annotations

import base64
import json
import logging
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from braintree.util.crypto import Crypto
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from recovery.api.app import create_app
from recovery.api.requests import normalise_text
from recovery.clock import FixedClock
from recovery.domain.pan import keyed_marker
from recovery.gateways import braintree as braintree_gateway
from recovery.gateways import paypal as paypal_gateway
from recovery.gateways.signing import sign
from recovery.runtime import Runtime
from recovery.services.intake import drain
from recovery.settings import Settings
from recovery.store.migrate import upgrade
from recovery.store.tables import Base
from tests.domain.test_pan_spellings import holds, spellings
from tests.gateways.test_braintree_intake import (
    PRIVATE_KEY,
    PUBLIC_KEY,
    notification_xml,
    transaction_xml,
)
from tests.gateways.test_paypal_intake import failed_event

MARKER = keyed_marker(b"a key of the receiver")
GATEWAY = braintree_gateway.gateway_from_settings(
    Settings(
        braintree_environment="sandbox",
        braintree_merchant_id="merchant_for_tests",
        braintree_public_key=PUBLIC_KEY,
        braintree_private_key=PRIVATE_KEY,
    )
)


def stored_text(result: Any) -> str:
    """What the receiver stores of a normalised event: its JSON."""
    return json.dumps(result.model_dump(mode="json"), ensure_ascii=False)


def split(text: str, at: int) -> tuple[str, str]:
    at = max(1, min(len(text) - 1, at))
    return text[:at], text[at:]


@settings(max_examples=200, deadline=None)
@given(spellings(), st.integers(1, 40))
def test_paypal_names_joined_into_a_card_number_are_redacted(
    planted: tuple[str, str], at: int
) -> None:
    pan, spelling = planted
    given_name, surname = split(spelling, at)
    event = failed_event()
    event["resource"]["subscriber"]["name"] = {
        "given_name": given_name.strip() or "x",
        "surname": surname.strip() or "y",
    }
    result, found = normalise_text(
        json.dumps(event, ensure_ascii=False),
        paypal_gateway.normalise,
        MARKER,
        label="not a PayPal event",
        object_only=True,
    )
    assert not holds(stored_text(result), pan)
    if holds(f"{given_name.strip()} {surname.strip()}", pan):
        assert found >= 1


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["4111111111111111", "4000056655665556"]), st.integers(1, 4))
def test_a_paypal_phone_joined_into_a_card_number_is_redacted(pan: str, at: int) -> None:
    event = failed_event(
        phone={
            "phone_type": "MOBILE",
            "phone_number": {"country_code": pan[:at], "national_number": pan[at:]},
        }
    )
    result, found = normalise_text(
        json.dumps(event), paypal_gateway.normalise, MARKER, label="x", object_only=True
    )
    assert found >= 1 and not holds(stored_text(result), pan)


def braintree_signed(xml: str) -> tuple[str, str]:
    payload = base64.encodebytes(xml.encode())
    return f"{PUBLIC_KEY}|{Crypto.sha1_hmac_hash(PRIVATE_KEY, payload)}", payload.decode()


@settings(max_examples=100, deadline=None)
@given(spellings(), st.integers(1, 40))
def test_braintree_names_joined_into_a_card_number_are_redacted(
    planted: tuple[str, str], at: int
) -> None:
    pan, spelling = planted
    first, last = split(spelling, at)
    first, last = first.strip() or "x", last.strip() or "y"
    txn = transaction_xml("txn_1", status="processor_declined", response_code="2001")
    txn = txn.replace("<first-name>Ada</first-name>", f"<first-name>{escape(first)}</first-name>")
    txn = txn.replace("<last-name>Lovelace</last-name>", f"<last-name>{escape(last)}</last-name>")
    xml = notification_xml("subscription_charged_unsuccessfully", [txn])
    signature, payload = braintree_signed(xml)
    result, _found = braintree_gateway.read_notification(
        signature, payload, gateway=GATEWAY, marker=MARKER
    )
    assert not holds(stored_text(result), pan)


# --- through the receiver: nothing planted is stored or logged ----------------------------------


def test_no_generated_spelling_is_stored_or_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Signed generic events with a planted card number, in a generated spelling, in the
    fields a case keeps (name, reference, failure message, payment reference): after the
    receiver and ingest, no row of any table, no byte of the SQLite files and no log line
    holds it (read back with the independent reader)."""
    from tests.factories import GENERIC_SECRET, T0, settings_for

    caplog.set_level(logging.DEBUG)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    runtime = Runtime(settings_for(url), clock_override=FixedClock(T0))
    app = create_app(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock)
    planted_numbers: set[str] = set()
    with TestClient(app) as client:

        @settings(
            max_examples=60,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            spellings(),
            st.sampled_from(["customer_name", "customer_ref", "failure_message", "business_key"]),
            st.integers(0, 10**9),
        )
        def post(planted: tuple[str, str], field: str, n: int) -> None:
            pan, spelling = planted
            planted_numbers.add(pan)
            body: dict[str, Any] = {
                "type": "payment.failed",
                "event_id": f"evt_{n}",
                "business_key": f"pay_{n}",
                "occurred_at": "2026-12-01T17:00:00+00:00",
                "phone": "+14155552671",
                "amount": "10.00",
                "currency": "usd",
            }
            body[field] = f"ref {spelling}"
            raw = json.dumps(body, ensure_ascii=n % 2 == 0).encode()
            answer = client.post(
                "/webhooks/generic",
                content=raw,
                headers={
                    "Content-Type": "application/json",
                    "Recovery-Signature": sign(raw, GENERIC_SECRET, int(time.time())),
                },
            )
            assert answer.status_code in (200, 400), answer.text
            assert not holds(answer.text, pan)

        post()
    drain(
        sessions=runtime.sessions,
        codes=runtime.failure_codes,
        clock_now=runtime.clock.now,
        batch_size=100,
    )
    parts: list[str] = []
    with runtime.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            parts.extend(repr(tuple(row)) for row in conn.execute(select(table)))
    for name in (tmp_path / "store.db", tmp_path / "store.db-wal"):
        if name.exists():
            parts.append(name.read_bytes().decode("utf-8", "replace"))
    stored = "\n".join(parts)
    logged = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert planted_numbers
    for pan in planted_numbers:
        assert not holds(stored, pan), pan
        assert not holds(logged, pan), pan
    runtime.close()

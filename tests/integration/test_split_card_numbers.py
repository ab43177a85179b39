"""A card number split across the fields a normaliser joins (PayPal's given name and surname,
its phone's country code and national number; Braintree's first and last names) is found in
what the normaliser builds, in every generated spelling, and never reaches the stored event."""

from __future__ import annotations

import base64
import json
from typing import Any
from xml.sax.saxutils import escape

from braintree.util.crypto import Crypto
from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.api.requests import normalise_text
from recovery.domain.pan import keyed_marker
from recovery.gateways import braintree as braintree_gateway
from recovery.gateways import paypal as paypal_gateway
from recovery.settings import Settings
from tests.integration.test_braintree_intake import (
    PRIVATE_KEY,
    PUBLIC_KEY,
    notification_xml,
    transaction_xml,
)
from tests.integration.test_paypal_intake import failed_event
from tests.unit.test_pan_spellings import holds, spellings

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

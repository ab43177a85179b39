"""Stripe events normalised from Stripe's own object shapes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from recovery.domain.models import PaymentFailure, PaymentSucceeded
from recovery.gateways import stripe as gateway
from recovery.gateways.common import Ignored, PayloadError, minor_to_decimal
from tests.factories import T0, charge_event, intent_failed, invoice_failed


def test_invoice_failure() -> None:
    event = invoice_failed(
        event_id="evt_1",
        invoice_id="in_1",
        created=T0,
        phone="(305) 555-0143",
        state="FL",
        postal_code="33101",
        amount_due=4990,
        metadata={"timezone": "America/New_York"},
        attempt_count=2,
    )
    result = gateway.normalise(event)
    assert isinstance(result, PaymentFailure)
    assert result.business_key == "in_1" and result.customer_ref == "cus_QXg1o8vcGmoR32"
    assert result.contact.phone_e164 == "+13055550143"
    assert (result.contact.state, result.contact.postal_code) == ("FL", "33101")
    assert result.contact.explicit_tz == "America/New_York"
    assert (result.amount, result.currency, result.attempt_count) == (Decimal("49.90"), "usd", 2)
    assert result.occurred_at == T0


def test_intent_failure_codes_and_key() -> None:
    with_invoice = gateway.normalise(
        intent_failed(
            event_id="e",
            intent_id="pi_1",
            invoice_id="in_9",
            created=T0,
            code="card_declined",
            decline_code="insufficient_funds",
            advice_code="try_again_later",
        )
    )
    assert isinstance(with_invoice, PaymentFailure)
    assert with_invoice.business_key == "in_9"
    assert (with_invoice.failure_code, with_invoice.decline_code, with_invoice.advice_code) == (
        "card_declined",
        "insufficient_funds",
        "try_again_later",
    )
    alone = gateway.normalise(intent_failed(event_id="e2", intent_id="pi_2", created=T0))
    assert isinstance(alone, PaymentFailure) and alone.business_key == "pi_2"


def test_charge_failure_key_precedence() -> None:
    assert (
        gateway.normalise(
            charge_event(event_id="a", charge_id="ch_1", created=T0, intent_id="pi_1")
        ).business_key
        == "pi_1"
    )
    assert (
        gateway.normalise(charge_event(event_id="b", charge_id="ch_2", created=T0)).business_key
        == "ch_2"
    )
    failure = gateway.normalise(
        charge_event(
            event_id="c",
            charge_id="ch_3",
            created=T0,
            invoice_id="in_3",
            failure_code="expired_card",
        )
    )
    assert isinstance(failure, PaymentFailure)
    assert (failure.business_key, failure.failure_code) == ("in_3", "expired_card")


@pytest.mark.parametrize("event_type", ["invoice.paid", "invoice.payment_succeeded"])
def test_invoice_success(event_type: str) -> None:
    result = gateway.normalise(
        invoice_failed(event_id="e", invoice_id="in_1", created=T0, event_type=event_type)
    )
    assert isinstance(result, PaymentSucceeded) and result.business_key == "in_1"


def test_charge_success_and_unknown_type() -> None:
    ok = gateway.normalise(
        charge_event(event_id="e", charge_id="ch", created=T0, succeeded=True, intent_id="pi_5")
    )
    assert isinstance(ok, PaymentSucceeded) and ok.business_key == "pi_5"
    event = invoice_failed(event_id="e", invoice_id="in", created=T0)
    event["type"] = "invoice.created"
    assert isinstance(gateway.normalise(event), Ignored)


def test_invalid_phone_is_reported_not_raised() -> None:
    result = gateway.normalise(
        invoice_failed(event_id="e", invoice_id="in", created=T0, phone="12")
    )
    assert isinstance(result, PaymentFailure)
    assert result.contact.phone_e164 is None and result.phone_problem
    assert result.phone_raw == "12"


@pytest.mark.parametrize(
    "broken",
    [
        {"type": "invoice.payment_failed", "created": 1, "data": {"object": {"id": "in"}}},
        {"id": "e", "created": 1, "data": {"object": {"id": "in"}}},
        {"id": "e", "type": "invoice.payment_failed", "data": {"object": {"id": "in"}}},
        {"id": "e", "type": "invoice.payment_failed", "created": 1, "data": {"object": {}}},
        {
            "id": "e",
            "type": "invoice.payment_failed",
            "created": "x",
            "data": {"object": {"id": "i"}},
        },
    ],
)
def test_malformed_events_raise_payload_error(broken: dict) -> None:
    with pytest.raises(PayloadError):
        gateway.normalise(broken)


def test_minor_units_by_currency() -> None:
    assert minor_to_decimal(1999, "USD")[:2] == (Decimal("19.99"), "usd")
    assert minor_to_decimal(1999, "jpy")[:2] == (Decimal("1999"), "jpy")
    assert minor_to_decimal(1999, "kwd")[:2] == (Decimal("1.999"), "kwd")
    assert minor_to_decimal(None, "usd")[0] is None

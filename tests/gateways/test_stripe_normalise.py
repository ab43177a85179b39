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


# --- retry-aware facts ----------------------------------------------------------------------


def test_an_invoice_names_stripe_s_next_retry_and_its_payment_page() -> None:
    from datetime import timedelta

    retry = T0 + timedelta(days=3)
    page = "https://invoice.stripe.com/i/acct_1/test_YWNjdF8x?s=ap"
    result = gateway.normalise(
        invoice_failed(
            event_id="evt_r",
            invoice_id="in_r",
            created=T0,
            next_payment_attempt=retry,
            hosted_invoice_url=page,
        )
    )
    assert isinstance(result, PaymentFailure)
    assert result.next_retry_at == retry and result.payment_link == page


@pytest.mark.parametrize("seconds", [None, 0, -86400, "tomorrow", True])
def test_no_next_retry_when_stripe_plans_none_or_names_a_past_time(seconds: object) -> None:
    event = invoice_failed(event_id="evt_n", invoice_id="in_n", created=T0)
    event["data"]["object"]["next_payment_attempt"] = (
        int(T0.timestamp()) + seconds
        if isinstance(seconds, int) and seconds is not True
        else seconds
    )
    result = gateway.normalise(event)
    assert isinstance(result, PaymentFailure) and result.next_retry_at is None


@pytest.mark.parametrize(
    "page",
    [
        "http://invoice.stripe.com/i/x",
        "javascript:alert(1)",
        "https://invoice.stripe.com/i/[redacted-card-number:0011223344556677]",
        "https://invoice.stripe.com/i/x y",
        "https://invoice.stripe.com/" + "x" * 1000,
    ],
)
def test_a_payment_page_that_is_not_a_plain_https_url_is_dropped(page: str) -> None:
    event = invoice_failed(event_id="e", invoice_id="in_p", created=T0, hosted_invoice_url=page)
    result = gateway.normalise(event)
    assert isinstance(result, PaymentFailure) and result.payment_link is None


def test_intents_and_charges_carry_no_retry() -> None:
    intent = gateway.normalise(intent_failed(event_id="e1", intent_id="pi_1", created=T0))
    charge = gateway.normalise(charge_event(event_id="e2", charge_id="ch_1", created=T0))
    assert isinstance(intent, PaymentFailure) and isinstance(charge, PaymentFailure)
    assert intent.next_retry_at is None and charge.next_retry_at is None


def test_the_card_updater_names_the_customer() -> None:
    from recovery.domain.models import CardUpdated
    from recovery.gateways.samples import card_updated

    result = gateway.normalise(card_updated(event_id="evt_cu", created=T0, customer="cus_9"))
    assert isinstance(result, CardUpdated)
    assert (result.customer_ref, result.occurred_at) == ("cus_9", T0)
    orphan = card_updated(event_id="evt_o", created=T0)
    orphan["data"]["object"]["customer"] = None
    assert isinstance(gateway.normalise(orphan), Ignored)

"""PayPal webhooks: normalisation of PayPal's documented event shapes (verification is in
``test_paypal_verification.py``)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from recovery.domain.models import FailureCategory, PaymentFailure, PaymentSucceeded
from recovery.domain.pan import REDACTED, redact_parsed_json
from recovery.domain.taxonomy import categorize, load_failure_codes
from recovery.gateways import paypal
from recovery.gateways.common import Ignored, PayloadError
from tests.factories import T0
from tests.support.paypal_pki import headers_for, verifier

PAN = "4000056655665556"


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


# --- verification: see tests/gateways/test_paypal_verification.py ----------------------


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


def test_verified_body_with_a_card_number_normalises_without_it() -> None:
    event = copy.deepcopy(failed_event())
    event["resource"]["subscriber"]["name"]["surname"] = f"Hopper {PAN}"
    body = json.dumps(event).encode()
    made = verifier()
    made.verifier.verify(headers_for(body, sent_at=T0), body, now=T0)
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

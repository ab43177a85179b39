"""Braintree notifications verified and parsed by the ``braintree`` package itself: its own
sample notifications, notifications signed the way Braintree signs them, and the cases they
open and close in a real store."""

from __future__ import annotations

import base64
from datetime import timedelta
from decimal import Decimal

import braintree
import pytest
from braintree.util.crypto import Crypto
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.domain.models import (
    CaseStatus,
    FailureCategory,
    Outcome,
    PaymentFailure,
    PaymentSucceeded,
)
from recovery.domain.pan import REDACTED
from recovery.domain.taxonomy import categorize, load_failure_codes
from recovery.gateways import braintree as bt
from recovery.gateways.common import Ignored, PayloadError
from recovery.gateways.signing import SignatureError
from recovery.settings import Settings
from recovery.store.cases import apply_failure, apply_success
from recovery.store.db import transaction
from recovery.store.tables import CaseRow
from tests.factories import T0

PUBLIC_KEY = "bt_public_key_for_tests"
PRIVATE_KEY = "bt_private_key_for_tests_0123456789"
PAN = "4000056655665556"


def make_gateway(
    public_key: str = PUBLIC_KEY, private_key: str = PRIVATE_KEY
) -> braintree.BraintreeGateway:
    return bt.gateway_from_settings(
        Settings(
            braintree_environment="sandbox",
            braintree_merchant_id="merchant_for_tests",
            braintree_public_key=public_key,
            braintree_private_key=private_key,
        )
    )


@pytest.fixture(scope="module")
def gateway() -> braintree.BraintreeGateway:
    return make_gateway()


def sample(
    gateway: braintree.BraintreeGateway, kind: str, subject_id: str = "sub_42"
) -> tuple[str, str]:
    """Braintree's own sample notification, as the form fields arrive (text)."""
    fields = gateway.webhook_testing.sample_notification(kind, subject_id)
    return fields["bt_signature"], fields["bt_payload"].decode("ascii")


def signed(
    xml: str, public_key: str = PUBLIC_KEY, private_key: str = PRIVATE_KEY
) -> tuple[str, str]:
    """A notification signed exactly as Braintree signs one (HMAC-SHA1 of the base64 payload)."""
    payload = base64.encodebytes(xml.encode())
    signature = f"{public_key}|{Crypto.sha1_hmac_hash(private_key, payload)}"
    return signature, payload.decode("ascii")


def transaction_xml(
    txn_id: str,
    *,
    status: str,
    amount: str = "49.99",
    created: str = "2026-12-01T16:58:00Z",
    response_code: str | None = None,
    response_text: str | None = None,
    response_type: str | None = None,
    advice: str | None = None,
    phone: str | None = "(305) 555-0143",
) -> str:
    optional = ""
    if response_code:
        optional += f"<processor-response-code>{response_code}</processor-response-code>"
    if response_text:
        optional += f"<processor-response-text>{response_text}</processor-response-text>"
    if response_type:
        optional += f"<processor-response-type>{response_type}</processor-response-type>"
    if advice:
        optional += f"<merchant-advice-code>{advice}</merchant-advice-code>"
    phone_xml = f"<phone>{phone}</phone>" if phone else ""
    return f"""
        <transaction>
          <id>{txn_id}</id>
          <status>{status}</status>
          <type>sale</type>
          <amount>{amount}</amount>
          <currency-iso-code>USD</currency-iso-code>
          <created-at type="datetime">{created}</created-at>
          {optional}
          <customer>
            <id>cust_7</id>
            <first-name>Ada</first-name>
            <last-name>Lovelace</last-name>
            {phone_xml}
          </customer>
          <billing>
            <region>FL</region>
            <postal-code>33101</postal-code>
            <country-code-alpha2>US</country-code-alpha2>
          </billing>
          <credit-card>
            <bin>400005</bin>
            <last-4>5556</last-4>
            <card-type>Visa</card-type>
          </credit-card>
          <custom-fields>
            <timezone>America/New_York</timezone>
          </custom-fields>
        </transaction>"""


def notification_xml(
    kind: str,
    transactions: list[str],
    *,
    sub_id: str = "sub_42",
    period_start: str = "2026-12-01",
    balance: str = "49.99",
    failure_count: int = 1,
    timestamp: str = "2026-12-01T17:00:00Z",
    next_billing_date: str | None = None,
) -> str:
    next_billing = (
        f'<next-billing-date type="date">{next_billing_date}</next-billing-date>'
        if next_billing_date
        else ""
    )
    return f"""
        <notification>
          <timestamp type="datetime">{timestamp}</timestamp>
          <kind>{kind}</kind>
          <subject>
            <subscription>
              <id>{sub_id}</id>
              <status>Past Due</status>
              <balance>{balance}</balance>
              <price>49.99</price>
              <failure-count type="integer">{failure_count}</failure-count>
              <billing-period-start-date type="date">{period_start}</billing-period-start-date>
              <billing-period-end-date type="date">2026-12-31</billing-period-end-date>
              {next_billing}
              <transactions type="array">{"".join(transactions)}</transactions>
              <add-ons type="array"></add-ons>
              <discounts type="array"></discounts>
            </subscription>
          </subject>
        </notification>"""


# --- Braintree's own sample notifications ------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["subscription_charged_unsuccessfully", "subscription_went_past_due"]
)
def test_sample_failures(gateway: braintree.BraintreeGateway, kind: str) -> None:
    result = bt.parse_notification(*sample(gateway, kind), gateway=gateway)
    assert isinstance(result, PaymentFailure)
    assert result.gateway.value == "braintree" and result.event_type == kind
    # Samples carry no billing period: the key falls back to the transaction, else the
    # subscription (both are the sample's id).
    assert result.business_key == "sub_42"
    assert result.event_id.startswith("btn_")
    assert result.occurred_at.tzinfo is not None
    # Samples carry no customer details: the case opens as needs_contact_info.
    assert result.contact.phone_e164 is None and result.phone_problem is None
    assert "currency" in result.missing_fields


def test_sample_charged_unsuccessfully_reads_the_failed_transaction(
    gateway: braintree.BraintreeGateway,
) -> None:
    result = bt.parse_notification(
        *sample(gateway, "subscription_charged_unsuccessfully"), gateway=gateway
    )
    assert isinstance(result, PaymentFailure)
    assert result.amount == Decimal("49.99")
    assert result.failure_code == "failed"
    category, _ = categorize(
        gateway=result.gateway, failure_code=result.failure_code, codes=load_failure_codes()
    )
    assert category is FailureCategory.processing_error


def test_sample_went_past_due_has_no_amount(gateway: braintree.BraintreeGateway) -> None:
    result = bt.parse_notification(*sample(gateway, "subscription_went_past_due"), gateway=gateway)
    assert isinstance(result, PaymentFailure)
    assert result.amount is None and result.missing_fields == ("amount", "currency")


def test_sample_success_matches_the_sample_failure(gateway: braintree.BraintreeGateway) -> None:
    ok = bt.parse_notification(
        *sample(gateway, "subscription_charged_successfully"), gateway=gateway
    )
    failed = bt.parse_notification(
        *sample(gateway, "subscription_charged_unsuccessfully"), gateway=gateway
    )
    assert isinstance(ok, PaymentSucceeded) and isinstance(failed, PaymentFailure)
    assert ok.business_key == failed.business_key
    assert ok.amount == Decimal("49.99") and ok.event_type == "subscription_charged_successfully"
    assert ok.event_id != failed.event_id


@pytest.mark.parametrize("kind", ["subscription_canceled", "subscription_expired", "check"])
def test_other_kinds_are_ignored(gateway: braintree.BraintreeGateway, kind: str) -> None:
    result = bt.parse_notification(*sample(gateway, kind), gateway=gateway)
    assert isinstance(result, Ignored)
    assert result.event_type == kind and kind in result.reason


def test_payload_as_bytes_or_text(gateway: braintree.BraintreeGateway) -> None:
    fields = gateway.webhook_testing.sample_notification(
        "subscription_charged_unsuccessfully", "sub_9"
    )
    from_bytes = bt.parse_notification(
        fields["bt_signature"], fields["bt_payload"], gateway=gateway
    )
    from_text = bt.parse_notification(
        fields["bt_signature"], fields["bt_payload"].decode(), gateway=gateway
    )
    assert from_bytes == from_text


def test_redelivery_has_the_same_event_id(gateway: braintree.BraintreeGateway) -> None:
    signature, payload = signed(
        notification_xml(
            "subscription_charged_unsuccessfully", [transaction_xml("txn_1", status="failed")]
        )
    )
    first = bt.parse_notification(signature, payload, gateway=gateway)
    again = bt.parse_notification(signature, payload, gateway=gateway)
    assert first.event_id == again.event_id
    past_due = bt.parse_notification(
        *signed(
            notification_xml(
                "subscription_went_past_due", [transaction_xml("txn_1", status="failed")]
            )
        ),
        gateway=gateway,
    )
    assert past_due.event_id != first.event_id


# --- signatures --------------------------------------------------------------------------------


def test_tampered_signature(gateway: braintree.BraintreeGateway) -> None:
    signature, payload = sample(gateway, "subscription_charged_unsuccessfully")
    digest = signature.split("|", 1)[1]
    forged = f"{PUBLIC_KEY}|{digest[:-1]}{'0' if digest[-1] != '0' else '1'}"
    with pytest.raises(SignatureError, match="does not match payload"):
        bt.parse_notification(forged, payload, gateway=gateway)


def test_tampered_payload(gateway: braintree.BraintreeGateway) -> None:
    signature, _ = sample(gateway, "subscription_charged_unsuccessfully", "sub_42")
    _, other_payload = sample(gateway, "subscription_charged_successfully", "sub_42")
    with pytest.raises(SignatureError, match="does not match payload"):
        bt.parse_notification(signature, other_payload, gateway=gateway)


def test_wrong_public_key(gateway: braintree.BraintreeGateway) -> None:
    other = make_gateway(public_key="someone_elses_public_key")
    signature, payload = sample(other, "subscription_charged_unsuccessfully")
    with pytest.raises(SignatureError, match="no matching public key"):
        bt.parse_notification(signature, payload, gateway=gateway)


def test_right_public_key_wrong_private_key(gateway: braintree.BraintreeGateway) -> None:
    other = make_gateway(private_key="a_different_private_key_0000")
    signature, payload = sample(other, "subscription_charged_unsuccessfully")
    with pytest.raises(SignatureError, match="does not match payload"):
        bt.parse_notification(signature, payload, gateway=gateway)


def test_signature_among_several_pairs(gateway: braintree.BraintreeGateway) -> None:
    signature, payload = sample(gateway, "subscription_charged_unsuccessfully")
    rotated = f"old_public_key|{'0' * 40}&{signature}"
    assert isinstance(bt.parse_notification(rotated, payload, gateway=gateway), PaymentFailure)


@pytest.mark.parametrize(
    ("signature", "payload", "message"),
    [
        (None, "PG5vdGlmaWNhdGlvbi8+", "signature cannot be blank"),
        ("x|y", None, "payload cannot be blank"),
        ("x|y", "not base64 at all!", "illegal characters"),
        ("x|y", "caf\u00e9", "illegal characters"),
        ("", "PG5vdGlmaWNhdGlvbi8+", "no matching public key"),
    ],
)
def test_missing_or_malformed_fields_are_signature_errors(
    gateway: braintree.BraintreeGateway, signature: str | None, payload: str | None, message: str
) -> None:
    with pytest.raises(SignatureError, match=message):
        bt.read_notification(signature, payload, gateway=gateway)


@pytest.mark.parametrize(
    "xml",
    [
        "<notification><kind>subscription_charged_unsuccessfully</kind>",
        "<notification><kind>check</kind></notification>",
        "<something-else><kind>check</kind></something-else>",
        f"<notification><timestamp type='datetime'>{PAN}</timestamp></notification>",
    ],
)
def test_signed_but_malformed_payload(gateway: braintree.BraintreeGateway, xml: str) -> None:
    with pytest.raises(PayloadError) as caught:
        bt.parse_notification(*signed(xml), gateway=gateway)
    assert PAN not in str(caught.value)


def test_failure_kind_without_a_subscription(gateway: braintree.BraintreeGateway) -> None:
    xml = """<notification><timestamp type="datetime">2026-12-01T17:00:00Z</timestamp>
        <kind>subscription_charged_unsuccessfully</kind>
        <subject><check type="boolean">true</check></subject></notification>"""
    with pytest.raises(PayloadError, match="no subscription id"):
        bt.parse_notification(*signed(xml), gateway=gateway)


def test_gateway_from_settings_refuses_an_unknown_environment() -> None:
    with pytest.raises(ValueError, match="RECOVERY_BRAINTREE_ENVIRONMENT"):
        bt.gateway_from_settings(Settings(braintree_environment="moon"))
    assert isinstance(make_gateway(), braintree.BraintreeGateway)


# --- realistic notifications -------------------------------------------------------------------


def test_realistic_failure(gateway: braintree.BraintreeGateway) -> None:
    xml = notification_xml(
        "subscription_charged_unsuccessfully",
        [
            transaction_xml(
                "txn_new",
                status="processor_declined",
                response_code="2001",
                response_text="Insufficient Funds",
                response_type="soft_declined",
                advice="02",
            ),
            transaction_xml("txn_old", status="settled", created="2026-11-01T16:58:00Z"),
        ],
        balance="99.98",
        failure_count=2,
    )
    result = bt.parse_notification(*signed(xml), gateway=gateway)
    assert isinstance(result, PaymentFailure)
    assert result.business_key == "sub_42@2026-12-01"
    assert (result.decline_code, result.failure_code, result.advice_code) == (
        "2001",
        "soft_declined",
        "02",
    )
    assert result.failure_message == "Insufficient Funds"
    assert result.contact.phone_e164 == "+13055550143"
    assert (result.contact.country, result.contact.state, result.contact.postal_code) == (
        "US",
        "FL",
        "33101",
    )
    assert result.contact.explicit_tz == "America/New_York"
    assert (result.customer_ref, result.customer_name) == ("cust_7", "Ada Lovelace")
    # The balance (two unpaid periods' worth) is what is owed.
    assert (result.amount, result.currency) == (Decimal("99.98"), "usd")
    assert result.attempt_count == 2 and result.missing_fields == ()
    assert result.occurred_at == T0
    category, _ = categorize(
        gateway=result.gateway,
        failure_code=result.failure_code,
        decline_code=result.decline_code,
        advice_code=result.advice_code,
        codes=load_failure_codes(),
    )
    assert category is FailureCategory.insufficient_funds


def test_latest_transaction_is_the_newest_whatever_the_order(
    gateway: braintree.BraintreeGateway,
) -> None:
    xml = notification_xml(
        "subscription_charged_unsuccessfully",
        [
            transaction_xml("txn_old", status="settled", created="2026-11-01T16:58:00Z"),
            transaction_xml("txn_new", status="processor_declined", response_code="2004"),
        ],
        balance="0.00",
    )
    result = bt.parse_notification(*signed(xml), gateway=gateway)
    assert isinstance(result, PaymentFailure)
    assert result.decline_code == "2004" and result.failure_code == "processor_declined"
    # A zero balance: the failed transaction's amount is what is owed.
    assert result.amount == Decimal("49.99")


def test_past_due_notice_does_not_take_codes_from_a_successful_transaction(
    gateway: braintree.BraintreeGateway,
) -> None:
    xml = notification_xml(
        "subscription_went_past_due",
        [
            transaction_xml(
                "txn_ok", status="settled", response_code="1000", response_type="approved"
            )
        ],
    )
    result = bt.parse_notification(*signed(xml), gateway=gateway)
    assert isinstance(result, PaymentFailure)
    assert (result.decline_code, result.failure_code, result.failure_message) == (None, None, None)
    assert result.amount == Decimal("49.99")


def test_invalid_phone_is_kept_with_the_reason(gateway: braintree.BraintreeGateway) -> None:
    xml = notification_xml(
        "subscription_charged_unsuccessfully",
        [transaction_xml("txn_1", status="failed", phone="555-01")],
    )
    result = bt.parse_notification(*signed(xml), gateway=gateway)
    assert isinstance(result, PaymentFailure)
    assert result.contact.phone_e164 is None
    assert result.phone_raw == "555-01" and result.phone_problem


def test_card_numbers_anywhere_are_redacted_and_counted(
    gateway: braintree.BraintreeGateway,
) -> None:
    xml = notification_xml(
        "subscription_charged_unsuccessfully",
        [
            transaction_xml(
                "txn_1",
                status="processor_declined",
                response_code="2005",
                response_text=f"Invalid card {PAN}",
            ).replace(
                "<first-name>Ada</first-name>", "<first-name>4000 0566 5566 5556</first-name>"
            )
        ],
    )
    result, found = bt.read_notification(*signed(xml), gateway=gateway)
    assert isinstance(result, PaymentFailure)
    # The package keeps some values twice (raw and as an object): each copy is redacted.
    assert found >= 2
    dumped = result.model_dump_json()
    assert PAN not in dumped and "4000 0566 5566 5556" not in dumped
    assert result.failure_message == f"Invalid card {REDACTED}"


def test_amount_holding_a_card_number_is_redacted(gateway: braintree.BraintreeGateway) -> None:
    xml = notification_xml(
        "subscription_charged_successfully",
        [transaction_xml("txn_1", status="submitted_for_settlement", amount=PAN)],
    )
    result, found = bt.read_notification(*signed(xml), gateway=gateway)
    assert isinstance(result, PaymentSucceeded)
    assert found >= 1 and result.amount is None
    assert PAN not in result.model_dump_json()


# --- the key scheme against a real store -------------------------------------------------------


def _case(sessions: sessionmaker[Session], key: str) -> CaseRow | None:
    with sessions() as session:
        return session.scalar(
            select(CaseRow).where(CaseRow.gateway == "braintree", CaseRow.business_key == key)
        )


def _record(sessions: sessionmaker[Session], result: object) -> str:
    codes = load_failure_codes()
    with transaction(sessions) as session:
        if isinstance(result, PaymentFailure):
            category, reason = categorize(
                gateway=result.gateway,
                failure_code=result.failure_code,
                decline_code=result.decline_code,
                advice_code=result.advice_code,
                codes=codes,
            )
            return apply_failure(
                session=session,
                failure=result,
                category=category,
                category_reason=reason,
                now=T0 + timedelta(minutes=5),
            ).action
        assert isinstance(result, PaymentSucceeded)
        return apply_success(session=session, success=result, now=T0 + timedelta(minutes=5)).action


def test_successful_retry_closes_the_case_and_the_next_period_opens_a_new_one(
    gateway: braintree.BraintreeGateway, sessions: sessionmaker[Session]
) -> None:
    declined = transaction_xml(
        "txn_a", status="processor_declined", response_code="2001", response_type="soft_declined"
    )
    failed = bt.parse_notification(
        *signed(notification_xml("subscription_charged_unsuccessfully", [declined])),
        gateway=gateway,
    )
    past_due = bt.parse_notification(
        *signed(
            notification_xml(
                "subscription_went_past_due", [declined], timestamp="2026-12-02T17:00:00Z"
            )
        ),
        gateway=gateway,
    )
    assert _record(sessions, failed) == "opened"
    assert _record(sessions, past_due) == "updated"

    # Braintree's retry is a new transaction in the same billing period.
    retried = bt.parse_notification(
        *signed(
            notification_xml(
                "subscription_charged_successfully",
                [
                    transaction_xml(
                        "txn_b", status="submitted_for_settlement", created="2026-12-06T09:00:00Z"
                    ),
                    declined,
                ],
                balance="0.00",
                timestamp="2026-12-06T09:00:05Z",
            )
        ),
        gateway=gateway,
    )
    assert isinstance(retried, PaymentSucceeded) and isinstance(failed, PaymentFailure)
    assert retried.business_key == failed.business_key == "sub_42@2026-12-01"
    assert _record(sessions, retried) == "closed"
    case = _case(sessions, "sub_42@2026-12-01")
    assert case is not None
    assert (case.status, case.outcome) == (CaseStatus.closed.value, Outcome.recovered.value)

    next_period = bt.parse_notification(
        *signed(
            notification_xml(
                "subscription_charged_unsuccessfully",
                [transaction_xml("txn_c", status="processor_declined", response_code="2004")],
                period_start="2027-01-01",
                timestamp="2027-01-01T17:00:00Z",
            )
        ),
        gateway=gateway,
    )
    assert _record(sessions, next_period) == "opened"
    fresh = _case(sessions, "sub_42@2027-01-01")
    assert fresh is not None and fresh.status == CaseStatus.open.value
    assert fresh.category == FailureCategory.card_expired.value


def test_the_next_retry_is_the_end_of_the_past_due_subscription_s_next_billing_date(
    gateway: braintree.BraintreeGateway,
) -> None:
    from datetime import UTC, datetime

    declined = transaction_xml(
        "txn_retry",
        status="processor_declined",
        response_code="2001",
        response_type="soft_declined",
    )
    xml = notification_xml(
        "subscription_charged_unsuccessfully", [declined], next_billing_date="2026-12-11"
    )
    result = bt.parse_notification(*signed(xml), gateway=gateway)
    assert isinstance(result, PaymentFailure)
    # a date in the merchant's zone: done by the end of 11 December at UTC-12
    assert result.next_retry_at == datetime(2026, 12, 12, 12, tzinfo=UTC)
    # a next billing date on or before the failure's own date names no retry
    same_day = notification_xml(
        "subscription_charged_unsuccessfully", [declined], next_billing_date="2026-12-01"
    )
    again = bt.parse_notification(*signed(same_day), gateway=gateway)
    assert isinstance(again, PaymentFailure) and again.next_retry_at is None
    without = bt.parse_notification(
        *signed(notification_xml("subscription_charged_unsuccessfully", [declined])),
        gateway=gateway,
    )
    assert isinstance(without, PaymentFailure) and without.next_retry_at is None

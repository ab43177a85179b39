"""Whatever text or number a gateway sends in a field, the failure it reports becomes a case on
every store: a NUL or an unpaired surrogate (which PostgreSQL's text columns refuse), a field
longer than its column, an amount the store's Numeric(18, 4) cannot hold."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import String, select

from recovery.api.app import create_app
from recovery.clock import FixedClock
from recovery.domain.models import ContactPoint, PaymentFailure, storable
from recovery.gateways.signing import sign
from recovery.runtime import Runtime
from recovery.services.intake import drain
from recovery.store.tables import CaseRow, InboxRow
from tests.factories import GENERIC_SECRET, T0, invoice_failed, settings_for, stripe_headers

HOSTILE = {
    "nul": "Jenny\x00Rosen",
    "surrogate": "Jenny\ud800Rosen",
    "long": "J" * 5000,
}


def _open(store_url: str, post: Any) -> tuple[int, dict[str, Any], CaseRow | None]:
    runtime = Runtime(settings_for(store_url), clock_override=FixedClock(T0))
    try:
        client = TestClient(
            create_app(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock)
        )
        answer = post(client)
        summary = drain(
            sessions=runtime.sessions,
            codes=runtime.failure_codes,
            clock_now=runtime.clock.now,
            batch_size=10,
        )
        with runtime.sessions() as s:
            errors = [r.error for r in s.scalars(select(InboxRow)) if r.error]
            assert errors == []
            case = s.scalars(select(CaseRow)).one_or_none()
            if case is not None:
                s.expunge(case)
        assert answer.status_code == 200, answer.text
        assert dict(summary.results) == {"opened": 1}
        return answer.status_code, answer.json(), case
    finally:
        runtime.close()


def _post_generic(client: TestClient, body: dict[str, Any]) -> Any:
    raw = json.dumps(body).encode()
    signature = sign(raw, GENERIC_SECRET, int(time.time()))
    return client.post(
        "/webhooks/generic",
        content=raw,
        headers={"Content-Type": "application/json", "Recovery-Signature": signature},
    )


GENERIC_TEXT_FIELDS = ["customer_name", "customer_ref", "decline_code", "failure_code"]


def _generic_body(field_name: str, value: str) -> dict[str, Any]:
    return {
        "type": "payment.failed",
        "event_id": f"gen-{field_name}",
        "business_key": "order-1",
        "occurred_at": T0.isoformat(),
        "phone": "+14155552671",
        "state": "CA",
        "amount": "19.99",
        "currency": "USD",
        field_name: value,
    }


@pytest.mark.parametrize("field_name", GENERIC_TEXT_FIELDS)
def test_a_nul_in_a_generic_text_field_never_stops_a_case(store_url: str, field_name: str) -> None:
    body = _generic_body(field_name, HOSTILE["nul"])
    _, _, case = _open(store_url, lambda client: _post_generic(client, body))
    assert case is not None and getattr(case, field_name) == "Jenny\ufffdRosen"


@pytest.mark.parametrize("kind", ["long", "surrogate"])
@pytest.mark.parametrize("field_name", GENERIC_TEXT_FIELDS)
def test_the_generic_source_refuses_what_its_schema_does_not_allow(
    store_url: str, field_name: str, kind: str
) -> None:
    # The generic source's fields have documented widths: the sender learns which one is wrong.
    runtime = Runtime(settings_for(store_url), clock_override=FixedClock(T0))
    try:
        client = TestClient(
            create_app(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock)
        )
        answer = _post_generic(client, _generic_body(field_name, HOSTILE[kind]))
        assert answer.status_code == 400
        assert answer.json()["error"].startswith(f"invalid event: {field_name}: ")
        with runtime.sessions() as s:
            assert s.scalars(select(InboxRow)).all() == []
    finally:
        runtime.close()


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_stripe_names_and_codes_never_stop_a_case(store_url: str, kind: str) -> None:
    event = invoice_failed(event_id=f"evt_{kind}", invoice_id=f"in_{kind}", created=T0)
    event["data"]["object"]["customer_name"] = HOSTILE[kind]
    event["data"]["object"]["customer"] = HOSTILE[kind]
    raw = json.dumps(event).encode()
    _, _, case = _open(
        store_url,
        lambda client: client.post("/webhooks/stripe", content=raw, headers=stripe_headers(raw)),
    )
    assert case is not None and case.customer_name is not None
    assert "\x00" not in case.customer_name and len(case.customer_name) <= 255
    if kind == "nul":
        assert case.customer_name == "Jenny\ufffdRosen"


@pytest.mark.parametrize(
    ("amount_due", "expected"),
    [
        (2000, Decimal("20.00")),
        (10**15, None),  # ten trillion dollars: out of range, recorded as a missing amount
        (-500, None),
    ],
)
def test_stripe_amounts_out_of_range_are_recorded_as_missing(
    store_url: str, amount_due: int, expected: Decimal | None
) -> None:
    event = invoice_failed(event_id="evt_amount", invoice_id="in_amount", created=T0)
    for name in ("amount_due", "amount_remaining"):
        event["data"]["object"][name] = amount_due
    raw = json.dumps(event).encode()
    _, _, case = _open(
        store_url,
        lambda client: client.post("/webhooks/stripe", content=raw, headers=stripe_headers(raw)),
    )
    assert case is not None and case.amount == expected
    assert ("amount" in case.missing_fields.get("fields", [])) == (expected is None)


def test_a_payment_reference_longer_than_its_column_is_refused(store_url: str) -> None:
    runtime = Runtime(settings_for(store_url), clock_override=FixedClock(T0))
    try:
        client = TestClient(
            create_app(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock)
        )
        event = invoice_failed(event_id="evt_key", invoice_id="in_" + "k" * 300, created=T0)
        raw = json.dumps(event).encode()
        answer = client.post("/webhooks/stripe", content=raw, headers=stripe_headers(raw))
        assert answer.status_code == 400
        assert answer.json()["error"] == "event payment reference longer than 255 characters"
        with runtime.sessions() as s:
            assert s.scalars(select(InboxRow)).all() == []
    finally:
        runtime.close()


# -- the model's limits are the store's ------------------------------------------------------


def test_every_received_text_fits_its_column() -> None:
    long = "x" * 10_000
    failure = PaymentFailure(
        gateway="generic",
        event_id="e",
        event_type="payment.failed",
        business_key="k",
        customer_ref=long,
        customer_name=long,
        failure_code=long,
        decline_code=long,
        advice_code=long,
        currency=long,
        contact=ContactPoint(state=long, postal_code=long, explicit_tz=long, country=long),
        occurred_at=T0,
    )
    columns = CaseRow.__table__.c
    checked = 0
    for name in ("customer_ref", "customer_name", "failure_code", "decline_code", "advice_code"):
        column_type = columns[name].type
        assert isinstance(column_type, String) and column_type.length is not None
        assert len(getattr(failure, name)) == column_type.length
        checked += 1
    for name in ("state", "postal_code", "explicit_tz", "country"):
        column_type = columns[name].type
        assert isinstance(column_type, String) and column_type.length is not None
        assert len(getattr(failure.contact, name)) == column_type.length
        checked += 1
    currency_type = columns["currency"].type
    assert isinstance(currency_type, String)
    assert failure.currency is not None and len(failure.currency) == currency_type.length
    assert checked == 9


def test_storable_replaces_only_what_no_store_takes() -> None:
    assert storable("plain text, accents é and emoji \U0001f600") == (
        "plain text, accents é and emoji \U0001f600"
    )
    assert storable("a\x00b") == "a\ufffdb"
    assert storable("a\ud800b\udfffc") == "a\ufffdb\ufffdc"

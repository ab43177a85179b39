"""The generic source's two body shapes over real HTTP (uvicorn on loopback, a real store): the
event shape and the middleware shape (transaction_id, customer_phone_number, failure_reason,
original_amount), recorded once, bad input refused with the field named."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from recovery.api.app import create_app
from recovery.clock import FixedClock
from recovery.gateways.signing import sign
from recovery.runtime import Runtime
from recovery.services.intake import drain
from recovery.store.tables import CaseRow, HistoryRow, InboxRow
from tests.factories import GENERIC_SECRET, T0, serve, settings_for

PAN = "4242 4242 4242 4242"


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    rt = Runtime(settings_for(store_url), clock_override=FixedClock(T0))
    yield rt
    rt.close()


@pytest.fixture
def base(runtime: Runtime) -> Iterator[str]:
    app = create_app(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock)
    with serve(app) as url:
        yield url


def post(base: str, body: dict[str, Any] | bytes) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "Recovery-Signature": sign(raw, GENERIC_SECRET, int(time.time())),
        "Content-Type": "application/json",
    }
    return httpx.post(f"{base}/webhooks/generic", content=raw, headers=headers, timeout=10)


def ingest(runtime: Runtime) -> dict[str, int]:
    summary = drain(
        sessions=runtime.sessions,
        codes=runtime.failure_codes,
        clock_now=runtime.clock.now,
        batch_size=100,
    )
    return dict(summary.results)


def counts(runtime: Runtime) -> tuple[int, int]:
    with runtime.sessions() as s:
        return (
            s.scalar(select(func.count()).select_from(InboxRow)) or 0,
            s.scalar(select(func.count()).select_from(CaseRow)) or 0,
        )


def only_case(runtime: Runtime) -> CaseRow:
    with runtime.sessions() as s:
        return s.scalars(select(CaseRow)).one()


def seed(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "transaction_id": "txn_1001",
        "customer_phone_number": "(415) 555-2671",
        "failure_reason": "insufficient_funds",
        "original_amount": 49.99,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


# --- the middleware shape -------------------------------------------------------------------


def test_a_middleware_body_opens_a_case_stamped_with_its_receipt_time(
    base: str, runtime: Runtime
) -> None:
    response = post(base, seed())
    assert response.status_code == 200 and response.json()["status"] == "recorded"
    assert response.json()["event_id"].startswith("seed_")
    assert ingest(runtime) == {"opened": 1}
    case = only_case(runtime)
    assert (case.gateway, case.business_key) == ("generic", "txn_1001")
    assert case.phone_e164 == "+14155552671" and case.category == "insufficient_funds"
    assert case.amount == Decimal("49.99") and case.currency is None
    assert case.failed_at == T0  # no occurred_at: the receiver's clock
    assert case.missing_fields == {"fields": ["currency"]}


def test_a_redelivered_middleware_body_makes_one_case(base: str, runtime: Runtime) -> None:
    body = json.dumps(seed(currency="USD")).encode()
    first = post(base, body)
    again = post(base, body)
    assert first.json()["status"] == "recorded"
    assert again.status_code == 200 and again.json() == {**first.json(), "status": "duplicate"}
    # the same body with its keys in another order and other spacing is the same delivery
    reordered = json.dumps(dict(reversed(list(seed(currency="USD").items()))), indent=2)
    assert post(base, reordered.encode()).json()["status"] == "duplicate"
    assert ingest(runtime) == {"opened": 1}
    assert counts(runtime) == (1, 1)


def test_a_further_failure_of_the_same_transaction_updates_its_case(
    base: str, runtime: Runtime
) -> None:
    assert post(base, seed()).json()["status"] == "recorded"
    later = seed(occurred_at=(T0 + timedelta(days=2)).isoformat(), failure_reason="card_expired")
    assert post(base, later).json()["status"] == "recorded"
    assert ingest(runtime) == {"opened": 1, "updated": 1}
    assert only_case(runtime).category == "card_expired"


def test_the_event_id_and_time_are_used_when_sent(base: str, runtime: Runtime) -> None:
    at = T0 - timedelta(hours=3)
    body = seed(event_id="mw-77", occurred_at=at.isoformat(), currency="eur", state="ny")
    assert post(base, body).json() == {"status": "recorded", "event_id": "mw-77"}
    ingest(runtime)
    case = only_case(runtime)
    assert case.failed_at == at and case.currency == "eur" and case.state == "NY"


@pytest.mark.parametrize(
    ("spelling", "country", "e164"),
    [
        ("(415) 555-2671", None, "+14155552671"),
        ("415.555.2671", None, "+14155552671"),
        ("1-415-555-2671", None, "+14155552671"),
        ("+1 415 555 2671", None, "+14155552671"),
        (4155552671, None, "+14155552671"),
        ("020 7946 0958", "GB", "+442079460958"),
    ],
)
def test_common_phone_spellings(
    base: str, runtime: Runtime, spelling: Any, country: str | None, e164: str
) -> None:
    assert post(base, seed(customer_phone_number=spelling, country=country)).status_code == 200
    ingest(runtime)
    assert only_case(runtime).phone_e164 == e164


@pytest.mark.parametrize(
    ("reason", "category"),
    [
        ("Insufficient Funds", "insufficient_funds"),
        ("EXPIRED_CARD", "card_expired"),
        ("do-not-honor", "generic_decline"),
        ("card_invalid_or_lost", "card_invalid_or_lost"),
        ("the moon was in the wrong phase", "unknown"),
    ],
)
def test_the_failure_reason_goes_through_the_taxonomy(
    base: str, runtime: Runtime, reason: str, category: str
) -> None:
    assert post(base, seed(failure_reason=reason)).status_code == 200
    assert ingest(runtime) == {"opened": 1}
    assert only_case(runtime).category == category


def test_an_amount_may_be_a_decimal_string(base: str, runtime: Runtime) -> None:
    assert post(base, seed(original_amount=" 1234.5 ")).status_code == 200
    ingest(runtime)
    assert only_case(runtime).amount == Decimal("1234.5")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"transaction_id": None}, "transaction_id"),
        ({"transaction_id": ""}, "transaction_id"),
        ({"customer_phone_number": "not a number"}, "customer_phone_number"),
        ({"customer_phone_number": "+1 415 555"}, "customer_phone_number"),
        ({"customer_phone_number": None}, "customer_phone_number"),
        ({"original_amount": -0.01}, "original_amount"),
        ({"original_amount": "NaN"}, "original_amount"),
        ({"original_amount": "Infinity"}, "original_amount"),
        ({"original_amount": 1e12}, "original_amount"),
        ({"original_amount": "12 dollars"}, "original_amount"),
        ({"original_amount": True}, "original_amount"),
        ({"failure_reason": None}, "failure_reason"),
        ({"occurred_at": "2026-12-01T10:00:00"}, "occurred_at"),
        ({"currency": "dollars"}, "currency"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(
    base: str, runtime: Runtime, changes: dict[str, Any], field: str
) -> None:
    body = seed()
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    response = post(base, body)
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]
    assert counts(runtime) == (0, 0)


def test_a_body_of_neither_shape_is_refused(base: str, runtime: Runtime) -> None:
    response = post(base, {"hello": "world"})
    assert response.status_code == 400
    assert "transaction_id" in response.json()["error"] and "type" in response.json()["error"]
    assert counts(runtime) == (0, 0)


def test_a_card_number_in_a_middleware_body_is_redacted_and_flagged(
    base: str, runtime: Runtime
) -> None:
    assert post(base, seed(customer_name=f"Jo {PAN}")).status_code == 200
    with runtime.sessions() as s:
        row = s.scalars(select(InboxRow)).one()
        assert row.pan_redacted and PAN not in json.dumps(row.payload)
    ingest(runtime)
    assert "4242" not in (only_case(runtime).customer_name or "")


def test_an_event_shape_success_closes_a_middleware_case(base: str, runtime: Runtime) -> None:
    assert post(base, seed()).status_code == 200
    success = {
        "type": "payment.succeeded",
        "event_id": "ok_1",
        "business_key": "txn_1001",
        "occurred_at": (T0 + timedelta(days=1)).isoformat(),
        "amount": "49.99",
        "currency": "usd",
    }
    assert post(base, success).json()["status"] == "recorded"
    assert ingest(runtime) == {"opened": 1, "closed": 1}
    case = only_case(runtime)
    assert (case.status, case.outcome) == ("closed", "recovered")


# --- the event shape ------------------------------------------------------------------------


def event(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "payment.failed",
        "event_id": "gen_1",
        "business_key": "sub_77:2026-12",
        "occurred_at": T0.isoformat(),
        "phone": "+13055550143",
        "state": "FL",
        "decline_code": "insufficient_funds",
        "amount": "49.90",
        "currency": "USD",
    }
    body.update(changes)
    return body


def test_the_event_shape_is_unchanged_and_may_name_the_next_retry_and_a_link(
    base: str, runtime: Runtime
) -> None:
    retry = T0 + timedelta(days=3)
    link = "https://pay.example.com/i/sub_77"
    response = post(base, event(next_retry_at=retry.isoformat(), payment_link=link))
    assert response.json() == {"status": "recorded", "event_id": "gen_1"}
    assert post(base, event(next_retry_at=retry.isoformat())).json()["status"] == "duplicate"
    assert ingest(runtime) == {"opened": 1}
    with runtime.sessions() as s:
        data = s.scalars(select(HistoryRow)).one().data
    assert data["next_retry_at"] == retry.isoformat()
    assert data["payment_link"] == link and data["decline"] == "soft"


def test_an_event_without_its_id_is_still_refused(base: str, runtime: Runtime) -> None:
    body = event()
    del body["event_id"]
    response = post(base, body)
    assert response.status_code == 400 and "event_id" in response.json()["error"]


def test_a_link_that_is_not_https_is_dropped(base: str, runtime: Runtime) -> None:
    assert post(base, event(payment_link="javascript:alert(1)")).status_code == 200
    ingest(runtime)
    with runtime.sessions() as s:
        assert s.scalars(select(HistoryRow)).one().data["payment_link"] is None

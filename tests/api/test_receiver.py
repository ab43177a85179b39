"""The receiver against a real store (SQLite, and PostgreSQL when a URL is given)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from recovery.api.app import create_app
from recovery.clock import FixedClock
from recovery.gateways.signing import sign
from recovery.runtime import Runtime
from recovery.services.intake import drain
from recovery.store.tables import CaseRow, HistoryRow, InboxRow
from tests.factories import (
    GENERIC_SECRET,
    STRIPE_SECRET_OLD,
    T0,
    charge_event,
    intent_failed,
    invoice_failed,
    serve,
    settings_for,
    stripe_headers,
)


@pytest.fixture
def runtime(store_url: str) -> Iterator[Runtime]:
    rt = Runtime(settings_for(store_url), clock_override=FixedClock(T0))
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> TestClient:
    app = create_app(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock)
    return TestClient(app)


def post_stripe(client: TestClient, event: dict, **kw: object) -> httpx.Response:
    body = json.dumps(event).encode()
    return client.post("/webhooks/stripe", content=body, headers=stripe_headers(body, **kw))


def counts(runtime: Runtime) -> tuple[int, int]:
    with runtime.sessions() as s:
        return (
            s.scalar(select(func.count()).select_from(InboxRow)) or 0,
            s.scalar(select(func.count()).select_from(CaseRow)) or 0,
        )


def ingest(runtime: Runtime) -> dict[str, int]:
    summary = drain(
        sessions=runtime.sessions,
        codes=runtime.failure_codes,
        clock_now=runtime.clock.now,
        batch_size=100,
    )
    return dict(summary.results)


def test_failure_is_recorded_then_opens_one_case(client: TestClient, runtime: Runtime) -> None:
    event = invoice_failed(event_id="evt_a", invoice_id="in_a", created=T0)
    response = post_stripe(client, event)
    assert response.status_code == 200
    assert response.json() == {"status": "recorded", "event_id": "evt_a"}
    assert counts(runtime) == (1, 0)
    assert ingest(runtime) == {"opened": 1}
    with runtime.sessions() as s:
        case = s.scalars(select(CaseRow)).one()
        assert (case.gateway, case.business_key, case.status) == ("stripe", "in_a", "open")
        assert case.phone_e164 == "+14155552671"
        assert case.next_due_at == T0
        kinds = [h.kind for h in s.scalars(select(HistoryRow))]
        assert kinds == ["failure_recorded"]


def test_redelivery_answers_2xx_and_changes_nothing(client: TestClient, runtime: Runtime) -> None:
    event = invoice_failed(event_id="evt_dup", invoice_id="in_dup", created=T0)
    assert post_stripe(client, event).json()["status"] == "recorded"
    ingest(runtime)
    second = post_stripe(client, event)
    assert second.status_code == 200 and second.json()["status"] == "duplicate"
    assert counts(runtime) == (1, 1)
    assert ingest(runtime) == {}


def test_rotated_secret_is_accepted(client: TestClient, runtime: Runtime) -> None:
    event = invoice_failed(event_id="evt_rot", invoice_id="in_rot", created=T0)
    assert post_stripe(client, event, secret=STRIPE_SECRET_OLD).status_code == 200


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing"),
        ({"Stripe-Signature": "garbage"}, "signature"),
        ({"Stripe-Signature": "t=1,v1=abc"}, "signature"),
    ],
)
def test_bad_or_missing_signature_is_400_and_stores_nothing(
    client: TestClient, runtime: Runtime, headers: dict[str, str], message: str
) -> None:
    body = json.dumps(invoice_failed(event_id="evt_bad", invoice_id="in_b", created=T0)).encode()
    response = client.post(
        "/webhooks/stripe", content=body, headers={"Content-Type": "application/json", **headers}
    )
    assert response.status_code == 400
    assert message in response.json()["error"].lower()
    assert counts(runtime) == (0, 0)


def test_unknown_secret_and_stale_timestamp_are_400(client: TestClient, runtime: Runtime) -> None:
    event = invoice_failed(event_id="evt_x", invoice_id="in_x", created=T0)
    unknown = post_stripe(client, event, secret="whsec_someone_else_entirely")
    assert unknown.status_code == 400
    assert "no signature matches" in unknown.json()["error"]
    stale = post_stripe(client, event, timestamp=int(time.time()) - 301)
    assert stale.status_code == 400
    assert "tolerance" in stale.json()["error"]
    assert counts(runtime) == (0, 0)


def test_malformed_json_wrong_type_and_oversized_body(client: TestClient, runtime: Runtime) -> None:
    body = b'{"id": "evt_1", "type": '
    assert (
        client.post("/webhooks/stripe", content=body, headers=stripe_headers(body)).status_code
        == 400
    )
    body = json.dumps(invoice_failed(event_id="evt_t", invoice_id="in_t", created=T0)).encode()
    wrong = client.post(
        "/webhooks/stripe",
        content=body,
        headers={**stripe_headers(body), "Content-Type": "text/plain"},
    )
    assert wrong.status_code == 415
    big = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    huge = client.post("/webhooks/stripe", content=big, headers=stripe_headers(big))
    assert huge.status_code == 413
    bad_utf8 = b'{"id": "\xff\xfe"}'
    assert (
        client.post(
            "/webhooks/stripe", content=bad_utf8, headers=stripe_headers(bad_utf8)
        ).status_code
        == 400
    )
    assert counts(runtime) == (0, 0)


def test_signed_body_that_is_not_an_event_is_400(client: TestClient, runtime: Runtime) -> None:
    for payload in (
        [1, 2],
        {"id": "evt_1"},
        {"id": "evt_1", "type": "invoice.payment_failed", "created": 1, "data": {}},
    ):
        body = json.dumps(payload).encode()
        response = client.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
        assert response.status_code == 400, payload
    assert counts(runtime) == (0, 0)


def test_unknown_event_type_is_2xx_and_recorded_as_ignored(
    client: TestClient, runtime: Runtime
) -> None:
    event = invoice_failed(event_id="evt_plan", invoice_id="in_p", created=T0)
    event["type"] = "customer.updated"
    response = post_stripe(client, event)
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    with runtime.sessions() as s:
        row = s.scalars(select(InboxRow)).one()
        assert (row.kind, row.result, row.processed_at is not None) == ("ignored", "ignored", True)
    assert ingest(runtime) == {}


def test_two_events_for_the_same_invoice_make_one_case(
    client: TestClient, runtime: Runtime
) -> None:
    post_stripe(client, invoice_failed(event_id="evt_i", invoice_id="in_same", created=T0))
    post_stripe(
        client,
        intent_failed(
            event_id="evt_p",
            intent_id="pi_1",
            invoice_id="in_same",
            created=T0 + timedelta(seconds=2),
            decline_code="expired_card",
            code="expired_card",
        ),
    )
    post_stripe(
        client,
        charge_event(
            event_id="evt_c",
            charge_id="ch_1",
            invoice_id="in_same",
            intent_id="pi_1",
            created=T0 + timedelta(seconds=3),
        ),
    )
    assert ingest(runtime) == {"opened": 1, "updated": 2}
    with runtime.sessions() as s:
        case = s.scalars(select(CaseRow)).one()
        assert case.business_key == "in_same"
        assert case.category == "card_expired"
        assert [h.kind for h in s.scalars(select(HistoryRow).order_by(HistoryRow.id))] == [
            "failure_recorded",
            "failure_updated",
            "failure_updated",
        ]


def test_success_before_a_late_failure_leaves_the_case_closed(
    client: TestClient, runtime: Runtime
) -> None:
    paid = invoice_failed(
        event_id="evt_paid",
        invoice_id="in_late",
        created=T0 + timedelta(hours=1),
        event_type="invoice.paid",
    )
    late = invoice_failed(event_id="evt_fail", invoice_id="in_late", created=T0)
    post_stripe(client, paid)
    ingest(runtime)
    post_stripe(client, late)
    assert ingest(runtime) == {"ignored": 1}
    assert counts(runtime) == (2, 0)


def test_success_closes_an_open_case_as_recovered(client: TestClient, runtime: Runtime) -> None:
    post_stripe(client, invoice_failed(event_id="evt_f", invoice_id="in_r", created=T0))
    ingest(runtime)
    post_stripe(
        client,
        charge_event(
            event_id="evt_s",
            charge_id="ch_s",
            invoice_id="in_r",
            succeeded=True,
            created=T0 + timedelta(days=1),
        ),
    )
    assert ingest(runtime) == {"closed": 1}
    with runtime.sessions() as s:
        case = s.scalars(select(CaseRow)).one()
        assert (case.status, case.outcome, case.next_due_at) == ("closed", "recovered", None)


def test_invalid_phone_opens_unreachable_with_reason(client: TestClient, runtime: Runtime) -> None:
    post_stripe(
        client,
        invoice_failed(event_id="evt_ph", invoice_id="in_ph", created=T0, phone="+1 555 0100"),
    )
    ingest(runtime)
    with runtime.sessions() as s:
        case = s.scalars(select(CaseRow)).one()
        assert (case.status, case.outcome) == ("closed", "unreachable")
        assert "invalid phone number" in (case.status_reason or "")
        assert case.next_due_at is None


def test_missing_amount_and_currency_are_recorded_not_fatal(
    client: TestClient, runtime: Runtime
) -> None:
    post_stripe(
        client,
        invoice_failed(
            event_id="evt_m", invoice_id="in_m", created=T0, amount_due=None, currency=None
        ),
    )
    post_stripe(client, invoice_failed(event_id="evt_n", invoice_id="in_n", created=T0))
    assert ingest(runtime) == {"opened": 2}
    with runtime.sessions() as s:
        case = s.scalars(select(CaseRow).where(CaseRow.business_key == "in_m")).one()
        assert case.amount is None and case.currency is None
        assert case.missing_fields == {"fields": ["amount", "currency"]}


def test_no_phone_and_no_customer_opens_needs_contact_info(
    client: TestClient, runtime: Runtime
) -> None:
    post_stripe(
        client,
        invoice_failed(
            event_id="evt_np", invoice_id="in_np", created=T0, phone=None, customer=None
        ),
    )  # type: ignore[arg-type]
    ingest(runtime)
    with runtime.sessions() as s:
        case = s.scalars(select(CaseRow)).one()
        assert case.status == "needs_contact_info" and case.next_due_at is None


def test_a_bad_row_never_blocks_the_rows_behind_it(client: TestClient, runtime: Runtime) -> None:
    post_stripe(client, invoice_failed(event_id="evt_1", invoice_id="in_1", created=T0))
    post_stripe(client, invoice_failed(event_id="evt_2", invoice_id="in_2", created=T0))
    post_stripe(client, invoice_failed(event_id="evt_3", invoice_id="in_3", created=T0))
    with runtime.sessions() as s, s.begin():
        row = s.scalars(select(InboxRow).where(InboxRow.event_id == "evt_2")).one()
        row.payload = {"gateway": "stripe", "nonsense": True}
    assert ingest(runtime) == {"opened": 2, "error": 1}
    with runtime.sessions() as s:
        bad = s.scalars(select(InboxRow).where(InboxRow.event_id == "evt_2")).one()
        assert bad.result == "error" and "no longer valid" in (bad.error or "")
        assert s.scalar(select(func.count()).select_from(CaseRow)) == 2


def test_generic_source_signed_json(client: TestClient, runtime: Runtime) -> None:
    payload = {
        "type": "payment.failed",
        "event_id": "gen_1",
        "business_key": "sub_77:2026-12",
        "occurred_at": T0.isoformat(),
        "phone": "(305) 555-0143",
        "state": "FL",
        "decline_code": "insufficient_funds",
        "amount": "49.90",
        "currency": "USD",
    }
    body = json.dumps(payload).encode()
    headers = {
        "Recovery-Signature": sign(body, GENERIC_SECRET, int(time.time())),
        "Content-Type": "application/json",
    }
    assert client.post("/webhooks/generic", content=body, headers=headers).status_code == 200
    assert (
        client.post(
            "/webhooks/generic",
            content=body,
            headers={
                **headers,
                "Recovery-Signature": sign(body, "wrong-secret-xyz", int(time.time())),
            },
        ).status_code
        == 400
    )
    bad = json.dumps({**payload, "event_id": "gen_2", "occurred_at": "yesterday"}).encode()
    response = client.post(
        "/webhooks/generic",
        content=bad,
        headers={**headers, "Recovery-Signature": sign(bad, GENERIC_SECRET, int(time.time()))},
    )
    assert response.status_code == 400 and "occurred_at" in response.json()["error"]
    assert ingest(runtime) == {"opened": 1}
    with runtime.sessions() as s:
        case = s.scalars(select(CaseRow)).one()
        assert (case.gateway, case.phone_e164, case.category) == (
            "generic",
            "+13055550143",
            "insufficient_funds",
        )
        assert str(case.amount).startswith("49.9") and case.currency == "usd"


def test_store_down_answers_503_and_nothing_half_written(store_url: str) -> None:
    rt = Runtime(settings_for(store_url), clock_override=FixedClock(T0))
    client = TestClient(create_app(settings=rt.settings, sessions=rt.sessions, clock=rt.clock))
    if store_url.startswith("sqlite"):
        rt.engine.dispose()
        with rt.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE webhook_inbox RENAME TO webhook_inbox_away")
    else:
        with rt.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE webhook_inbox RENAME TO webhook_inbox_away")
    response = post_stripe(client, invoice_failed(event_id="evt_d", invoice_id="in_d", created=T0))
    assert response.status_code == 503 and response.headers["retry-after"]
    with rt.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE webhook_inbox_away RENAME TO webhook_inbox")
    assert counts(rt) == (0, 0)
    rt.close()


def test_fifty_concurrent_deliveries_make_one_row_and_one_case(runtime: Runtime) -> None:
    app = create_app(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock)
    event = invoice_failed(event_id="evt_race", invoice_id="in_race", created=T0)
    body = json.dumps(event).encode()
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as http:

        def deliver(_: int) -> int:
            return http.post(
                "/webhooks/stripe", content=body, headers=stripe_headers(body)
            ).status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(deliver, range(50)))
    assert statuses == [200] * 50
    assert counts(runtime) == (1, 0)
    ingest(runtime)
    assert counts(runtime) == (1, 1)


def test_concurrent_ingest_runners_open_one_case_per_payment(runtime: Runtime) -> None:
    """Two runners draining at once (two events per invoice) still open one case each."""
    app = create_app(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock)
    client = TestClient(app)
    for i in range(40):
        post_stripe(client, invoice_failed(event_id=f"evt_a{i}", invoice_id=f"in_{i}", created=T0))
        post_stripe(
            client,
            intent_failed(
                event_id=f"evt_b{i}", intent_id=f"pi_{i}", invoice_id=f"in_{i}", created=T0
            ),
        )
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(
                lambda _: drain(
                    sessions=runtime.sessions,
                    codes=runtime.failure_codes,
                    clock_now=runtime.clock.now,
                    batch_size=7,
                ),
                range(2),
            )
        )
    total = sum((r.results for r in results), start=__import__("collections").Counter())
    assert total["opened"] == 40 and total["updated"] == 40
    assert counts(runtime) == (80, 40)

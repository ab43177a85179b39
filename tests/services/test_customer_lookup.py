"""An event without a phone takes the customer's phone and address from Stripe's Customer
object, fetched with the stripe package from a local server that serves customer shapes."""

from __future__ import annotations

import copy
import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import select

from recovery.api.app import create_app
from recovery.clock import FixedClock
from recovery.gateways.samples import stripe_object
from recovery.runtime import Runtime
from recovery.services.intake import drain
from recovery.store.tables import CaseRow
from tests.factories import (
    T0,
    charge_event,
    intent_failed,
    invoice_failed,
    serve,
    settings_for,
    stripe_headers,
)


def stripe_api(requests: list[str]) -> FastAPI:
    app = FastAPI()
    customers = {
        "cus_with_phone": {
            "phone": "+1 (907) 555-0123",
            "address": {"state": "AK", "postal_code": "99501", "country": "US"},
            "metadata": {"timezone": "America/Anchorage"},
        },
        "cus_no_phone": {"phone": None},
    }

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/v1/customers/{customer_id}")
    def customer(customer_id: str) -> JSONResponse:
        requests.append(customer_id)
        if customer_id not in customers:
            return JSONResponse(
                {"error": {"type": "invalid_request_error", "message": "No such customer"}},
                status_code=404,
            )
        body = copy.deepcopy(stripe_object("customer"))
        body["id"] = customer_id
        body.update(customers[customer_id])
        return JSONResponse(body)

    return app


def test_phone_and_address_come_from_the_customer(store_url: str) -> None:
    seen: list[str] = []
    with serve(stripe_api(seen)) as base:
        runtime = Runtime(
            settings_for(store_url, stripe_api_base=base), clock_override=FixedClock(T0)
        )
        client = TestClient(
            create_app(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock)
        )
        for n, customer in enumerate(["cus_with_phone", "cus_no_phone", "cus_missing"]):
            event = invoice_failed(
                event_id=f"evt_{n}",
                invoice_id=f"in_{n}",
                created=T0,
                customer=customer,
                phone=None,
                state=None,
                postal_code=None,
            )
            body = json.dumps(event).encode()
            assert (
                client.post(
                    "/webhooks/stripe", content=body, headers=stripe_headers(body)
                ).status_code
                == 200
            )
        summary = drain(
            sessions=runtime.sessions,
            codes=runtime.failure_codes,
            clock_now=runtime.clock.now,
            batch_size=10,
            lookup=runtime.customer_lookup(),
        )
    assert dict(summary.results) == {"opened": 3}
    assert sorted(set(seen)) == ["cus_missing", "cus_no_phone", "cus_with_phone"]
    with runtime.sessions() as s:
        cases = {c.customer_ref: c for c in s.scalars(select(CaseRow))}
    found = cases["cus_with_phone"]
    assert (found.phone_e164, found.state, found.postal_code, found.explicit_tz) == (
        "+19075550123",
        "AK",
        "99501",
        "America/Anchorage",
    )
    assert found.status == "open"
    assert cases["cus_no_phone"].status == "needs_contact_info"
    assert cases["cus_missing"].status == "needs_contact_info"
    runtime.close()


def invoices_api(requests: list[str]) -> FastAPI:
    """Stripe's invoice payments list, as API versions since 2025-03-31 serve it: the only
    way from a payment intent to the invoice it pays."""
    app = FastAPI()
    paid_by = {"pi_renewal": "in_renewal"}

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/v1/invoice_payments")
    def invoice_payments(request: Request) -> JSONResponse:
        intent = request.query_params.get("payment[payment_intent]", "")
        assert request.query_params.get("payment[type]") == "payment_intent"
        requests.append(intent)
        if intent == "pi_broken":
            return JSONResponse(
                {"error": {"type": "api_error", "message": "Something went wrong"}},
                status_code=500,
            )
        data = []
        if intent in paid_by:
            data.append(
                {
                    "id": f"inpay_{intent}",
                    "object": "invoice_payment",
                    "invoice": paid_by[intent],
                    "is_default": True,
                    "payment": {"type": "payment_intent", "payment_intent": intent},
                    "status": "open",
                }
            )
        return JSONResponse(
            {"object": "list", "data": data, "has_more": False, "url": "/v1/invoice_payments"}
        )

    return app


def test_a_renewal_s_intent_charge_and_invoice_failures_make_one_case(store_url: str) -> None:
    seen: list[str] = []
    events = [
        # Current API versions: neither the intent nor the charge names its invoice.
        intent_failed(event_id="evt_pi", intent_id="pi_renewal", created=T0),
        charge_event(event_id="evt_ch", charge_id="ch_renewal", intent_id="pi_renewal", created=T0),
        invoice_failed(event_id="evt_in", invoice_id="in_renewal", created=T0),
        # A one-off payment: Stripe lists no invoice for it.
        intent_failed(event_id="evt_once", intent_id="pi_oneoff", created=T0),
        # Stripe failing to answer: the case opens under the payment's own key.
        intent_failed(event_id="evt_broken", intent_id="pi_broken", created=T0),
    ]
    # An older API version says outright that the intent pays no invoice: nothing to ask.
    old = intent_failed(event_id="evt_old", intent_id="pi_old", created=T0)
    old["data"]["object"]["invoice"] = None
    events.append(old)
    with serve(invoices_api(seen)) as base:
        runtime = Runtime(
            settings_for(store_url, stripe_api_base=base), clock_override=FixedClock(T0)
        )
        client = TestClient(
            create_app(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock)
        )
        for event in events:
            body = json.dumps(event).encode()
            answer = client.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
            assert answer.json()["status"] == "recorded"
        summary = drain(
            sessions=runtime.sessions,
            codes=runtime.failure_codes,
            clock_now=runtime.clock.now,
            batch_size=10,
            lookup=runtime.customer_lookup(),
        )
    try:
        assert summary.results == {"opened": 4, "updated": 2}
        with runtime.sessions() as s:
            keys = sorted(s.scalars(select(CaseRow.business_key)))
        assert keys == ["in_renewal", "pi_broken", "pi_old", "pi_oneoff"]
        # One request for the renewal's intent and charge together; none for the old shape.
        assert seen.count("pi_renewal") == 1 and seen.count("pi_oneoff") == 1
        assert "pi_old" not in seen and "pi_broken" in seen
    finally:
        runtime.close()


def test_no_request_is_made_with_the_development_key_against_stripe() -> None:
    settings = settings_for("sqlite://")
    assert not settings.stripe_api_usable
    assert Runtime(settings).customer_lookup() is None
    assert settings_for("sqlite://", stripe_api_key="rk_live_51Hq2mN4pR8sT1vW3").stripe_api_usable

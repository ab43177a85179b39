"""An event without a phone takes the customer's phone and address from Stripe's Customer
object, fetched with the stripe package from a local server that serves customer shapes."""

from __future__ import annotations

import copy
import json

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import select

from recovery.api.app import create_app
from recovery.clock import FixedClock
from recovery.ingest import drain
from recovery.runtime import Runtime
from recovery.samples import stripe_object
from recovery.store.tables import CaseRow
from tests.factories import T0, invoice_failed, serve, settings_for, stripe_headers


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

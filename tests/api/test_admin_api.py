"""The receiver's non-webhook endpoints require authentication; phones stay masked."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from recovery.api.receiver import build_receiver
from recovery.clock import FixedClock
from recovery.runtime import Runtime
from recovery.services.intake import drain
from tests.factories import T0, invoice_failed, settings_for, stripe_headers

TOKEN = "adm_9kL2mQ7rT4vX1zB8"


def test_admin_endpoints_need_the_bearer_token(store_url: str) -> None:
    runtime = Runtime(settings_for(store_url, admin_token=TOKEN), clock_override=FixedClock(T0))
    app, stop = build_receiver(runtime, trigger=False)
    client = TestClient(app)
    body = json.dumps(invoice_failed(event_id="evt_1", invoice_id="in_1", created=T0)).encode()
    assert (
        client.post("/webhooks/stripe", content=body, headers=stripe_headers(body)).status_code
        == 200
    )
    drain(
        sessions=runtime.sessions,
        codes=runtime.failure_codes,
        clock_now=runtime.clock.now,
        batch_size=10,
    )
    for path in ("/admin/cases", "/admin/cases/in_1", "/admin/stats"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(path, headers={"Authorization": TOKEN}).status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    listed = client.get("/admin/cases", headers=auth)
    assert listed.status_code == 200 and listed.json()[0]["key"] == "stripe:in_1"
    detail = client.get("/admin/cases/in_1", headers=auth).json()
    assert detail["phone"] == "***2671" and "+14155552671" not in json.dumps(detail)
    assert detail["history"][0]["kind"] == "failure_recorded"
    assert client.get("/admin/cases/nope", headers=auth).status_code == 404
    assert client.get("/admin/stats", headers=auth).json()["status"] == {"open": 1}
    stop()
    runtime.close()

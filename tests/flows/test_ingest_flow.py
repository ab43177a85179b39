"""The ingest flow on the real Prefect engine and server, and the receiver's trigger."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
import pytest
from fastapi.testclient import TestClient

from recovery.api.app import create_app
from recovery.clock import SystemClock
from recovery.runtime import Runtime
from recovery.store.tables import CaseRow
from tests.factories import (
    STRIPE_SECRET,
    T0,
    intent_failed,
    invoice_failed,
    settings_for,
    stripe_headers,
)
from tests.support.store_probe import StoreProbe

pytestmark = pytest.mark.prefect


@pytest.fixture
def runtime(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("RECOVERY_DATABASE_URL", store_url)
    monkeypatch.setenv("RECOVERY_STRIPE_WEBHOOK_SECRETS", STRIPE_SECRET)
    rt = Runtime(settings_for(store_url))
    yield rt
    rt.close()


def post(client: TestClient, event: dict) -> int:
    body = json.dumps(event).encode()
    return client.post("/webhooks/stripe", content=body, headers=stripe_headers(body)).status_code


def test_ingest_flow_drains_the_inbox(prefect_api_url: str, runtime: Runtime) -> None:
    from prefect.client.orchestration import get_client

    from flows.ingest import ingest

    client = TestClient(
        create_app(settings=runtime.settings, sessions=runtime.sessions, clock=SystemClock())
    )
    for i in range(12):
        assert (
            post(client, invoice_failed(event_id=f"evt_{i}", invoice_id=f"in_{i}", created=T0))
            == 200
        )
        assert (
            post(
                client,
                intent_failed(
                    event_id=f"evt_pi_{i}", intent_id=f"pi_{i}", invoice_id=f"in_{i}", created=T0
                ),
            )
            == 200
        )
    result = ingest(max_batches=100)
    assert result["rows"] == 24 and result["results"] == {"opened": 12, "updated": 12}
    store = StoreProbe(runtime.sessions)
    assert store.count(CaseRow) == 12 and store.unprocessed_inbox() == 0

    async def artifact() -> object:
        async with get_client() as prefect:
            return await prefect.read_latest_artifacts()

    artifacts = anyio.run(artifact)
    assert any(getattr(a, "key", None) == "ingest-summary" for a in artifacts)  # type: ignore[attr-defined]

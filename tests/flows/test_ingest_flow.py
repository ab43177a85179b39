"""The ingest flow on the real Prefect engine and server, and the receiver's trigger."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient

from recovery.api.app import create_app
from recovery.api.trigger import IngestTrigger
from recovery.clock import SystemClock
from recovery.runtime import Runtime
from recovery.store.tables import CaseRow
from tests.factories import (
    STRIPE_SECRET,
    T0,
    free_port,
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


def _register_ingest_deployment() -> str:
    from prefect.client.orchestration import get_client

    async def register() -> str:
        async with get_client() as prefect:
            flow_id = await prefect.create_flow_from_name("ingest")
            deployment_id = await prefect.create_deployment(flow_id=flow_id, name="ingest")
            return str(deployment_id)

    return anyio.run(register)


def _runs_of(deployment_id: str) -> list[object]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    async def read() -> list[object]:
        async with get_client() as prefect:
            return list(
                await prefect.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
                )
            )

    return anyio.run(read)


def test_a_burst_starts_one_run_per_bucket(prefect_api_url: str, runtime: Runtime) -> None:
    deployment_id = _register_ingest_deployment()
    # Other tests of this session may have started runs of the same deployment already.
    earlier = {str(run.id) for run in _runs_of(deployment_id)}  # type: ignore[attr-defined]
    # A bucket length of its own: another variant of this test must not share its key.
    bucket = 600 + secrets.randbelow(3000)
    trigger = IngestTrigger(
        api_url=prefect_api_url, deployment="ingest/ingest", bucket_seconds=bucket
    )
    trigger.start()
    try:
        client = TestClient(
            create_app(
                settings=runtime.settings,
                sessions=runtime.sessions,
                clock=SystemClock(),
                trigger=trigger,
            )
        )
        for i in range(30):
            assert (
                post(
                    client, invoice_failed(event_id=f"evt_b{i}", invoice_id=f"in_b{i}", created=T0)
                )
                == 200
            )
        deadline = time.monotonic() + 20
        while trigger.runs_created == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        trigger.stop()
    runs = [r for r in _runs_of(deployment_id) if str(r.id) not in earlier]  # type: ignore[attr-defined]
    assert trigger.runs_created == 1
    assert len(runs) == 1
    assert runs[0].idempotency_key.startswith(f"ingest-{bucket}s-")  # type: ignore[attr-defined]


def test_receiver_answers_2xx_when_prefect_is_unreachable(runtime: Runtime) -> None:
    dead = f"http://127.0.0.1:{free_port()}/api"
    trigger = IngestTrigger(api_url=dead, deployment="ingest/ingest", bucket_seconds=1)
    trigger.start()
    try:
        client = TestClient(
            create_app(
                settings=runtime.settings,
                sessions=runtime.sessions,
                clock=SystemClock(),
                trigger=trigger,
            )
        )
        statuses = [
            post(client, invoice_failed(event_id=f"evt_u{i}", invoice_id=f"in_u{i}", created=T0))
            for i in range(5)
        ]
        deadline = time.monotonic() + 10
        while trigger.failures == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        trigger.stop()
    assert statuses == [200] * 5
    assert trigger.failures >= 1 and trigger.runs_created == 0
    assert StoreProbe(runtime.sessions).unprocessed_inbox() == 5
    with pytest.raises(httpx.TransportError):
        httpx.get(dead, timeout=1)

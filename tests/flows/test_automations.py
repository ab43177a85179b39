"""The automations of ``prefect.yaml`` fire on a real Prefect server (its triggers and actions
services run in the test server), and every case transition reaches its event feed.

- A dispute the contact centre reports starts a ``review-queue`` run (the deployment trigger
  on ``recovery.disposition.recorded`` with the label ``recovery.disposition: dispute``).
- Deliveries accepted by the receiver become one coalesced ``recovery.webhook.accepted``
  event, on which the ``ingest`` deployment's trigger starts a run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from recovery.api.app import create_app
from recovery.api.deliveries import EVENT, RESOURCE_ID, DeliveryEvents
from recovery.clock import SystemClock
from recovery.runtime import Runtime
from recovery.settings import Settings
from tests.factories import STRIPE_SECRET, free_port, invoice_failed, settings_for
from tests.flows.test_ingest_flow import post
from tests.flows.test_sequence import expired_card
from tests.support.running_system import System, run_flows

pytestmark = pytest.mark.prefect

# Tuesday 1 December 2026, 10:00 in Los Angeles: inside the calling window.
T = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def _apply(name: str) -> str:
    """Register the deployment ``name`` as ``prefect.yaml`` declares it, its triggers as
    automations; its id."""
    from flows.deployments import PREFECT_YAML, deployment

    specs = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))["deployments"]
    (spec,) = [s for s in specs if s["name"] == name]
    return str(deployment(spec, Settings()).apply())


def _runs_of(deployment_id: str, since: datetime) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    async def read() -> list[Any]:
        async with get_client() as prefect:
            return list(
                await prefect.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
                )
            )

    return [r for r in anyio.run(read) if r.created and r.created >= since]


def _events(api_url: str, resource_prefix: str, since: datetime) -> list[dict[str, Any]]:
    """The events the server holds for resources under this id prefix, oldest first."""
    body = {
        "filter": {
            "occurred": {"since": since.isoformat(), "until": datetime.now(UTC).isoformat()},
            "any_resource": {"id_prefix": [resource_prefix]},
            "order": "ASC",
        },
        "limit": 50,
    }
    response = httpx.post(f"{api_url}/events/filter", json=body, timeout=30)
    response.raise_for_status()
    # One event per id: the server's filter may list an event more than once.
    unique: dict[str, dict[str, Any]] = {}
    for event in response.json()["events"]:
        unique.setdefault(event["id"], event)
    return list(unique.values())


def _wait_for(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def runtime(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("RECOVERY_DATABASE_URL", store_url)
    monkeypatch.setenv("RECOVERY_STRIPE_WEBHOOK_SECRETS", STRIPE_SECRET)
    built = Runtime(settings_for(store_url))
    yield built
    built.close()


@pytest.fixture
def disputes(prefect_api_url: str, running_system: Callable[..., System]) -> System:
    return running_system(
        start=T,
        scenario="all-dispute",
        # The receiver records the outcome (the data action) and sends its event.
        extra_env={"RECOVERY_PREFECT_API_URL": prefect_api_url},
    )


def test_a_dispute_starts_a_review_queue_run_and_the_case_has_its_timeline(
    prefect_api_url: str, disputes: System
) -> None:
    from prefect.events.worker import EventsWorker
    from prefect.flow_engine import run_flow

    from flows.review import review_queue

    since = datetime.now(UTC) - timedelta(seconds=1)
    review = _apply("review-queue")
    assert _runs_of(review, since) == []

    assert disputes.post(expired_card("evt_d1", "in_d1", T)).status_code == 200
    run_flows("ingest", "advance")
    assert disputes.dial()  # the agent's wrap-up: Dispute, through the data action
    EventsWorker.drain_all()

    # The outcome's event, sent by the receiver when it recorded it, starts review-queue.

    (run,) = _wait_for(lambda: _runs_of(review, since), 30, "the review-queue automation")
    assert run.deployment_id is not None and str(run.deployment_id) == review
    # The run the automation created is a real review-queue run: it completes, with the case.
    run_flows("advance", "dispositions")  # the case closes as disputed, flagged for review
    EventsWorker.drain_all()
    assert run_flow(review_queue, flow_run=run) == 1

    def timeline() -> list[dict[str, Any]]:
        events = _events(prefect_api_url, "recovery.case.stripe:in_d1", since)
        return events if any(e["event"] == "recovery.case.closed" for e in events) else []

    events = _wait_for(timeline, 30, "the case's events")
    names = [e["event"] for e in events]
    assert names == [
        "recovery.case.opened",
        "recovery.contact.created",
        "recovery.disposition.recorded",
        "recovery.case.closed",
        "recovery.case.review-needed",
    ], names
    by_name = {e["event"]: e for e in events}
    recorded = by_name["recovery.disposition.recorded"]
    assert recorded["resource"]["recovery.disposition"] == "dispute"
    assert recorded["resource"]["recovery.gateway"] == "stripe"
    closed = by_name["recovery.case.closed"]
    assert closed["resource"]["recovery.outcome"] == "disputed"
    for event in events:
        assert event["resource"]["prefect.resource.id"] == "recovery.case.stripe:in_d1"
        assert event["resource"]["recovery.category"]
        runs = [r for r in event["related"] if r["prefect.resource.role"] == "flow-run"]
        if event["event"] == "recovery.disposition.recorded":
            assert runs == []  # recorded by the receiver, as the data action called it
        else:
            (flow_run,) = runs
            assert flow_run["prefect.resource.id"].startswith("prefect.flow-run.")
    text = str(events)
    assert "+1415" not in text and "4242" not in text and "@" not in text
    print("\nevents of stripe:in_d1:", ", ".join(names))


def test_deliveries_become_one_event_whose_automation_starts_ingest(
    prefect_api_url: str, runtime: Runtime
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    ingest = _apply("ingest")

    # (The deployment's schedule may add runs of its own: only the automation's count here.)
    def started_by_automation() -> list[Any]:
        return [
            r for r in _runs_of(ingest, since) if r.created_by and r.created_by.type == "AUTOMATION"
        ]

    deliveries = DeliveryEvents(api_url=prefect_api_url, window_seconds=30)
    deliveries.start()
    try:
        client = TestClient(
            create_app(
                settings=runtime.settings,
                sessions=runtime.sessions,
                clock=SystemClock(),
                deliveries=deliveries,
            )
        )
        first = time.monotonic()
        assert post(client, invoice_failed(event_id="evt_a0", invoice_id="in_a0", created=T)) == 200
        _wait_for(lambda: deliveries.events_sent, 10, "the first delivery's event")
        for i in range(1, 30):
            event = invoice_failed(event_id=f"evt_a{i}", invoice_id=f"in_a{i}", created=T)
            assert post(client, event) == 200
        _wait_for(started_by_automation, 30, "the ingest automation")
        started = time.monotonic() - first
    finally:
        deliveries.stop()  # announces the rest of the burst at once
    # The first delivery at once; the other 29, coalesced, in one more event.
    assert (deliveries.events_sent, deliveries.deliveries_sent) == (2, 30)

    def delivery_events() -> list[dict[str, Any]]:
        found = [e for e in _events(prefect_api_url, RESOURCE_ID, since) if e["event"] == EVENT]
        return found if len(found) >= 2 else []

    events = _wait_for(delivery_events, 30, "the delivery events")
    assert sorted(e["payload"]["count"] for e in events) == [1, 29]
    assert all(e["payload"]["gateways"] == {"stripe": e["payload"]["count"]} for e in events)

    runs = _wait_for(
        lambda: len(started_by_automation()) >= 2 and started_by_automation(), 30, "two runs"
    )
    assert len(runs) == 2
    print(f"\nfirst delivery -> ingest run created by the automation: {started:.2f} s")


def test_the_receiver_answers_2xx_when_prefect_is_unreachable(runtime: Runtime) -> None:
    dead = f"http://127.0.0.1:{free_port()}/api"
    deliveries = DeliveryEvents(api_url=dead, window_seconds=0.1)
    deliveries.start()
    try:
        client = TestClient(
            create_app(
                settings=runtime.settings,
                sessions=runtime.sessions,
                clock=SystemClock(),
                deliveries=deliveries,
            )
        )
        statuses = [
            post(client, invoice_failed(event_id=f"evt_u{i}", invoice_id=f"in_u{i}", created=T))
            for i in range(5)
        ]
        _wait_for(lambda: deliveries.failures, 10, "an attempt to reach Prefect")
    finally:
        deliveries.stop()
    assert statuses == [200] * 5
    assert deliveries.events_sent == 0

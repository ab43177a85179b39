"""The receiver's delivery event, when Prefect refuses it for a moment: sent again within
seconds (1, 2, 4, ...), not after the coalescing window, so the ingest run starts a moment
late rather than a window late; nothing is lost or counted twice."""

from __future__ import annotations

import threading
import time

from fastapi import FastAPI, Response

from recovery.api.deliveries import EVENT, RETRY_MAX_SECONDS, DeliveryEvents
from recovery.contact_center.emulator.server import serve_in_thread


def flaky_events_api(failures: int) -> tuple[FastAPI, list[tuple[float, int, dict]]]:
    """An events endpoint that answers 503 to the first ``failures`` posts; every post is
    recorded as (monotonic time, status answered, body)."""
    app = FastAPI()
    seen: list[tuple[float, int, dict]] = []
    lock = threading.Lock()

    @app.post("/api/events")
    def events(body: list[dict]) -> Response:
        with lock:
            status = 503 if len(seen) < failures else 204
            seen.append((time.monotonic(), status, body[0]))
        return Response(status_code=status)

    return app, seen


def wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_refused_event_is_sent_again_within_seconds_not_a_window_later() -> None:
    app, seen = flaky_events_api(failures=3)
    with serve_in_thread(app) as url:
        deliveries = DeliveryEvents(api_url=f"{url}/api", window_seconds=120)
        deliveries.start()
        try:
            started = time.monotonic()
            deliveries.delivered("stripe")
            deliveries.delivered("paypal")
            wait_for(lambda: deliveries.events_sent == 1, 20)
            # Three refusals, then sent: after about 1 + 2 + 4 s, far inside the 120 s window.
            assert time.monotonic() - started < 12
            gaps = [later[0] - earlier[0] for earlier, later in zip(seen, seen[1:], strict=False)]
            assert [status for _, status, _ in seen] == [503, 503, 503, 204]
            assert 0.8 < gaps[0] < 2.5 and 1.8 < gaps[1] < 3.5 and 3.6 < gaps[2] < 6.0
            body = seen[-1][2]
            assert body["event"] == EVENT
            # Both deliveries are announced once, in the event that was taken.
            assert body["payload"] == {"count": 2, "gateways": {"paypal": 1, "stripe": 1}}
            assert deliveries.deliveries_sent == 2 and deliveries.failures == 3
        finally:
            deliveries.stop()


def test_the_retry_wait_doubles_up_to_the_window_or_the_cap() -> None:
    deliveries = DeliveryEvents(api_url="http://127.0.0.1:9/api", window_seconds=3)
    waits = [deliveries._next_retry() for _ in range(5)]
    assert waits == [1.0, 2.0, 3.0, 3.0, 3.0]
    long = DeliveryEvents(api_url="http://127.0.0.1:9/api", window_seconds=300)
    assert max(long._next_retry() for _ in range(10)) == RETRY_MAX_SECONDS

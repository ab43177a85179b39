"""The receiver's event for accepted deliveries, which starts the ingest deployment.

Every delivery the receiver records is announced to Prefect as a ``recovery.webhook.accepted``
event on the resource ``recovery.inbox``; the ``ingest`` deployment's trigger (``prefect.yaml``,
an automation on the Automations page) starts a run on it. Deliveries are coalesced: the first
of a quiet spell is announced at once, and those that follow within ``window_seconds`` of an
event are announced together at the end of that window, as one event with their ``count``.
The event goes to Prefect's REST API (``recovery.event_feed``), so the receiver needs no
Prefect client. When Prefect is unreachable or slow to answer the receiver is unaffected: the
inbox rows wait, and the event is sent again after 1 s, then 2, 4, ... (at most the window, or
``RETRY_MAX_SECONDS`` when that is shorter), until it is taken; the ingest deployment's schedule
(the sweep) is the backstop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from recovery.event_feed import event_document, post_events

log = logging.getLogger("recovery.api.deliveries")

EVENT = "recovery.webhook.accepted"
RESOURCE_ID = "recovery.inbox"
# A failed announcement is retried after 1 s, doubling up to this (or the window when shorter):
# a Prefect server that was slow for a moment starts the ingest run a moment later, not a
# window later.
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0


def delivery_event(counts: Counter[str], *, occurred: datetime) -> dict[str, object]:
    """The event announcing ``counts`` deliveries by gateway (as Prefect's events API takes
    it); no personal data: counts only."""
    return event_document(
        EVENT,
        {"prefect.resource.id": RESOURCE_ID, "prefect.resource.name": "webhook inbox"},
        {"count": sum(counts.values()), "gateways": dict(sorted(counts.items()))},
        occurred=occurred,
    )


class DeliveryEvents:
    """A background thread that turns deliveries (``delivered``, cheap and non-blocking) into
    coalesced events."""

    def __init__(
        self,
        *,
        api_url: str,
        window_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
        timeout: float = 5.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.window_seconds = max(0.0, window_seconds)
        self._monotonic = monotonic
        self._client = httpx.Client(timeout=timeout)
        self._lock = threading.Lock()
        self._pending: Counter[str] = Counter()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_sent: float | None = None
        self._last_error_logged: float | None = None
        self._retry_in = RETRY_FIRST_SECONDS
        self.events_sent = 0
        self.deliveries_sent = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._loop, name="delivery-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Announce what is pending, then stop."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._client.close()

    def delivered(self, gateway: str) -> None:
        """One delivery recorded (called after its commit)."""
        with self._lock:
            self._pending[gateway] += 1
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if not self._stop.is_set() and self._last_sent is not None:
                # Within the window of the last event: the rest of the window coalesces.
                rest = self._last_sent + self.window_seconds - self._monotonic()
                if rest > 0:
                    self._stop.wait(rest)
            with self._lock:
                counts, self._pending = self._pending, Counter()
            if counts and not self._send(counts):
                with self._lock:  # kept for the next attempt; the inbox holds the rows anyway
                    self._pending.update(counts)
                if not self._stop.wait(self._next_retry()):
                    self._wake.set()
            if self._stop.is_set():
                return

    def _next_retry(self) -> float:
        """Seconds until the next attempt after a failure: 1, 2, 4, ... up to the cap."""
        cap = max(RETRY_FIRST_SECONDS, min(self.window_seconds, RETRY_MAX_SECONDS))
        wait, self._retry_in = min(self._retry_in, cap), min(2 * self._retry_in, cap)
        return wait

    def _send(self, counts: Counter[str]) -> bool:
        event = delivery_event(counts, occurred=datetime.now(UTC))
        try:
            post_events(self.api_url, [event], client=self._client)
        except httpx.HTTPError as exc:
            self.failures += 1
            now = self._monotonic()
            if self._last_error_logged is None or now - self._last_error_logged > 60:
                self._last_error_logged = now
                log.warning(
                    "could not send %s to Prefect (%s); sending it again shortly (the inbox "
                    "rows wait; the ingest sweep is the backstop)",
                    EVENT,
                    type(exc).__name__,
                )
            return False
        self._last_sent = self._monotonic()
        self._retry_in = RETRY_FIRST_SECONDS
        self.events_sent += 1
        self.deliveries_sent += sum(counts.values())
        return True

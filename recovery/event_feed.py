"""Sending business events to Prefect's event feed over its REST API (``POST /events``), for
the processes that run no flow: the receiver, the listener and the ``recovery`` command. (Flows
post theirs through Prefect's client, related to the run, ``tasks/events.py``.) A transition
made deep in a service (an outcome recorded, whichever channel brought it) is handed to the
process's sink (``publish``): the receiver and the listener install an ``EventSender``, a flow
run ``tasks.events.emit_case_events``. Nothing depends on an event arriving: a failure is
logged, never raised."""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

import httpx

from recovery.domain.events import CaseEvent

log = logging.getLogger("recovery.events")


def event_document(
    event: str,
    resource: Mapping[str, str],
    payload: Mapping[str, object],
    *,
    occurred: datetime | None = None,
    related: Sequence[Mapping[str, str]] = (),
) -> dict[str, object]:
    """One event as Prefect's events API takes it."""
    document: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "occurred": (occurred or datetime.now(UTC)).isoformat(),
        "event": event,
        "resource": dict(resource),
        "payload": dict(payload),
    }
    if related:
        document["related"] = [dict(r) for r in related]
    return document


def case_documents(
    events: Iterable[CaseEvent], related: Sequence[Mapping[str, str]] = ()
) -> list[dict[str, object]]:
    return [event_document(e.event, e.resource(), e.payload, related=related) for e in events]


def post_events(
    api_url: str,
    documents: list[dict[str, object]],
    *,
    client: httpx.Client | None = None,
    timeout: float = 5.0,
) -> None:
    """Send events to the Prefect API at ``api_url``; raises ``httpx.HTTPError``."""
    if not documents:
        return
    url = f"{api_url.rstrip('/')}/events"
    if client is not None:
        client.post(url, json=documents).raise_for_status()
        return
    with httpx.Client(timeout=timeout) as own:
        own.post(url, json=documents).raise_for_status()


def send_case_events(api_url: str | None, events: Iterable[CaseEvent]) -> bool:
    """Send case events when a Prefect API is configured; whether they were sent."""
    documents = case_documents(events)
    if not api_url or not documents:
        return False
    try:
        post_events(api_url, documents)
    except httpx.HTTPError as exc:
        log.warning("could not send %d case events to Prefect: %s", len(documents), exc)
        return False
    return True


# --- where the events of a process go ---------------------------------------------------------

Sink = Callable[[Sequence[CaseEvent]], object]
_sink: Sink | None = None


def install_sink(sink: Sink | None) -> Sink | None:
    """Send this process's case events to ``sink`` (None: nowhere); the previous sink."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def publish(events: Sequence[CaseEvent]) -> None:
    """Hand case events to the process's sink; an event is never worth failing the work it
    describes."""
    sink = _sink
    if sink is None or not events:
        return
    try:
        sink(events)
    except Exception as exc:
        log.warning("could not send %d case events: %s", len(events), type(exc).__name__)


class EventSender:
    """A sink for processes that run no flow (the receiver, the listener): events are queued
    and posted by a background thread, so a request never waits on Prefect."""

    def __init__(self, api_url: str, *, timeout: float = 5.0) -> None:
        self.api_url = api_url
        self._client = httpx.Client(timeout=timeout)
        self._queue: queue.Queue[list[dict[str, object]] | None] = queue.Queue()
        self.sent = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._loop, name="case-events", daemon=True)
        self._thread.start()

    def __call__(self, events: Sequence[CaseEvent]) -> None:
        self._queue.put(case_documents(events))

    def stop(self) -> None:
        """Send what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._client.close()

    def _loop(self) -> None:
        while True:
            documents = self._queue.get()
            if documents is None:
                return
            try:
                post_events(self.api_url, documents, client=self._client)
                self.sent += len(documents)
            except httpx.HTTPError as exc:
                self.failures += 1
                log.warning("could not send %d case events to Prefect: %s", len(documents), exc)

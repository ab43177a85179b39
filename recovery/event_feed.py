"""Sending business events to Prefect's event feed over its REST API (``POST /events``), for
the processes that run no flow: the receiver and the ``recovery`` command. (Flows emit through
Prefect's own client, ``tasks/events.py``.) Nothing depends on an event arriving: a failure
is logged and reported, never raised."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
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
) -> dict[str, object]:
    """One event as Prefect's events API takes it."""
    return {
        "id": str(uuid.uuid4()),
        "occurred": (occurred or datetime.now(UTC)).isoformat(),
        "event": event,
        "resource": dict(resource),
        "payload": dict(payload),
    }


def case_documents(events: Iterable[CaseEvent]) -> list[dict[str, object]]:
    return [event_document(e.event, e.resource(), e.payload) for e in events]


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

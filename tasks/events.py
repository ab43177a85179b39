"""Business events in Prefect's event feed: the case as the resource, no personal data.

Each event's resource is the case (``recovery.case.<key>``) with the labels automations match
on (``recovery.gateway``, ``recovery.category``, ``recovery.disposition``,
``recovery.outcome``); the flow run that made the transition is a related resource (role
``flow-run``). Events are a view, never the record: the server's event queue may drop under
load without Redis, and nothing depends on an event arriving (the store is the record).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prefect.events import emit_event
from prefect.runtime import flow_run

from recovery.domain.events import CaseEvent

log = logging.getLogger("recovery.events")


def flow_run_related() -> list[dict[str, str]]:
    """The current flow run as a related resource (none outside a flow run)."""
    run_id = flow_run.get_id()
    if not run_id:
        return []
    return [
        {
            "prefect.resource.id": f"prefect.flow-run.{run_id}",
            "prefect.resource.role": "flow-run",
            "prefect.resource.name": str(flow_run.get_name() or run_id),
        }
    ]


def emit_case_events(events: Iterable[CaseEvent]) -> int:
    """Emit each case event, the current flow run related; returns how many were sent."""
    related = flow_run_related()
    count = 0
    for event in events:
        try:
            emit_event(
                event=event.event,
                resource=event.resource(),
                related=related,
                payload=dict(event.payload),
            )
            count += 1
        except Exception as exc:  # an event is never worth failing the work it describes
            log.warning("could not emit %s: %s", event.event, type(exc).__name__)
    return count

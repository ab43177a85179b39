"""Business events in Prefect's event feed: the case as the resource, no personal data.

Each event's resource is the case (``recovery.case.<key>``) with the labels automations match
on (``recovery.gateway``, ``recovery.category``, ``recovery.disposition``,
``recovery.outcome``); the run that made the transition is related (the flow run, role
``flow-run``; its flow, deployment and tags; the task run when a task made it), as Prefect's
own emitter relates them. Events are a view, never the record: the server's event queue may
drop under load without Redis, and nothing depends on an event arriving (the store is the
record).

The events of a step go to Prefect's events API together (``POST /events``, up to
``POST_SIZE`` a request), with the related resources read from the run context once: Prefect's
emitter builds, validates and relates each event on its own, which cost a flow process more
CPU than deciding the case the event describes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import httpx
from prefect.context import FlowRunContext, TaskRunContext

from recovery.domain.events import CaseEvent
from recovery.event_feed import case_documents
from recovery.prefect_http import BUSY_STATUSES, PrefectHttp, shared_prefect_http

log = logging.getLogger("recovery.events")

# Events a request (a step's events are sent in requests of at most this many).
POST_SIZE = 500
# A busy server's answer (or a dropped connection) is tried once more after this long.
RETRY_SECONDS = 0.2


def run_related() -> list[dict[str, str]]:
    """The current run as related resources: the flow run, its flow, deployment and tags, and
    the task run (none outside a run)."""
    related: list[dict[str, str]] = []
    flow_context = FlowRunContext.get()
    if flow_context is not None and flow_context.flow_run is not None:
        run = flow_context.flow_run
        related.append(
            {
                "prefect.resource.id": f"prefect.flow-run.{run.id}",
                "prefect.resource.role": "flow-run",
                "prefect.resource.name": str(run.name or run.id),
            }
        )
        flow = flow_context.flow
        related.append(
            {
                "prefect.resource.id": f"prefect.flow.{run.flow_id}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": str(getattr(flow, "name", "") or run.flow_id),
            }
        )
        if run.deployment_id is not None:
            related.append(
                {
                    "prefect.resource.id": f"prefect.deployment.{run.deployment_id}",
                    "prefect.resource.role": "deployment",
                }
            )
        related.extend(
            {"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"}
            for tag in sorted(run.tags or [])
        )
    task_context = TaskRunContext.get()
    if task_context is not None:
        task_run = task_context.task_run
        related.append(
            {
                "prefect.resource.id": f"prefect.task-run.{task_run.id}",
                "prefect.resource.role": "task-run",
                "prefect.resource.name": str(task_run.name),
            }
        )
    return related


def _post(http: PrefectHttp, documents: list[dict[str, object]]) -> None:
    """``POST /events``, tried once more after ``RETRY_SECONDS`` on a busy answer or a dropped
    connection."""
    for attempt in (1, 2):
        try:
            response = http.post("/events", documents)
        except httpx.TransportError:
            if attempt == 2:
                raise
            time.sleep(RETRY_SECONDS)
            continue
        if response.status_code in BUSY_STATUSES and attempt == 1:
            time.sleep(RETRY_SECONDS)
            continue
        response.raise_for_status()
        return


def emit_case_events(events: Iterable[CaseEvent]) -> int:
    """Send these case events, the current run related; how many were sent (none without a
    Prefect API). A failure is logged, never raised: an event is never worth failing the work
    it describes."""
    documents = case_documents(events, related=run_related())
    if not documents:
        return 0
    try:
        http = shared_prefect_http()
    except Exception as exc:
        log.warning("could not send %d case events: %s", len(documents), type(exc).__name__)
        return 0
    if http is None:
        return 0
    sent = 0
    for start in range(0, len(documents), POST_SIZE):
        chunk = documents[start : start + POST_SIZE]
        try:
            _post(http, chunk)
            sent += len(chunk)
        except Exception as exc:
            log.warning("could not send %d case events: %s", len(chunk), type(exc).__name__)
    return sent

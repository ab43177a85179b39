"""Business events in Prefect's event feed: the case as the resource, no personal data.

Each event's resource is the case (``recovery.case.<key>``) with the labels automations match
on (``recovery.gateway``, ``recovery.category``, ``recovery.disposition``,
``recovery.outcome``); the run that made the transition is related (the flow run, role
``flow-run``; its deployment and tags). Events are a view, never the record: the server's
event queue may drop under load without Redis, and nothing depends on an event arriving (the
store is the record).

The events of a step go to Prefect's events API together (``POST /events``, up to
``POST_SIZE`` a request), with the related resources read from the run context once: Prefect's
emitter builds, validates and relates each event on its own, which cost a flow process more
CPU than deciding the case the event describes. They are posted by a thread of their own
(``CaseEventPoster``), so the run goes on while the server takes them; a flow run's events are
all sent before it ends (``flush_case_events``, called as the run lets go of its runtime).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable

import httpx
from prefect.context import FlowRunContext

from recovery.domain.events import CaseEvent
from recovery.event_feed import case_documents
from recovery.prefect_http import BUSY_STATUSES, PrefectHttp, shared_prefect_http

log = logging.getLogger("recovery.events")

# Events a request (a step's events are sent in requests of at most this many).
POST_SIZE = 500
# A busy server's answer (or a dropped connection) is tried once more after this long.
RETRY_SECONDS = 0.2


def run_related() -> list[dict[str, str]]:
    """The current run as related resources: the flow run, its deployment and its tags (none
    outside a flow run). Not its flow nor the task run: the server stores a row for every
    related resource of every event, a third of its work on a busy day, and the flow run leads
    to both."""
    flow_context = FlowRunContext.get()
    if flow_context is None or flow_context.flow_run is None:
        return []
    run = flow_context.flow_run
    related = [
        {
            "prefect.resource.id": f"prefect.flow-run.{run.id}",
            "prefect.resource.role": "flow-run",
            "prefect.resource.name": str(run.name or run.id),
        }
    ]
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


class CaseEventPoster:
    """This process's poster of case events: a thread that sends what is queued, up to
    ``POST_SIZE`` events a request (what several steps queued meanwhile goes together)."""

    def __init__(self) -> None:
        self._pending: deque[tuple[PrefectHttp, list[dict[str, object]]]] = deque()
        self._busy = 0  # events queued or being posted
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0

    def put(self, http: PrefectHttp, documents: list[dict[str, object]]) -> None:
        with self._changed:
            self._pending.append((http, documents))
            self._busy += len(documents)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="case-event-poster", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far was posted (or given up); whether it was."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def _take(self) -> tuple[PrefectHttp, list[dict[str, object]]]:
        """The next request's events: queued ones of one API, up to ``POST_SIZE``."""
        with self._changed:
            while not self._pending:
                self._changed.wait()
            http, documents = self._pending.popleft()
            documents = list(documents)
            while self._pending and self._pending[0][0] is http:
                room = POST_SIZE - len(documents)
                if room <= 0:
                    break
                _, more = self._pending.popleft()
                documents.extend(more[:room])
                if len(more) > room:
                    self._pending.appendleft((http, more[room:]))
            return http, documents

    def _loop(self) -> None:
        while True:
            http, documents = self._take()
            for start in range(0, len(documents), POST_SIZE):
                chunk = documents[start : start + POST_SIZE]
                try:
                    _post(http, chunk)
                    self.sent += len(chunk)
                except Exception as exc:
                    self.failed += len(chunk)
                    log.warning("could not send %d case events: %s", len(chunk), type(exc).__name__)
            with self._changed:
                self._busy -= len(documents)
                self._changed.notify_all()


_poster = CaseEventPoster()


def emit_case_events(events: Iterable[CaseEvent]) -> int:
    """Queue these case events, the current run related, for the poster thread; how many were
    queued (none without a Prefect API). A failure is logged, never raised: an event is never
    worth failing the work it describes."""
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
    _poster.put(http, documents)
    return len(documents)


def flush_case_events(timeout: float = 30.0) -> bool:
    """Wait until this process's queued case events were posted; whether they were in time."""
    return _poster.flush(timeout)


# Before the Prefect client closes at exit (exit hooks run last registered first).
atexit.register(flush_case_events, 10.0)

"""Business events in Prefect's event feed: the case key as the resource, no personal data.

Events are a view, never the record: the server's event queue may drop under load without
Redis, and nothing depends on an event arriving (the store is the record).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from prefect.events import emit_event

log = logging.getLogger("recovery.events")


def emit_case_events(events: Iterable[tuple[str, str, Mapping[str, str]]]) -> int:
    """Emit ``recovery.<name>`` for each (name, case key, payload); returns how many."""
    count = 0
    for name, key, payload in events:
        try:
            emit_event(
                event=f"recovery.{name}",
                resource={
                    "prefect.resource.id": f"recovery.case.{key}",
                    "prefect.resource.name": key,
                },
                payload=dict(payload),
            )
            count += 1
        except Exception as exc:  # an event is never worth failing the work it describes
            log.warning("could not emit recovery.%s: %s", name, type(exc).__name__)
    return count

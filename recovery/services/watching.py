"""Watching the store for work: how a lingering flow run (advance, ingest, reconcile) waits for
something to do without a task run."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

# How often a watch looks (real seconds): one indexed read a look, cheap beside the latency a
# longer pause would add to every step.
WATCH_POLL_SECONDS = 0.05


def watch_store(
    look: Callable[[Session], bool],
    *,
    sessions: sessionmaker[Session],
    deadline: float,
    poll_seconds: float = WATCH_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> bool:
    """Look (``look``, in a session of its own) until it finds work, or until the
    ``monotonic`` instant ``deadline``: whether it did. Looks once when the deadline has
    passed."""
    while True:
        with sessions() as session:
            if look(session):
                return True
        if monotonic() >= deadline:
            return False
        sleep(poll_seconds)

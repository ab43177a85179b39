"""Between the advance flow's task runs (no task run of their own): grouping the contacts to
send, and watching the store for cases that fall due. The contact centre's request budget is
not here: every request takes its slot where it is sent (``recovery.contact_center.budget``)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from recovery.services.advance import wait_for_due
from recovery.settings import Settings
from tasks.runtime import runtime

# Batches (requests) sent by one task run, one after the other: few task runs (each costs the
# Prefect server writes), and enough of them at once to keep the request budget busy.
GROUP_BATCHES = 5


def groups(
    ids: Sequence[int], settings: Settings
) -> Iterator[tuple[int, tuple[tuple[int, ...], ...]]]:
    """(group number, its batches): batches of at most ``genesys_batch_size`` contacts (one
    request each), ``GROUP_BATCHES`` batches to a group (one task run)."""
    size = settings.genesys_batch_size
    batches = [tuple(ids[i : i + size]) for i in range(0, len(ids), size)]
    per_group = GROUP_BATCHES
    for start in range(0, len(batches), per_group):
        yield start // per_group + 1, tuple(batches[start : start + per_group])


def first_chunk_size(settings: Settings) -> int:
    """The size of a run's first chunk: one batch, decided in a few hundredths of a second, so
    that the first request is on its way while the next, full chunk is decided; never more
    than a chunk."""
    return max(1, min(settings.advance_chunk_size, settings.genesys_batch_size))


class DueWatch:
    """Whether anything is due (one indexed read, no task run), and lingering: after the queue
    is drained, watch the store for ``seconds`` (real time, from the start of the run) for a
    case that falls due."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def any_due(self) -> bool:
        """Whether a case is due and free to claim now."""
        built = runtime()
        return wait_for_due(sessions=built.sessions, clock=built.clock, deadline=0.0)

    def until_due(self) -> bool:
        """Whether a case fell due before the deadline (False at once when not lingering)."""
        if self.seconds <= 0:
            return False
        built = runtime()
        return wait_for_due(sessions=built.sessions, clock=built.clock, deadline=self.deadline)

"""Pacing and lingering for the advance flow, between its task runs (no task run of their
own): the contact centre's request budget, and watching the store for cases that fall due."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from prefect.concurrency.sync import rate_limit

from recovery.contact_center.throttle import RequestRateLimiter
from recovery.services.advance import wait_for_due
from recovery.settings import Settings
from tasks.runtime import runtime


class Pacer:
    """Batches of at most ``genesys_batch_size`` contacts (one request each), in groups of
    ``rate_limit_occupy`` batches, each group paced under the contact centre's budget: locally
    first (just under it), then one strict acquisition of the group's requests from the rate
    limit every worker shares. An early arrival is refused by the server and pushed back by
    more than it was early, and slot-by-slot acquisition leaves much of the budget unused."""

    def __init__(self, settings: Settings) -> None:
        self.batch = settings.genesys_batch_size
        self.per_group = settings.rate_limit_occupy
        self.name = settings.genesys_rate_limit_name
        self.local = RequestRateLimiter(
            settings.genesys_requests_per_minute * 0.97, burst=settings.rate_limit_occupy
        )

    def groups(self, ids: Sequence[int]) -> Iterator[tuple[int, list[tuple[int, ...]]]]:
        """(group number, its batches), each once its requests may be sent."""
        batches = [tuple(ids[i : i + self.batch]) for i in range(0, len(ids), self.batch)]
        for start in range(0, len(batches), self.per_group):
            group = batches[start : start + self.per_group]
            self.local(len(group))
            rate_limit(self.name, occupy=len(group), strict=True)
            yield start // self.per_group + 1, group


class DueWatch:
    """Lingering: after the queue is drained, watch the store for ``seconds`` (real time, from
    the start of the run) for a case that falls due, one read per look, no task run."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def until_due(self) -> bool:
        """Whether a case fell due before the deadline (False at once when not lingering)."""
        if self.seconds <= 0:
            return False
        built = runtime()
        return wait_for_due(sessions=built.sessions, clock=built.clock, deadline=self.deadline)

"""The one acquisition point of contact-centre requests: the request budget.

Every API request a ``GenesysClient`` sends takes one slot from its ``acquire`` hook
(``throttle.Throttle.before_request``); every client the project builds (flows' tasks, the
receiver, the notification listener, the ``recovery genesys`` commands, services) gets its hook
from ``request_budget``, so every request counts against the one shared Prefect global rate
limit that ``recovery prefect setup`` creates (``RECOVERY_GENESYS_RATE_LIMIT_NAME``).

A round trip to the Prefect server per request would cost more than the request itself, so
slots are taken from the shared limit up to ``block`` at a time (``RECOVERY_RATE_LIMIT_OCCUPY``
for flows and the receiver, and never more than ``BLOCK_SECONDS`` of the rate; one for the
commands and the listener) and handed out one per request from the
credit they leave; the next block is asked for (in a thread of its own, waiting in the local
pacing for its turn) once the credit left would last less than ``PREFETCH_SECONDS`` at the
rate, so no request waits for a round trip to the Prefect server unless the budget itself is
spent. A block is only as large as the
demand: the first after a pause is one slot, and each next one twice the last while requests
keep coming, up to ``block``; so that a process that
sends a request now and then holds no slots it will not use, which would keep the other
processes (the receiver answering an outcome callback) waiting for the shared limit. A block
the shared limit refuses (the other processes' credit leaves too little room) is asked for
again at once, smaller, down to what the waiting request needs: the server's Retry-After is
the time the whole block takes to free up, seconds that one request need not wait.
Acquisitions are first paced locally just under the rate: the server refuses an early
acquisition and pushes it back by more than it was early. Credit left unspent for the
contact centre's one-minute window is dropped.

Without a Prefect API (no ``PREFECT_API_URL``: a command run on its own, a test without a
server) the budget is a local limiter at the same rate, which is all a lone process needs.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from recovery.contact_center.throttle import Monotonic, RequestRateLimiter, Sleep
from recovery.prefect_http import BUSY_STATUSES, PrefectHttp

# Local pacing of acquisitions, as a fraction of the shared rate: just under it, so that an
# acquisition is not refused for arriving a moment early.
PACE = 0.985
# Credit older than this is dropped (the contact centre counts requests per minute).
CREDIT_SECONDS = 60.0
# While demand lasts, the next block is asked for when the credit left would last less than
# this many seconds at the rate (a round trip to a busy Prefect server takes up to a second).
PREFETCH_SECONDS = 1.5
# A block is at most this many seconds of the rate: every process holding a block and the next
# one still leaves the shared limit room for the others (at 300 requests a minute, two flow
# processes with blocks of 20 and their next ones held all 80 slots of the limit, and the
# receiver's one-slot acquisitions waited seconds for a refusal's Retry-After).
BLOCK_SECONDS = 1.0
# Demand counts as sustained while blocks are asked for within this many times the time a
# full block lasts at the rate (and at least a second); after a longer pause the next block is
# one slot again.
SUSTAINED_BLOCKS = 2.0

# A request that waits longer than this for its slot is logged (with where the time went).
SLOW_WAIT_SECONDS = 1.0

AcquireSlots = Callable[[int], None]

log = logging.getLogger("recovery.contact_center.budget")

_budgets_lock = threading.RLock()


class RateLimitMissing(RuntimeError):
    """The shared rate limit does not exist on the Prefect server."""


# A Prefect server on SQLite answers 503 to a write that met another one (SQLITE_BUSY), at
# once; Prefect's client would try again after 2, 4, 8... s, which at a high rate is several
# blocks of budget lost. An acquisition is tried again here after 0.05 s, doubling up to 1 s,
# at most BUSY_RETRIES times (about 8 s in all) before the error is raised.
BUSY_RETRY_FIRST = 0.05
BUSY_RETRY_MAX = 1.0
BUSY_RETRIES = 12
INCREMENT_PATH = "/v2/concurrency_limits/increment"


class PrefectRateLimit:
    """Slots of a Prefect global rate limit, one HTTP round trip per acquisition; a refusal
    (423) is retried after the server's ``Retry-After``, a busy server's answer (503, 429,
    502, 408) after a fraction of a second (``BUSY_RETRY_FIRST``, doubling)."""

    def __init__(self, api_url: str, name: str, *, sleep: Sleep = time.sleep) -> None:
        self.api_url = api_url
        self.name = name
        self._sleep = sleep
        self._http = PrefectHttp()
        self.refused = 0
        self.busy = 0

    def _post(self, slots: int) -> httpx.Response:
        """One attempt, without the Prefect client's slow retries."""
        body = {"names": [self.name], "slots": slots, "mode": "rate_limit"}
        return self._http.post(INCREMENT_PATH, body)

    def __call__(self, slots: int) -> None:
        self.between(slots, slots)

    def between(self, most: int, least: int) -> int:
        """Take ``most`` slots, or, when the limit refuses so many, fewer down to ``least``:
        the slots taken. A refused block is asked for again at once a quarter the size (the
        server's Retry-After is the time the whole block takes to free up, seconds for a block
        that other processes' credit keeps from fitting); only a refusal of ``least`` waits."""
        slots = max(1, least, most)
        least = max(1, min(least, slots))
        busy_wait, busy_tries = BUSY_RETRY_FIRST, 0
        while True:
            try:
                response = self._post(slots)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 423:
                self.refused += 1
                if slots > least:
                    slots = max(least, slots // 4)
                    continue
                self._sleep(float(response.headers.get("Retry-After", "1")))
                continue
            if response is None or response.status_code in BUSY_STATUSES:
                self.busy += 1
                busy_tries += 1
                if busy_tries > BUSY_RETRIES:
                    if response is None:
                        raise httpx.ConnectError(f"the Prefect API at {self.api_url} is down")
                    response.raise_for_status()
                self._sleep(busy_wait)
                busy_wait = min(BUSY_RETRY_MAX, 2 * busy_wait)
                continue
            response.raise_for_status()
            if not response.json():
                raise RateLimitMissing(
                    f"the Prefect rate limit {self.name!r} does not exist: run "
                    "`recovery prefect setup` first"
                )
            return slots

    def close(self) -> None:
        self._http.close()


_limits: dict[tuple[str, str], PrefectRateLimit] = {}


def prefect_rate_limit(name: str) -> PrefectRateLimit | None:
    """Slots of the Prefect global rate limit ``name`` on the Prefect API this process talks
    to (None when no Prefect API is set)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return None
    with _budgets_lock:
        found = _limits.get((url, name))
        if found is None:
            found = _limits[(url, name)] = PrefectRateLimit(url, name)
        return found


@atexit.register
def _close_limits() -> None:
    with _budgets_lock:
        limits = list(_limits.values())
        _limits.clear()
    for limit in limits:
        limit.close()


@dataclass
class BudgetCounts:
    """What a budget has handed out: ``requests`` (one slot each), ``slots`` taken from the
    shared limit in ``acquisitions`` round trips, ``local_slots`` from the local limiter (no
    Prefect API set); ``shared``: whether it ever reached the shared limit."""

    requests: int = 0
    slots: int = 0
    local_slots: int = 0
    acquisitions: int = 0
    dropped: int = 0
    shared: bool = False
    # Seconds spent pacing locally, and waiting for the shared limit's answers.
    paced_seconds: float = 0.0
    shared_seconds: float = 0.0
    # Acquisitions the shared limit refused (and that were retried after its Retry-After).
    refused: int = 0


class RequestBudget:
    """The ``acquire`` hook of contact-centre clients (thread-safe): one slot per request,
    taken from the shared rate limit ``block`` slots at a time."""

    def __init__(
        self,
        *,
        name: str,
        per_minute: float,
        block: int = 1,
        acquire_slots: AcquireSlots | None = None,
        sleep: Sleep = time.sleep,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        if block < 1:
            raise ValueError("block must be at least 1")
        self.name = name
        self.block = min(block, max(1, math.floor(per_minute / 60.0 * BLOCK_SECONDS)))
        self._slots_source = acquire_slots
        self._monotonic = monotonic
        # Acquisitions paced locally; a fresh budget may take one block at once.
        self._pace = RequestRateLimiter(
            per_minute * PACE, burst=block, sleep=sleep, monotonic=monotonic
        )
        self._ready = threading.Condition(threading.Lock())
        self._credit = 0
        self._refilled_at = 0.0
        # The size of the last block asked for, and when: the next grows while demand lasts.
        self._grant = 0
        self._granted_at = 0.0
        self._pause = max(1.0, SUSTAINED_BLOCKS * block * 60.0 / per_minute)
        self._prefetch_slots = max(1, math.ceil(per_minute / 60.0 * PREFETCH_SECONDS))
        self._refilling = False
        self._failure: BaseException | None = None
        self.counts = BudgetCounts()

    def _shared(self) -> AcquireSlots | None:
        # Looked up at each acquisition (in the caller's context: the Prefect API a process
        # talks to is a setting of that context, and may change).
        if self._slots_source is not None:
            return self._slots_source
        return prefect_rate_limit(self.name)

    def _take(self, take: int, shared: AcquireSlots | None, least: int | None = None) -> int:
        """Pace, then take ``take`` slots from the shared limit (or count them as local);
        a shared limit that can settle for fewer (``PrefectRateLimit.between``) takes at
        least ``least`` when it refuses so many. The slots taken."""
        started = self._monotonic()
        self._pace(take)
        paced = self._monotonic()
        if shared is not None:
            between = getattr(shared, "between", None)
            if between is not None and least is not None and least < take:
                take = int(between(take, least))
            else:
                shared(take)
        with self._ready:
            counts = self.counts
            counts.paced_seconds += paced - started
            if shared is not None:
                counts.acquisitions += 1
                counts.slots += take
                counts.shared = True
                counts.shared_seconds += self._monotonic() - paced
                counts.refused = getattr(shared, "refused", 0)
            else:
                counts.local_slots += take
        return take

    def _refill(self, take: int, shared: AcquireSlots | None, least: int) -> None:
        """In a thread of its own: take a block (at least ``least`` slots when the shared
        limit refuses the whole), then hand it to the waiting requests."""
        failure: BaseException | None = None
        try:
            take = self._take(take, shared, least)
        except BaseException as exc:  # handed to a waiting request, which raises it
            failure = exc
        with self._ready:
            self._refilling = False
            if failure is None:
                self._credit += take
                self._refilled_at = self._monotonic()
            else:
                self._failure = failure
            self._ready.notify_all()

    def _next_grant(self, n: int) -> int:
        """The size of the next block (called with the lock held): twice the last while
        demand lasts, up to ``block``; one after a pause; never fewer than ``n``."""
        now = self._monotonic()
        sustained = self._grant and now - self._granted_at <= self._pause
        self._grant = min(self.block, 2 * self._grant) if sustained else 1
        self._granted_at = now
        return max(self._grant, n)

    def _start_refill(self, take: int, least: int) -> None:
        # Called with the lock held.
        self._refilling = True
        context = contextvars.copy_context()
        shared = context.run(self._shared)
        threading.Thread(
            target=context.run,
            args=(self._refill, take, shared, least),
            name="request-budget-refill",
            daemon=True,
        ).start()

    def __call__(self, n: int = 1) -> None:
        if self.block == 1:
            # One request now and then (a command, the listener): no credit, no thread.
            self._take(n, self._shared())
            with self._ready:
                self.counts.requests += n
            return
        with self._ready:
            if self._credit and self._monotonic() - self._refilled_at > CREDIT_SECONDS:
                self.counts.dropped += self._credit
                self._credit = 0
            waited_from, before = None, (0.0, 0.0, 0)
            if self._credit < n:
                counts = self.counts
                waited_from = self._monotonic()
                before = (counts.paced_seconds, counts.shared_seconds, counts.refused)
            while self._credit < n:
                if self._failure is not None:
                    failure, self._failure = self._failure, None
                    raise failure
                if not self._refilling:
                    # A request waits: a smaller block now beats the whole one seconds later.
                    self._start_refill(self._next_grant(n), n - self._credit)
                self._ready.wait()
            if waited_from is not None and self._monotonic() - waited_from > SLOW_WAIT_SECONDS:
                counts = self.counts
                log.info(
                    "a contact-centre request waited %.1f s for the rate limit %r (paced "
                    "locally %.1f s, at the Prefect server %.1f s, %d refusals)",
                    self._monotonic() - waited_from,
                    self.name,
                    counts.paced_seconds - before[0],
                    counts.shared_seconds - before[1],
                    counts.refused - before[2],
                )
            self._credit -= n
            self.counts.requests += n
            # While demand lasts, the next block is asked for once the credit left would last
            # less than PREFETCH_SECONDS at the rate (at a high rate, as soon as a block is
            # being spent): its acquisition waits in the local pacing for its turn, so no
            # request waits for the round trip to the Prefect server (a second or more on a
            # busy SQLite server) unless the budget itself is spent; at a low rate a process
            # does not hold slots far ahead that the others wait for. (Not after a lone slot:
            # one request after a pause is no sign of more.)
            ahead = min(self._grant, self._prefetch_slots)
            if self._grant > 1 and self._credit < ahead and not self._refilling:
                self._start_refill(self._next_grant(1), 1)


_budgets: dict[tuple[str, float, int], RequestBudget] = {}


def budgets() -> list[RequestBudget]:
    """Every budget this process has built."""
    with _budgets_lock:
        return list(_budgets.values())


def request_budget(name: str, per_minute: float, *, block: int = 1) -> RequestBudget:
    """This process's budget for the shared limit ``name`` (one per name, rate and block:
    every client of the process built with the same settings shares its credit)."""
    key = (name, float(per_minute), block)
    with _budgets_lock:
        found = _budgets.get(key)
        if found is None:
            found = _budgets[key] = RequestBudget(name=name, per_minute=per_minute, block=block)
        return found

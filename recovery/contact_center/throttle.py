"""Throughput control for the contact-centre API: one limiter every request passes through.

Three layers, from the strict to the reactive:

* an ``acquire(n)`` hook called before every API request (logins are outside the API's
  budget): the orchestrator plugs its global rate limit in here (shared by every worker;
  ``budget.RequestBudget``); ``RequestRateLimiter`` is a local stand-in;
* adaptive pacing from the service's rate-limit headers: once less than 20 % of the budget is
  left, the remaining requests are spread over the time left until the budget resets;
* the retry policy for 429 (``Retry-After``) and 502/503/504 or connection errors (exponential
  backoff), both with jitter so that many workers do not retry in step.

Nothing here sleeps directly: ``sleep`` and ``monotonic`` are injected.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

Acquire = Callable[[int], None]
Sleep = Callable[[float], None]
Monotonic = Callable[[], float]


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before trying a request again, and when to give up.

    The defaults follow Genesys' own SDK: wait ``Retry-After`` (3 s when absent), give up when
    it exceeds 3 minutes (a daily limit, not a burst), back off 3 s, 9 s, 27 s on 5xx.
    """

    default_retry_after: float = 3.0
    max_retry_after: float = 180.0
    max_rate_limited_retries: int = 5
    server_error_backoff: tuple[float, ...] = (3.0, 9.0, 27.0)
    jitter: float = 0.2

    def with_jitter(self, seconds: float, rng: random.Random) -> float:
        return seconds + rng.uniform(0.0, self.jitter * seconds) if seconds > 0 else 0.0

    def backoff(self, failures: int, rng: random.Random) -> float | None:
        """The wait after the ``failures``-th consecutive server error; None: give up."""
        if failures < 1 or failures > len(self.server_error_backoff):
            return None
        return self.with_jitter(self.server_error_backoff[failures - 1], rng)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds, or an HTTP date given ``now``)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    if now is None:
        return None
    try:
        at = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, (at - now).total_seconds())


@dataclass(frozen=True)
class RateLimitState:
    """What the last response said about the budget: ``remaining`` of ``limit`` requests,
    renewed in ``reset_seconds``."""

    limit: int
    remaining: int
    reset_seconds: float

    @property
    def fraction_left(self) -> float:
        return self.remaining / self.limit if self.limit > 0 else 1.0


def _number(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_rate_limit_headers(
    headers: Mapping[str, str], *, default_window: float = 60.0
) -> RateLimitState | None:
    """Genesys ``inin-ratelimit-*`` headers, else the common ``X-RateLimit-*`` ones."""
    headers = {name.lower(): value for name, value in headers.items()}
    allowed = _number(headers, "inin-ratelimit-allowed")
    count = _number(headers, "inin-ratelimit-count")
    reset = _number(headers, "inin-ratelimit-reset")
    if allowed is not None and count is not None:
        limit = int(allowed)
        remaining = max(0, limit - int(count))
    else:
        x_limit = _number(headers, "x-ratelimit-limit")
        x_remaining = _number(headers, "x-ratelimit-remaining")
        if x_limit is None or x_remaining is None:
            return None
        limit, remaining = int(x_limit), max(0, int(x_remaining))
        reset = _number(headers, "x-ratelimit-reset")
        if reset is not None and reset > 10 * default_window:
            # Some gateways send the reset as a Unix time rather than seconds left.
            reset = max(0.0, reset - time.time())
    if limit <= 0:
        return None
    if reset is None or reset < 0:
        reset = default_window
    return RateLimitState(limit=limit, remaining=remaining, reset_seconds=reset)


class Throttle:
    """The one limiter a client's requests go through (thread-safe)."""

    def __init__(
        self,
        *,
        acquire: Acquire | None = None,
        sleep: Sleep = time.sleep,
        monotonic: Monotonic = time.monotonic,
        low_water: float = 0.2,
        default_window: float = 60.0,
    ) -> None:
        self._acquire = acquire
        self._sleep = sleep
        self._monotonic = monotonic
        self.low_water = low_water
        self.default_window = default_window
        self._lock = threading.Lock()
        self._interval = 0.0
        self._pace_until = 0.0
        self._last_slot = 0.0
        self._in_flight = 0
        self.last_state: RateLimitState | None = None
        self.paced_seconds = 0.0
        self.paced_requests = 0

    @property
    def interval(self) -> float:
        """The spacing currently imposed between requests (0 when not pacing)."""
        return self._interval

    def before_request(self, *, pace: bool = True) -> None:
        """Block until this request may be sent; pair every paced call with ``finish``.
        ``pace`` False (a login, outside the API's budget) neither acquires nor paces."""
        if not pace:
            return
        if self._acquire is not None:
            self._acquire(1)
        with self._lock:
            self._in_flight += 1
        while True:
            with self._lock:
                now = self._monotonic()
                if self._interval <= 0 or now >= self._pace_until:
                    self._interval = 0.0
                    self._last_slot = now
                    return
                # Each request at least one interval after the one before it: the remaining
                # budget is spent evenly, the last of it as the window resets.
                claimed = self._last_slot
                slot = max(now, claimed + self._interval)
                wait = slot - now
                if wait <= 0:
                    self._last_slot = now
                    return
            self._sleep(wait)
            with self._lock:
                # Nobody took the slot meanwhile: it is ours. Otherwise look again with what
                # the latest responses said, rather than queueing behind a stale interval.
                if self._last_slot == claimed:
                    self._last_slot = max(slot, self._monotonic())
                    self.paced_seconds += wait
                    self.paced_requests += 1
                    return

    def finish(self, headers: Mapping[str, str] | None) -> RateLimitState | None:
        """A paced request is done: adjust the pacing from its response's headers (None when
        no response came)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
        return None if headers is None else self.observe(headers)

    def observe(self, headers: Mapping[str, str]) -> RateLimitState | None:
        """Adjust the pacing from a response's rate-limit headers."""
        state = parse_rate_limit_headers(headers, default_window=self.default_window)
        if state is None:
            return None
        with self._lock:
            self.last_state = state
            # Requests still in flight will spend budget the headers still count as left.
            left = max(0, state.remaining - self._in_flight)
            if left / state.limit < self.low_water:
                self._interval = state.reset_seconds / max(left, 1)
                self._pace_until = self._monotonic() + state.reset_seconds
            else:
                self._interval = 0.0
                self._pace_until = 0.0
        return state


class RequestRateLimiter:
    """A local requests-per-minute limit usable as the ``acquire`` hook (GCRA, thread-safe).

    In production the orchestrator's global limit takes this place, shared by every worker;
    this one serves the CLI, benchmarks and single-process use.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        burst: int = 1,
        sleep: Sleep = time.sleep,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self.burst = max(1, burst)
        self._sleep = sleep
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._tat = 0.0

    def __call__(self, n: int = 1) -> None:
        with self._lock:
            now = self._monotonic()
            tat = max(self._tat, now)
            allow_at = tat - (self.burst - 1) * self.interval
            self._tat = tat + n * self.interval
        wait = allow_at - now
        if wait > 0:
            self._sleep(wait)

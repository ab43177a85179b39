"""Group commit for the inbox: one thread records every waiting delivery in one transaction.

A transaction per request makes concurrent requests queue on the store's write lock (SQLite
has a single writer; PostgreSQL pays a commit per row), so intake tops out far below what the
store can take. Here requests hand their delivery to one writer thread and wait; the writer
takes everything waiting (up to ``max_batch``), inserts each row with ON CONFLICT DO NOTHING
(so each delivery learns whether it was new, even when the same event is in the batch twice),
commits once, and only then answers each request. A request is never answered before the
commit that holds its row.

When the transaction fails, nothing of it was written and every request in it gets the
failure (the gateway retries). The one exception is a failure that belongs to a single row
(bad data, a constraint): that request alone fails and the others are written without it,
so one malformed delivery cannot turn its neighbours away.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from recovery.store.inbox import Delivery, TransmissionReplayed, insert_delivery

log = logging.getLogger("recovery.api.writer")

Outcome = bool | BaseException


class WriteFailed(Exception):
    """The delivery was not recorded; ``cause`` is what the store raised."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"delivery not recorded: {type(cause).__name__}")
        self.cause = cause


@dataclass(slots=True)
class _Waiting:
    delivery: Delivery
    future: asyncio.Future[bool]
    loop: asyncio.AbstractEventLoop


def _belongs_to_one_row(exc: BaseException) -> bool:
    """A failure caused by one row's values rather than by the store or the transaction."""
    if isinstance(exc, DataError | IntegrityError | TransmissionReplayed):
        return True
    # Raised while converting one row's values, before the database saw the statement.
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


def _settle(pairs: list[tuple[asyncio.Future[bool], Outcome]]) -> None:
    for future, outcome in pairs:
        if future.done():  # the request was cancelled; its row is written all the same
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(WriteFailed(outcome))
        else:
            future.set_result(outcome)


class _Link:
    """The writer thread's connection, kept while there is work so that a busy writer does not
    check one out of the pool (and ping it) for every transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None

    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = self._engine.connect()
        return self._connection

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # a broken connection is discarded by the pool all the same
                log.debug("closing the inbox writer's connection failed", exc_info=True)


class InboxWriter:
    """Records deliveries in batches on its own thread; ``record`` waits for the commit.

    The thread starts on first use and ends after ``idle_seconds`` without work or on
    ``stop()``; the next ``record`` starts it again. Requests may come from any number of
    event loops (each answered on its own loop)."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 256,
        linger_seconds: float = 0.002,
        idle_seconds: float = 5.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._engine = engine
        self._max_batch = max_batch
        self._linger_seconds = linger_seconds
        self._idle_seconds = idle_seconds
        self._condition = threading.Condition()
        self._waiting: deque[_Waiting] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False
        # Sizes of the latest batches taken (each written in one transaction, a refused row
        # aside): a figure for tests and diagnostics.
        self.batch_sizes: deque[int] = deque(maxlen=1000)

    @property
    def running(self) -> bool:
        with self._condition:
            return self._thread is not None

    @property
    def waiting(self) -> int:
        """Deliveries submitted and not yet taken into a transaction."""
        with self._condition:
            return len(self._waiting)

    async def record(self, delivery: Delivery) -> bool:
        """Record ``delivery`` in the next batch; True when it is new, False for an event
        already recorded. Raises ``WriteFailed`` when its transaction failed (nothing of it
        was written)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        with self._condition:
            self._waiting.append(_Waiting(delivery, future, loop))
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
                self._thread.start()
            else:
                self._condition.notify()
        return await future

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Write what is waiting, then end the thread; False if it is still running after
        ``timeout`` seconds."""
        with self._condition:
            thread = self._thread
            if thread is None:
                return True
            self._stopping = True
            self._condition.notify_all()
        thread.join(timeout)
        return not thread.is_alive()

    def _run(self) -> None:
        link = _Link(self._engine)
        try:
            while (batch := self._take(link)) is not None:
                try:
                    outcomes = self._write(link, [item.delivery for item in batch])
                except Exception as exc:  # never leave a request waiting for ever
                    outcomes = [exc] * len(batch)
                    link.release()
                    log.exception("inbox writer failed unexpectedly")
                self._answer(batch, outcomes)
        finally:
            link.release()

    def _take(self, link: _Link) -> list[_Waiting] | None:
        """The next batch, after waiting for work; None when the thread should end."""
        with self._condition:
            idle = not self._waiting and not self._stopping
        if idle:
            link.release()  # nothing to do: give the connection back while waiting
        with self._condition:
            if not self._waiting and not self._stopping:
                self._condition.wait(self._idle_seconds)
            if not self._waiting:
                # Stopped, or idle: the next record() starts a fresh thread.
                self._thread = None
                return None
            linger = len(self._waiting) < self._max_batch and not self._stopping
        if linger and self._linger_seconds > 0:
            # A transaction costs far more than a row: let a few more deliveries join.
            time.sleep(self._linger_seconds)
        with self._condition:
            size = min(self._max_batch, len(self._waiting))
            batch = [self._waiting.popleft() for _ in range(size)]
        self.batch_sizes.append(size)
        return batch

    def _write(self, link: _Link, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Write ``deliveries`` in one transaction; one outcome per delivery, in order."""
        outcomes: list[Outcome | None] = [None] * len(deliveries)
        remaining = list(range(len(deliveries)))
        while remaining:
            current: int | None = None
            try:
                connection = link.connection()
                with connection.begin():
                    results = []
                    for index in remaining:
                        current = index
                        results.append(
                            insert_delivery(session=connection, delivery=deliveries[index])
                        )
                    current = None  # a failure from here on is the commit's
            except Exception as exc:
                if current is not None and _belongs_to_one_row(exc):
                    log.error(
                        "inbox row refused (%s); writing the rest of its batch without it",
                        type(exc).__name__,
                    )
                    outcomes[current] = exc
                    remaining.remove(current)
                    continue
                link.release()  # whatever went wrong, start afresh from the pool
                log.error(
                    "store unavailable: %d deliveries not recorded (%s)",
                    len(remaining),
                    type(exc).__name__,
                )
                for index in remaining:
                    outcomes[index] = exc
                break
            for index, new in zip(remaining, results, strict=True):
                outcomes[index] = new
            break
        settled = [outcome for outcome in outcomes if outcome is not None]
        if len(settled) != len(deliveries):  # pragma: no cover - every index is settled above
            raise RuntimeError("a delivery of the batch has no outcome")
        return settled

    @staticmethod
    def _answer(batch: Sequence[_Waiting], outcomes: Sequence[Outcome]) -> None:
        # One wake-up per event loop, not one per request.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[bool], Outcome]]] = {}
        for item, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(item.loop, []).append((item.future, outcome))
        for loop, pairs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, pairs)
            except RuntimeError:  # the loop is closed: nobody is waiting there any more
                pass

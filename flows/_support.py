"""What every flow shares: waiting for the task runs it submitted. (What a run leaves in the UI,
its summary, progress and name, is ``tasks.artifacts``.)"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from prefect.futures import PrefectFuture

T = TypeVar("T")


def settle(futures: Iterable[PrefectFuture[T]]) -> tuple[list[T], int]:
    """Wait for submitted task runs: the results of those that completed, and how many did
    not (their work is left as it was, for a later run)."""
    results: list[T] = []
    failed = 0
    for future in futures:
        state = future.wait() or future.state
        if state.is_completed():
            results.append(future.result())
        else:
            failed += 1
    return results, failed

"""The request budget hands out one slot per request from blocks taken from a shared limit,
asks for the next block before the last is spent, and fails a request when the shared limit
cannot be reached, before it is sent."""

from __future__ import annotations

import threading
import time

import pytest

from recovery.contact_center.budget import RequestBudget


class Shared:
    """A stand-in for the Prefect server's limit: records each acquisition's size."""

    def __init__(self, fail: bool = False) -> None:
        self.taken: list[int] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, slots: int) -> None:
        if self.fail:
            raise RuntimeError("the Prefect rate limit 'x' does not exist")
        with self.lock:
            self.taken.append(slots)


def test_requests_take_their_slots_a_block_at_a_time() -> None:
    shared = Shared()
    budget = RequestBudget(name="x", per_minute=60_000, block=10, acquire_slots=shared)
    threads = [threading.Thread(target=lambda: [budget(1) for _ in range(25)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = budget.counts
    # A block asked for ahead may still be on its way (its own thread): counted once it lands.
    deadline = time.monotonic() + 5
    while counts.acquisitions != len(shared.taken) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counts.requests == 100
    # The blocks grow with the demand (1, 2, 4, 8), then stay at the largest.
    assert shared.taken[:4] == [1, 2, 4, 8]
    assert set(shared.taken[4:]) == {10}
    # Every request had its slot; at most two blocks are taken ahead (the one being spent
    # and the next, asked for as soon as the last began to be spent).
    assert 100 <= sum(shared.taken) <= 120
    assert counts.slots == sum(shared.taken) and counts.acquisitions == len(shared.taken)


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_request_now_and_then_takes_one_slot_not_a_block() -> None:
    shared, ticks = Shared(), Ticks()
    # 600 a minute, blocks of 20: demand counts as sustained for 4 s between blocks.
    budget = RequestBudget(
        name="x", per_minute=600, block=20, acquire_slots=shared, monotonic=ticks
    )
    for _ in range(3):
        budget(1)
        ticks.now += 30
    assert shared.taken == [1, 1, 1]
    # A burst grows the blocks again, from one.
    for _ in range(7):
        budget(1)
    # (The next block is asked for as soon as the last is being spent.)
    assert shared.taken[3:] == [1, 2, 4, 8]
    assert budget.counts.requests == 10


def test_a_single_request_budget_takes_one_slot_per_request() -> None:
    shared = Shared()
    budget = RequestBudget(name="x", per_minute=60_000, block=1, acquire_slots=shared)
    for _ in range(3):
        budget(1)
    assert shared.taken == [1, 1, 1] and budget.counts.requests == 3


@pytest.mark.parametrize("block", [1, 10])
def test_a_request_fails_when_the_shared_limit_cannot_be_reached(block: int) -> None:
    budget = RequestBudget(
        name="x", per_minute=60_000, block=block, acquire_slots=Shared(fail=True)
    )
    with pytest.raises(RuntimeError, match="does not exist"):
        budget(1)
    assert budget.counts.requests == 0


class Crowded(Shared):
    """A shared limit that other processes' credit keeps nearly full: it grants at most
    ``room`` slots, as the Prefect server refuses (423) a block that does not fit."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room
        self.asked: list[tuple[int, int]] = []

    def between(self, most: int, least: int) -> int:
        with self.lock:
            self.asked.append((most, least))
            taken = max(least, min(most, self.room))
            self.taken.append(taken)
            return taken


def test_a_waiting_request_settles_for_the_slots_that_fit() -> None:
    shared = Crowded(room=2)
    budget = RequestBudget(name="x", per_minute=60_000, block=20, acquire_slots=shared)
    for _ in range(12):
        budget(1)
    # Every block asked for while a request waited could shrink down to what it needed; the
    # credit handed out is what the limit granted, never the block asked for.
    assert budget.counts.requests == 12
    assert all(least >= 1 and most >= least for most, least in shared.asked)
    assert max(shared.taken) <= 2
    assert budget.counts.slots == sum(shared.taken) >= 12


@pytest.mark.parametrize(("per_minute", "largest"), [(300, 5), (1200, 20), (30, 1)])
def test_a_block_is_at_most_a_second_of_the_rate(per_minute: int, largest: int) -> None:
    shared = Shared()
    budget = RequestBudget(name="x", per_minute=per_minute, block=20, acquire_slots=shared)
    assert budget.block == largest

"""Advancing survives a worker killed at any point: nothing is sent twice, nothing is lost.

Each worker is a real OS process running the advance library (decide, then dispatch batch by
batch, as the advance flow does) against the store, the emulator over HTTP and a file clock the
test moves. Workers are killed with SIGKILL: no cleanup and no last commit. Once the dead
worker's lease has ended on that clock, a fresh worker takes over.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.clock import FileClock
from recovery.store.db import make_engine, make_sessionmaker
from recovery.store.tables import CaseRow, ContactRow
from tests.support.advance_workers import Worker, first_contact_problems, worker_env
from tests.support.due_cases import CALLABLE_INSTANT, seed_due_cases
from tests.support.emulator import Emulator, running_emulator
from tests.support.store_probe import StoreProbe

LEASE_SECONDS = 10
PAST_THE_LEASE = timedelta(seconds=LEASE_SECONDS + 1)


@dataclass
class Stage:
    tmp: Path
    clock: FileClock
    emulator: Emulator
    sessions: sessionmaker[Session]
    store_url: str

    def env(self, **extra: str) -> dict[str, str]:
        return worker_env(
            store_url=self.store_url,
            clock_file=self.clock.path,
            emulator_url=self.emulator.url,
            data_dir=self.tmp / "data",
            extra={"RECOVERY_LEASE_SECONDS": str(LEASE_SECONDS), **extra},
        )

    def start(self, name: str, **extra: str) -> Worker:
        worker = Worker.start(name, self.env(**extra), cwd=self.tmp)
        worker.wait_ready()
        return worker

    def past_the_lease(self) -> None:
        self.clock.set(self.clock.now() + PAST_THE_LEASE)

    def in_flight(self) -> tuple[int, int]:
        """(planned contacts the contact centre already holds, planned ones it does not)."""
        held = {c["id"] for c in self.emulator.contacts()}
        with self.sessions() as session:
            planned = session.scalars(
                select(ContactRow.contact_id).where(ContactRow.state == "requested")
            ).all()
        sent = sum(1 for contact_id in planned if contact_id in held)
        return sent, len(planned) - sent

    def claimed_undecided(self) -> int:
        """Cases a worker leased and died before deciding."""
        with self.sessions() as session:
            return len(
                session.scalars(
                    select(CaseRow.id).where(
                        CaseRow.lease_owner.is_not(None), CaseRow.status == "open"
                    )
                ).all()
            )

    def problems(self, keys: list[str]) -> list[str]:
        return first_contact_problems(
            StoreProbe(self.sessions).facts(keys),
            keys,
            self.emulator.contacts(),
            self.emulator.counters(),
        )


@pytest.fixture
def stage(store_url: str, tmp_path: Path) -> Iterator[Stage]:
    clock = FileClock(tmp_path / "clock")
    clock.set(CALLABLE_INSTANT)
    engine = make_engine(store_url)
    try:
        with running_emulator(clock) as emulator:
            yield Stage(tmp_path, clock, emulator, make_sessionmaker(engine), store_url)
    finally:
        engine.dispose()


def wait_for(condition: Callable[[], bool], *, worker: Worker, timeout: float = 30.0) -> bool:
    """Poll ``condition`` until true; False when the worker ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if not worker.alive():
            return bool(condition())
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting; worker log:\n{worker.log_tail()}")


def test_killed_after_the_contact_centre_applied_a_batch(stage: Stage) -> None:
    keys = seed_due_cases(stage.sessions, count=120, at=CALLABLE_INSTANT)
    # The first request is applied, then answered only after 5 s: the worker dies waiting.
    stage.emulator.fault(status=503, apply=True, delay_seconds=5)
    first = stage.start("first")
    assert wait_for(lambda: stage.emulator.counters()["contacts_created"] == 50, worker=first)
    assert first.kill(), "the worker ended before it could be killed"

    # The contact centre holds the first batch; the store still has every contact planned.
    assert stage.in_flight() == (50, 70)
    with stage.sessions() as session:
        owners = set(session.scalars(select(CaseRow.lease_owner)))
    assert len(owners) == 1 and (next(iter(owners)) or "").startswith("worker-first-")

    # While the dead worker's lease lasts, nobody touches its cases.
    requests_before = stage.emulator.counters()["requests"]
    idle = stage.start("during-lease").finish()
    assert idle["claimed"] == 0
    assert stage.emulator.counters()["requests"] == requests_before

    stage.past_the_lease()
    after = stage.start("after-lease").finish()
    assert after["claimed"] == 120
    assert after["actions"] == {"resend": 120}
    assert after["created"] == 120 and after["failed_batches"] == 0

    counters = stage.emulator.counters()
    assert counters["upserts"] == 50, "the batch the contact centre held was sent again"
    assert counters["contacts_created"] == 120 and counters["duplicates"] == 0
    assert stage.problems(keys) == []


def test_a_resend_withdrawn_after_the_crash_leaves_nothing_queued(stage: Stage) -> None:
    keys = seed_due_cases(stage.sessions, count=10, at=CALLABLE_INSTANT)
    stage.emulator.fault(status=503, apply=True, delay_seconds=5)
    first = stage.start("first")
    assert wait_for(lambda: stage.emulator.counters()["contacts_created"] == 10, worker=first)
    assert first.kill()
    # The worker that takes over finds most zones after hours (23:30 in New York): those
    # resends are withdrawn by the last compliance check.
    stage.clock.set(datetime(2026, 12, 2, 4, 30, tzinfo=UTC))
    after = stage.start("after-lease").finish()
    assert after["cancelled"] > 0
    facts = StoreProbe(stage.sessions).facts(keys)
    withdrawn = {
        r.contact_id for rows in facts.contacts.values() for r in rows if r.state == "cancelled"
    }
    queued = {c["id"] for c in stage.emulator.contacts() if c["queued"]}
    # The contact centre would dial these tomorrow morning, calls the case history never saw.
    assert withdrawn & queued == set()


def progress(counters: dict[str, int]) -> int:
    """Contacts the emulator has taken, new or sent again."""
    return counters["contacts_created"] + counters["upserts"]


def run_random_kills(stage: Stage, *, seed: int, cases: int, kills: int) -> None:
    """Kill ``kills`` workers at random points while ``cases`` due cases are advanced, then let
    one worker finish; every invariant must hold."""
    rng = random.Random(seed)
    keys = seed_due_cases(stage.sessions, count=cases, at=CALLABLE_INSTANT)
    # Small chunks and batches: many commits and requests, so many places to die in.
    small = {"RECOVERY_ADVANCE_CHUNK_SIZE": "40", "RECOVERY_GENESYS_BATCH_SIZE": "10"}
    seen: Counter[str] = Counter()
    for round_no in range(kills):
        before = stage.emulator.counters()
        worker = stage.start(f"r{round_no}", **small)
        if round_no % 3 == 1:
            # Die while the contact centre has applied a request but not yet answered it.
            stage.emulator.fault(status=503, apply=True, delay_seconds=3)

            def applied(before: dict[str, int] = before) -> bool:
                now = stage.emulator.counters()
                taken = now["faults_injected"] > before["faults_injected"]
                return taken and progress(now) > progress(before)

            wait_for(applied, worker=worker)
        else:
            # Let it advance a random number of contacts, then die at a random instant after.
            target = progress(before) + rng.randint(1, max(1, cases // kills))

            def advanced(target: int = target) -> bool:
                return progress(stage.emulator.counters()) >= target

            wait_for(advanced, worker=worker)
            time.sleep(rng.uniform(0.0, 0.03))
        seen["killed alive" if worker.kill() else "already done"] += 1
        stage.emulator.clear_faults()
        sent, unsent = stage.in_flight()
        seen["sent, not recorded"] += sent > 0
        seen["planned, not sent"] += unsent > 0
        seen["claimed, not decided"] += stage.claimed_undecided() > 0
        stage.past_the_lease()

    last = stage.start("last").finish()
    print(f"seed {seed}: {dict(seen)}; the last worker: {last}")
    assert last["failed_batches"] == 0
    assert stage.problems(keys) == []
    # The kills landed where it matters: mid-run, between the contact centre's answer and the
    # store's record, and between planning and sending.
    assert seen["killed alive"] >= kills * 3 // 4, seen
    assert seen["sent, not recorded"] >= kills // 3, seen
    assert seen["planned, not sent"] >= 1, seen


@pytest.mark.slow
@pytest.mark.parametrize("seed", [20261201])
def test_random_kills_lose_and_duplicate_nothing(stage: Stage, seed: int) -> None:
    # Enough kills for each place to die in (mid-run, between the contact centre's answer and
    # the store's record, between planning and sending); the soak variants kill far more.
    run_random_kills(stage, seed=seed, cases=120, kills=8)


@pytest.mark.soak
@pytest.mark.parametrize(
    "seed, cases, kills",
    [(20261201, 400, 20), (1, 2000, 120), (2, 2000, 120), (3, 2000, 120)],
)
def test_random_kills_soak(stage: Stage, seed: int, cases: int, kills: int) -> None:
    run_random_kills(stage, seed=seed, cases=cases, kills=kills)

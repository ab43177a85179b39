"""Two advance workers, two OS processes, one PostgreSQL store and one contact centre at once:
``FOR UPDATE SKIP LOCKED`` and the lease split the due cases, so each is advanced exactly once
and both workers share the work."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from recovery.clock import FileClock
from recovery.store.db import make_engine, make_sessionmaker
from tests.conftest import POSTGRES_URL
from tests.support.advance_workers import Worker, first_contact_problems, worker_env
from tests.support.due_cases import CALLABLE_INSTANT, seed_due_cases
from tests.support.emulator import running_emulator
from tests.support.store_probe import StoreProbe

pytestmark = pytest.mark.parametrize(
    "db_url",
    [
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(not POSTGRES_URL, reason="RECOVERY_TEST_POSTGRES_URL not set"),
            ],
        )
    ],
    indirect=True,
)


@pytest.fixture
def sessions_on(store_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(store_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


# Twenty claims to share either way, so the two workers interleave as often; the soak variant
# has the full-size chunks.
@pytest.mark.parametrize(
    "cases, chunk",
    [pytest.param(600, 30, id="600"), pytest.param(2000, 100, id="2000", marks=pytest.mark.soak)],
)
def test_two_workers_advance_each_case_exactly_once(
    store_url: str, sessions_on: sessionmaker[Session], tmp_path: Path, cases: int, chunk: int
) -> None:
    assert store_url.startswith("postgresql")
    clock = FileClock(tmp_path / "clock")
    clock.set(CALLABLE_INSTANT)
    keys = seed_due_cases(sessions_on, count=cases, at=CALLABLE_INSTANT)
    go = tmp_path / "go"
    with running_emulator(clock) as emulator:
        env = worker_env(
            store_url=store_url,
            clock_file=clock.path,
            emulator_url=emulator.url,
            data_dir=tmp_path / "data",
            extra={"RECOVERY_ADVANCE_CHUNK_SIZE": str(chunk), "RECOVERY_LEASE_SECONDS": "300"},
        )
        workers = [Worker.start(name, env, cwd=tmp_path, go_file=go) for name in ("a", "b")]
        for worker in workers:
            worker.wait_ready()
        # Both start at the same instant: every claim may race the other worker's.
        go.touch()
        summaries = [worker.finish(timeout=120) for worker in workers]
        counters = emulator.counters()
        held = emulator.contacts()

    for summary in summaries:
        assert summary["claimed"] > 0 and summary["created"] > 0, summaries
        assert summary["failed_batches"] == 0 and summary["rejected"] == 0, summary
        assert summary["actions"] == {"contact": summary["claimed"]}, summary
    # A case claimed by both would be counted twice here.
    assert sum(s["claimed"] for s in summaries) == cases
    assert sum(s["created"] for s in summaries) == cases
    assert counters["upserts"] == 0, "no contact was sent twice"
    assert first_contact_problems(StoreProbe(sessions_on).facts(keys), keys, held, counters) == []

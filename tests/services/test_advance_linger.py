"""A lingering advance run watches the store for cases that fall due, with one read per look
and no task run, and stops watching at its deadline."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from recovery.clock import FixedClock
from recovery.runtime import Runtime
from recovery.services.advance import wait_for_due
from recovery.store.db import transaction
from recovery.store.tables import CaseRow
from recovery.store.work import any_due
from tests.factories import settings_for
from tests.support.due_cases import seed_due_cases

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def test_a_lingering_run_sees_a_case_fall_due_and_gives_up_at_its_deadline(
    store_url: str,
) -> None:
    clock = FixedClock(NOW)
    runtime = Runtime(settings_for(store_url), clock_override=clock)
    try:
        seed_due_cases(runtime.sessions, count=1, at=NOW + timedelta(hours=1))
        with runtime.sessions() as session:
            assert not any_due(session=session, now=NOW)
            assert any_due(session=session, now=NOW + timedelta(hours=1))

        started = time.monotonic()
        assert wait_for_due(sessions=runtime.sessions, clock=clock, deadline=started + 0.6) is False
        assert 0.6 <= time.monotonic() - started < 2.0

        # The clock reaches the case's due time while the run watches.
        timer = threading.Timer(0.3, clock.set, args=(NOW + timedelta(hours=2),))
        timer.start()
        started = time.monotonic()
        assert wait_for_due(sessions=runtime.sessions, clock=clock, deadline=started + 10) is True
        assert time.monotonic() - started < 2.0
        timer.join()

        # A case another worker holds is not due for this one.
        with transaction(runtime.sessions) as session:
            session.execute(
                update(CaseRow).values(
                    lease_owner="someone-else", lease_until=NOW + timedelta(hours=3)
                )
            )
        with runtime.sessions() as session:
            assert not any_due(session=session, now=NOW + timedelta(hours=2))
    finally:
        runtime.close()

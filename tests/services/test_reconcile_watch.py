"""A lingering reconcile run's watch, on the real store: it wakes for a contact whose outcome
falls overdue, not for one it has already looked up, and gives up at its deadline."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from recovery.clock import FixedClock
from recovery.services.reconcile import wait_for_overdue
from recovery.store.db import transaction
from tests.support.case_rows import case_row, contact_row

NOW = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)


def add_contact(session: Session, key: str, *, due_in: timedelta, state: str = "created") -> str:
    case = case_row(
        session, key, now=NOW, status="awaiting_disposition", category="insufficient_funds"
    )
    row = contact_row(
        session,
        case,
        f"contact-{key}",
        at=NOW - timedelta(hours=1),
        disposition_due_at=NOW + due_in,
        state=state,
    )
    return row.contact_id


class Ticks:
    """A monotonic clock the injected sleep moves."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps = 0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


def test_the_watch_wakes_for_an_overdue_outcome_not_yet_looked_up(
    sessions: sessionmaker[Session],
) -> None:
    clock = FixedClock(NOW)
    with transaction(sessions) as session:
        overdue = add_contact(session, "in_1", due_in=-timedelta(minutes=5))
        add_contact(session, "in_2", due_in=timedelta(hours=1))
        add_contact(session, "in_3", due_in=-timedelta(hours=1), state="dispositioned")
    ticks = Ticks()

    def watch(seen: set[str], deadline: float) -> bool:
        return wait_for_overdue(
            sessions=sessions,
            clock=clock,
            deadline=deadline,
            seen=seen,
            sleep=ticks.sleep,
            monotonic=ticks.monotonic,
        )

    # Overdue now: no wait at all.
    assert watch(set(), deadline=ticks.now + 10) is True
    assert ticks.sleeps == 0
    # Already looked up by this run: the watch waits until its deadline, then says no.
    assert watch({overdue}, deadline=ticks.now + 1) is False
    assert ticks.sleeps >= 10 and ticks.now >= 101
    # A contact that falls overdue later wakes it.
    clock.advance(timedelta(hours=2))
    assert watch({overdue}, deadline=ticks.now + 10) is True


def test_a_watch_with_no_linger_looks_once(sessions: sessionmaker[Session]) -> None:
    clock = FixedClock(NOW)
    with transaction(sessions) as session:
        add_contact(session, "in_4", due_in=timedelta(minutes=5))
    started = time.monotonic()
    assert wait_for_overdue(sessions=sessions, clock=clock, deadline=0.0) is False
    assert time.monotonic() - started < 1.0
    clock.advance(timedelta(minutes=5))
    assert wait_for_overdue(sessions=sessions, clock=clock, deadline=0.0) is True

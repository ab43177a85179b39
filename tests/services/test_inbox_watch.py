"""Watching the inbox: a run looks until a row waits; after a batch found the waiting rows held
by another run, it waits for the inbox to change rather than applying batch after empty batch."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from recovery.services.intake import wait_for_inbox
from recovery.store.db import transaction
from recovery.store.tables import InboxRow
from tests.factories import T0


def add_row(sessions: sessionmaker[Session], event_id: str) -> int:
    with transaction(sessions) as session:
        row = InboxRow(
            gateway="stripe",
            event_id=event_id,
            event_type="invoice.payment_failed",
            kind="failure",
            payload={},
            received_at=T0,
        )
        session.add(row)
        session.flush()
        return int(row.id)


class Looks:
    """A stand-in clock for the watch: each sleep runs the next scripted change of the inbox,
    and the deadline passes after ``limit`` looks."""

    def __init__(self, changes: list[Callable[[], None]], limit: int = 20) -> None:
        self.changes = changes
        self.slept = 0
        self.limit = limit

    def sleep(self, _seconds: float) -> None:
        if self.slept < len(self.changes):
            self.changes[self.slept]()
        self.slept += 1

    def monotonic(self) -> float:
        return float(self.slept)


def watch(sessions: sessionmaker[Session], looks: Looks, *, held: bool) -> bool:
    return wait_for_inbox(
        sessions=sessions,
        deadline=float(looks.limit),
        poll_seconds=0.0,
        sleep=looks.sleep,
        monotonic=looks.monotonic,
        held=held,
    )


def test_a_waiting_row_is_found_at_the_first_look(sessions: sessionmaker[Session]) -> None:
    add_row(sessions, "evt_1")
    looks = Looks([])
    assert watch(sessions, looks, held=False) and looks.slept == 0


def test_rows_another_run_holds_count_only_once_the_inbox_changes(
    sessions: sessionmaker[Session],
) -> None:
    held_row = add_row(sessions, "evt_held")
    nothing = lambda: None  # noqa: E731

    def applied() -> None:  # the other run applies its rows
        with transaction(sessions) as session:
            session.execute(update(InboxRow).where(InboxRow.id == held_row).values(processed_at=T0))

    # Unchanged for three looks, then applied, then a new row: found at that one, not before.
    looks = Looks([nothing, nothing, applied, lambda: add_row(sessions, "evt_new")])
    assert watch(sessions, looks, held=True)
    assert looks.slept == 4


def test_held_rows_that_never_change_end_the_watch_at_its_deadline(
    sessions: sessionmaker[Session],
) -> None:
    add_row(sessions, "evt_held")
    looks = Looks([], limit=5)
    assert not watch(sessions, looks, held=True)
    assert looks.slept == 5

"""The demo's time-skipping driver: virtual time runs at the set speed, and whenever the whole
system is idle it jumps to the next instant anything is due (as Temporal's test server skips
time when no workflow has work to do).

Idle is read from the real state, never guessed: the store (no inbox row waiting, no case due,
no contact planned and unsent, no outcome read-back fallen due since the last jump that the
reconcile flow has not had a few seconds to make), the emulator (``/__emulator__/pending``:
nothing it would dial now, no data action in flight) and the feeder
(no delivery due or in flight); and the store's and the emulator's progress figures unchanged
for a settling time, so that a request in flight between two parts (an outcome on its way over
the notification socket) is waited for. The next instant is the earliest of: a case's due time,
a created contact's read-back time, the emulator's next dialable instant (a recall, a callable
time opening) and the feeder's next delivery. The jump happens here only; every process reads
the clock's shared anchor (``recovery.clock.VirtualClock``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from recovery.clock import VirtualClock
from recovery.demo.feeder import Feeder
from recovery.store.tables import CaseRow, ContactRow, DispositionRow, HistoryRow, InboxRow

# How long the progress figures must stay unchanged before the system counts as idle (real
# seconds), and longer while a dialled contact's outcome is not recorded yet (it may be on its
# way over the notification socket; when it was lost, the read-back is due at a later instant).
SETTLE_SECONDS = 0.2
SETTLE_UNREAD_SECONDS = 1.5
# An outcome read-back that fell due since the last jump is work for the reconcile flow (a
# watching run looks within a fraction of a second); once it has had this long (real seconds),
# the contact counts as looked up: one not dialled yet stays overdue until the contact centre
# dials it (an instant of its own), and the clock does not wait for that.
READBACK_GRACE_SECONDS = 3.0


@dataclass(frozen=True)
class SystemState:
    """What the store, the emulator and the feeder have left to do at ``at``."""

    at: datetime
    inbox_waiting: int
    cases_due: int
    contacts_planned: int
    readbacks_due: int
    emulator_ready: int
    emulator_in_flight: int
    feeder_due: bool
    outcomes_unread: int
    next_instants: tuple[datetime, ...]
    progress: tuple[int, ...]

    @property
    def busy(self) -> list[str]:
        """What keeps the system from being idle (empty when idle)."""
        found = {
            "inbox rows waiting": self.inbox_waiting,
            "cases due": self.cases_due,
            "contacts planned, not sent": self.contacts_planned,
            "outcome read-backs due": self.readbacks_due,
            "contacts the emulator would dial now": self.emulator_ready,
            "data actions in flight": self.emulator_in_flight,
            "webhooks due": int(self.feeder_due),
        }
        return [f"{name} {count}" for name, count in found.items() if count]

    @property
    def next_instant(self) -> datetime | None:
        return min(self.next_instants, default=None)


def _aware(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def read_state(
    engine: Engine,
    http: httpx.Client,
    feeder: Feeder,
    at: datetime,
    *,
    since: datetime,
    readbacks_after: datetime | None = None,
) -> SystemState:
    """One look at every part, as at ``at`` (store reads in one read-only session, the
    emulator's through ``http``, a client on its address); ``outcomes_unread`` counts the
    contacts dialled since ``since`` whose outcome is not recorded yet; ``readbacks_due``
    only the read-backs fallen due after ``readbacks_after`` (all, when None). While
    something is busy, only the cheap counts are read (no next instants, no progress
    figures)."""
    open_case = CaseRow.status != "closed"
    created = ContactRow.state == "created"
    feeder_next = feeder.next_at
    feeder_due = feeder.busy or (feeder_next is not None and feeder_next <= at)
    with Session(engine) as session:

        def count(*where: Any) -> int:
            return int(session.scalar(select(func.count()).where(*where)) or 0)

        waiting = count(InboxRow.processed_at.is_(None))
        cases_due = count(open_case, CaseRow.next_due_at.is_not(None), CaseRow.next_due_at <= at)
        planned = count(ContactRow.state == "requested")
        readbacks = [created, ContactRow.disposition_due_at <= at]
        if readbacks_after is not None:
            readbacks.append(ContactRow.disposition_due_at > readbacks_after)
        readbacks_due = count(*readbacks)
        pending = http.get("/__emulator__/pending", timeout=10).json()
        busy = SystemState(
            at=at,
            inbox_waiting=waiting,
            cases_due=cases_due,
            contacts_planned=planned,
            readbacks_due=readbacks_due,
            emulator_ready=int(pending.get("ready", 0)),
            emulator_in_flight=int(pending.get("in_flight", 0)),
            feeder_due=feeder_due,
            outcomes_unread=0,
            next_instants=(),
            progress=(),
        )
        if busy.busy:
            return busy
        next_case = _aware(
            session.scalar(
                select(func.min(CaseRow.next_due_at)).where(open_case, CaseRow.next_due_at > at)
            )
        )
        next_readback = _aware(
            session.scalar(
                select(func.min(ContactRow.disposition_due_at)).where(
                    created, ContactRow.disposition_due_at > at
                )
            )
        )
        recorded = {str(c) for c in session.scalars(select(DispositionRow.contact_id).distinct())}
        progress_store = (
            int(session.scalar(select(func.count()).select_from(InboxRow)) or 0),
            int(session.scalar(select(func.count()).select_from(HistoryRow)) or 0),
            int(session.scalar(select(func.count()).select_from(ContactRow)) or 0),
            len(recorded),
        )
    counters = http.get("/__emulator__/counters", timeout=10).json()
    dialled = {
        str(e["contactId"])
        for e in http.get(
            "/__emulator__/dial-log", params={"since": since.isoformat()}, timeout=30
        ).json()
        if e.get("placed") or e.get("result") == "ININ-OUTBOUND-ON-DO-NOT-CALL-LIST"
    }
    emulator_next = (
        _aware(datetime.fromisoformat(pending["next_at"].replace("Z", "+00:00")))
        if pending.get("next_at")
        else None
    )
    instants = tuple(
        i for i in (next_case, next_readback, emulator_next, feeder_next) if i is not None
    )
    return replace(
        busy,
        outcomes_unread=len(dialled - recorded),
        next_instants=instants,
        progress=(
            *progress_store,
            feeder.posted,
            int(counters.get("dials", 0)),
            int(counters.get("contacts_created", 0)),
            int(counters.get("actions_sent", 0)),
            int(counters.get("events_published", 0)),
        ),
    )


def on_grid(at: datetime, origin: datetime, resolution: timedelta) -> datetime:
    """``at`` rounded up to the grid of ``resolution`` from ``origin`` (``at`` when zero)."""
    if resolution <= timedelta(0) or at <= origin:
        return at
    steps = -((origin - at) // resolution)  # ceiling division
    return origin + steps * resolution


@dataclass
class TimeSkipper:
    """Jumps the shared virtual clock to the next due instant whenever the system is idle.

    With a ``resolution``, the jump goes to the next instant of a grid (that many virtual
    minutes from ``origin``) at or after the next due instant: what falls due within one step
    of the grid is handled together, at most one step late, and the same way on every run."""

    clock: VirtualClock
    engine: Engine
    emulator: str
    feeder: Feeder
    end: datetime
    origin: datetime | None = None
    resolution: timedelta = timedelta(0)
    jumps: int = 0
    skipped_seconds: float = 0.0
    _progress: tuple[int, ...] | None = None
    _since: float = field(default_factory=time.monotonic)
    _jumped_at: datetime | None = None
    _jumped_from: datetime | None = None
    _readbacks_since: float | None = None
    _http: httpx.Client | None = None

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def step(self) -> SystemState:
        """Look once; jump when idle and settled. The state seen."""
        now = self.clock.now()
        since = self._jumped_at or now
        if self._http is None:
            # One connection for every look (a look every tenth of a second).
            self._http = httpx.Client(base_url=self.emulator)
        readbacks_after = self._jumped_from
        if (
            self._readbacks_since is not None
            and time.monotonic() - self._readbacks_since > READBACK_GRACE_SECONDS
        ):
            readbacks_after = now
        state = read_state(
            self.engine, self._http, self.feeder, now, since=since, readbacks_after=readbacks_after
        )
        if state.readbacks_due and self._readbacks_since is None:
            self._readbacks_since = time.monotonic()
        if state.busy:
            self._progress = None
            return state
        if state.progress != self._progress:
            self._progress, self._since = state.progress, time.monotonic()
            return state
        settle = SETTLE_UNREAD_SECONDS if state.outcomes_unread else SETTLE_SECONDS
        if time.monotonic() - self._since < settle:
            return state
        target = state.next_instant or self.end
        if self.origin is not None:
            target = on_grid(target, self.origin, self.resolution)
        target = min(target, self.end)
        before = self.clock.now()
        after = self.clock.jump_to(target)
        if after > before:
            self._jumped_at, self._jumped_from = after, before
            self._readbacks_since = None
            self.jumps += 1
            self.skipped_seconds += (after - before).total_seconds()
        self._progress = None
        return state

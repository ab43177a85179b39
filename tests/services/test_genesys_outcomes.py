"""Outcomes through the channels Genesys Cloud has, against the emulator over real HTTP and a
real WebSocket, on SQLite and PostgreSQL: the notification-channel listener (reconnecting,
deduplicating), the analytics reconcile (then the contact's call records), and done contacts
made uncallable so the dialler never calls them again on its own. And the product's own sends:
a re-send after a crash never queues a dialled contact again."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.clock import FixedClock
from recovery.contact_center.client import GenesysClient
from recovery.contact_center.emulator import create_emulator_app
from recovery.contact_center.emulator.server import serve_in_thread
from recovery.contact_center.errors import TransientContactCenterError
from recovery.contact_center.wrapups import WrapupNames
from recovery.domain.compliance import load_rules
from recovery.domain.policy import load_disposition_map, load_policy
from recovery.services.advance import decide_due
from recovery.services.dispatch import dispatch
from recovery.services.listen import OutcomeListener
from recovery.services.reconcile import overdue_contacts, reconcile_from_analytics
from recovery.services.uncallable import done_contacts, make_uncallable
from recovery.store.db import transaction
from recovery.store.tables import CaseRow, ContactRow, DispositionRow, HistoryRow
from tests.support.due_cases import CALLABLE_INSTANT, seed_due_cases
from tests.support.emulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    CONTACT_LIST,
    Emulator,
    SleepRecorder,
    emulator_config,
)

MAPPING = load_disposition_map(None)
POLICY = load_policy(None)
RULES = load_rules(None, "strict")


@dataclass
class Stage:
    emulator: Emulator
    client: GenesysClient
    sessions: sessionmaker[Session]
    clock: FixedClock
    wrapups: WrapupNames

    def open_cases(self, count: int, prefix: str = "in_out") -> list[str]:
        """``count`` due cases, decided and sent to the contact centre; their contact ids."""
        seed_due_cases(self.sessions, count=count, at=CALLABLE_INSTANT, prefix=prefix)
        decided = decide_due(
            sessions=self.sessions,
            policy=POLICY,
            rules=RULES,
            now=self.clock.now(),
            owner="test",
            limit=1000,
            lease=timedelta(seconds=10),
            contact_list_id=CONTACT_LIST,
        )
        sent = dispatch(
            sessions=self.sessions,
            client=self.client,
            contact_row_ids=decided.to_dispatch,
            rules=RULES,
            now=self.clock.now(),
        )
        assert sent.created == count, sent
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(ContactRow.contact_id).where(ContactRow.contact_id.is_not(None))
                )
            )

    def recorded(self) -> dict[str, DispositionRow]:
        with self.sessions() as session:
            return {r.contact_id: r for r in session.scalars(select(DispositionRow))}

    def reconcile(self) -> Counter[str]:
        self.clock.advance(timedelta(hours=5))  # past every outcome's due time
        overdue = overdue_contacts(sessions=self.sessions, now=self.clock.now(), limit=1000)
        return reconcile_from_analytics(
            sessions=self.sessions,
            client=self.client,
            contacts=overdue,
            mapping=MAPPING,
            wrapups=self.wrapups,
            phone_column="phone",
            now=self.clock.now(),
        )


@pytest.fixture
def stage(sessions: sessionmaker[Session]) -> Iterator[Stage]:
    yield from _stage(sessions)


def _stage(sessions: sessionmaker[Session], **config: Any) -> Iterator[Stage]:
    clock = FixedClock(CALLABLE_INSTANT)
    app = create_emulator_app(emulator_config(heartbeat_seconds=0.2, **config), clock=clock)
    with serve_in_thread(app) as url:
        emulator = Emulator(base_url=url, clock=clock, state=app.state.emulator)
        with GenesysClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=url,
            sleep=SleepRecorder(),
            clock=clock,
        ) as client:
            yield Stage(
                emulator,
                client,
                sessions,
                clock,
                WrapupNames(client, clock=clock, ttl=timedelta(minutes=15)),
            )
        emulator.http.close()


@pytest.fixture
def recycling_stage(sessions: sessionmaker[Session]) -> Iterator[Stage]:
    """An organisation whose list has no attempt limits: Genesys recycles without end."""
    yield from _stage(sessions, attempt_limits=None)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


@pytest.fixture
def listener(stage: Stage) -> Iterator[OutcomeListener]:
    listening = OutcomeListener(
        sessions=stage.sessions,
        client=stage.client,
        mapping=MAPPING,
        wrapups=stage.wrapups,
        clock=stage.clock,
        campaign_id="recovery-campaign",
        silence=3.0,
        max_backoff=0.2,
        poll_seconds=0.05,
    )
    thread = threading.Thread(target=listening.run, daemon=True)
    thread.start()
    wait_for(listening.connected.is_set)
    try:
        yield listening
    finally:
        listening.stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()


def agent_handled(stage: Stage) -> set[str]:
    """Contacts whose call an agent wrapped up (the dialler's own codes start ININ-)."""
    return {
        e["contactId"]
        for e in stage.emulator.dial_log()
        if e["placed"] and not e["result"].startswith("ININ-")
    }


def test_the_listener_records_agent_outcomes_and_reconcile_the_rest(
    stage: Stage, listener: OutcomeListener
) -> None:
    stage.emulator.control("POST", "/scenario", {"name": "mixed", "seed": 4})
    contacts = stage.open_cases(30)
    assert stage.emulator.dial()["dialled"] == 30
    by_agent = agent_handled(stage)
    assert 5 <= len(by_agent) < 30
    wait_for(lambda: set(stage.recorded()) == by_agent)
    recorded = stage.recorded()
    for row in recorded.values():
        assert (row.source, row.detail["channel"]) == ("push", "notification")
        assert not row.wrapup_code.startswith("ININ-") and row.detail["mapped"] is True
        if row.disposition == "promise_to_pay":
            assert row.detail["promised_date"] > "2026-12-01"
        if row.disposition == "callback_requested":
            assert row.detail["callback_at"].startswith("2026-12-02T1")
    assert {r.disposition for r in recorded.values()} >= {"promise_to_pay"}
    # The listener counts a recording once its transaction is committed: a moment after the
    # store shows it.
    wait_for(lambda: listener.stats["recorded"] == len(by_agent))

    counts = stage.reconcile()
    assert counts["recorded (analytics)"] == 30 - len(by_agent), counts
    assert counts["duplicate"] == 0
    after = stage.recorded()
    assert set(after) == set(contacts)
    for contact_id in set(contacts) - by_agent:
        assert (
            after[contact_id].source == "poll"
            and after[contact_id].detail["channel"] == "analytics"
        )
        assert after[contact_id].wrapup_code.startswith("ININ-OUTBOUND-")


def test_the_listener_reconnects_and_records_each_conversation_once(
    stage: Stage, listener: OutcomeListener
) -> None:
    stage.emulator.control("POST", "/scenario", {"name": "all-paid", "seed": 1})
    stage.open_cases(3, prefix="in_a")
    stage.emulator.dial()
    wait_for(lambda: len(stage.recorded()) == 3)
    closed = stage.emulator.control("POST", "/notifications/close")
    assert closed["closed"] == 1
    wait_for(lambda: listener.stats["channels"] == 2 and listener.connected.is_set())
    stage.open_cases(2, prefix="in_b")
    stage.emulator.dial()
    wait_for(lambda: len(stage.recorded()) == 5)
    # The same event again (a second channel, a replay): recorded once.
    again = listener.handle(
        {
            "topicName": "v2.routing.queues.recovery-queue.conversations.calls",
            "eventBody": {
                "id": next(iter(stage.emulator.state.conversations)),
                "participants": [{"purpose": "agent", "wrapup": {"code": "x", "notes": ""}}],
            },
        }
    )
    assert again == "duplicate"
    assert listener.stats["closing"] == 1 and listener.stats["recorded"] == 5
    with stage.sessions() as session:
        assert len(session.scalars(select(DispositionRow)).all()) == 5


def test_lost_events_are_found_by_the_reconcile(stage: Stage, listener: OutcomeListener) -> None:
    stage.emulator.control(
        "POST", "/scenario", {"name": "all-promise-to-pay", "seed": 2, "drop_event_fraction": 1.0}
    )
    stage.open_cases(4)
    stage.emulator.dial()
    time.sleep(0.5)
    assert stage.recorded() == {}
    assert stage.emulator.counters()["events_dropped"] >= 4
    counts = stage.reconcile()
    assert counts["recorded (analytics)"] == 4
    for row in stage.recorded().values():
        # The note is in analytics: the promised date is kept.
        assert row.disposition == "promise_to_pay" and row.detail["promised_date"]


def test_reconcile_falls_back_to_call_records(stage: Stage) -> None:
    """A number on the campaign's DNC list ends without a call, so without a conversation."""
    contacts = stage.open_cases(2)
    with stage.sessions() as session:
        phone = session.scalars(select(ContactRow.phone_e164)).first()
    stage.client.append_dnc("recovery-dnc", [phone or ""])
    stage.emulator.dial()
    counts = stage.reconcile()
    assert counts["recorded (analytics)"] == 1 and counts["recorded (call_records)"] == 1
    rows = stage.recorded()
    dnc = [r for r in rows.values() if r.detail["channel"] == "call_records"]
    assert [r.disposition for r in dnc] == ["do_not_call"]
    assert set(rows) == set(contacts)


def test_done_contacts_are_made_uncallable_and_never_recycled(recycling_stage: Stage) -> None:
    stage = recycling_stage
    stage.emulator.control("POST", "/scenario", {"name": "all-no-answer"})
    contacts = stage.open_cases(4)
    stage.emulator.dial()
    counts = stage.reconcile()  # the clock moves 5 h: a recycle is due at the next round
    assert counts["recorded (analytics)"] == 4
    # One case closes (paid another way) while its next attempt is queued, not yet dialled.
    done = done_contacts(sessions=stage.sessions, limit=100)
    assert sorted(d.contact_id for d in done) == sorted(contacts)
    assert {d.why for d in done} == {"its outcome is recorded"}
    result = make_uncallable(
        sessions=stage.sessions, client=stage.client, contacts=done[:3], now=stage.clock.now()
    )
    assert result["made_uncallable"] == 3
    held = {c["id"]: c for c in stage.emulator.contacts()}
    for item in done[:3]:
        assert held[item.contact_id]["callable"] is False
        assert held[item.contact_id]["phoneNumberStatus"] == {"phone": {"callable": False}}
    # The next pass recycles the one contact left callable; the three are never dialled again.
    assert stage.emulator.dial()["recycled"] == 1
    stage.emulator.dial(stage.clock.now() + timedelta(seconds=1))
    placed = Counter(stage.emulator.placed())
    assert [placed[d.contact_id] for d in done[:3]] == [1, 1, 1] and placed[done[3].contact_id] == 2
    assert stage.emulator.counters()["requeued"] == 0
    with stage.sessions() as session:
        notes = session.scalars(select(HistoryRow).where(HistoryRow.kind == "note")).all()
        assert sum(1 for n in notes if n.data.get("uncallable")) == 3
    assert len(done_contacts(sessions=stage.sessions, limit=100)) == 1


def test_a_closed_or_parked_case_makes_its_queued_contact_uncallable(stage: Stage) -> None:
    contacts = stage.open_cases(3)
    with transaction(stage.sessions) as session:
        cases = session.scalars(select(CaseRow).order_by(CaseRow.id)).all()
        cases[0].status, cases[0].outcome = "closed", "recovered"
        cases[1].status = "review"
    done = done_contacts(sessions=stage.sessions, limit=100)
    assert sorted(d.why for d in done) == ["the case is closed", "the case is review"]
    make_uncallable(
        sessions=stage.sessions, client=stage.client, contacts=done, now=stage.clock.now()
    )
    report = stage.emulator.dial()
    assert report["dialled"] == 1  # only the open case's contact is called
    assert stage.emulator.counters()["skipped_uncallable"] == 2
    assert set(stage.emulator.placed()) <= set(contacts)


def test_a_resend_after_a_crash_never_queues_a_dialled_contact_again(stage: Stage) -> None:
    """A batch the contact centre applied but never confirmed is sent again once the lease
    ends, after the dialler has called it: with doNotQueue=true nothing is queued again."""
    seed_due_cases(stage.sessions, count=8, at=CALLABLE_INSTANT, prefix="in_crash")
    decided = decide_due(
        sessions=stage.sessions,
        policy=POLICY,
        rules=RULES,
        now=stage.clock.now(),
        owner="first",
        limit=100,
        lease=timedelta(seconds=10),
        contact_list_id=CONTACT_LIST,
    )
    stage.emulator.fault(503, count=10, apply=True)
    with pytest.raises(TransientContactCenterError):
        dispatch(
            sessions=stage.sessions,
            client=stage.client,
            contact_row_ids=decided.to_dispatch,
            rules=RULES,
            now=stage.clock.now(),
        )
    stage.emulator.control("DELETE", "/faults")
    assert stage.emulator.dial()["dialled"] == 8  # the contact centre had them all
    stage.clock.advance(timedelta(seconds=11))
    again = decide_due(
        sessions=stage.sessions,
        policy=POLICY,
        rules=RULES,
        now=stage.clock.now(),
        owner="second",
        limit=100,
        lease=timedelta(seconds=10),
        contact_list_id=CONTACT_LIST,
    )
    assert again.actions == Counter({"resend": 8})
    sent = dispatch(
        sessions=stage.sessions,
        client=stage.client,
        contact_row_ids=again.to_dispatch,
        rules=RULES,
        now=stage.clock.now(),
    )
    assert sent.created == 8
    counters = stage.emulator.counters()
    assert counters["upserts"] >= 8 and counters["requeued"] == 0
    assert not any(c["queued"] for c in stage.emulator.contacts())
    stage.emulator.dial(stage.clock.now())
    log = stage.emulator.dial_log()
    assert len([e for e in log if e["placed"]]) == 8
    assert not [e for e in log if not e["placed"]]  # not even a skip at the attempt limit


def test_a_conversation_analytics_does_not_hold_yet_is_looked_up_again(
    stage: Stage, listener: OutcomeListener
) -> None:
    event = {
        "topicName": "v2.routing.queues.recovery-queue.conversations.calls",
        "eventBody": {
            "id": "8c1f4cde-0b5e-4e55-9a1b-000000000001",
            "participants": [{"purpose": "agent", "wrapup": {"code": "Paid", "notes": ""}}],
        },
    }
    assert listener.handle(event) == "pending"
    assert listener.stats["pending"] == 1 and stage.recorded() == {}
    # A heartbeat or another event is no reason to give up on it.
    assert listener.handle({"topicName": "channel.metadata", "eventBody": {}}) == "heartbeat"
    assert listener.stats["left_for_reconcile"] == 0

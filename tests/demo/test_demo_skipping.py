"""The demo's time-skipping clock: one shared clock that jumps, the emulator's view of what it
has left, outcomes drawn per contact (not per call order), and the driver that jumps only when
the store, the emulator and the feeder are idle. Real store, real emulator over HTTP, real
processes; no Prefect (the end-to-end run is in test_demo_smoke.py)."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from recovery.clock import VirtualClock, parse_clock
from recovery.contact_center.client import ContactRequest
from recovery.demo.campaign import CampaignPlan, build_campaign
from recovery.demo.feeder import Feeder
from recovery.demo.skipping import READBACK_GRACE_SECONDS, SETTLE_SECONDS, TimeSkipper
from recovery.store.db import make_sessionmaker, transaction
from recovery.store.tables import CaseRow, InboxRow
from tests.support import emulator as emulator_fixtures
from tests.support.case_rows import contact_row
from tests.support.emulator import CONTACT_LIST, Emulator

emulator_server = emulator_fixtures.emulator_server
emulator = emulator_fixtures.emulator

SPEC = "virtual:2026-12-04T05:00:00+00:00@60"


def test_a_jump_is_seen_by_every_process_sharing_the_clock(tmp_path: Path) -> None:
    driver = parse_clock(SPEC, tmp_path)
    reader = parse_clock(SPEC, tmp_path)
    assert isinstance(driver, VirtualClock) and isinstance(reader, VirtualClock)
    assert abs((driver.now() - reader.now()).total_seconds()) < 60

    target = datetime(2026, 12, 9, 13, 0, tzinfo=UTC)
    assert driver.jump_to(target) == target
    assert target <= reader.now() < target + timedelta(minutes=10)
    # Another process (as the receiver, the flows and the emulator are) reads the same jump.
    code = (
        "import sys; from pathlib import Path; from recovery.clock import parse_clock; "
        f"print(parse_clock({SPEC!r}, Path(sys.argv[1])).now().isoformat())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout
    seen = datetime.fromisoformat(out.strip())
    assert target <= seen < target + timedelta(minutes=10)

    # A second jump within the same tick of the file system's timestamps is seen too.
    again = target + timedelta(hours=5)
    driver.jump_to(again)
    assert again <= reader.now() < again + timedelta(minutes=10)
    # Time never runs backwards.
    assert driver.jump_to(target) >= again
    assert reader.now() >= again


def _add(emulator: Emulator, keys: list[str]) -> dict[str, str]:
    with emulator.client() as client:
        created = client.add_contacts(
            CONTACT_LIST,
            [
                ContactRequest(
                    case_key=key,
                    attempt=1,
                    phone_e164=f"+1212555{index:04d}",
                    time_zone="America/New_York",
                )
                for index, key in enumerate(keys)
            ],
        )
    return dict(zip(keys, created.created, strict=True))


def test_outcomes_are_drawn_per_contact_not_per_call_order(emulator: Emulator) -> None:
    keys = [f"stripe:in_{n:04d}" for n in range(12)]
    emulator.control("POST", "/scenario", {"name": "mixed", "seed": 7})
    ids = _add(emulator, keys)
    assert emulator.control("GET", "/pending")["ready"] == len(keys)
    emulator.dial()
    first = {e["contactId"]: e["result"] for e in emulator.dial_log()}
    pending = emulator.control("GET", "/pending")
    assert pending == {"ready": 0, "waiting": 0, "in_flight": 0, "next_at": None}

    emulator.control("POST", "/reset", {"keep_tokens": True})
    emulator.control("POST", "/scenario", {"name": "mixed", "seed": 7})
    shuffled = keys[:]
    random.Random(1).shuffle(shuffled)
    assert _add(emulator, shuffled) == ids
    emulator.dial()
    second = {e["contactId"]: e["result"] for e in emulator.dial_log()}
    assert second == first
    assert len(set(first.values())) > 1  # a mix, so the comparison means something


@pytest.fixture
def store(engine: Engine) -> Iterator[Engine]:
    yield engine


def _case(key: str, due: datetime, now: datetime) -> CaseRow:
    return CaseRow(
        gateway="stripe",
        business_key=key,
        category="insufficient_funds",
        failed_at=now,
        opened_at=now,
        updated_at=now,
        last_event_id=f"evt_{key}",
        status="awaiting_window",
        next_due_at=due,
        missing_fields={},
    )


def test_the_clock_jumps_to_the_next_due_instant_only_when_everything_is_idle(
    store: Engine, emulator: Emulator, tmp_path: Path
) -> None:
    clock = parse_clock(SPEC, tmp_path / "clock")
    assert isinstance(clock, VirtualClock)
    start = clock.jump_to(datetime(2026, 12, 7, 5, 0, tzinfo=UTC))
    sessions = make_sessionmaker(store)
    due = start + timedelta(hours=8)
    with transaction(sessions) as session:
        session.add(_case("in_due", due, start))
    plan = CampaignPlan([], 0, 0, 0, 0, 0)
    feeder = Feeder(plan, receiver="http://127.0.0.1:9", clock=clock)
    end = start + timedelta(days=2)
    skipper = TimeSkipper(clock, store, emulator.base_url, feeder, end)

    # An inbox row waiting: busy, whatever the settling time.
    with transaction(sessions) as session:
        row = InboxRow(
            gateway="stripe",
            event_id="evt_waiting",
            event_type="invoice.payment_failed",
            kind="failure",
            payload={},
            received_at=start,
        )
        session.add(row)
    deadline = time.monotonic() + 3 * SETTLE_SECONDS
    while time.monotonic() < deadline:
        state = skipper.step()
        assert state.busy == ["inbox rows waiting 1"]
    assert skipper.jumps == 0 and clock.now() < due

    with transaction(sessions) as session:
        session.get(InboxRow, row.id).processed_at = start  # type: ignore[union-attr]
    deadline = time.monotonic() + 30
    while skipper.jumps == 0 and time.monotonic() < deadline:
        state = skipper.step()
        assert state.busy == []
        time.sleep(0.05)
    assert skipper.jumps == 1
    assert due <= clock.now() < due + timedelta(minutes=10)

    # The case is due now: busy until it is handled; then the next instant is the end.
    assert skipper.step().busy == ["cases due 1"]
    with transaction(sessions) as session:
        for case in session.query(CaseRow):
            case.status, case.next_due_at = "closed", None
    deadline = time.monotonic() + 30
    while skipper.jumps == 1 and time.monotonic() < deadline:
        skipper.step()
        time.sleep(0.05)
    assert clock.now() >= end


def test_a_read_back_holds_the_clock_only_while_the_reconcile_flow_has_its_look(
    store: Engine, emulator: Emulator, tmp_path: Path
) -> None:
    """An outcome read-back that falls due is work (a reconcile run looks it up); a contact
    still not dialled stays overdue, and after a few seconds the clock moves on without it."""
    clock = parse_clock(SPEC, tmp_path / "clock")
    assert isinstance(clock, VirtualClock)
    start = clock.jump_to(datetime(2026, 12, 7, 5, 0, tzinfo=UTC))
    sessions = make_sessionmaker(store)
    readback = start + timedelta(hours=2)
    with transaction(sessions) as session:
        case = _case("in_readback", readback, start)
        case.status = "awaiting_disposition"
        session.add(case)
        session.flush()
        case.next_due_at = None  # nothing for the advance flow: the read-back alone
        contact_row(
            session,
            case,
            "contact-readback",
            at=start,
            disposition_due_at=readback,
            contact_list_id=CONTACT_LIST,
        )
    plan = CampaignPlan([], 0, 0, 0, 0, 0)
    feeder = Feeder(plan, receiver="http://127.0.0.1:9", clock=clock)
    end = start + timedelta(days=1)
    skipper = TimeSkipper(clock, store, emulator.base_url, feeder, end)

    deadline = time.monotonic() + 30
    while skipper.jumps == 0 and time.monotonic() < deadline:
        skipper.step()
        time.sleep(0.05)
    assert skipper.jumps == 1 and readback <= clock.now() < readback + timedelta(minutes=10)
    # Fallen due since the jump: busy while a reconcile run may be looking it up.
    assert skipper.step().busy == ["outcome read-backs due 1"]
    held = time.monotonic()
    deadline = held + 30
    while skipper.jumps == 1 and time.monotonic() < deadline:
        skipper.step()
        time.sleep(0.05)
    assert time.monotonic() - held >= READBACK_GRACE_SECONDS - 0.5
    assert clock.now() >= end


def test_the_feeder_says_when_its_next_delivery_is_due(tmp_path: Path) -> None:
    start = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
    plan = build_campaign(payments=5, start=start, spread=timedelta(days=1), rng=random.Random(3))
    clock = parse_clock(SPEC, tmp_path)
    feeder = Feeder(plan, receiver="http://127.0.0.1:9", clock=clock)
    assert feeder.next_at == plan.deliveries[0].at and not feeder.busy

"""A campaign against an emulated Genesys Cloud that recycles, under the real Prefect server.

The organisation is set up by ``recovery genesys setup`` except that its attempt limits reset
every day (New York time), so the dialler calls again, the next morning, any contact the
product left callable. A fifth of all outcome events (notifications and data-action requests)
are lost; an advance worker is killed in the middle of a dispatch (the contact centre applied
the batch, the worker never recorded the answer). Counted from the emulator's own dial log:
every planned attempt is dialled exactly once, nothing the product did not plan is dialled,
and every rolling cap holds per number (Regulation F 7 in 7 days, Florida 3 in 24 hours,
Massachusetts 2 in 7 days)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recovery.contact_center.client import GenesysClient
from recovery.contact_center.wrapups import WrapupNames
from recovery.services.listen import OutcomeListener
from recovery.store.tables import CaseRow, ContactRow, DispositionRow, HistoryRow
from tests.support.planted_campaign import FAILURE_TYPES, stripe_failure
from tests.support.running_system import System, run_flows

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

# Tuesday 1 December 2026, 17:00 UTC: noon in New York, 09:00 in Los Angeles.
START = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
CASES = 30
# Rounds (UTC hours) while some US zone of the campaign is in its calling window.
ROUND_HOURS = (14, 18, 22, 2)
LEASE_SECONDS = 10
REPO = Path(__file__).resolve().parents[2]
# Area codes of the states with their own caps (calling-rules table).
FLORIDA = {"305", "850", "904", "813", "407", "561", "954", "786", "727"}
MASSACHUSETTS = {"617", "508", "781", "978", "413", "339", "351", "774", "857"}


@pytest.fixture
def hs(running_system: Callable[..., System]) -> System:
    return running_system(
        start=START, scenario="mixed", extra_env={"RECOVERY_LEASE_SECONDS": str(LEASE_SECONDS)}
    )


def daily_reset(hs: System) -> None:
    """The organisation's attempt limits reset every day: recycling is back on."""
    with hs.runtime.contact_center() as client:
        settings = hs.runtime.settings
        contact_list = client.api_json(
            "GET", f"/outbound/contactlists/{settings.genesys_contact_list_id}", what="list"
        )
        limits_id = contact_list["attemptLimits"]["id"]
        limits = client.api_json("GET", f"/outbound/attemptlimits/{limits_id}", what="limits")
        client.api_json(
            "PUT",
            f"/outbound/attemptlimits/{limits_id}",
            what="limits",
            json={**limits, "resetPeriod": "TODAY", "timeZoneId": "America/New_York"},
        )


def start_listener(hs: System) -> tuple[OutcomeListener, threading.Thread, GenesysClient]:
    runtime = hs.runtime
    client = GenesysClient.from_settings(runtime.settings, clock=hs.clock)
    listener = OutcomeListener(
        sessions=runtime.sessions,
        client=client,
        mapping=runtime.disposition_map,
        wrapups=WrapupNames(client, clock=hs.clock, ttl=timedelta(minutes=15)),
        clock=hs.clock,
        campaign_id=runtime.settings.genesys_campaign_id,
        silence=120.0,
        max_backoff=1.0,
        poll_seconds=0.05,
    )
    thread = threading.Thread(target=listener.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not listener.connected.is_set():
        assert time.monotonic() < deadline, "the listener did not connect"
        time.sleep(0.05)
    return listener, thread, client


def settle(listener: OutcomeListener) -> None:
    """Until the listener has had the events of the last round."""
    quiet = 0
    last = -1
    while quiet < 4:
        seen = sum(listener.stats.values())
        quiet = quiet + 1 if seen == last else 0
        last = seen
        time.sleep(0.1)


def kill_a_worker_mid_dispatch(hs: System, prefect_api_url: str, tmp_path: Path) -> int:
    """An advance flow run in its own process, killed while the contact centre holds its first
    batch unanswered; how many contacts the contact centre held at that moment."""
    hs.control("faults", {"status": 503, "apply": True, "delay_seconds": 20, "count": 1})
    env = {**os.environ, "PREFECT_API_URL": prefect_api_url, "PYTHONPATH": str(REPO)}
    log = (tmp_path / "killed-worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-c", "from flows.advance import advance; advance()"],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while True:
        counters = hs.counters()
        if counters["faults_injected"] >= 1 and counters["contacts_created"] > 0:
            break
        assert worker.poll() is None, (tmp_path / "killed-worker.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the worker never reached the contact centre"
        time.sleep(0.05)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    log.close()
    hs.http.delete(f"{hs.emulator}/__emulator__/faults").raise_for_status()
    return int(hs.counters()["contacts_created"])


def dial_log(hs: System) -> list[dict[str, Any]]:
    return hs.http.get(f"{hs.emulator}/__emulator__/dial-log").json()  # type: ignore[no-any-return]


def cap_breaches(dials: list[tuple[str, datetime]]) -> list[str]:
    """Every (number, instant) at which a rolling cap is exceeded."""
    by_phone: dict[str, list[datetime]] = defaultdict(list)
    for phone, at in dials:
        by_phone[phone].append(at)
    breaches = []
    for phone, instants in by_phone.items():
        area = phone[2:5]
        caps = [(7, timedelta(days=7), "Reg F 7 in 7 days")]
        if area in FLORIDA:
            caps.append((3, timedelta(hours=24), "FL 3 in 24 h"))
        if area in MASSACHUSETTS:
            caps.append((2, timedelta(days=7), "MA 2 in 7 days"))
        instants.sort()
        for i, at in enumerate(instants):
            for limit, window, name in caps:
                count = sum(1 for other in instants[: i + 1] if other > at - window)
                if count > limit:
                    breaches.append(f"{phone[-4:]}: {name} broken at {at.isoformat()}")
    return breaches


# Three days hold every cap's chance to break (four rounds a day against Florida's 3 in 24
# hours, twelve rounds against Regulation F's 7 in 7 days); the five-day run is a soak variant.
@pytest.mark.parametrize(
    "days", [pytest.param(3, id="3-days"), pytest.param(5, id="5-days", marks=pytest.mark.soak)]
)
def test_a_recycling_campaign_with_lost_events_and_a_killed_worker(
    hs: System, prefect_api_url: str, tmp_path: Path, days: int
) -> None:
    daily_reset(hs)
    hs.control("scenario", {"name": "mixed", "seed": 12, "drop_event_fraction": 0.2})
    listener, thread, client = start_listener(hs)
    try:
        keys = []
        for i in range(CASES):
            kind = FAILURE_TYPES[i % len(FAILURE_TYPES)]
            key = f"{kind.split('.')[0][:2]}_recyc{i:03d}"
            event = stripe_failure(kind, i, START - timedelta(minutes=30), key)
            response = hs.post_stripe_body(json.dumps(event).encode())
            assert response.status_code == 200, response.text
            keys.append(key)
        run_flows("ingest")
        held = kill_a_worker_mid_dispatch(hs, prefect_api_url, tmp_path)
        assert held > 0
        # The dialler calls what it holds while the dead worker's lease runs, and every event
        # of that round is lost: the batch stays unconfirmed until it is sent again.
        hs.control("scenario", {"name": "mixed", "seed": 12, "drop_event_fraction": 1.0})
        hs.dial()
        settle(listener)
        hs.control("scenario", {"name": "mixed", "seed": 12, "drop_event_fraction": 0.2})
        first = START + timedelta(seconds=LEASE_SECONDS + 1)
        end = START + timedelta(days=days)
        instants = [first] + sorted(
            START.replace(hour=hour) + timedelta(days=day + (1 if hour < 12 else 0))
            for day in range(days)
            for hour in ROUND_HOURS
            if START.replace(hour=hour) + timedelta(days=day + (1 if hour < 12 else 0)) > first
        )
        rounds = 0
        resent = 0
        for now in instants:
            hs.set_time(now)
            # Outcomes found, done contacts made uncallable, then the next attempts sent.
            ran = run_flows("reconcile", "uncallable", "advance")
            resent += ran["advance"]["decisions"].get("resend", 0)
            hs.dial()
            settle(listener)
            rounds += 1
        hs.set_time(end + timedelta(hours=6))
        run_flows("reconcile", "uncallable")
    finally:
        listener.stop.set()
        thread.join(timeout=30)
        client.close()

    log = dial_log(hs)
    placed = [e for e in log if e["placed"]]
    with hs.runtime.sessions() as session:
        contacts = {r.contact_id: r for r in session.scalars(select(ContactRow))}
        outcomes = {r.contact_id: r for r in session.scalars(select(DispositionRow))}
        cases = list(session.scalars(select(CaseRow)))
        confirmed = sum(
            1
            for h in session.scalars(select(HistoryRow).where(HistoryRow.kind == "contact_created"))
            if h.data.get("confirmed_by_outcome")
        )
    counts = Counter(e["contactId"] for e in placed)
    counters = hs.counters()
    channels = Counter(str(r.detail.get("channel")) for r in outcomes.values())
    states = Counter(c.state for c in contacts.values())
    print(
        f"\nrecycling campaign: {len(cases)} cases, {rounds} rounds, {len(placed)} calls, "
        f"{len(log) - len(placed)} skips; killed worker's batch {held}: {confirmed} confirmed "
        f"by their outcome, {resent} sent again; contacts {dict(states)}; "
        f"outcomes by channel {dict(channels)}; listener {dict(listener.stats)}; "
        f"emulator {counters}"
    )

    # Nothing the product did not plan.
    assert set(counts) <= set(contacts), set(counts) - set(contacts)
    # Every planned attempt dialled exactly once: every attempt with an outcome once, any
    # other attempt (withdrawn, removed, still queued) at most once.
    assert {c: n for c, n in counts.items() if n != 1} == {}
    # (A number on the DNC list ends with an outcome and no call.)
    assert [
        c
        for c, row in outcomes.items()
        if counts[c] != 1 and row.wrapup_code != "ININ-OUTBOUND-ON-DO-NOT-CALL-LIST"
    ] == []
    # Every rolling cap held per number.
    dials = [(e["phone"], datetime.fromisoformat(e["at"].replace("Z", "+00:00"))) for e in placed]
    assert cap_breaches(dials) == []

    # The campaign really ran, with all three things that could break it.
    # Beyond the first attempts, later attempts (seven seen over three days, more over five).
    later = {3: 5, 5: 10}[days]
    assert len(placed) >= CASES + later, "too few calls for the campaign to mean anything"
    # Every contact of the killed worker's batch was either confirmed by its outcome or sent
    # again (doNotQueue: the contact centre queued none of them again).
    assert confirmed + resent == held and resent > 0
    assert counters["requeued"] == 0
    assert counters["events_dropped"] >= 1 and counters["actions_dropped"] >= 1
    assert channels["analytics"] >= 1 and channels["notification"] >= 1
    assert channels["data_action"] >= 1
    days_called = {e["at"][:10] for e in placed}
    assert len(days_called) >= days - 1, days_called
    # Each attempt the product was done with was made uncallable at the contact centre.
    assert all(c.uncallable_at is not None for c in contacts.values() if c.state == "dispositioned")

    # Recycling was on all along: a done contact made callable again (behind the product's
    # back) is dialled again by the contact centre once its attempts reset.
    target = next(c for c, n in counts.items() if n == 1)
    with hs.runtime.contact_center() as client:
        held_contact = client.get_contact(contacts[target].contact_list_id, target)
        assert held_contact is not None and held_contact.callable is False
        client.add_writable_contacts(
            contacts[target].contact_list_id,
            [
                {
                    "id": target,
                    "contactListId": contacts[target].contact_list_id,
                    "data": held_contact.data,
                    "callable": True,
                    "phoneNumberStatus": {"phone": {"callable": True}},
                }
            ],
        )
    # 14:00 in New York, 11:00 in Los Angeles, the day after: the attempts have reset.
    afternoon = (end + timedelta(days=1)).replace(hour=19, minute=0)
    for minutes in (0, 6, 12):
        at = afternoon + timedelta(minutes=minutes)
        hs.http.post(f"{hs.emulator}/__emulator__/dial", json={"at": at.isoformat()})
    again = [e for e in dial_log(hs) if e["placed"] and e["contactId"] == target]
    assert len(again) == 2 and again[-1]["trigger"] == "recycle"

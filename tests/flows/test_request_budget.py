"""Every contact-centre request takes its slot from the one request budget, and the budget takes
its slots from the shared Prefect rate limit: counted here against the emulator's own request
counter, over creates, read-backs, removals, DNC appends, configuration reads, analytics
queries and wrap-up code reads, made by flows, the receiver and ``recovery genesys check``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from recovery.cli import app
from recovery.contact_center.budget import budgets
from tests.factories import charge_event
from tests.flows.test_sequence import expired_card
from tests.support.running_system import System, run_flows

pytestmark = pytest.mark.prefect

EIGHT_PACIFIC = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)


@pytest.fixture
def system(running_system: Callable[..., System]) -> System:
    return running_system(start=EIGHT_PACIFIC)


def budgeted() -> tuple[int, int, int]:
    """(requests handed out, slots taken from the shared limit, slots taken from a local
    limiter) by every budget of this process so far."""
    found = [b.counts for b in budgets()]
    return (
        sum(c.requests for c in found),
        sum(c.slots for c in found),
        sum(c.local_slots for c in found),
    )


def test_every_request_takes_a_slot_of_the_one_budget(system: System) -> None:
    requests_before, slots_before, local_before = budgeted()
    counted_before = system.counters()["requests"]

    # Creates (and the read-backs a send makes), through the advance flow's tasks.
    for n in range(3):
        system.post(expired_card(f"evt_{n}", f"in_b{n}", EIGHT_PACIFIC, phone=f"+1415555267{n}"))
    run_flows("ingest", "advance")
    assert len(system.contacts()) == 3
    # A DNC append: the customer asks never to be called again.
    system.control("scenario", {"name": "all-never-call"})
    system.dial()
    # Outcomes arrive by the data action (the receiver reads wrap-up codes), and overdue ones
    # are read back from analytics.
    run_flows("dispositions", "advance")
    system.set_time(EIGHT_PACIFIC + timedelta(days=2))
    run_flows("reconcile")
    # A removal: a payment closes a case whose contact is queued.
    system.set_time(EIGHT_PACIFIC + timedelta(days=3))
    system.control("scenario", {"name": "all-no-answer"})
    later = EIGHT_PACIFIC + timedelta(days=3)
    system.post(expired_card("evt_r", "in_r", later, phone="+14155550199"))
    run_flows("ingest", "advance")
    system.post(
        charge_event(
            event_id="evt_paid",
            charge_id="ch_paid",
            invoice_id="in_r",
            succeeded=True,
            created=EIGHT_PACIFIC + timedelta(days=3, minutes=5),
        )
    )
    run_flows("ingest", "close_on_payment")
    # Configuration reads: the operator's check.
    checked = CliRunner().invoke(app, ["genesys", "check"])
    assert checked.exit_code == 0, checked.output

    requests, slots, local = budgeted()
    counted = system.counters()["requests"] - counted_before
    assert counted > 10
    # Every request the emulator counted went through a budget, and no budget handed out a
    # slot for a request that was not sent.
    assert requests - requests_before == counted
    # Each was paid for with a slot taken before it: of the shared limit for the flows and
    # the command; the receiver, served here from a thread of the test that has no Prefect
    # API set, takes its few from a local limiter.
    assert (slots - slots_before) + (local - local_before) >= counted
    assert slots - slots_before >= counted - (local - local_before) > 0
    name = system.runtime.settings.genesys_rate_limit_name
    assert any(b.counts.shared for b in budgets() if b.name == name)


def test_a_missing_shared_limit_stops_a_request_before_it_is_sent(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECOVERY_GENESYS_RATE_LIMIT_NAME", "no-such-limit")
    counted_before = system.counters()["requests"]
    checked = CliRunner().invoke(app, ["genesys", "check"])
    assert checked.exit_code != 0
    assert "recovery prefect setup" in str(checked.exception or checked.output)
    assert system.counters()["requests"] == counted_before

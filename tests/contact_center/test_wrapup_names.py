"""Wrap-up code names over real HTTP against the emulator: read once and cached; a known id is
answered at once when the cache has aged, the list read again behind it; an id the cache does
not hold waits for a fresh read."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from recovery.clock import FixedClock
from recovery.contact_center.wrapups import WrapupNames
from tests.support.emulator import NOON_EASTERN, Emulator, running_emulator

TTL = timedelta(minutes=15)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with running_emulator(FixedClock(NOON_EASTERN)) as handle:
        yield handle


def codes(emulator: Emulator) -> dict[str, str]:
    with emulator.client() as client:
        return {
            str(e["id"]): str(e["name"])
            for e in client.api_pages("/routing/wrapupcodes", what="list wrap-up codes")
        }


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_an_id_is_read_once_and_then_answered_from_the_cache(emulator: Emulator) -> None:
    known = codes(emulator)
    code_id, code_name = next(iter(known.items()))
    with emulator.client() as client:
        names = WrapupNames(client, clock=emulator.clock, ttl=TTL)
        assert names.name(code_id) == code_name
        assert names.name(f" {code_id} ") == code_name
        assert names.loads == 1
        # System codes and plain names are names already: nothing is read for them.
        assert names.name("ININ-OUTBOUND-MACHINE") == "ININ-OUTBOUND-MACHINE"
        assert names.name("Paid") == "Paid"
        assert names.loads == 1


def test_a_known_id_is_answered_at_once_when_the_cache_has_aged(emulator: Emulator) -> None:
    code_id, code_name = next(iter(codes(emulator).items()))
    clock = emulator.clock
    assert isinstance(clock, FixedClock)
    with emulator.client() as client:
        names = WrapupNames(client, clock=clock, ttl=TTL)
        assert names.name(code_id) == code_name
        clock.advance(TTL + timedelta(seconds=1))
        # The next read of the list takes two seconds: the answer does not wait for it.
        emulator.fault(503, delay_seconds=2.0, apply=True)
        started = time.monotonic()
        assert names.name(code_id) == code_name
        assert time.monotonic() - started < 1.0
        wait_for(lambda: names.loads == 2)
        # One read at a time: a second look while the first is under way starts none.
        assert names.name(code_id) == code_name
        assert names.loads == 2


def test_an_id_the_cache_does_not_hold_waits_for_a_fresh_read(emulator: Emulator) -> None:
    with emulator.client() as client:
        names = WrapupNames(client, clock=emulator.clock, ttl=TTL)
        names.refresh()
        created = client.api_json(
            "POST",
            "/routing/wrapupcodes",
            what="create a wrap-up code",
            json={"name": "Promised next Friday"},
        )
        assert names.name(str(created["id"])) == "Promised next Friday"
        assert names.loads == 2
        # An id the organisation does not know stays an id.
        unknown = "00000000-0000-4000-8000-000000000000"
        assert names.name(unknown) == unknown
        assert names.loads == 3


def test_without_background_reads_an_aged_cache_reads_in_the_callers_thread(
    emulator: Emulator,
) -> None:
    code_id, code_name = next(iter(codes(emulator).items()))
    clock = emulator.clock
    assert isinstance(clock, FixedClock)
    with emulator.client() as client:
        names = WrapupNames(client, clock=clock, ttl=TTL, background=False)
        names.name(code_id)
        clock.advance(TTL)
        assert names.name(code_id) == code_name
        assert names.loads == 2

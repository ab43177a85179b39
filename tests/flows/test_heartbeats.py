"""A flow run's heartbeats (``recovery.prefect_heartbeats``): sent as Prefect sends them,
stopped the moment the run ends, and in place whenever a flow module is imported."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

import flows  # noqa: F401  (the package puts the heartbeats in place)
from recovery import prefect_heartbeats as _heartbeats
from recovery.prefect_heartbeats import send_heartbeats
from tests.flows.test_automations import _events, _wait_for


class Engine:
    """What the heartbeat function uses of Prefect's flow-run engine."""

    def __init__(self, seconds: int | None = 30, final: bool = False) -> None:
        self.heartbeat_seconds = seconds
        state = SimpleNamespace(is_final=lambda: final)
        self.flow_run = SimpleNamespace(state=state)
        self.logger = SimpleNamespace(debug=lambda *a, **k: None)
        self.beats: list[float] = []

    def _build_heartbeat_event_template(self) -> tuple[dict[str, str], list[Any]]:
        return {"prefect.resource.id": "prefect.flow-run.x"}, []

    def _emit_flow_run_heartbeat(self, resource: dict[str, str], related: list[Any]) -> None:
        self.beats.append(time.monotonic())


def _heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "flow-heartbeat"]


def test_prefects_heartbeats_are_replaced_once_the_flows_are_imported() -> None:
    import prefect.flow_engine

    # The installed Prefect's function is the one this project reproduces.
    assert prefect.flow_engine._send_heartbeats is send_heartbeats
    assert _heartbeats.prompt_heartbeat_stop() is True


def test_an_unknown_heartbeat_function_is_left_in_place_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import prefect.flow_engine

    def other(engine: Any, join_on_exit: bool = True) -> None: ...

    monkeypatch.setattr(prefect.flow_engine, "_send_heartbeats", other)
    with pytest.warns(RuntimeWarning, match="heartbeats are not the ones"):
        assert _heartbeats.prompt_heartbeat_stop() is False
    assert prefect.flow_engine._send_heartbeats is other


def _exit_after_first_beat(function: Callable[..., Any]) -> tuple[Engine, float]:
    """Enter the heartbeat context, wait for its first beat and a little more (its thread is
    then waiting for the next), leave it; the engine and how long leaving took."""
    engine = Engine(seconds=30)
    with function(engine):
        deadline = time.monotonic() + 5
        while not engine.beats and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        left = time.monotonic()
    return engine, time.monotonic() - left


def test_the_heartbeat_thread_stops_the_moment_the_run_ends() -> None:
    engine, leaving = _exit_after_first_beat(send_heartbeats)
    assert len(engine.beats) == 1  # the first as the run starts, the next 30 s later
    assert leaving < 0.5, f"leaving took {leaving:.2f} s"
    assert not _heartbeat_threads()


def test_prefects_own_thread_keeps_the_run_until_its_second_is_out() -> None:
    """The control: the same steps with Prefect's function take most of a second to leave."""
    _, leaving = _exit_after_first_beat(_heartbeats.prefects_own())
    assert leaving > 0.5, f"leaving took {leaving:.2f} s"


def test_no_heartbeat_once_the_run_is_final_and_none_when_they_are_off() -> None:
    final = Engine(final=True)
    with send_heartbeats(final):
        time.sleep(0.1)
    assert final.beats == []
    off = Engine(seconds=None)
    with send_heartbeats(off):
        assert not _heartbeat_threads()
    assert off.beats == []


def test_a_flow_run_sends_its_heartbeat_to_the_server(
    prefect_api_url: str,
) -> None:
    from prefect import flow
    from prefect.events.worker import EventsWorker

    @flow(name="heartbeat-probe")
    def probe() -> str:
        from prefect.runtime import flow_run

        return str(flow_run.id)

    since = datetime.now(UTC) - timedelta(seconds=1)
    run_id = probe()
    assert not _heartbeat_threads()
    EventsWorker.drain_all()

    def beats() -> list[dict[str, Any]]:
        found = _events(prefect_api_url, f"prefect.flow-run.{run_id}", since)
        return [e for e in found if e["event"] == "prefect.flow-run.heartbeat"]

    (beat,) = _wait_for(beats, 30, "the run's heartbeat event")
    assert beat["resource"]["prefect.resource.id"] == f"prefect.flow-run.{run_id}"

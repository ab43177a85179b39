"""Playing the demo: set up a fresh data folder, start the embedded default on a virtual
clock, feed the campaign, watch, and end with the funnel."""

from __future__ import annotations

import os
import random
import shutil
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

import httpx
from rich.console import Console
from rich.live import Live
from rich.text import Text
from sqlalchemy import Engine

from recovery.clock import VirtualClock, parse_clock
from recovery.demo.campaign import SECRET, build_campaign
from recovery.demo.console import plain_progress, render_progress
from recovery.demo.feeder import Feeder
from recovery.demo.funnel import (
    ARTIFACT_KEY,
    Funnel,
    build_funnel,
    emulator_counters,
    emulator_dial_log,
    flow_run_states,
    print_funnel,
    publish_funnel,
    read_only_engine,
    take_snapshot,
    write_funnel_json,
)
from recovery.demo.skipping import TimeSkipper
from recovery.demo.tuning import (
    _FOREIGN_ENV,
    CAMPAIGN_START,
    DEFAULT_SPEED,
    DEMO_DIR,
    VIRTUAL_ORIGIN,
    Tuning,
)
from recovery.domain.compliance import load_rules
from recovery.embedded.supervisor import Supervisor
from recovery.log_scrubbing import install_log_scrubbing
from recovery.settings import Settings

# --- running it -----------------------------------------------------------------------------

# How often the driver looks at the parts (real seconds): every jump waits at least one look
# after the system falls idle and one settling time.
LOOK_SECONDS = 0.05

DEPLOYMENTS = (
    "ingest/ingest",
    "advance/advance",
    "dispositions/dispositions",
    "close-on-payment/close-on-payment",
    "reconcile/reconcile",
    "review-queue/review-queue",
)


def wait_for_deployments(api_url: str, names: Sequence[str], *, timeout: float) -> None:
    """Wait until the served flows have registered their deployments, so that the first
    webhooks' ingest trigger finds its deployment."""
    deadline = time.monotonic() + timeout
    missing = list(names)
    with httpx.Client(base_url=api_url, timeout=5) as client:
        while missing:
            try:
                if client.get(f"/deployments/name/{missing[0]}").status_code == 200:
                    missing.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"deployments not served after {timeout:.0f} s: {missing}")
            time.sleep(0.3)


def start_watching(api_url: str, deployments: Sequence[str], *, timeout: float) -> list[str]:
    """Start a run of each deployment now (a schedule's first run may be up to an interval
    away, and the first delivery's trigger would wait for a new process) and wait until they
    run: the flows are warm and watching runs are there when the campaign begins. Their ids."""
    deadline = time.monotonic() + timeout
    run_ids: list[str] = []
    with httpx.Client(base_url=api_url, timeout=10) as client:
        for deployment in deployments:
            found = client.get(f"/deployments/name/{deployment}")
            found.raise_for_status()
            while True:
                # The server answers 503 (retry) while its store is busy with new deployments.
                created = client.post(f"/deployments/{found.json()['id']}/create_flow_run", json={})
                if created.status_code != 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            created.raise_for_status()
            run_ids.append(str(created.json()["id"]))
        waiting = dict(zip(run_ids, deployments, strict=True))
        while waiting and time.monotonic() < deadline:
            for run_id, deployment in list(waiting.items()):
                try:
                    state = client.get(f"/flow_runs/{run_id}").json().get("state") or {}
                except (httpx.HTTPError, ValueError):
                    state = {}
                if state.get("type") in ("RUNNING", "COMPLETED"):
                    del waiting[run_id]
                elif state.get("type") in ("FAILED", "CRASHED", "CANCELLED"):
                    raise RuntimeError(f"the first {deployment} run ended {state['type']}")
            if waiting:
                time.sleep(0.3)
    if waiting:
        names = ", ".join(waiting.values())
        raise RuntimeError(f"no {names} run started within {timeout:.0f} s; see the flows log")
    return run_ids


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DemoResult:
    funnel: Funnel
    prefect_ui: str
    artifact_id: str | None
    exit_code: int


@contextmanager
def _embedded(
    settings: Settings,
    env: dict[str, str],
    tuning: Tuning,
    say: Callable[[str], None],
    seed: int,
) -> Iterator[Supervisor]:
    from recovery.embedded.stack import run_embedded

    supervisor = run_embedded(
        settings,
        env=env,
        prefect_port=free_port(),
        with_emulator=True,
        emulator_port=free_port(),
        scenario="mixed",
        dial_interval=tuning.dial_interval,
        say=say,
        block=False,
        emulator_seed=seed,
    )
    if not supervisor.parts:
        # Ctrl-C while starting: run_embedded has stopped what it started.
        raise KeyboardInterrupt
    try:
        yield supervisor
    finally:
        say("stopping every part")
        supervisor.stop()


def _environment(data: Path, clock_spec: str, api_port: int, tuning: Tuning) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env.update(
        {
            "RECOVERY_DATA_DIR": str(data),
            "RECOVERY_CLOCK": clock_spec,
            "RECOVERY_API_HOST": "127.0.0.1",
            "RECOVERY_API_PORT": str(api_port),
            "RECOVERY_STRIPE_WEBHOOK_SECRETS": SECRET,
            **tuning.env(),
        }
    )
    return env


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(
    *,
    payments: int = 240,
    days: float = 21.0,
    failure_days: float = 4.0,
    speed: float = DEFAULT_SPEED,
    resolution: int = 30,
    keep: bool = False,
    seed: int = 7,
    data_dir: Path = DEMO_DIR,
    console: Console | None = None,
) -> DemoResult:
    """Set up a fresh ``data_dir``, start the embedded default on a virtual clock, play the
    campaign for ``days`` virtual days, print and publish the funnel, and stop everything
    (after Ctrl-C when ``keep``)."""
    console = console or Console()
    install_log_scrubbing()
    began = time.monotonic()
    tuning = Tuning(speed=speed, resolution_minutes=resolution)
    data = data_dir.resolve()
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    clock_spec = f"virtual:{VIRTUAL_ORIGIN.isoformat()}@{speed:g}"
    api_port = free_port()
    env = _environment(data, clock_spec, api_port, tuning)
    settings = Settings(
        mode="development",
        data_dir=data,
        database_url=f"sqlite:///{(data / 'recovery.db').as_posix()}",
        clock=clock_spec,
        api_host="127.0.0.1",
        api_port=api_port,
    )
    console.rule("payment recovery: a three-week campaign on the embedded default")
    console.print(tuning.describe(), highlight=False)

    def say(line: str) -> None:
        console.print(line, highlight=False)

    with _embedded(settings, env, tuning, say, seed) as supervisor:
        api_url = supervisor.env["PREFECT_API_URL"]
        ui = api_url.removesuffix("/api")
        emulator = supervisor.env["RECOVERY_GENESYS_BASE_URL"]
        wait_for_deployments(api_url, DEPLOYMENTS, timeout=120)
        start_watching(api_url, ("advance/advance", "ingest/ingest"), timeout=120)
        clock = parse_clock(clock_spec, data)
        assert isinstance(clock, VirtualClock)
        if clock.now() >= CAMPAIGN_START:
            raise RuntimeError(
                f"the parts took until {clock.now():%a %d %b %H:%M} virtual time to start, "
                f"past the campaign's start {CAMPAIGN_START:%a %d %b %H:%M}: try a lower --speed"
            )
        start = clock.jump_to(CAMPAIGN_START)
        end = start + timedelta(days=days)
        plan = build_campaign(
            payments=payments,
            start=start,
            spread=timedelta(days=failure_days),
            rng=random.Random(seed),
        )
        say(
            f"campaign: {plan.payments} failed payments over {failure_days:g} virtual days "
            f"from {start:%a %d %b %H:%M} UTC, {len(plan.deliveries)} webhooks (re-deliveries "
            f"included); {plan.paid_on_their_own} customers pay on their own, "
            f"{plan.paid_before_failure_arrived} successes overtake their failure, "
            f"{plan.with_card_number} events carry a card number, {plan.invalid_phone} an "
            "invalid phone"
        )
        engine = read_only_engine(settings.database_url)
        feeder = Feeder(plan, receiver=f"http://127.0.0.1:{api_port}", clock=clock)
        feeder.start()
        skipper = TimeSkipper(
            clock,
            engine,
            emulator,
            feeder,
            end,
            origin=start,
            resolution=timedelta(minutes=tuning.resolution_minutes),
        )
        try:
            _watch(console, supervisor, engine, emulator, skipper, start, end, days, feeder)
        finally:
            feeder.stop()
            skipper.close()
        funnel = build_funnel(
            engine=engine,
            counters=emulator_counters(emulator),
            dial_log=emulator_dial_log(emulator),
            feeder=feeder,
            tuning=tuning,
            rules=load_rules(settings.calling_rules_file, settings.calling_rules_profile),
            started=start,
            ended=end,
        )
        engine.dispose()
        try:
            funnel.flow_runs = flow_run_states(api_url)
        except httpx.HTTPError as exc:
            console.print(f"[red]could not count the flow runs: {exc}[/red]")
        print_funnel(console, funnel)
        write_funnel_json(
            data / "funnel.json",
            funnel,
            {
                "seed": seed,
                "payments": payments,
                "days": days,
                "speed": speed,
                "resolution_minutes": tuning.resolution_minutes,
                "clock_jumps": skipper.jumps,
                "virtual_days_skipped": round(skipper.skipped_seconds / 86400, 2),
                "real_seconds": round(time.monotonic() - began, 1),
            },
        )
        figures = funnel.figures()
        say(
            "funnel.json: "
            + ", ".join(f"{k} {v}" for k, v in figures.items() if k != "flow_runs")
            + f"; flow runs {figures['flow_runs']}"
        )
        artifact_id: str | None = None
        try:
            artifact_id = publish_funnel(api_url, funnel)
            say(f"published as the Prefect table artifact '{ARTIFACT_KEY}'")
        except httpx.HTTPError as exc:
            console.print(f"[red]could not publish the funnel artifact: {exc}[/red]")
        refused = funnel.refused_outside_window
        breaches = funnel.dialled_outside_rules
        for count, what in (
            (refused, "dials the emulator refused outside 08:00-21:00 local time"),
            (breaches, "dials outside the calling rules' hours (the store's own check)"),
        ):
            style = "bold black on green" if count == 0 else "bold white on red"
            console.print(Text(f"  {what}: {count}  ", style=style))
        say(f"Prefect UI: {ui}/runs (flow runs), {ui}/artifacts/key/{ARTIFACT_KEY} (funnel)")
        if keep:
            say("everything keeps running, the virtual clock too; Ctrl-C stops it all")
            try:
                supervisor.wait()
            except KeyboardInterrupt:
                pass
        else:
            say(
                "the Prefect server (and its UI) stops with the demo; "
                "`python -m recovery.demo --keep` keeps everything running until Ctrl-C"
            )
    exit_code = 0
    if refused or breaches:
        exit_code = 1
        console.print(
            f"[bold red]{refused + breaches} dials fell outside the calling window: the demo "
            "fails (too busy a machine for this speed? try a lower --speed)[/bold red]"
        )
    say(
        f"store {data / 'recovery.db'}, logs {data / 'logs'}; "
        f"{time.monotonic() - began:.0f} s in all"
    )
    return DemoResult(funnel, ui, artifact_id, exit_code)


def _watch(
    console: Console,
    supervisor: Supervisor,
    engine: Engine,
    emulator: str,
    skipper: TimeSkipper,
    start: datetime,
    end: datetime,
    days: float,
    feeder: Feeder,
) -> None:
    """Drive the clock (``skipper``) and show progress until the virtual clock reaches
    ``end``; stop early if a part dies. A line says what keeps the system busy when it has
    not been idle for a while (the clock then runs at its set speed only)."""
    clock = skipper.clock

    def check_parts() -> None:
        for part in supervisor.parts:
            if part.process is not None and part.process.poll() is not None:
                raise RuntimeError(f"{part.name} exited; see {part.log_file}")

    last_jump, last_count, told = time.monotonic(), skipper.jumps, False

    def drive() -> None:
        nonlocal last_jump, last_count, told
        state = skipper.step()
        if skipper.jumps != last_count:
            last_jump, last_count, told = time.monotonic(), skipper.jumps, False
        elif time.monotonic() - last_jump > 30 and not told:
            told = True
            busy = ", ".join(state.busy) or "settling"
            console.print(f"  not idle for 30 s at {state.at:%a %d %H:%M}: {busy}")

    if console.is_terminal:
        snap = take_snapshot(engine, emulator, clock.now())
        view = render_progress(snap, start=start, days=days, feeder=feeder)
        shown = 0.0
        with Live(view, console=console, refresh_per_second=4) as live:
            while clock.now() < end:
                check_parts()
                drive()
                if time.monotonic() - shown > 0.5:
                    snap = take_snapshot(engine, emulator, clock.now())
                    live.update(render_progress(snap, start=start, days=days, feeder=feeder))
                    shown = time.monotonic()
                time.sleep(LOOK_SECONDS)
        return
    next_report = start
    while clock.now() < end:
        check_parts()
        drive()
        if clock.now() >= next_report:
            snap = take_snapshot(engine, emulator, clock.now())
            console.print(plain_progress(snap, start=start, feeder=feeder), highlight=False)
            next_report += timedelta(days=1)
        time.sleep(LOOK_SECONDS)

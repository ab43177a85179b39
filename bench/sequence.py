"""Sequence throughput: cases due at once, advanced by the advance flow on a Prefect server into
the emulator under a known budget.

N expired-card cases are opened straight in the store at an instant when calling is lawful for
every one of them. The emulator runs as its own process with a budget of R requests per minute;
``recovery prefect setup`` creates the strict global rate limit at R on a local Prefect server
started as the embedded default starts it (``recovery.embedded.prefect_server``, with the
settings of ``recovery.embedded.stack``): on SQLite, or on PostgreSQL with
``--prefect-database-url``. The advance flow then runs in this process until every case has its
contact. Printed, from one run: contacts/s against the ceiling R x batch / 60 (target >= 0.9),
the 429s, duplicates and lost contacts, and the orchestration CPU seconds per case step (this
process's CPU time over the flow runs divided by the case steps; target <= 2 ms).

    .venv/bin/python bench/sequence.py                      # N=10000, R=300, batch 50
    .venv/bin/python bench/sequence.py -r 600 --occupy 5
    .venv/bin/python bench/sequence.py -n 2000 --profile    # where the flow's threads wait
    .venv/bin/python bench/sequence.py \
        --prefect-database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench_prefect

Exit code 0 when every case got exactly one contact (whether or not the targets are met), 1
otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(Path(__file__).resolve().parent), str(ROOT)]

from _common import CLOCK_TICKS, Server, free_port, start_server, wait_healthy  # noqa: E402
from _stacks import StackSampler  # noqa: E402

RATIO_TARGET = 0.9
CPU_TARGET_MS = 2.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cases", "-n", type=int, default=10_000, help="cases due at once")
    parser.add_argument(
        "--requests-per-minute", "-r", type=int, default=300, help="the emulator's budget R"
    )
    parser.add_argument("--batch", type=int, default=50, help="contacts per request")
    parser.add_argument("--chunk", type=int, default=500, help="cases per decide task")
    parser.add_argument(
        "--occupy", type=int, default=None, help="rate-limit slots per acquisition (settings)"
    )
    parser.add_argument("--window", choices=("sliding", "fixed"), default="sliding")
    parser.add_argument(
        "--database-url", default=None, help="the store (default: a fresh SQLite file)"
    )
    parser.add_argument(
        "--prefect-database-url",
        default=None,
        help="run the Prefect server on this database (postgresql+asyncpg://...; created "
        "and dropped by the bench) instead of SQLite",
    )
    parser.add_argument("--max-runs", type=int, default=5, help="advance flow runs at most")
    parser.add_argument(
        "--flow",
        default="flows.advance:advance",
        help="the flow to run, module:function or path.py:function (to compare variants)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="sample every thread's stack during the flow runs"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    where, _, name = args.flow.rpartition(":")
    if where.endswith(".py"):
        # The run happens in a temporary folder: a path given here is relative to here.
        args.flow = f"{Path(where).resolve()}:{name}"
    return args


def configure(args: argparse.Namespace, tmp: Path, emulator_port: int) -> dict[str, str]:
    """The environment the emulator, the setup command and the flow all read."""
    from tests.support.emulator import CLIENT_ID, CLIENT_SECRET, CONTACT_LIST, DNC_LIST

    env = {
        "PREFECT_HOME": str(tmp / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "RECOVERY_DATA_DIR": str(tmp / "data"),
        "RECOVERY_DATABASE_URL": args.database_url or f"sqlite:///{tmp / 'store.db'}",
        "RECOVERY_CLOCK": f"file:{tmp / 'clock'}",
        "RECOVERY_GENESYS_REGION": "emulator",
        "RECOVERY_GENESYS_BASE_URL": f"http://127.0.0.1:{emulator_port}",
        "RECOVERY_GENESYS_CLIENT_ID": CLIENT_ID,
        "RECOVERY_GENESYS_CLIENT_SECRET": CLIENT_SECRET,
        "RECOVERY_GENESYS_CONTACT_LIST_ID": CONTACT_LIST,
        "RECOVERY_GENESYS_DNC_LIST_ID": DNC_LIST,
        "RECOVERY_GENESYS_REQUESTS_PER_MINUTE": str(args.requests_per_minute),
        "RECOVERY_GENESYS_BATCH_SIZE": str(args.batch),
        "RECOVERY_GENESYS_RATE_LIMIT_NAME": f"genesys-bench-{uuid.uuid4().hex[:8]}",
        "RECOVERY_ADVANCE_CHUNK_SIZE": str(args.chunk),
    }
    if args.occupy is not None:
        env["RECOVERY_RATE_LIMIT_OCCUPY"] = str(args.occupy)
    for name in [n for n in os.environ if n.startswith(("RECOVERY_", "PREFECT_"))]:
        del os.environ[name]
    os.environ.update(env)
    return env


def start_emulator(args: argparse.Namespace, tmp: Path, port: int) -> Server:
    recovery = Path(sys.executable).with_name("recovery")
    argv = [
        str(recovery),
        "emulator",
        "--port",
        str(port),
        "--requests-per-minute",
        str(args.requests_per_minute),
        "--dial-interval",
        "0",
    ]
    server = start_server(
        "emulator", argv, port=port, env=dict(os.environ), cwd=tmp, log_path=tmp / "emulator.log"
    )
    wait_healthy(server, path="/__emulator__/counters")
    import httpx

    httpx.post(
        f"http://127.0.0.1:{port}/__emulator__/rate-limit",
        json={"requests_per_minute": args.requests_per_minute, "window": args.window},
    ).raise_for_status()
    return server


def process_cpu(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (Linux), 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@contextmanager
def prefect_server(database_url: str | None, tmp: Path) -> Iterator[tuple[str, int | None]]:
    """A local Prefect server as the embedded default starts it (``recovery.embedded.
    prefect_server`` with the settings of ``recovery.embedded.stack``): on SQLite in the
    temporary folder, or on the given PostgreSQL database (created and dropped here) with
    ``--prefect-database-url``. Yields its API URL and its process id."""
    from recovery.embedded.stack import EMBEDDED_PREFECT_SERVER

    env = {**os.environ, **EMBEDDED_PREFECT_SERVER}
    env.pop("PREFECT_API_URL", None)
    admin = None
    name = ""
    if database_url is not None:
        from sqlalchemy import create_engine, text

        base, _, name = database_url.rpartition("/")
        admin = create_engine(
            base.replace("+asyncpg", "+psycopg") + "/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    port = free_port()
    argv = [sys.executable, "-m", "recovery.embedded.prefect_server", "start"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    env["PYTHONPATH"] = str(ROOT)
    server = start_server("prefect", argv, port=port, env=env, cwd=tmp, log_path=tmp / "p.log")
    try:
        wait_healthy(server, timeout=120, path="/api/health")
        yield f"http://127.0.0.1:{port}/api", server.process.pid
    finally:
        server.stop()
        if admin is not None:
            from sqlalchemy import text

            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def load_flow(spec: str) -> Any:
    """``module:function`` or ``path/to/file.py:function``."""
    import importlib
    import importlib.util

    where, _, name = spec.rpartition(":")
    if where.endswith(".py"):
        path = Path(where).resolve()
        found = importlib.util.spec_from_file_location(path.stem, path)
        assert found is not None and found.loader is not None, spec
        module = importlib.util.module_from_spec(found)
        found.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    return getattr(module, name)


def task_breakdown(flow_run_ids: Sequence[Any]) -> dict[str, tuple[int, float]]:
    """Per task name: (runs, seconds spent running), from the Prefect server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    found: dict[str, list[float]] = defaultdict(list)
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(flow_run_ids))),
                limit=200,
                offset=offset,
            )
            for run in runs:
                name = run.name.split(" ", 2)[0] + " " + run.name.split(" ", 2)[1]
                found[name].append(run.total_run_time.total_seconds())
            if len(runs) < 200:
                break
            offset += 200
    return {name: (len(times), sum(times)) for name, times in sorted(found.items())}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cases < 1 or args.requests_per_minute < 1 or not 1 <= args.batch <= 1000:
        print("bad arguments", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="bench-sequence-"))
    emulator_port = free_port()
    configure(args, tmp, emulator_port)
    os.chdir(tmp)

    import httpx

    from recovery.clock import FileClock
    from recovery.store.db import make_engine, make_sessionmaker
    from recovery.store.migrate import upgrade
    from tests.support.advance_workers import first_contact_problems
    from tests.support.due_cases import CALLABLE_INSTANT, seed_due_cases
    from tests.support.emulator import CONTACT_LIST
    from tests.support.store_probe import StoreProbe

    clock = FileClock(tmp / "clock")
    clock.set(CALLABLE_INSTANT)
    url = os.environ["RECOVERY_DATABASE_URL"]
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    rpm, batch = args.requests_per_minute, args.batch
    ceiling = rpm * batch / 60
    emulator: Server | None = None
    try:
        emulator = start_emulator(args, tmp, emulator_port)
        with prefect_server(args.prefect_database_url, tmp) as (api_url, server_pid):
            os.environ["PREFECT_API_URL"] = api_url
            setup = subprocess.run(
                [str(Path(sys.executable).with_name("recovery")), "prefect", "setup"]
                + ["--no-work-pool"],
                env=dict(os.environ),
                capture_output=True,
                text=True,
                check=True,
            )
            advance = load_flow(args.flow)

            # One run with nothing due first: imports and the engine's first-run costs belong
            # to the process, not to the cases.
            advance()
            # A run that finds nothing due: how long it takes, and what it is called.
            started_empty = time.perf_counter()
            empty = advance(return_state=True)
            empty_seconds = time.perf_counter() - started_empty
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as prefect_client:
                empty_name = prefect_client.read_flow_run(empty.state_details.flow_run_id).name
            started_seeding = time.perf_counter()
            keys = seed_due_cases(sessions, count=args.cases, at=CALLABLE_INSTANT)
            seeding = time.perf_counter() - started_seeding
            print(
                f"sequence: {len(keys)} cases due at once ({seeding:.1f} s to open), budget "
                f"{rpm} requests/min ({args.window}), batch {batch}, chunk {args.chunk}, "
                f"store {url.split(':', 1)[0]}, Prefect server on "
                f"{'PostgreSQL' if args.prefect_database_url else 'SQLite'}"
            )
            print("setup:", setup.stdout.strip())

            sampler = StackSampler() if args.profile else None
            created = decisions = runs = 0
            flow_runs: list[Any] = []
            if sampler is not None:
                sampler.__enter__()
            others_before = (process_cpu(server_pid), process_cpu(emulator.process.pid))
            cpu_before = time.process_time()
            started = time.perf_counter()
            for runs in range(1, args.max_runs + 1):  # noqa: B007
                state = advance(return_state=True)
                flow_runs.append(state.state_details.flow_run_id)
                summary: dict[str, Any] = state.result()
                created += int(summary["contacts_created"])
                decisions += sum(summary["decisions"].values())
                if created >= len(keys) or not summary["decisions"]:
                    break
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_before
            server_cpu = process_cpu(server_pid) - others_before[0]
            emulator_cpu = process_cpu(emulator.process.pid) - others_before[1]
            if sampler is not None:
                sampler.__exit__()
            breakdown = task_breakdown(flow_runs)
            from prefect.logging.handlers import APILogWorker

            # The run's last logs reach the server before it stops.
            APILogWorker.drain_all(timeout=10)

        with httpx.Client(timeout=60) as http:
            base = f"http://127.0.0.1:{emulator_port}/__emulator__"
            counters = http.get(f"{base}/counters").json()
            held = http.get(f"{base}/contact-lists/{CONTACT_LIST}/contacts").json()
        problems = first_contact_problems(StoreProbe(sessions).facts(keys), keys, held, counters)
    finally:
        if emulator is not None:
            emulator.stop()
        engine.dispose()
        os.chdir(ROOT)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    held_ids = {c["id"] for c in held}
    from recovery.contact_center.contacts import contact_id_for

    lost = sum(1 for key in keys if contact_id_for(key, 1) not in held_ids)
    rate = created / elapsed if elapsed > 0 else 0.0
    steps = decisions
    cpu_ms = cpu / steps * 1000 if steps else float("nan")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine load       {load}  (1, 5, 15 min; {os.cpu_count()} CPUs): figures vary with it")
    print(f"empty run          {empty_seconds:8.2f} s  (nothing due; named {empty_name!r})")
    print(f"flow runs          {runs:8d}")
    print(f"elapsed            {elapsed:8.2f} s")
    print(f"contacts created   {created:8d}  (requests {counters['requests']})")
    print(f"contacts/s         {rate:8.1f}")
    print(f"ceiling            {ceiling:8.1f}  (= {rpm} x {batch} / 60)")
    print(f"ratio              {rate / ceiling:8.3f}  (target >= {RATIO_TARGET})")
    print(f"429s               {counters['rate_limited']:8d}")
    print(f"duplicates         {counters['duplicates']:8d}  (upserts {counters['upserts']})")
    print(f"lost               {lost:8d}")
    print(f"flow process CPU   {cpu:8.2f} s over {steps} case steps (one decision each)")
    print(f"CPU per case step  {cpu_ms:8.2f} ms  (target <= {CPU_TARGET_MS:.0f} ms)")
    print(
        f"other processes    Prefect server {server_cpu:.2f} s CPU "
        f"({server_cpu / elapsed:.0%} of a core), emulator {emulator_cpu:.2f} s"
    )
    from recovery.contact_center.budget import budgets

    for budget in budgets():
        c = budget.counts
        print(
            f"request budget     {c.requests} requests, {c.slots} slots of the shared limit in "
            f"{c.acquisitions} acquisitions of {budget.block}; {c.paced_seconds:.1f} s paced "
            f"locally, {c.shared_seconds:.1f} s waiting for the shared limit "
            f"({c.refused} refusals)"
        )
    for name, (count, seconds) in breakdown.items():
        print(f"  task {name:<16} {count:5d} runs, {seconds:8.2f} s running in all")
    if problems:
        print(f"problems           {len(problems):8d}, e.g.: " + "; ".join(problems[:5]))
    if sampler is not None:
        print(sampler.report(groups=10))
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())

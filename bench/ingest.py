"""Intake benchmark: the real receiver against a bare FastAPI + SQLite baseline.

Both servers run as separate processes on loopback with the same uvicorn settings, and get the
same load: N signed Stripe webhook deliveries (a realistic mix of failure and success events,
a fraction of them re-deliveries of earlier events) posted by ``--concurrency`` keep-alive
clients. The script prints throughput, p50/p99 latency and status counts for each, the ratios
against the targets, and checks that the receiver's inbox holds every distinct event once.

Exit code 0 when both runs completed and the inbox is correct (whether or not the targets are
met), 1 when a run failed (a server did not start, a transport error, a non-2xx answer) or the
inbox is wrong, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# The bench helpers, and the project itself when it is not installed in the interpreter.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

from _common import (  # noqa: E402
    LoadResult,
    Server,
    free_port,
    get_request,
    post_request,
    run_load,
    start_server,
    wait_healthy,
)

from recovery.gateways import samples  # noqa: E402

SECRET = "whsec_dev-local-only"
PATH = "/webhooks/stripe"
THROUGHPUT_TARGET = 0.5  # ours / baseline, at least
P99_TARGET = 1.5  # ours / baseline, at most

# (event type, weight): mostly failures, as a recovery receiver sees them, plus the success
# events that close cases.
MIX: tuple[tuple[str, int], ...] = (
    ("invoice.payment_failed", 45),
    ("payment_intent.payment_failed", 22),
    ("charge.failed", 18),
    ("invoice.paid", 8),
    ("charge.succeeded", 7),
)
AREAS = (
    ("212", "NY"),
    ("312", "IL"),
    ("415", "CA"),
    ("617", "MA"),
    ("713", "TX"),
    ("206", "WA"),
    ("305", "FL"),
    ("404", "GA"),
    ("602", "AZ"),
    ("303", "CO"),
)
DECLINES = (
    "insufficient_funds",
    "generic_decline",
    "do_not_honor",
    "lost_card",
    "card_velocity_exceeded",
    "try_again_later",
)
CHARGE_FAILURES = ("expired_card", "card_declined", "incorrect_cvc", "processing_error")


@dataclass(frozen=True)
class Delivery:
    event_index: int  # into the list of distinct events
    redelivery: bool
    resigned: bool  # a redelivery with its own signature timestamp (else an exact resend)


def _ident(rng: random.Random, prefix: str, length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(rng.choices(alphabet, k=length))


def build_events(
    count: int, rng: random.Random, now: datetime, id_prefix: str = "evt_"
) -> list[dict[str, Any]]:
    """``count`` distinct Stripe events in the proportions of ``MIX``."""
    types = rng.choices([t for t, _ in MIX], weights=[w for _, w in MIX], k=count)
    events: list[dict[str, Any]] = []
    for event_type in types:
        area, state = rng.choice(AREAS)
        phone = f"+1{area}{rng.randint(2, 9)}{rng.randint(0, 99):02d}{rng.randint(0, 9999):04d}"
        created = now - timedelta(seconds=rng.randint(0, 6 * 3600))
        event_id = _ident(rng, id_prefix)
        invoice_id = _ident(rng, "in_")
        amount = rng.choice((999, 1500, 2000, 2900, 4900, 9900))
        customer = _ident(rng, "cus_", 14)
        postal = f"{rng.randint(10000, 99999)}"
        if event_type in ("invoice.payment_failed", "invoice.paid"):
            event = samples.invoice_failed(
                event_id=event_id,
                invoice_id=invoice_id,
                created=created,
                customer=customer,
                phone=phone,
                state=state,
                postal_code=postal,
                amount_due=amount,
                attempt_count=rng.randint(1, 4),
                event_type=event_type,
            )
        elif event_type == "payment_intent.payment_failed":
            event = samples.intent_failed(
                event_id=event_id,
                intent_id=_ident(rng, "pi_"),
                created=created,
                invoice_id=invoice_id if rng.random() < 0.7 else None,
                decline_code=rng.choice(DECLINES),
                phone=phone,
                state=state,
                postal_code=postal,
                amount=amount,
                customer=customer,
            )
        else:
            event = samples.charge_event(
                event_id=event_id,
                charge_id=_ident(rng, "ch_"),
                created=created,
                succeeded=event_type == "charge.succeeded",
                invoice_id=invoice_id if rng.random() < 0.5 else None,
                intent_id=_ident(rng, "pi_"),
                failure_code=rng.choice(CHARGE_FAILURES),
                phone=phone,
                state=state,
                postal_code=postal,
                amount=amount,
            )
        events.append(event)
    return events


def plan_deliveries(distinct: int, total: int, rng: random.Random) -> list[Delivery]:
    """Every event once, plus ``total - distinct`` re-deliveries, each placed somewhere after
    its original (some close enough behind it to race it across the concurrent clients)."""
    keyed: list[tuple[float, Delivery]] = [
        (float(i), Delivery(i, redelivery=False, resigned=False)) for i in range(distinct)
    ]
    for _ in range(total - distinct):
        original = rng.randrange(distinct)
        position = rng.uniform(original, distinct)
        keyed.append((position, Delivery(original, redelivery=True, resigned=rng.random() < 0.5)))
    keyed.sort(key=lambda pair: pair[0])
    return [delivery for _, delivery in keyed]


def signed_requests(
    bodies: Sequence[bytes], deliveries: Sequence[Delivery], port: int
) -> list[bytes]:
    """The exact request bytes, signed now so every timestamp is well inside the tolerance."""
    from recovery.gateways.signing import sign

    now = int(time.time())
    signatures = [sign(body, SECRET, now) for body in bodies]
    requests: list[bytes] = []
    for d in deliveries:
        body = bodies[d.event_index]
        # A re-sent delivery carries a later signature timestamp, as Stripe's retries do.
        signature = sign(body, SECRET, now + 1) if d.resigned else signatures[d.event_index]
        headers = {"Content-Type": "application/json", "Stripe-Signature": signature}
        requests.append(post_request(PATH, port, body, headers))
    return requests


def clean_env() -> dict[str, str]:
    """The parent's environment without any setting that could point the servers elsewhere."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("RECOVERY_") and not key.startswith("PREFECT_")
    }


def recovery_command() -> list[str]:
    script = Path(sys.executable).parent / "recovery"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from recovery.cli import main; main()"]


def start_receiver(folder: Path) -> Server:
    data = folder / "receiver"
    data.mkdir()
    env = clean_env() | {
        "RECOVERY_MODE": "development",
        "RECOVERY_DATA_DIR": str(data),
        "RECOVERY_DATABASE_URL": f"sqlite:///{data / 'recovery.db'}",
        "RECOVERY_STRIPE_WEBHOOK_SECRETS": SECRET,
    }
    # Run in the temporary folder so that no .env file in the caller's folder is read.
    upgrade = subprocess.run(
        [*recovery_command(), "db", "upgrade"],
        env=env,
        cwd=data,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if upgrade.returncode != 0:
        raise RuntimeError(f"recovery db upgrade failed:\n{upgrade.stdout}{upgrade.stderr}")
    port = free_port()
    server = start_server(
        "receiver",
        [*recovery_command(), "api", "--host", "127.0.0.1", "--port", str(port), "--no-trigger"],
        port=port,
        env=env,
        cwd=data,
        log_path=folder / "receiver.log",
    )
    wait_healthy(server)
    return server


def start_baseline(folder: Path) -> Server:
    data = folder / "baseline"
    data.mkdir()
    port = free_port()
    server = start_server(
        "baseline",
        [
            sys.executable,
            str(Path(__file__).resolve().parent / "baseline_app.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--db",
            str(data / "baseline.db"),
        ],
        port=port,
        env=clean_env(),
        cwd=data,
        log_path=folder / "baseline.log",
    )
    wait_healthy(server)
    return server


@dataclass
class RunFigures:
    name: str
    load: LoadResult
    cpu_seconds: float | None  # the server's, during the timed run
    client_cpu_seconds: float  # the load generator's, during the timed run
    load_average: float  # the machine's 1-minute load average just before the timed run
    warmup: LoadResult

    def failures(self) -> list[str]:
        problems = []
        for label, result in (("warm-up", self.warmup), ("run", self.load)):
            if result.errors:
                problems.append(
                    f"{self.name} {label}: {len(result.errors)} transport errors, "
                    f"first: {result.errors[0]}"
                )
            if result.non_2xx:
                problems.append(
                    f"{self.name} {label}: {result.non_2xx} non-2xx answers "
                    f"({format_statuses(result.statuses)})"
                )
        return problems


def format_statuses(statuses: Counter[int | str]) -> str:
    return ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items(), key=str))


def measure(
    server: Server,
    bodies: Sequence[bytes],
    deliveries: Sequence[Delivery],
    warmup_bodies: Sequence[bytes],
    concurrency: int,
) -> RunFigures:
    """Warm the server up (health checks, then distinct warm-up events), then the timed run."""
    run_load(
        server.port, [get_request("/healthz", server.port)] * concurrency, concurrency=concurrency
    )
    warm_plan = [Delivery(i, False, False) for i in range(len(warmup_bodies))]
    warmup = run_load(
        server.port, signed_requests(warmup_bodies, warm_plan, server.port), concurrency=concurrency
    )
    requests = signed_requests(bodies, deliveries, server.port)
    load_average = os.getloadavg()[0]
    cpu_before, client_before = server.cpu_seconds(), time.process_time()
    load = run_load(server.port, requests, concurrency=concurrency)
    cpu_after, client_after = server.cpu_seconds(), time.process_time()
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    if server.process.poll() is not None:
        raise RuntimeError(f"{server.name} died during the run:\n{server.log_tail()}")
    return RunFigures(server.name, load, cpu, client_after - client_before, load_average, warmup)


def verify_inbox(
    db_path: Path,
    expected_ids: set[str],
    receiver: RunFigures,
    distinct: int,
    redeliveries: int,
) -> tuple[bool, list[str]]:
    """The inbox holds each distinct event exactly once and the answers say which was new."""
    lines: list[str] = []
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        rows, unique = conn.execute(
            "SELECT count(*), count(DISTINCT gateway || ':' || event_id) FROM webhook_inbox"
        ).fetchone()
        stored = {row[0] for row in conn.execute("SELECT event_id FROM webhook_inbox")}
        kinds = dict(conn.execute("SELECT kind, count(*) FROM webhook_inbox GROUP BY kind"))
        (flagged,) = conn.execute(
            "SELECT count(*) FROM webhook_inbox WHERE pan_redacted"
        ).fetchone()
    answers: Counter[str] = Counter()
    for body in receiver.load.bodies:
        try:
            answers[str(json.loads(body).get("status"))] += 1
        except (ValueError, AttributeError):
            answers["unreadable"] += 1
    checks = [
        (
            rows == len(expected_ids),
            f"inbox rows {rows}, distinct events sent {len(expected_ids)} (run + warm-up)",
        ),
        (rows == unique, f"rows per (gateway, event id): {rows} rows, {unique} distinct keys"),
        (
            stored == expected_ids,
            f"stored ids match sent ids: "
            f"{len(expected_ids - stored)} missing, "
            f"{len(stored - expected_ids)} unexpected",
        ),
        (
            answers.get("recorded", 0) == distinct and answers.get("duplicate", 0) == redeliveries,
            f"answers: recorded {answers.get('recorded', 0)} (expected {distinct}), duplicate "
            f"{answers.get('duplicate', 0)} (expected {redeliveries})"
            + "".join(
                f", {k} {v}" for k, v in answers.items() if k not in ("recorded", "duplicate")
            ),
        ),
    ]
    for ok, text in checks:
        lines.append(f"  [{'ok' if ok else 'FAIL'}] {text}")
    lines.append(
        f"  stored kinds: {', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}; "
        f"flagged for redacted card data: {flagged}"
    )
    return all(ok for ok, _ in checks), lines


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_table(runs: Sequence[RunFigures]) -> None:
    """One line per server; CPU columns are milliseconds of CPU per request (server, client)."""
    print(
        f"{'':10} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'srv CPU':>8} {'gen CPU':>8} {'load avg':>8}  statuses"
    )
    for run in runs:
        load = run.load
        per_request = 1000 / load.count
        server_cpu = f"{run.cpu_seconds * per_request:8.2f}" if run.cpu_seconds else f"{'n/a':>8}"
        print(
            f"{run.name:10} {load.throughput:9.1f} {load.percentile_ms(50):8.1f} "
            f"{load.percentile_ms(99):8.1f} {load.percentile_ms(100):8.1f} {server_cpu} "
            f"{run.client_cpu_seconds * per_request:8.2f} {run.load_average:8.2f}  "
            f"{format_statuses(load.statuses)}"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Intake benchmark: the receiver against a bare FastAPI + SQLite baseline."
    )
    parser.add_argument("--n", type=int, default=5000, help="deliveries per run (default 5000)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients")
    parser.add_argument(
        "--duplicates",
        type=float,
        default=0.2,
        help="fraction of deliveries that re-deliver an earlier event",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--warmup",
        type=int,
        default=200,
        help="distinct warm-up deliveries before each timed run (not measured)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="repeat both runs on fresh stores, alternating their order; ratios are medians",
    )
    parser.add_argument(
        "--only",
        choices=("receiver", "baseline"),
        help="run one server only (no ratios); handy when profiling it",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (stores and server logs)"
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.concurrency < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--n, --concurrency and --rounds must be at least 1, --warmup at least 0")
    if not 0 <= args.duplicates < 1:
        parser.error("--duplicates must be in [0, 1)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    distinct = max(1, round(args.n * (1 - args.duplicates)))
    redeliveries = args.n - distinct
    now = datetime.now(UTC)

    events = build_events(distinct, rng, now)
    warmup_events = build_events(args.warmup, rng, now, id_prefix="evt_warmup_")
    deliveries = plan_deliveries(distinct, args.n, rng)
    bodies = [json.dumps(e, separators=(",", ":")).encode() for e in events]
    warmup_bodies = [json.dumps(e, separators=(",", ":")).encode() for e in warmup_events]
    sizes = [len(bodies[d.event_index]) for d in deliveries]
    mix = Counter(e["type"] for e in events)
    print(
        f"ingest benchmark: {args.n} deliveries ({distinct} distinct events, {redeliveries} "
        f"re-deliveries), {args.concurrency} clients, seed {args.seed}, "
        f"{args.warmup} warm-up deliveries per server"
    )
    print("  mix: " + ", ".join(f"{t} {n}" for t, n in mix.most_common()))
    print(f"  body bytes: min {min(sizes)}, mean {sum(sizes) / len(sizes):.0f}, max {max(sizes)}")

    folder = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    expected_ids = {e["id"] for e in events} | {e["id"] for e in warmup_events}
    rounds: list[dict[str, RunFigures]] = []
    failures: list[str] = []
    servers: list[Server] = []
    verdicts: list[bool] = []
    verify_lines: list[str] = []
    starters: dict[str, Callable[[Path], Server]] = {
        "baseline": start_baseline,
        "receiver": start_receiver,
    }
    names = [name for name in starters if args.only in (None, name)]
    try:
        for number in range(1, args.rounds + 1):
            round_folder = folder / f"round-{number}"
            round_folder.mkdir()
            runs: dict[str, RunFigures] = {}
            rounds.append(runs)
            # Alternate the order so that neither server always runs on a warmer machine.
            for name in names if number % 2 else names[::-1]:
                server = starters[name](round_folder)
                servers.append(server)
                print(
                    f"  round {number}, {name}: pid {server.process.pid}, port {server.port};"
                    " running...",
                    flush=True,
                )
                runs[name] = measure(server, bodies, deliveries, warmup_bodies, args.concurrency)
                server.stop()
                failures += runs[name].failures()
            if "baseline" in runs:
                with sqlite3.connect(round_folder / "baseline" / "baseline.db") as conn:
                    (stored,) = conn.execute("SELECT count(*) FROM deliveries").fetchone()
                if stored != args.n + args.warmup:
                    failures.append(
                        f"round {number}: baseline stored {stored} rows, "
                        f"expected {args.n + args.warmup}"
                    )
            if "receiver" in runs:
                ok, lines = verify_inbox(
                    round_folder / "receiver" / "recovery.db",
                    expected_ids,
                    runs["receiver"],
                    distinct,
                    redeliveries,
                )
                verdicts.append(ok)
                verify_lines += (
                    [f"  round {number}:", *("  " + line for line in lines)]
                    if args.rounds > 1
                    else lines
                )
    except (RuntimeError, OSError, subprocess.SubprocessError, sqlite3.Error) as exc:
        failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        for server in servers:
            server.stop()

    for number, runs in enumerate(rounds, start=1):
        print()
        if args.rounds > 1:
            print(f"round {number}")
        print_table([runs[name] for name in names if name in runs])
    if rounds:
        print(
            "(srv/gen CPU: ms of CPU per request in the server and in the load generator;"
            f" load avg: the 1-minute load average before the run, {os.cpu_count()} CPUs;"
            " other work on the machine skews the figures)"
        )
    complete = [runs for runs in rounds if "baseline" in runs and "receiver" in runs]
    if complete:
        throughputs, p99s, cpus = [], [], []
        for runs in complete:
            baseline, ours = runs["baseline"].load, runs["receiver"].load
            throughputs.append(ours.throughput / baseline.throughput)
            p99s.append(ours.percentile_ms(99) / baseline.percentile_ms(99))
            ours_cpu, baseline_cpu = runs["receiver"].cpu_seconds, runs["baseline"].cpu_seconds
            if ours_cpu and baseline_cpu:
                cpus.append((ours_cpu / ours.count) / (baseline_cpu / baseline.count))
        throughput, p99 = statistics.median(throughputs), statistics.median(p99s)
        label = f" (median of {len(complete)} rounds)" if len(complete) > 1 else ""
        print()
        print(
            f"throughput receiver/baseline {throughput:5.2f}  (target >= {THROUGHPUT_TARGET})  "
            f"{verdict(throughput >= THROUGHPUT_TARGET)}{label}"
        )
        print(
            f"p99 latency receiver/baseline {p99:5.2f}  (target <= {P99_TARGET})  "
            f"{verdict(p99 <= P99_TARGET)}{label}"
        )
        if cpus:
            # Less sensitive to other work on the machine than the wall-clock figures.
            print(f"server CPU per request receiver/baseline {statistics.median(cpus):5.2f}{label}")
    verified = all(verdicts) if verdicts else None
    if verified is not None:
        print()
        print(f"receiver inbox: {'correct' if verified else 'WRONG'}")
        for line in verify_lines:
            print(line)
    for problem in failures:
        print(f"FAILED: {problem}", file=sys.stderr)
    if args.keep:
        print(f"\nkept {folder} (stores and server logs)")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if not failures and verified is not False else 1


if __name__ == "__main__":
    sys.exit(main())

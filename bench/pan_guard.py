"""Card-number guard benchmark: its cost on hostile and ordinary text, and whether a 1 MiB
body of digits holds the receiver's event loop.

1. In process: the time ``redact_text`` takes on 1 MiB of digits in several shapes built to
   defeat it (one endless run with no Luhn-valid window, runs split by every separator, digits
   of another script, chains of 12 digits, space-separated times), and on an ordinary Stripe
   event's strings.
2. Against the real receiver (``recovery api`` on loopback, as ``bench/ingest.py`` runs it):
   while signed generic-webhook bodies of just under 1 MiB of digits are posted one after the
   other, a second client asks ``/healthz`` every 10 ms; the longest and the 99th-percentile
   health answer say how long the event loop was held.

Prints the figures; exit 0 when every run completed (whatever the figures), 1 when one failed,
2 for bad arguments. The target (checked by reading the output): no health answer slower than
``--max-stall`` seconds (default 1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

from _common import Server, free_port, start_server, wait_healthy  # noqa: E402

from recovery.domain.pan import ScanWork, redact_text  # noqa: E402
from recovery.gateways import samples  # noqa: E402
from recovery.gateways.signing import sign  # noqa: E402

MIB = 1024 * 1024
SECRET = "generic-bench-secret-0123456789"


def hostile_texts(size: int) -> dict[str, str]:
    def fill(unit: str) -> str:
        return (unit * (size // len(unit) + 1))[:size]

    return {
        "one run of 1s (no valid window)": fill("1"),
        "digits split by single spaces": fill("1 "),
        "digits split by ' - '": fill("1 - "),
        "Arabic-Indic digits": fill("\u0661"),
        "chains of 12 digits": fill("123456789012 x "),
        "space-separated times": fill("2026-12-01 13:00:00 "),
        "random digits": "".join(str((i * 7919) % 10) for i in range(size)),
    }


def ordinary_strings() -> list[str]:
    event = samples.invoice_failed(
        event_id="evt_bench", invoice_id="in_bench", created=datetime.now(UTC)
    )
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                found.append(str(key))
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str | int):
            found.append(str(node))

    walk(event)
    return found


def timed(call: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def in_process(size: int) -> None:
    print(f"1. in process: redact_text on {size} characters (best of 3)")
    for name, text in hostile_texts(size).items():
        work = ScanWork()
        redact_text(text, work=work)
        seconds = timed(lambda text=text: redact_text(text), 3)
        print(
            f"   {name:34s} {seconds * 1000:8.1f} ms   "
            f"{(work.chars + work.windows) / size:5.1f} units of work per character"
        )
    strings = ordinary_strings()
    total = timed(lambda: [redact_text(s) for s in strings], 20)
    print(
        f"   an ordinary Stripe event ({len(strings)} strings, {sum(map(len, strings))} chars): "
        f"{total * 1e6:.0f} us"
    )


def receiver(folder: Path) -> tuple[Server, int]:
    data = folder / "receiver"
    data.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RECOVERY_", "PREFECT_"))
    } | {
        "RECOVERY_MODE": "development",
        "RECOVERY_DATA_DIR": str(data),
        "RECOVERY_DATABASE_URL": f"sqlite:///{data / 'recovery.db'}",
        "RECOVERY_GENERIC_SIGNING_SECRETS": SECRET,
    }
    command = [str(Path(sys.executable).parent / "recovery")]
    upgrade = subprocess.run(
        [*command, "db", "upgrade"], env=env, cwd=data, capture_output=True, text=True
    )
    if upgrade.returncode != 0:
        raise RuntimeError(upgrade.stdout + upgrade.stderr)
    port = free_port()
    server = start_server(
        "receiver",
        [*command, "api", "--host", "127.0.0.1", "--port", str(port), "--no-trigger"],
        port=port,
        env=env,
        cwd=data,
        log_path=folder / "receiver.log",
    )
    wait_healthy(server)
    return server, port


def big_body(index: int, digits: str) -> bytes:
    envelope = {"type": "payment.failed", "event_id": f"evt_big_{index}", "customer_name": ""}
    head = json.dumps(envelope)[:-2]  # up to the empty name's opening quote
    return (head + digits + '"}').encode()


def against_receiver(bodies: int, size: int, max_stall: float) -> bool:
    with tempfile.TemporaryDirectory(prefix="pan-bench-") as tmp:
        server, port = receiver(Path(tmp))
        try:
            stalls: list[float] = []
            stop = threading.Event()

            def watch() -> None:
                while not stop.is_set():
                    start = time.perf_counter()
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/healthz", timeout=30
                    ) as answer:
                        answer.read()
                    stalls.append(time.perf_counter() - start)
                    time.sleep(0.01)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            time.sleep(0.5)
            baseline = len(stalls)
            # Each body just under the receiver's 1 MiB limit.
            shapes = [("1", 1), ("1 ", 1), ("\u0661", 2)]
            answers: list[tuple[str, int, float]] = []
            for index in range(bodies):
                unit, width = shapes[index % len(shapes)]
                room = (min(size, MIB) - len(big_body(index, ""))) // width
                body = big_body(index, (unit * room)[:room])
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/webhooks/generic",
                    data=body,
                    method="POST",
                    headers={
                        "Content-Type": "application/json",
                        "Recovery-Signature": sign(body, SECRET, int(time.time())),
                    },
                )
                start = time.perf_counter()
                try:
                    with urllib.request.urlopen(request, timeout=60) as answer:
                        status = answer.status
                except urllib.error.HTTPError as exc:
                    status = exc.code
                answers.append((f"{len(body)} bytes", status, time.perf_counter() - start))
            time.sleep(0.3)
            stop.set()
            watcher.join(5)
        finally:
            server.stop()
    during = stalls[baseline:]
    print(f"2. the receiver: {bodies} signed bodies of ~1 MiB of digits, /healthz every 10 ms")
    for what, status, seconds in answers:
        print(f"   POST {what}: {status} in {seconds * 1000:.0f} ms")
    worst = max(during) if during else float("nan")
    p99 = statistics.quantiles(during, n=100)[98] if len(during) >= 100 else worst
    print(
        f"   /healthz during the run: {len(during)} answers, median "
        f"{statistics.median(during) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"longest {worst * 1000:.1f} ms (target: under {max_stall * 1000:.0f} ms) "
        + ("PASS" if worst < max_stall else "FAIL")
    )
    return all(status in (200, 400) for _, status, _ in answers)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=MIB, help="characters per hostile text")
    parser.add_argument("--bodies", type=int, default=6, help="big bodies posted")
    parser.add_argument("--max-stall", type=float, default=1.0, help="seconds")
    parser.add_argument("--no-receiver", action="store_true", help="in-process figures only")
    args = parser.parse_args(argv)
    if args.size < 1 or args.bodies < 1 or args.max_stall <= 0:
        parser.error("--size, --bodies and --max-stall must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    in_process(args.size)
    if args.no_receiver:
        return 0
    try:
        ok = against_receiver(args.bodies, args.size, args.max_stall)
    except Exception as exc:
        print(f"run failed: {type(exc).__name__}: {exc}")
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

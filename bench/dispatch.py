"""Dispatch throughput: due contacts pushed through the Genesys client into the emulator.

Starts the emulator on loopback with a budget of R requests per minute per token, sends N
contacts in batches through one shared client (several threads), and prints the contacts per
second achieved against the ceiling R x batch / 60, with the 429s, duplicates and lost
contacts (the emulator's contact set compared with what was sent).

    .venv/bin/python bench/dispatch.py                      # R=1200, N=20000, batch 50
    .venv/bin/python bench/dispatch.py --no-client-limit    # headers + 429 handling only
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recovery.clock import SystemClock  # noqa: E402
from recovery.contact_center.client import AddContactsResult, GenesysClient  # noqa: E402
from recovery.contact_center.contacts import ContactRequest  # noqa: E402
from recovery.contact_center.emulator import EmulatorConfig, create_emulator_app  # noqa: E402
from recovery.contact_center.emulator.server import serve_in_thread  # noqa: E402
from recovery.contact_center.throttle import RequestRateLimiter  # noqa: E402

CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret-0123456789"
CONTACT_LIST = "recovery-contacts"


def due_contacts(count: int) -> list[ContactRequest]:
    zones = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")
    return [
        ContactRequest(
            case_key=f"stripe:in_bench_{i:07d}",
            attempt=1 + i % 3,
            phone_e164=f"+1{212 + i % 700:03d}555{i % 10_000:04d}",
            transaction_id=f"in_bench_{i:07d}",
            failure_reason="insufficient_funds",
            amount="49.00",
            currency="USD",
            next_retry_window="2026-03-04T09:00:00-05:00/2026-03-04T20:00:00-05:00",
            time_zone=zones[i % len(zones)],
        )
        for i in range(count)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests-per-minute", "-r", type=int, default=1200)
    parser.add_argument("--contacts", "-n", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--window", choices=("sliding", "fixed"), default="sliding")
    parser.add_argument(
        "--no-client-limit",
        action="store_true",
        help="no local rate limiter: rely on the rate-limit headers and 429 handling alone",
    )
    parser.add_argument("--burst", type=int, default=1, help="local limiter burst (requests)")
    args = parser.parse_args(argv)

    rpm, batch = args.requests_per_minute, args.batch
    ceiling = rpm * batch / 60
    config = EmulatorConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        contact_lists=[CONTACT_LIST],
        requests_per_minute=rpm,
        rate_window=args.window,
        max_contacts_per_request=max(1000, batch),
    )
    app = create_emulator_app(config, clock=SystemClock())
    state = app.state.emulator
    contacts = due_contacts(args.contacts)
    batches = [contacts[i : i + batch] for i in range(0, len(contacts), batch)]
    print(
        f"dispatch: {len(contacts)} contacts in {len(batches)} batches of <= {batch}, "
        f"budget {rpm} requests/min ({args.window} window), {args.threads} threads, "
        f"client limit {'off' if args.no_client_limit else 'on'}"
    )

    with serve_in_thread(app) as base_url:
        acquire = None if args.no_client_limit else RequestRateLimiter(rpm, burst=args.burst)
        client = GenesysClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=base_url,
            batch_size=batch,
            acquire=acquire,
        )
        results: list[AddContactsResult] = []
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            for result in pool.map(lambda b: client.add_contacts(CONTACT_LIST, b), batches):
                results.append(result)
        elapsed = time.perf_counter() - started
        client.close()
        with state.lock:
            stored = set(state.lists[CONTACT_LIST].contacts)
            counters = state.counters.as_dict()

    sent = {c.contact_id for c in contacts}
    created = [cid for r in results for cid in r.created]
    rejected = [rj for r in results for rj in r.rejected]
    lost = len(sent - stored)
    rate = len(created) / elapsed if elapsed > 0 else 0.0
    print(f"elapsed            {elapsed:8.2f} s")
    print(f"requests           {counters['requests']:8d}  (logins {client.logins})")
    print(f"contacts/s         {rate:8.1f}")
    print(f"ceiling            {ceiling:8.1f}  (= {rpm} x {batch} / 60)")
    print(f"ratio              {rate / ceiling:8.3f}")
    print(f"429s               {counters['rate_limited']:8d}")
    print(f"paced waits        {client.throttle.paced_requests:8d}")
    print(f"created            {counters['contacts_created']:8d}  (upserts {counters['upserts']})")
    print(f"duplicates         {counters['duplicates']:8d}")
    print(f"rejected           {len(rejected):8d}")
    print(f"lost               {lost:8d}")
    ok = counters["duplicates"] == 0 and lost == 0 and not rejected
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

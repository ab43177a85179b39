"""``make demo``: the receiver and the intake end to end, on the embedded default.

Starts the real receiver as its own process on loopback, posts a realistic burst of signed
Stripe webhooks (re-deliveries, out-of-order successes, one carrying a card number, one with
an invalid phone, one without amount), drains the inbox into cases and prints them.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from recovery import samples

SECRET = "whsec_demo_0123456789abcdef"
DEMO_DIR = Path("data/demo")

# (state, postal code, phone) for customers across zones, split area codes included.
CUSTOMERS = [
    ("CA", "94103", "+14155552671"),
    ("FL", "33101", "+13055550143"),
    ("FL", "32501", "+18505550188"),
    ("ID", "83701", "+12085550111"),
    ("AK", "99501", "+19075550123"),
    ("TX", "75201", "+12145550177"),
    ("NY", "10001", "+12125550199"),
    ("MA", "02108", "+16175550155"),
    ("RI", "02903", "+14015550166"),
    ("AZ", "85001", "+16025550144"),
]
DECLINES = [
    ("card_declined", "insufficient_funds"),
    ("expired_card", None),
    ("card_declined", "lost_card"),
    ("card_declined", "do_not_honor"),
    ("processing_error", None),
    ("authentication_required", None),
]


def build_events(n: int, rng: random.Random, start: datetime) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for i in range(n):
        state, postal, phone = CUSTOMERS[i % len(CUSTOMERS)]
        at = start + timedelta(seconds=i * 7)
        code, decline = DECLINES[rng.randrange(len(DECLINES))]
        invoice = f"in_demo_{i:04d}"
        events.append(
            samples.invoice_failed(
                event_id=f"evt_demo_inv_{i:04d}",
                invoice_id=invoice,
                created=at,
                phone=phone,
                state=state,
                postal_code=postal,
                amount_due=rng.choice([999, 1999, 4900, 12900]),
                customer=f"cus_demo_{i:04d}",
            )
        )
        events.append(
            samples.intent_failed(
                event_id=f"evt_demo_pi_{i:04d}",
                intent_id=f"pi_demo_{i:04d}",
                invoice_id=invoice,
                created=at + timedelta(seconds=1),
                code=code,
                decline_code=decline,
                phone=phone,
                state=state,
                postal_code=postal,
            )
        )
    # A card number pasted into a customer's name: redacted before anything is stored.
    events[0]["data"]["object"]["customer_name"] = "Jenny 4242 4242 4242 4242"
    # An invalid phone, and an event without amount or currency.
    events[2]["data"]["object"]["customer_phone"] = "+1 555 0100"
    for key in ("amount_due", "amount_remaining", "currency"):
        events[4]["data"]["object"].pop(key, None)
    # Paid before its failure arrives (out of order), and paid after.
    events.insert(
        0,
        samples.invoice_failed(
            event_id="evt_demo_paid_early",
            invoice_id="in_demo_0005",
            created=start + timedelta(hours=1),
            event_type="invoice.paid",
        ),
    )
    events.append(
        samples.invoice_failed(
            event_id="evt_demo_paid_late",
            invoice_id="in_demo_0006",
            created=start + timedelta(hours=2),
            event_type="invoice.paid",
        )
    )
    # Re-deliveries: 20% of the events again.
    events.extend(rng.sample(events, k=len(events) // 5))
    return events


def run_cli(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "recovery.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"recovery {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def main() -> None:
    console = Console()
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    env = {
        **os.environ,
        "RECOVERY_DATA_DIR": str(DEMO_DIR),
        "RECOVERY_STRIPE_WEBHOOK_SECRETS": SECRET,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "COLUMNS": str(max(console.width, 160)),
    }
    env.pop("RECOVERY_DATABASE_URL", None)
    console.rule("payment recovery: intake demo")
    console.print(run_cli("db", "upgrade", env=env).strip())
    port = 8765
    receiver = subprocess.Popen(
        [sys.executable, "-m", "recovery.cli", "api", "--port", str(port), "--no-trigger"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(DEMO_DIR / "receiver.log", "w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or receiver.poll() is not None:
                    raise SystemExit(
                        "the receiver did not start; see data/demo/receiver.log"
                    ) from None
                time.sleep(0.2)
        console.print(f"receiver up at {base}")
        events = build_events(60, random.Random(7), datetime.now(UTC) - timedelta(hours=3))
        statuses: dict[str, int] = {}
        with httpx.Client(base_url=base, timeout=10) as client:

            def deliver(event: dict[str, Any]) -> str:
                body, header = samples.signed(event, SECRET)
                response = client.post(
                    "/webhooks/stripe",
                    content=body,
                    headers={"Stripe-Signature": header, "Content-Type": "application/json"},
                )
                return f"{response.status_code} {response.json().get('status', '')}"

            with ThreadPoolExecutor(max_workers=16) as pool:
                for status in pool.map(deliver, events):
                    statuses[status] = statuses.get(status, 0) + 1
        console.print(f"posted {len(events)} signed webhooks: {statuses}")
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    console.print(run_cli("ingest", env=env).strip())
    console.print(run_cli("cases", "list", "--limit", "15", env=env))
    console.print(run_cli("cases", "show", "in_demo_0000", env=env))
    console.print(
        f"store: {DEMO_DIR / 'recovery.db'}  (RECOVERY_DATA_DIR={DEMO_DIR} recovery cases list)"
    )


if __name__ == "__main__":
    main()

"""Latency from a webhook delivery to the start of the ingest run the automation starts.

Starts the embedded stack (``recovery serve``'s parts: a local Prefect server on SQLite, the
served flows, the emulator, the receiver) in a temporary folder, then, one at a time, posts a
signed Stripe ``invoice.payment_failed`` to the receiver and follows what happens:

    delivery answered ── receiver's event (recovery.webhook.accepted) ── automation (ingest
    trigger) ── flow run created ── runner picks it up ── flow run starts

and prints, over the deliveries, the median, 90th percentile and maximum of: delivery -> run
created (the event and the automation), delivery -> run started (what a user waits for), and
the run's start -> the case in the store. Each delivery waits for the previous ingest run to
finish, so every one is measured from a quiet system.

    .venv/bin/python bench/trigger_latency.py                 # 10 deliveries, poll 1 s
    .venv/bin/python bench/trigger_latency.py --n 20 --poll 10 --keep

``--poll``: the runner's ``PREFECT_RUNNER_POLL_FREQUENCY`` (seconds between its looks for due
runs; Prefect's default is 10). Timings share the machine with whatever else runs: compare
figures from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import free_port, percentile  # noqa: E402
from recovery.gateways import samples  # noqa: E402
from recovery.gateways.signing import sign  # noqa: E402

SECRET = "whsec_dev-local-only"


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _automation_runs(prefect: httpx.Client, deployment_id: str) -> list[dict[str, Any]]:
    body = {"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
    runs = prefect.post("/flow_runs/filter", json=body).json()
    return [r for r in runs if (r.get("created_by") or {}).get("type") == "AUTOMATION"]


def _wait(what: str, timeout: float, check: Any) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10, help="deliveries (one at a time)")
    parser.add_argument("--poll", type=int, default=1, help="runner poll frequency (s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    from recovery.embedded.stack import run_embedded
    from recovery.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="trigger-latency-"))
    api_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RECOVERY_", "PREFECT_"))},
        "RECOVERY_DATA_DIR": str(folder),
        "RECOVERY_API_HOST": "127.0.0.1",
        "RECOVERY_API_PORT": str(api_port),
        "RECOVERY_STRIPE_WEBHOOK_SECRETS": SECRET,
        "PREFECT_RUNNER_POLL_FREQUENCY": str(args.poll),
        "PREFECT_UI_ENABLED": "false",
    }
    for name in ("RECOVERY_DATA_DIR", "RECOVERY_API_HOST", "RECOVERY_API_PORT"):
        os.environ[name] = env[name]
    settings = Settings()
    supervisor = run_embedded(
        settings,
        env=env,
        prefect_port=free_port(),
        with_emulator=True,
        emulator_port=free_port(),
        scenario="all-no-answer",
        dial_interval=3600,
        say=lambda line: print(f"  {line}", file=sys.stderr),
        block=False,
    )
    created: list[float] = []
    started: list[float] = []
    to_case: list[float] = []
    try:
        prefect_url = supervisor.env["PREFECT_API_URL"]
        receiver = f"http://127.0.0.1:{api_port}"
        with httpx.Client(base_url=prefect_url, timeout=10) as prefect, httpx.Client() as http:
            deployment = _wait(
                "the ingest deployment",
                120,
                lambda: prefect.get("/deployments/name/ingest/ingest").json().get("id"),
            )
            _wait(
                "the ingest automation",
                60,
                lambda: [
                    a
                    for a in prefect.post("/automations/filter", json={}).json()
                    if a["name"] == "webhook accepted"
                ],
            )
            seen = len(_automation_runs(prefect, deployment))
            for i in range(args.n + 1):  # the first warms the runner up: not counted
                event = samples.invoice_failed(
                    event_id=f"evt_lat_{i}", invoice_id=f"in_lat_{i}", created=datetime.now(UTC)
                )
                body = json.dumps(event).encode()
                headers = {
                    "Content-Type": "application/json",
                    "Stripe-Signature": sign(body, SECRET, int(time.time())),
                }
                sent = datetime.now(UTC)
                answer = http.post(f"{receiver}/webhooks/stripe", content=body, headers=headers)
                answer.raise_for_status()
                run = _wait(
                    "the ingest run to finish",
                    120,
                    lambda seen=seen: next(
                        (
                            r
                            for r in _automation_runs(prefect, deployment)[seen:]
                            if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED")
                        ),
                        None,
                    ),
                )
                seen += 1
                made, began = _parse(run["created"]), _parse(run["start_time"])
                assert made is not None and began is not None
                if i == 0:
                    continue
                created.append((made - sent).total_seconds())
                started.append((began - sent).total_seconds())
                end = _parse(run.get("end_time"))
                if end is not None:
                    to_case.append((end - began).total_seconds())
                print(
                    f"delivery {i}: run created {created[-1]:.2f} s, started {started[-1]:.2f} s",
                    file=sys.stderr,
                )
    finally:
        supervisor.stop()
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)

    def line(name: str, values: list[float]) -> str:
        return (
            f"{name:<34} median {statistics.median(values):6.2f} s   "
            f"p90 {percentile(values, 90):6.2f} s   max {max(values):6.2f} s"
        )

    print(f"deliveries: {len(started)} (one at a time), runner poll {args.poll:g} s")
    print(line("delivery -> ingest run created", created))
    print(line("delivery -> ingest run started", started))
    if to_case:
        print(line("ingest run start -> end (case open)", to_case))


if __name__ == "__main__":
    main()

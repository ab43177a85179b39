"""Builders for test data: signed gateway events, settings, a receiver over real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from recovery.gateways import samples
from recovery.settings import Settings

STRIPE_SECRET = "whsec_test_primary_0123456789"
STRIPE_SECRET_OLD = "whsec_test_rotated_out_987654"
GENERIC_SECRET = "generic_test_secret_0123456789"
T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)

invoice_failed = samples.invoice_failed
intent_failed = samples.intent_failed
charge_event = samples.charge_event
envelope = samples.envelope


def settings_for(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "stripe_webhook_secrets": [STRIPE_SECRET, STRIPE_SECRET_OLD],
        "generic_signing_secrets": [GENERIC_SECRET],
    }
    values.update(overrides)
    return Settings(**values)


def stripe_headers(
    body: bytes, secret: str = STRIPE_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    from recovery.gateways.signing import sign

    return {
        "Stripe-Signature": sign(
            body, secret, timestamp if timestamp is not None else int(time.time())
        ),
        "Content-Type": "application/json",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve an app with uvicorn in a thread on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)

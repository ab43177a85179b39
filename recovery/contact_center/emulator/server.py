"""Running the emulator as a process (``recovery emulator``) or in a thread (tests, benches)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from recovery.clock import Clock
from recovery.contact_center.emulator.app import create_emulator_app
from recovery.contact_center.emulator.state import EmulatorConfig
from recovery.settings import Settings

log = logging.getLogger(__name__)


def serve(config: EmulatorConfig, *, clock: Clock, host: str, port: int) -> None:
    """Serve the emulator with uvicorn until interrupted."""
    app = create_emulator_app(config, clock=clock)
    log.info(
        "Genesys emulator on http://%s:%s (contact lists %s, DNC lists %s, %s req/min, "
        "scenario %s, dialer every %s s)",
        host,
        port,
        ", ".join(config.contact_lists),
        ", ".join(config.dnc_lists),
        config.requests_per_minute or "unlimited",
        config.scenario,
        config.dial_interval_seconds or "-",
    )
    uvicorn.run(app, host=host, port=port, log_level="info")


@contextmanager
def serve_in_thread(app: Any, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a daemon thread; yields its base URL.

    Port 0 takes a free port; the socket is bound here, so there is no race for it.
    """
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets then, and
    # without it every keep-alive request waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def config_from_settings(
    settings: Settings,
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
    contact_lists: list[str] | None = None,
    dnc_lists: list[str] | None = None,
    requests_per_minute: int | None = None,
    callback_url: str | None = None,
    callback_secret: str | None = None,
    scenario: str = "mixed",
    seed: int = 0,
    dial_interval_seconds: float | None = 5.0,
) -> EmulatorConfig:
    """The emulator the settings' client would talk to: same credentials, lists and rate, and
    pushes to the receiver's disposition callback."""
    return EmulatorConfig(
        client_id=client_id or settings.genesys_client_id,
        client_secret=client_secret or settings.genesys_client_secret.get_secret_value(),
        contact_lists=contact_lists or [settings.genesys_contact_list_id],
        dnc_lists=dnc_lists or [settings.genesys_dnc_list_id],
        requests_per_minute=requests_per_minute or settings.genesys_requests_per_minute,
        callback_url=callback_url
        or f"http://{settings.api_host}:{settings.api_port}/callbacks/genesys/disposition",
        callback_secret=callback_secret or settings.callback_secret.get_secret_value(),
        scenario=scenario,
        seed=seed,
        phone_column=settings.genesys_phone_column,
        dial_interval_seconds=dial_interval_seconds or None,
    )

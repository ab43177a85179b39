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
from recovery.contact_center.emulator.state import DataActionTarget, EmulatorConfig
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
    # A notification socket's handler notices a closed peer only at its next heartbeat: the
    # connections still open are closed after a few seconds rather than waited for.
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=3)


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
    receiver_url: str | None = None,
    scenario: str = "mixed",
    seed: int = 0,
    dial_interval_seconds: float | None = 5.0,
    drop_event_fraction: float | None = None,
) -> EmulatorConfig:
    """The emulator the settings' client would talk to: same credentials, lists and rate; an
    organisation as Genesys creates it (no attempt limits: ``recovery genesys setup`` adds
    them), whose data action ``RECOVERY_GENESYS_DATA_ACTION_ID`` posts to the receiver's
    outcome callback with the first of ``RECOVERY_GENESYS_ACTION_SECRETS`` as Basic auth."""
    actions = []
    if settings.genesys_data_action_id:
        base = receiver_url or f"http://{settings.api_host}:{settings.api_port}"
        actions.append(
            DataActionTarget(
                id=settings.genesys_data_action_id,
                url=f"{base.rstrip('/')}/callbacks/genesys/outcome",
                basic_username=settings.genesys_action_user,
                basic_password=settings.genesys_action_secrets[0].get_secret_value(),
            )
        )
    return EmulatorConfig(
        client_id=client_id or settings.genesys_client_id,
        client_secret=client_secret or settings.genesys_client_secret.get_secret_value(),
        contact_lists=contact_lists or [settings.genesys_contact_list_id],
        dnc_lists=dnc_lists or [settings.genesys_dnc_list_id],
        campaign_id=settings.genesys_campaign_id,
        phone_column=settings.genesys_phone_column,
        time_zone_column=settings.genesys_time_zone_column,
        requests_per_minute=requests_per_minute or settings.genesys_requests_per_minute,
        scenario=scenario,
        seed=seed,
        dial_interval_seconds=dial_interval_seconds or None,
        drop_event_fraction=drop_event_fraction,
        data_actions=actions,
    )

"""Running the emulator as a process (the ``recovery emulator`` command)."""

from __future__ import annotations

import logging

import uvicorn

from recovery.clock import Clock
from recovery.contact_center.emulator.app import create_emulator_app
from recovery.contact_center.emulator.state import EmulatorConfig

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

"""The Prefect server the end-to-end tests run against: the embedded default's own launcher
(``python -m recovery.embedded.prefect_server start``) with the embedded stack's settings, so
the tests exercise the server as ``recovery serve`` and the demo run it, begun from the
template ``make install`` migrates (no migrations per test process)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recovery.embedded.supervisor import Part, Supervisor
from tests.factories import free_port

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def embedded_prefect_server(home: Path, *, timeout: float = 90.0) -> Iterator[str]:
    """Start the server on ``home``'s default SQLite database; yield its API URL; stop it."""
    from recovery.embedded.stack import EMBEDDED_PREFECT_SERVER

    home.mkdir(parents=True, exist_ok=True)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PREFECT_API_", "PREFECT_SERVER_DATABASE"))
    }
    env.update(EMBEDDED_PREFECT_SERVER)
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PYTHONPATH": str(REPO),
        }
    )
    port = free_port()
    argv = [sys.executable, "-m", "recovery.embedded.prefect_server", "start"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}/api"
    # Started, checked and stopped as the embedded stack's own supervisor does it.
    supervisor = Supervisor(env=env, log_dir=home, say=lambda _line: None)
    try:
        supervisor.start(
            Part("prefect-server", argv, health_url=f"{url}/health", serves_others=True),
            timeout=timeout,
        )
        yield url
    finally:
        supervisor.stop()

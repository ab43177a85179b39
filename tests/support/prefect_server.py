"""The Prefect server the end-to-end tests run against: the embedded default's own launcher
(``python -m recovery.embedded.prefect_server start``) with the embedded stack's settings, so
the tests exercise the server as ``recovery serve`` and the demo run it, begun from the
template ``make install`` migrates (no migrations per test process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    port = _free_port()
    log_path = home / "prefect-server.log"
    argv = [sys.executable, "-m", "recovery.embedded.prefect_server", "start"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the Prefect server exited ({process.returncode}): "
                    + log_path.read_text(errors="replace")[-3000:]
                )
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Prefect server did not answer within {timeout:.0f} s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

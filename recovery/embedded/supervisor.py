"""Starting the embedded default in one command: each part is its own process, started in
order, checked for health, and stopped in reverse order on Ctrl-C (or when one of them dies)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Part:
    name: str
    args: Sequence[str]
    health_url: str | None = None
    log_file: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    # Other parts talk to it (Prefect's server, the contact centre): it stops after them.
    serves_others: bool = False


@dataclass
class Supervisor:
    env: dict[str, str]
    log_dir: Path
    say: Callable[[str], None] = print  # noqa: T202 - the operator's console
    parts: list[Part] = field(default_factory=list)

    def start(self, part: Part, *, timeout: float = 90.0, wait: bool = True) -> None:
        """Start ``part``; with ``wait``, wait until it answers its health check (without,
        the caller waits with ``wait_healthy``, so that parts that do not need each other
        start side by side)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        part.log_file = self.log_dir / f"{part.name}.log"
        log = open(part.log_file, "ab")  # noqa: SIM115 - owned by the child process
        part.process = subprocess.Popen(
            list(part.args),
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.parts.append(part)
        if wait:
            self.wait_healthy(part, timeout)

    def wait_healthy(self, part: Part, timeout: float = 90.0) -> None:
        """Wait until a started part answers its health check (at once when it has none)."""
        assert part.process is not None
        if part.health_url:
            self._wait_healthy(part, timeout)
        self.say(f"  {part.name}: running (pid {part.process.pid}, log {part.log_file})")

    def _wait_healthy(self, part: Part, timeout: float) -> None:
        assert part.process is not None and part.health_url is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if part.process.poll() is not None:
                raise RuntimeError(
                    f"{part.name} exited with {part.process.returncode}; see {part.log_file}"
                )
            try:
                if httpx.get(part.health_url, timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(
            f"{part.name} did not become healthy in {timeout:.0f} s; see {part.log_file}"
        )

    def run(self, args: Sequence[str], *, check: bool = True) -> str:
        """Run a one-off command with the same environment; its output (with ``check``, a
        failure raises)."""
        result = subprocess.run(
            list(args), env=self.env, capture_output=True, text=True, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()[-2000:]}")
        return result.stdout

    def wait(self) -> None:
        """Block until Ctrl-C or until any part exits."""
        while True:
            for part in self.parts:
                if part.process is not None and part.process.poll() is not None:
                    raise RuntimeError(
                        f"{part.name} exited with {part.process.returncode}; see {part.log_file}"
                    )
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop the parts, the last started first: each part is sent SIGTERM together with
        the parts started after it that serve no other part, so that the listener, the
        receiver and the flows stop side by side, before the contact centre and Prefect they
        talk to (none is left retrying a part already gone); SIGKILL after 15 s."""
        remaining = list(self.parts)
        while remaining:
            tier = [remaining.pop()]
            while remaining and not remaining[-1].serves_others and not tier[-1].serves_others:
                tier.append(remaining.pop())
            for part in tier:
                if part.process is not None and part.process.poll() is None:
                    try:
                        os.killpg(part.process.pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            for part in tier:
                process = part.process
                if process is None:
                    continue
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)
                self.say(f"  {part.name}: stopped")
        self.parts.clear()


def python() -> str:
    return sys.executable

"""Shared pieces of the benchmarks: server processes on loopback and a cheap HTTP load generator.

The load generator speaks HTTP/1.1 over raw asyncio streams with keep-alive connections. It is
deliberately not httpx: on a 2-core machine the generator shares the CPU with the server under
test, and a full-featured client would spend several times more CPU per request than it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    """A loopback port nobody listens on right now (a small race is acceptable for a bench)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A server under test, run as a separate process with its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the process has used so far (Linux only)."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return None
        # The command name may contain spaces; the fields after its closing paren are fixed.
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(
    name: str,
    argv: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
) -> Server:
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv), env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT
        )
    return Server(name=name, process=process, port=port, log_path=log_path)


def wait_healthy(server: Server, *, timeout: float = 30.0, path: str = "/healthz") -> None:
    """Poll ``path`` until it answers 200; raise RuntimeError with the server's log otherwise."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{server.port}{path}"
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with code {server.process.returncode}:\n" + server.log_tail()
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
                last = f"status {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"status {exc.code}"
        except OSError as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    raise RuntimeError(
        f"{server.name} not healthy after {timeout:.0f} s ({last}):\n" + server.log_tail()
    )


def post_request(path: str, port: int, body: bytes, headers: Mapping[str, str]) -> bytes:
    """The exact bytes of one keep-alive HTTP/1.1 POST."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def get_request(path: str, port: int) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode("latin-1")


@dataclass
class LoadResult:
    """What one load run measured. ``statuses`` counts HTTP status codes; transport failures
    are counted under ``"error"``."""

    elapsed: float
    latencies: list[float]
    statuses: Counter[int | str]
    bodies: list[bytes] = field(repr=False)
    errors: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.count / self.elapsed if self.elapsed > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000.0

    @property
    def non_2xx(self) -> int:
        return sum(
            n
            for code, n in self.statuses.items()
            if not (isinstance(code, int) and 200 <= code < 300)
        )


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


class _Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].split(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length: int | None = None
        chunked = close = False
        for line in header_lines:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            body = b"".join(part[:-2] for part in parts)
        else:
            body = await self.reader.readexactly(length or 0)
        if close:
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def _run_load(
    port: int, requests: Sequence[bytes], concurrency: int, timeout: float
) -> LoadResult:
    n = len(requests)
    latencies = [0.0] * n
    statuses: list[int | str] = ["error"] * n
    bodies = [b""] * n
    errors: list[str] = []
    next_index = iter(range(n))

    async def worker() -> None:
        connection = _Connection(port)
        try:
            for i in next_index:
                started = time.perf_counter()
                try:
                    status, body = await asyncio.wait_for(connection.exchange(requests[i]), timeout)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    errors.append(f"request {i}: {type(exc).__name__}: {exc}")
                    await connection.close()
                    latencies[i] = time.perf_counter() - started
                    continue
                latencies[i] = time.perf_counter() - started
                statuses[i] = status
                bodies[i] = body
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return LoadResult(
        elapsed=elapsed,
        latencies=latencies,
        statuses=Counter(statuses),
        bodies=bodies,
        errors=errors,
    )


def run_load(
    port: int, requests: Sequence[bytes], *, concurrency: int, timeout: float = 60.0
) -> LoadResult:
    """Send every request once, ``concurrency`` keep-alive connections pulling from one queue
    (a closed loop: each connection sends its next request when the previous answer is in)."""
    return asyncio.run(_run_load(port, requests, concurrency, timeout))

"""The whole system for the hardening proofs: ``tests/support/running_system.py``'s receiver,
emulator, store and shared file clock, plus what those proofs need to look at:

* every request body the emulator received and every response body the receiver sent,
  recorded by a thin ASGI wrapper around each app (the emulator keeps no request log);
* the emulator's in-memory state itself;
* a signer for the generic source, the flows run by name, and an app that forwards to
  another address (Prefect's API coming back where it was down).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from recovery.api.receiver import build_receiver
from recovery.clock import FileClock
from recovery.contact_center.emulator.app import create_emulator_app
from recovery.contact_center.emulator.server import serve_in_thread
from recovery.contact_center.emulator.state import EmulatorConfig, EmulatorState
from recovery.gateways.signing import sign
from recovery.runtime import Runtime
from recovery.settings import Settings
from tests.factories import GENERIC_SECRET, STRIPE_SECRET
from tests.support.running_system import (
    ACTION_SECRET,
    DATA_ACTION,
    System,
    action_target,
    set_up_organisation,
)

ADMIN_TOKEN = "admin_hardening_token_0123456789"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Exchange:
    method: str
    path: str
    query: str
    status: int = 0
    request: bytes = b""
    response: bytes = b""


@dataclass
class Recorder:
    """Every HTTP exchange an app handled, bodies included (thread-safe)."""

    exchanges: list[Exchange] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def recorded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            exchange = Exchange(
                method=scope["method"],
                path=scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
            )
            request: list[bytes] = []
            response: list[bytes] = []

            async def receiving() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    request.append(message.get("body", b""))
                return message

            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    exchange.status = int(message["status"])
                elif message["type"] == "http.response.body":
                    response.append(message.get("body", b""))
                await send(message)

            try:
                await app(scope, receiving, sending)
            finally:
                exchange.request = b"".join(request)
                exchange.response = b"".join(response)
                with self.lock:
                    self.exchanges.append(exchange)

        return recorded

    def snapshot(self) -> list[Exchange]:
        with self.lock:
            return list(self.exchanges)


@dataclass
class HardSystem:
    system: System
    emulator_state: EmulatorState
    emulator_log: Recorder
    receiver_log: Recorder
    store_url: str
    data_dir: Path

    @property
    def runtime(self) -> Runtime:
        return self.system.runtime

    @property
    def http(self) -> httpx.Client:
        return self.system.http

    def post_stripe_body(self, body: bytes) -> httpx.Response:
        from tests.factories import stripe_headers

        return self.http.post(
            f"{self.system.receiver}/webhooks/stripe", content=body, headers=stripe_headers(body)
        )

    def post_generic_body(self, body: bytes) -> httpx.Response:
        headers = {
            "Content-Type": "application/json",
            "Recovery-Signature": sign(body, GENERIC_SECRET, int(time.time())),
        }
        return self.http.post(
            f"{self.system.receiver}/webhooks/generic", content=body, headers=headers
        )

    def admin(self, path: str) -> httpx.Response:
        return self.http.get(
            f"{self.system.receiver}/admin{path}",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )


def run_flows(*names: str) -> dict[str, Any]:
    """Run flows in this process on the Prefect harness, in order; their return values."""
    from flows.advance import advance
    from flows.close_on_payment import close_on_payment
    from flows.dispositions import dispositions
    from flows.ingest import ingest
    from flows.reconcile import reconcile
    from flows.report import report
    from flows.review import review_queue
    from flows.uncallable import uncallable

    table: dict[str, Callable[[], Any]] = {
        "ingest": ingest,
        "advance": advance,
        "dispositions": dispositions,
        "reconcile": reconcile,
        "close_on_payment": close_on_payment,
        "review_queue": review_queue,
        "uncallable": uncallable,
        "report": lambda: report(days=60),
    }
    return {name: table[name]() for name in names}


@contextmanager
def hard_system(
    *,
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    start: datetime,
    scenario: str = "mixed",
    extra_env: dict[str, str] | None = None,
) -> Iterator[HardSystem]:
    """The receiver and the emulator over HTTP on loopback, flows on the harness, one clock."""
    from flows.setup import setup

    clock_file = tmp_path / "clock"
    clock = FileClock(clock_file)
    clock.set(start)
    data_dir = tmp_path / "data"
    env = {
        "RECOVERY_DATABASE_URL": store_url,
        "RECOVERY_DATA_DIR": str(data_dir),
        "RECOVERY_CLOCK": f"file:{clock_file}",
        "RECOVERY_STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
        "RECOVERY_GENERIC_SIGNING_SECRETS": GENERIC_SECRET,
        "RECOVERY_GENESYS_ACTION_SECRETS": ACTION_SECRET,
        "RECOVERY_GENESYS_DATA_ACTION_ID": DATA_ACTION,
        "RECOVERY_ADMIN_TOKEN": ADMIN_TOKEN,
        "RECOVERY_GENESYS_RATE_LIMIT_NAME": f"genesys-test-{uuid.uuid4().hex[:8]}",
        "RECOVERY_GENESYS_REQUESTS_PER_MINUTE": "6000",
        "RECOVERY_RATE_LIMIT_OCCUPY": "5",
        **(extra_env or {}),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    emulator_log, receiver_log = Recorder(), Recorder()
    with ExitStack() as stack:
        # The emulator first: the receiver names wrap-up codes through it.
        emulator_app = create_emulator_app(
            EmulatorConfig(
                client_id=Settings().genesys_client_id,
                client_secret=Settings().genesys_client_secret.get_secret_value(),
                contact_lists=[Settings().genesys_contact_list_id],
                dnc_lists=[Settings().genesys_dnc_list_id],
                requests_per_minute=None,
                scenario=scenario,
                dial_interval_seconds=None,
            ),
            clock=clock,
        )
        state: EmulatorState = emulator_app.state.emulator
        emulator = stack.enter_context(serve_in_thread(emulator_log.wrap(emulator_app)))
        monkeypatch.setenv("RECOVERY_GENESYS_BASE_URL", emulator)
        runtime = Runtime(Settings())
        stack.callback(runtime.close)
        app, stop = build_receiver(runtime, trigger=False)
        stack.callback(stop)
        receiver = stack.enter_context(serve_in_thread(receiver_log.wrap(app)))
        state.data_actions[DATA_ACTION] = action_target(receiver)
        setup(Settings(), work_pool=False)
        set_up_organisation(runtime)
        http = stack.enter_context(httpx.Client(timeout=600))
        yield HardSystem(
            system=System(
                clock=clock, receiver=receiver, emulator=emulator, runtime=runtime, http=http
            ),
            emulator_state=state,
            emulator_log=emulator_log,
            receiver_log=receiver_log,
            store_url=store_url,
            data_dir=data_dir,
        )


def forwarding_app(target: str) -> ASGIApp:
    """An ASGI app that forwards every request to ``target`` (scheme, host and port): Prefect's
    API "coming back" at an address that was down."""
    base = target.rstrip("/")
    dropped = {b"host", b"content-length", b"transfer-encoding", b"connection"}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = scope.get("query_string", b"").decode("latin-1")
        url = base + scope["path"] + (f"?{query}" if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in dropped]
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.request(scope["method"], url, content=body, headers=headers)
        content = answer.content
        out = [
            (k.encode(), v.encode())
            for k, v in answer.headers.items()
            if k.encode().lower() not in dropped | {b"content-encoding"}
        ]
        out.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": answer.status_code, "headers": out})
        await send({"type": "http.response.body", "body": content})

    return app

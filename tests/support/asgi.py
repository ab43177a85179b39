"""ASGI helpers for tests: a recorder of every HTTP exchange an app handles (bodies
included), and an app that forwards every request to another address."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import httpx

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

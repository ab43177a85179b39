"""The receiver's app: wiring only. The routes live in ``recovery.api.routes`` (webhooks,
callbacks, admin, health); what every route does with a request, in ``recovery.api.requests``.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from recovery.api.deliveries import DeliveryEvents
from recovery.api.requests import Rejected, rejected_response
from recovery.api.routes.health import build_health_router
from recovery.api.routes.webhooks import build_webhooks_router
from recovery.api.writer import InboxWriter
from recovery.clock import Clock
from recovery.gateways import paypal as paypal_gateway
from recovery.settings import Settings


def _engine_of(sessions: sessionmaker[Session]) -> Engine:
    bind = sessions.kw.get("bind")
    if not isinstance(bind, Engine):
        raise TypeError("the receiver needs a sessionmaker bound to an engine")
    return bind


def create_app(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    clock: Clock,
    deliveries: DeliveryEvents | None = None,
    wall_time: Callable[[], float] = time.time,
    extra_routers: list[Any] | None = None,
    writer: InboxWriter | None = None,
    paypal: paypal_gateway.Verifier | None = None,
) -> FastAPI:
    """The receiver. ``wall_time`` checks signature freshness (a transport concern, always real
    time); ``clock`` stamps what is recorded (it may be virtual). The inbox writer starts on
    the first delivery and stops with the app's lifespan (``app.state.inbox_writer``), which
    also closes the PayPal verifier's connections (``app.state.paypal_verifier``)."""
    inbox = writer or InboxWriter(_engine_of(sessions))
    verifier = paypal or paypal_gateway.verifier_from_settings(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # What is built by now (modules, settings, the engine) lives as long as the process.
        # Left to the collector, every full collection walks all of it (tens of milliseconds,
        # every request in flight stalled); frozen, a collection walks only what is new.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await asyncio.to_thread(inbox.stop)
            verifier.close()

    app = FastAPI(
        title="Payment recovery receiver",
        description="Gateway webhooks in, recovery cases out.",
        version="1",
        lifespan=lifespan,
    )
    app.state.inbox_writer = inbox
    app.state.paypal_verifier = verifier

    @app.exception_handler(Rejected)
    async def _rejected(_request: Request, exc: Rejected) -> JSONResponse:
        return rejected_response(exc)

    app.include_router(
        build_webhooks_router(
            settings=settings,
            clock=clock,
            inbox=inbox,
            deliveries=deliveries,
            wall_time=wall_time,
            paypal=verifier,
        )
    )
    app.include_router(build_health_router(sessions=sessions))
    for router in extra_routers or []:
        app.include_router(router)
    return app

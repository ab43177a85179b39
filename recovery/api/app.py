"""The receiver: verify the raw bytes, parse, strip card data, record, acknowledge.

Nothing slow happens here: a committed inbox row is the promise that the failure will become
a case; the ingest flow does the rest. A 2xx is only sent once the row is committed, so a
gateway that gets anything else retries, and nothing is lost.

The per-request work (a few tens of microseconds of CPU) runs in the event loop; rows are
written by the inbox writer, which commits every waiting delivery in one transaction
(``recovery.api.writer``) and answers each request after that commit.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from recovery.api.trigger import IngestTrigger
from recovery.api.writer import InboxWriter, WriteFailed
from recovery.clock import Clock
from recovery.domain.models import PaymentFailure, PaymentSucceeded
from recovery.domain.pan import FloatWatch, Marker, plain_marker, redact_parsed_json
from recovery.gateways import braintree as braintree_gateway
from recovery.gateways import generic as generic_gateway
from recovery.gateways import paypal as paypal_gateway
from recovery.gateways import stripe as stripe_gateway
from recovery.gateways.common import Ignored, PayloadError
from recovery.gateways.signing import SignatureError
from recovery.gateways.signing import verify as verify_hmac
from recovery.settings import Settings
from recovery.store.inbox import Delivery, storable_problem

log = logging.getLogger("recovery.api")

# Bodies up to this size are checked in the event loop (tens of microseconds for a typical
# event, less than a thread hand-off costs); a larger one goes to a worker thread so that it
# does not hold up every other request while it is parsed and scanned.
INLINE_BODY_BYTES = 64 * 1024

Normalised = PaymentFailure | PaymentSucceeded | Ignored


class Rejected(Exception):
    """A request answered with an error status; nothing was stored."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing anything over ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise Rejected(413, f"body larger than {limit} bytes")
        except ValueError:
            raise Rejected(400, "invalid Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def require_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise Rejected(415, "Content-Type must be application/json")


def decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(400, "body is not valid UTF-8") from None


def parse_json(text: str, parse_float: Callable[[str], Any] | None = None) -> Any:
    try:
        return json.loads(text, parse_float=parse_float)
    except RecursionError:
        raise Rejected(400, "JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise Rejected(400, f"malformed JSON at line {exc.lineno} column {exc.colno}") from None
    except ValueError:
        # Python refuses to convert an integer of more than 4300 digits.
        raise Rejected(400, "JSON number too long") from None


def parse_redacted(text: str, marker: Marker = plain_marker) -> tuple[Any, int]:
    """The parsed JSON with card numbers replaced, and how many were replaced."""
    floats = FloatWatch()
    value = parse_json(text, floats)
    try:
        return redact_parsed_json(text, value, marker, risky_floats=floats.risky)
    except RecursionError:
        # The card-number walk needs more stack than the parser: what cannot be scanned is
        # refused, never stored unscanned.
        raise Rejected(400, "JSON nested too deeply") from None


def check_storable(result: Normalised) -> None:
    """Refuse an event whose identity the store cannot hold as it is: a 4xx, not a store
    failure answered with 5xx."""
    key = result.business_key if isinstance(result, PaymentFailure | PaymentSucceeded) else None
    problem = storable_problem(result.event_id, result.event_type, key)
    if problem is not None:
        raise Rejected(400, problem)


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
    trigger: IngestTrigger | None = None,
    wall_time: Callable[[], float] = time.time,
    extra_routers: list[Any] | None = None,
    writer: InboxWriter | None = None,
) -> FastAPI:
    """The receiver. ``wall_time`` checks signature freshness (a transport concern, always real
    time); ``clock`` stamps what is recorded (it may be virtual). The inbox writer starts on
    the first delivery and stops with the app's lifespan (``app.state.inbox_writer``)."""
    inbox = writer or InboxWriter(_engine_of(sessions))

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

    app = FastAPI(
        title="Payment recovery receiver",
        description="Gateway webhooks in, recovery cases out.",
        version="1",
        lifespan=lifespan,
    )
    app.state.inbox_writer = inbox
    stripe_secrets = [s.get_secret_value() for s in settings.stripe_webhook_secrets]
    generic_secrets = [s.get_secret_value() for s in settings.generic_signing_secrets]
    marker = settings.redaction_marker()

    async def store(gateway: str, result: Normalised, pan_found: int) -> JSONResponse:
        check_storable(result)
        kind = (
            "failure"
            if isinstance(result, PaymentFailure)
            else "success"
            if isinstance(result, PaymentSucceeded)
            else "ignored"
        )
        delivery = Delivery(
            gateway=gateway,
            event_id=result.event_id,
            event_type=result.event_type,
            kind=kind,
            payload=result.model_dump(mode="json"),
            pan_redacted=pan_found > 0,
            received_at=clock.now(),
        )
        try:
            new = await inbox.record(delivery)
        except WriteFailed as exc:
            if not isinstance(exc.cause, SQLAlchemyError):
                raise
            log.error(
                "store unavailable while recording %s event %s: %s",
                gateway,
                result.event_id,
                type(exc.cause).__name__,
            )
            raise Rejected(503, "store unavailable; retry later") from None
        if pan_found:
            log.warning(
                "card number redacted from %s event %s (%d found); the event is flagged",
                gateway,
                result.event_id,
                pan_found,
            )
        if new and kind != "ignored" and trigger is not None:
            trigger.poke()
        status = "duplicate" if not new else ("ignored" if kind == "ignored" else "recorded")
        return JSONResponse({"status": status, "event_id": result.event_id})

    def normalised(
        text: str, normalise: Callable[[Any], Normalised], label: str, *, object_only: bool
    ) -> tuple[Normalised, int]:
        """Parse, redact card numbers, normalise: a 400 with ``label`` for what is not an
        event of the source."""
        event, found = parse_redacted(text, marker)
        if object_only and not isinstance(event, dict):
            raise Rejected(400, "body must be a JSON object")
        try:
            return normalise(event), found
        except PayloadError as exc:
            raise Rejected(400, f"{label}: {exc}") from None

    def check_stripe(body: bytes, signature: str | None) -> tuple[Normalised, int]:
        text = decode(body)
        try:
            stripe_gateway.verify_signature(
                text, signature, stripe_secrets, settings.stripe_tolerance_seconds
            )
        except SignatureError as exc:
            raise Rejected(400, f"signature verification failed: {exc}") from None
        return normalised(text, stripe_gateway.normalise, "not a Stripe event", object_only=True)

    def check_generic(body: bytes, signature: str | None) -> tuple[Normalised, int]:
        try:
            verify_hmac(
                body,
                signature,
                generic_secrets,
                now=wall_time(),
                tolerance_seconds=settings.stripe_tolerance_seconds,
            )
        except SignatureError as exc:
            raise Rejected(400, f"signature verification failed: {exc}") from None
        return normalised(
            decode(body), generic_gateway.normalise, "invalid event", object_only=False
        )

    @app.exception_handler(Rejected)
    async def _rejected(_request: Request, exc: Rejected) -> JSONResponse:
        headers = {"Retry-After": "5"} if exc.status == 503 else {}
        return error(exc.status, exc.message, **headers)

    acknowledged: dict[int | str, dict[str, Any]] = {
        200: {
            "description": "Recorded (or a duplicate, or an event type that is not acted on)",
            "content": {
                "application/json": {"example": {"status": "recorded", "event_id": "evt_123"}}
            },
        }
    }

    @app.post(
        "/webhooks/stripe",
        summary="Stripe webhook (Stripe-Signature verified)",
        response_class=JSONResponse,
        responses=acknowledged,
    )
    async def stripe_webhook(request: Request) -> JSONResponse:
        require_json(request)
        body = await read_body(request, settings.max_body_bytes)
        signature = request.headers.get("stripe-signature")
        if len(body) > INLINE_BODY_BYTES:
            result, found = await run_in_threadpool(check_stripe, body, signature)
        else:
            result, found = check_stripe(body, signature)
        return await store("stripe", result, found)

    @app.post(
        "/webhooks/generic",
        summary="Signed JSON from any source (Recovery-Signature)",
        response_class=JSONResponse,
        responses=acknowledged,
    )
    async def generic_webhook(request: Request) -> JSONResponse:
        require_json(request)
        body = await read_body(request, settings.max_body_bytes)
        signature = request.headers.get("recovery-signature")
        if len(body) > INLINE_BODY_BYTES:
            result, found = await run_in_threadpool(check_generic, body, signature)
        else:
            result, found = check_generic(body, signature)
        return await store("generic", result, found)

    braintree_client = braintree_gateway.gateway_from_settings(settings)
    paypal_certificates = paypal_gateway.CertificateCache()

    def require_form(request: Request) -> None:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/x-www-form-urlencoded":
            raise Rejected(415, "Content-Type must be application/x-www-form-urlencoded")

    def check_braintree(body: bytes) -> tuple[Normalised, int]:
        try:
            form = parse_qs(decode(body), max_num_fields=20, strict_parsing=False)
        except ValueError:
            raise Rejected(400, "malformed form body") from None
        signature = form.get("bt_signature", [""])[0]
        payload = form.get("bt_payload", [""])[0]
        if not signature or not payload:
            raise Rejected(400, "form fields bt_signature and bt_payload are required")
        try:
            return braintree_gateway.read_notification(
                signature, payload, gateway=braintree_client, marker=marker
            )
        except SignatureError as exc:
            raise Rejected(400, f"signature verification failed: {exc}") from None
        except PayloadError as exc:
            raise Rejected(400, f"not a Braintree notification: {exc}") from None

    def check_paypal(body: bytes, headers: Mapping[str, str]) -> tuple[Normalised, int]:
        try:
            paypal_gateway.verify(
                headers,
                body,
                webhook_id=settings.paypal_webhook_id,
                now=datetime.fromtimestamp(wall_time(), UTC),
                fetch=paypal_gateway.fetch_certificate,
                cache=paypal_certificates,
            )
        except SignatureError as exc:
            raise Rejected(400, f"signature verification failed: {exc}") from None
        except paypal_gateway.CertificateUnavailable as exc:
            log.warning("PayPal signing certificate unavailable: %s", exc)
            raise Rejected(503, "PayPal certificate unavailable; retry later") from None
        return normalised(
            decode(body), paypal_gateway.normalise, "not a PayPal event", object_only=True
        )

    @app.post(
        "/webhooks/braintree",
        summary="Braintree webhook (bt_signature verified with the braintree package)",
        response_class=JSONResponse,
        responses=acknowledged,
    )
    async def braintree_webhook(request: Request) -> JSONResponse:
        require_form(request)
        body = await read_body(request, settings.max_body_bytes)
        # The XML parse takes a few hundred microseconds: off the event loop.
        result, found = await run_in_threadpool(check_braintree, body)
        return await store("braintree", result, found)

    @app.post(
        "/webhooks/paypal",
        summary="PayPal webhook (PAYPAL-TRANSMISSION-SIG verified offline)",
        response_class=JSONResponse,
        responses=acknowledged,
    )
    async def paypal_webhook(request: Request) -> JSONResponse:
        require_json(request)
        body = await read_body(request, settings.max_body_bytes)
        # A certificate cache miss fetches over the network: never on the event loop.
        result, found = await run_in_threadpool(check_paypal, body, dict(request.headers))
        return await store("paypal", result, found)

    def check_store() -> bool:
        try:
            with sessions() as session:
                session.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    @app.get("/healthz", summary="Liveness and store reachability")
    async def healthz() -> JSONResponse:
        store_ok = await run_in_threadpool(check_store)
        body = {"status": "ok" if store_ok else "degraded", "store": "ok" if store_ok else "down"}
        return JSONResponse(body, status_code=200 if store_ok else 503)

    for router in extra_routers or []:
        app.include_router(router)
    return app

"""The gateways' webhooks: verify the raw bytes, parse, strip card data, record, acknowledge.

Nothing slow happens here: a committed inbox row is the promise that the failure will become
a case; the ingest flow does the rest. A 2xx is only sent once the row is committed, so a
gateway that gets anything else retries, and nothing is lost.

The per-request work (a few tens of microseconds of CPU) runs in the event loop; rows are
written by the inbox writer, which commits every waiting delivery in one transaction
(``recovery.api.writer``) and answers each request after that commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from recovery.api.deliveries import DeliveryEvents
from recovery.api.requests import (
    INLINE_BODY_BYTES,
    Normalised,
    Rejected,
    check_storable,
    decode,
    normalise_text,
    read_body,
    require_form,
    require_json,
)
from recovery.api.writer import InboxWriter, WriteFailed
from recovery.clock import Clock
from recovery.domain.models import CardUpdated, PaymentFailure, PaymentSucceeded
from recovery.gateways import braintree as braintree_gateway
from recovery.gateways import generic as generic_gateway
from recovery.gateways import paypal as paypal_gateway
from recovery.gateways import stripe as stripe_gateway
from recovery.gateways.common import PayloadError
from recovery.gateways.signing import SignatureError
from recovery.gateways.signing import verify as verify_hmac
from recovery.settings import Settings
from recovery.store.inbox import Delivery, TransmissionReplayed

log = logging.getLogger("recovery.api")

ACKNOWLEDGED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Recorded (or a duplicate, or an event type that is not acted on)",
        "content": {"application/json": {"example": {"status": "recorded", "event_id": "evt_123"}}},
    }
}


async def off_the_loop_when_large(
    check: Callable[[bytes, str | None], tuple[Normalised, int]],
    body: bytes,
    signature: str | None,
) -> tuple[Normalised, int]:
    """Verify and parse a body: inline when small (a thread hop costs more than the work), in
    the thread pool when large, so a big body never holds the event loop."""
    if len(body) > INLINE_BODY_BYTES:
        return await run_in_threadpool(check, body, signature)
    return check(body, signature)


def build_webhooks_router(
    *,
    settings: Settings,
    clock: Clock,
    inbox: InboxWriter,
    deliveries: DeliveryEvents | None,
    wall_time: Callable[[], float],
    paypal: paypal_gateway.Verifier | None = None,
) -> APIRouter:
    """``POST /webhooks/{stripe,generic,braintree,paypal}``. ``wall_time`` checks signature
    freshness (a transport concern, always real time); ``clock`` stamps what is recorded.
    ``paypal``: the PayPal verifier (built from the settings when not given)."""
    router = APIRouter()
    stripe_secrets = [s.get_secret_value() for s in settings.stripe_webhook_secrets]
    generic_secrets = [s.get_secret_value() for s in settings.generic_signing_secrets]
    marker = settings.redaction_marker()
    braintree_client = braintree_gateway.gateway_from_settings(settings)
    verifier = paypal or paypal_gateway.verifier_from_settings(settings)

    async def store(
        gateway: str,
        result: Normalised,
        pan_found: int,
        transmission: paypal_gateway.Transmission | None = None,
    ) -> JSONResponse:
        check_storable(result)
        kind = (
            "failure"
            if isinstance(result, PaymentFailure)
            else "success"
            if isinstance(result, PaymentSucceeded)
            else "card_updated"
            if isinstance(result, CardUpdated)
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
            transmission=(
                None
                if transmission is None
                else (transmission.transmission_id, transmission.body_sha256)
            ),
        )
        try:
            new = await inbox.record(delivery)
        except WriteFailed as exc:
            if isinstance(exc.cause, TransmissionReplayed):
                raise Rejected(400, f"signature verification failed: {exc.cause}") from None
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
        if new and kind != "ignored" and deliveries is not None:
            deliveries.delivered(gateway)
        status = "duplicate" if not new else ("ignored" if kind == "ignored" else "recorded")
        return JSONResponse({"status": status, "event_id": result.event_id})

    def normalised(
        text: str, normalise: Callable[[Any], Normalised], label: str, *, object_only: bool
    ) -> tuple[Normalised, int]:
        return normalise_text(text, normalise, marker, label=label, object_only=object_only)

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
        # A middleware-shape body without a time is stamped with its receipt time.
        received_at = clock.now()
        return normalised(
            decode(body),
            lambda event: generic_gateway.normalise(event, received_at=received_at),
            "invalid event",
            object_only=False,
        )

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

    def check_paypal(
        body: bytes, headers: Mapping[str, str]
    ) -> tuple[Normalised, int, paypal_gateway.Transmission]:
        try:
            transmission = verifier.verify(
                headers, body, now=datetime.fromtimestamp(wall_time(), UTC)
            )
        except SignatureError as exc:
            raise Rejected(400, f"signature verification failed: {exc}") from None
        except paypal_gateway.CertificateUnavailable as exc:
            log.warning("PayPal signature could not be checked now: %s", exc)
            raise Rejected(503, "PayPal certificate unavailable; retry later") from None
        result, found = normalised(
            decode(body), paypal_gateway.normalise, "not a PayPal event", object_only=True
        )
        return result, found, transmission

    @router.post(
        "/webhooks/stripe",
        summary="Stripe webhook (Stripe-Signature verified)",
        response_class=JSONResponse,
        responses=ACKNOWLEDGED,
    )
    async def stripe_webhook(request: Request) -> JSONResponse:
        require_json(request)
        body = await read_body(request, settings.max_body_bytes)
        signature = request.headers.get("stripe-signature")
        result, found = await off_the_loop_when_large(check_stripe, body, signature)
        return await store("stripe", result, found)

    @router.post(
        "/webhooks/generic",
        summary="Signed JSON from any source (Recovery-Signature)",
        response_class=JSONResponse,
        responses=ACKNOWLEDGED,
    )
    async def generic_webhook(request: Request) -> JSONResponse:
        require_json(request)
        body = await read_body(request, settings.max_body_bytes)
        signature = request.headers.get("recovery-signature")
        result, found = await off_the_loop_when_large(check_generic, body, signature)
        return await store("generic", result, found)

    @router.post(
        "/webhooks/braintree",
        summary="Braintree webhook (bt_signature verified with the braintree package)",
        response_class=JSONResponse,
        responses=ACKNOWLEDGED,
    )
    async def braintree_webhook(request: Request) -> JSONResponse:
        require_form(request)
        body = await read_body(request, settings.max_body_bytes)
        # The XML parse takes a few hundred microseconds: off the event loop.
        result, found = await run_in_threadpool(check_braintree, body)
        return await store("braintree", result, found)

    @router.post(
        "/webhooks/paypal",
        summary="PayPal webhook (PAYPAL-TRANSMISSION-SIG verified offline)",
        response_class=JSONResponse,
        responses=ACKNOWLEDGED,
    )
    async def paypal_webhook(request: Request) -> JSONResponse:
        require_json(request)
        body = await read_body(request, settings.max_body_bytes)
        # A certificate cache miss fetches over the network: never on the event loop.
        result, found, transmission = await run_in_threadpool(
            check_paypal, body, dict(request.headers)
        )
        return await store("paypal", result, found, transmission)

    return router

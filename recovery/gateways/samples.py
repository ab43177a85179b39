"""Realistic Stripe events built from Stripe's own object shapes (``data/stripe/``), signed the
way Stripe signs them. Used by the demo, the benchmarks and the tests."""

from __future__ import annotations

import copy
import json
import time
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from recovery.gateways.signing import sign


@cache
def stripe_object(name: str) -> dict[str, Any]:
    """One of ``invoice``, ``payment_intent``, ``charge``, ``customer``, ``payment_method``."""
    text = resources.files("recovery.data").joinpath(f"stripe/{name}.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def envelope(
    event_id: str, event_type: str, obj: dict[str, Any], created: datetime
) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": int(created.timestamp()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": obj},
    }


def invoice_failed(
    *,
    event_id: str,
    invoice_id: str,
    created: datetime,
    customer: str = "cus_QXg1o8vcGmoR32",
    phone: str | None = "+14155552671",
    state: str | None = "CA",
    postal_code: str | None = "94103",
    amount_due: int | None = 2000,
    currency: str | None = "usd",
    name: str | None = "Jenny Rosen",
    attempt_count: int = 1,
    metadata: dict[str, str] | None = None,
    event_type: str = "invoice.payment_failed",
    next_payment_attempt: datetime | None = None,
    hosted_invoice_url: str | None = None,
) -> dict[str, Any]:
    inv = copy.deepcopy(stripe_object("invoice"))
    inv.update(
        id=invoice_id,
        customer=customer,
        customer_phone=phone,
        customer_name=name,
        attempt_count=attempt_count,
        attempted=True,
        status="open",
        amount_paid=0,
        metadata=metadata or {},
        # Stripe's next automatic retry (null: none planned) and the invoice's payment page.
        next_payment_attempt=int(next_payment_attempt.timestamp())
        if next_payment_attempt
        else None,
        hosted_invoice_url=hosted_invoice_url,
    )
    inv["customer_address"] = {
        "city": None,
        "country": "US",
        "line1": None,
        "line2": None,
        "postal_code": postal_code,
        "state": state,
    }
    for key in ("amount_due", "amount_remaining"):
        if amount_due is None:
            inv.pop(key, None)
        else:
            inv[key] = amount_due
    if currency is None:
        inv.pop("currency", None)
    else:
        inv["currency"] = currency
    if event_type in ("invoice.paid", "invoice.payment_succeeded"):
        inv.update(status="paid", amount_paid=amount_due or 0, amount_remaining=0)
    return envelope(event_id, event_type, inv, created)


def intent_failed(
    *,
    event_id: str,
    intent_id: str,
    created: datetime,
    invoice_id: str | None = None,
    code: str = "card_declined",
    decline_code: str | None = "insufficient_funds",
    advice_code: str | None = None,
    phone: str | None = "+14155552671",
    state: str | None = "CA",
    postal_code: str | None = "94103",
    amount: int = 2000,
    currency: str = "usd",
    customer: str | None = "cus_QXg1o8vcGmoR32",
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    pi = copy.deepcopy(stripe_object("payment_intent"))
    method = copy.deepcopy(stripe_object("payment_method"))
    method["billing_details"]["phone"] = phone
    method["billing_details"]["address"].update(state=state, postal_code=postal_code)
    pi.update(
        id=intent_id,
        amount=amount,
        currency=currency,
        customer=customer,
        status="requires_payment_method",
        metadata=metadata or {},
    )
    pi["client_secret"] = f"{intent_id}_secret_redacted"
    if invoice_id:
        pi["invoice"] = invoice_id
    pi["last_payment_error"] = {
        "type": "card_error",
        "code": code,
        "decline_code": decline_code,
        "advice_code": advice_code,
        "message": "Your card was declined.",
        "payment_method": method,
    }
    return envelope(event_id, "payment_intent.payment_failed", pi, created)


def charge_event(
    *,
    event_id: str,
    charge_id: str,
    created: datetime,
    succeeded: bool = False,
    invoice_id: str | None = None,
    intent_id: str | None = None,
    failure_code: str | None = "expired_card",
    phone: str | None = "+14155552671",
    state: str | None = "CA",
    postal_code: str | None = "94103",
    amount: int = 2000,
    currency: str = "usd",
    description: str | None = None,
) -> dict[str, Any]:
    ch = copy.deepcopy(stripe_object("charge"))
    ch.update(
        id=charge_id,
        amount=amount,
        currency=currency,
        payment_intent=intent_id,
        paid=succeeded,
        status="succeeded" if succeeded else "failed",
    )
    if description is not None:
        ch["description"] = description
    if invoice_id:
        ch["invoice"] = invoice_id
    ch["billing_details"]["phone"] = phone
    ch["billing_details"]["address"].update(country="US", state=state, postal_code=postal_code)
    if not succeeded:
        ch["failure_code"] = failure_code
        ch["failure_message"] = "Your card has expired."
        ch["outcome"].update(type="issuer_declined", reason=failure_code)
    return envelope(event_id, "charge.succeeded" if succeeded else "charge.failed", ch, created)


def card_updated(
    *, event_id: str, created: datetime, customer: str = "cus_QXg1o8vcGmoR32"
) -> dict[str, Any]:
    """``payment_method.automatically_updated``: the card network updated the card on file."""
    method = copy.deepcopy(stripe_object("payment_method"))
    method.update(customer=customer)
    method["card"].update(exp_year=method["card"]["exp_year"] + 3)
    return envelope(event_id, "payment_method.automatically_updated", method, created)


def signed(
    event: dict[str, Any], secret: str, *, timestamp: int | None = None
) -> tuple[bytes, str]:
    """The body Stripe would send and its ``Stripe-Signature`` header."""
    body = json.dumps(event, separators=(",", ":")).encode()
    return body, sign(body, secret, timestamp if timestamp is not None else int(time.time()))

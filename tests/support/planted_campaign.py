"""A demo-sized campaign with card numbers planted in every string field the gateways send.

Stripe events: each event type's string leaves are planted in rotation, a few leaves per event
and every format in turn, so across the campaign every leaf of every type carries a card number
several times. Leaves that carry an event's identity keep it (the card number is glued to the
original value, so the event stays distinct once redacted). Leaves a call depends on (phone,
address, currency, time zone) and the event type are planted in a wave of their own, one event
per leaf, because such an event may lose its phone or its kind to the guard.

The generic source: every field in rotation, its contact fields in that last wave too.
"""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from recovery.gateways import samples

# Area code, state, postal code: phones spread over the continental zones.
PLACES = [
    ("212", "NY", "10001"),
    ("305", "FL", "33101"),
    ("312", "IL", "60601"),
    ("214", "TX", "75201"),
    ("303", "CO", "80202"),
    ("602", "AZ", "85001"),
    ("415", "CA", "94103"),
    ("206", "WA", "98101"),
    ("617", "MA", "02108"),
    ("404", "GA", "30303"),
    ("503", "OR", "97201"),
    ("702", "NV", "89101"),
    ("615", "TN", "37201"),
    ("612", "MN", "55401"),
    ("801", "UT", "84101"),
]
# Weighted towards declines that are called at once, so the first round has calls to make.
DECLINES = [
    "expired_card",
    "lost_card",
    "incorrect_number",
    "expired_card",
    "authentication_required",
    "generic_decline",
    "expired_card",
    "insufficient_funds",
    "processing_error",
    "do_not_honor",
]
FORMATS = ("plain", "spaced", "dashed", "sentence", "glued", "escaped")
# Brand prefix and length: 13 to 19 digits.
SHAPES = [
    ("4", 13),
    ("4", 16),
    ("4", 19),
    ("51", 16),
    ("55", 16),
    ("2221", 16),
    ("34", 15),
    ("37", 15),
    ("6011", 16),
    ("65", 16),
    ("3528", 16),
    ("62", 17),
    ("62", 18),
    ("62", 19),
    ("36", 14),
    ("30", 14),
    ("6759", 18),
    ("5018", 13),
]
FAILURE_TYPES = ("invoice.payment_failed", "payment_intent.payment_failed", "charge.failed")
SUCCESS_TYPES = (
    "invoice.paid",
    "invoice.payment_succeeded",
    "payment_intent.succeeded",
    "charge.succeeded",
)
PER_EVENT = 6  # leaves planted per ordinary event

Path_ = tuple[str | int, ...]


def luhn_complete(partial: str) -> str:
    """``partial`` followed by the check digit that makes it Luhn-valid."""
    for check in "0123456789":
        candidate = partial + check
        total = 0
        for position, char in enumerate(reversed(candidate)):
            value = int(char)
            if position % 2:
                value = value * 2 - 9 if value > 4 else value * 2
            total += value
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable: one check digit always fits")


def make_pans(seed: int) -> list[str]:
    """One random-looking card number per shape: no long runs of one digit, which a
    digits-only projection of other data could produce by chance."""
    rng = random.Random(seed)
    return [
        luhn_complete(
            prefix + "".join(rng.choice("0123456789") for _ in range(n - len(prefix) - 1))
        )
        for prefix, n in SHAPES
    ]


def grouped(pan: str, separator: str) -> str:
    return separator.join(pan[i : i + 4] for i in range(0, len(pan), 4))


def render(pan: str, style: str) -> str:
    """The card number as planted (``escaped`` is plain here: the body escapes it)."""
    if style == "spaced":
        return grouped(pan, " ")
    if style == "dashed":
        return grouped(pan, "-")
    if style == "sentence":
        return f"paid with card {grouped(pan, ' ')} exp 12/29"
    if style == "glued":
        return f"7{pan}3"
    return pan


def escape_digits(body: str, pan: str) -> str:
    """Every occurrence of ``pan`` in a JSON text written with ``\\u`` escapes (the same JSON
    value once parsed)."""
    return body.replace(pan, "".join(f"\\u{ord(c):04x}" for c in pan))


def string_leaves(node: Any, path: Path_ = ()) -> Iterator[Path_]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from string_leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from string_leaves(value, (*path, index))
    elif isinstance(node, str):
        yield path


def dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path)


def get(node: Any, path: Path_) -> Any:
    for key in path:
        node = node[key]
    return node


def put(node: Any, path: Path_, value: Any) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


# Leaves that carry an event's identity: planted glued to the original value.
IDENTITY = frozenset({("id",), ("data", "object", "id")})
KIND = frozenset({("type",)})


def contact_leaf(path: Path_) -> bool:
    """A leaf a call depends on: phone, address, currency, time zone."""
    last = path[-1]
    return last in ("customer_phone", "phone", "currency", "timezone") or (
        len(path) >= 2 and path[-2] in ("address", "customer_address")
    )


def special(path: Path_) -> bool:
    return path in KIND or contact_leaf(path)


@dataclass
class Outgoing:
    gateway: str  # stripe | generic | braintree | paypal
    body: bytes
    kind: str  # failure | success | ignored | invalid (a 400) | any
    key: str | None  # the business key the receiver will see, when it is known
    wave: str  # first | payments | contact


@dataclass
class Campaign:
    start: datetime
    pans: list[str]
    outgoing: list[Outgoing] = field(default_factory=list)
    leaves: dict[str, set[str]] = field(default_factory=dict)
    planted_leaves: dict[str, set[str]] = field(default_factory=dict)
    formats: Counter[str] = field(default_factory=Counter)
    fields_planted: int = 0
    turn: int = 0

    def wave(self, name: str) -> list[Outgoing]:
        return [o for o in self.outgoing if o.wave == name]

    def count(self, **match: str) -> int:
        return sum(all(getattr(o, k) == v for k, v in match.items()) for o in self.outgoing)

    def uncovered(self) -> dict[str, set[str]]:
        """String leaves of an event type that no event planted (none, by construction)."""
        return {
            kind: missing
            for kind, leaves in self.leaves.items()
            if (missing := leaves - self.planted_leaves.get(kind, set()))
        }

    def value(self) -> tuple[str, str, str]:
        """The next card number, its format, and the text to plant."""
        pan = self.pans[self.turn % len(self.pans)]
        style = FORMATS[(self.turn // len(self.pans) + self.turn) % len(FORMATS)]
        self.turn += 1
        self.formats[style] += 1
        self.fields_planted += 1
        return pan, style, render(pan, style)

    def plant(self, kind: str, event: dict[str, Any], paths: list[Path_]) -> list[str]:
        """A card number in each of ``paths``; returns those to escape in the body."""
        escaped = []
        for path in paths:
            pan, style, text = self.value()
            if path in IDENTITY:
                text = f"{get(event, path)}_{text}"
            put(event, path, text)
            if style == "escaped":
                escaped.append(pan)
            self.planted_leaves.setdefault(kind, set()).add(dotted(path))
        return escaped

    def add(self, gateway: str, event: dict[str, Any], escaped: list[str], **rest: Any) -> None:
        text = json.dumps(event)
        for pan in escaped:
            text = escape_digits(text, pan)
        self.outgoing.append(Outgoing(gateway, text.encode(), **rest))


def stripe_failure(kind: str, i: int, start: datetime, key: str) -> dict[str, Any]:
    area, state, postal = PLACES[i % len(PLACES)]
    phone = f"+1{area}555{100 + i % 100:04d}"
    decline = DECLINES[i % len(DECLINES)]
    created = start - timedelta(minutes=5 + i % 50)
    metadata = {"plan": "pro", "note": "renewal"}
    if kind == "invoice.payment_failed":
        event = samples.invoice_failed(
            event_id=f"evt_inv_{i}",
            invoice_id=key,
            created=created,
            customer=f"cus_{i:05d}",
            phone=phone,
            state=state,
            postal_code=postal,
            name=f"Jenny Rosen {i}",
            metadata=metadata,
        )
        # The invoice names its decline through the expanded payment intent.
        event["data"]["object"]["payment_intent"] = {
            "id": f"pi_for_{key}",
            "last_payment_error": {"code": "card_declined", "decline_code": decline},
        }
        return event
    if kind == "payment_intent.payment_failed":
        return samples.intent_failed(
            event_id=f"evt_pi_{i}",
            intent_id=key,
            created=created,
            code="expired_card" if decline == "expired_card" else "card_declined",
            decline_code=decline,
            phone=phone,
            state=state,
            postal_code=postal,
            customer=f"cus_{i:05d}",
            metadata=metadata,
        )
    event = samples.charge_event(
        event_id=f"evt_ch_{i}",
        charge_id=key,
        created=created,
        failure_code=decline,
        phone=phone,
        state=state,
        postal_code=postal,
        description="Subscription renewal",
    )
    event["data"]["object"]["metadata"] = metadata
    event["data"]["object"]["billing_details"]["name"] = f"Sam Lee {i}"
    return event


def stripe_success(kind: str, i: int, key: str, at: datetime) -> dict[str, Any]:
    if kind.startswith("invoice."):
        event = samples.invoice_failed(
            event_id=f"evt_ok_{i}", invoice_id=key, created=at, event_type=kind
        )
    elif kind == "payment_intent.succeeded":
        event = samples.intent_failed(event_id=f"evt_ok_{i}", intent_id=key, created=at)
        event["type"] = kind
        event["data"]["object"]["status"] = "succeeded"
        event["data"]["object"]["last_payment_error"] = None
    else:
        event = samples.charge_event(
            event_id=f"evt_ok_{i}", charge_id=key, created=at, succeeded=True, description="Renewal"
        )
    event["data"]["object"]["metadata"] = {"note": "paid"}
    return event


def _success_kind(failure_kind: str, n: int) -> str:
    if failure_kind == "invoice.payment_failed":
        return SUCCESS_TYPES[n % 2]
    if failure_kind == "payment_intent.payment_failed":
        return "payment_intent.succeeded"
    return "charge.succeeded"


GENERIC_FIELDS = (
    "event_id",
    "business_key",
    "customer_ref",
    "customer_name",
    "failure_code",
    "decline_code",
    "advice_code",
    "failure_message",
    "amount",
    "occurred_at",
)
GENERIC_CONTACT_FIELDS = ("phone", "country", "state", "postal_code", "time_zone", "currency")


def generic_failure(i: int, start: datetime) -> dict[str, Any]:
    area, state, postal = PLACES[(i * 7) % len(PLACES)]
    return {
        "type": "payment.failed",
        "event_id": f"gen-evt-{i}",
        "business_key": f"order-{i}",
        "occurred_at": (start - timedelta(minutes=3 + i)).isoformat(),
        "phone": f"+1{area}555{2000 + i % 100:04d}",
        "country": "US",
        "state": state,
        "postal_code": postal,
        "time_zone": None,
        "customer_ref": f"acct-{i}",
        "customer_name": "Alex Doe",
        "failure_code": "card_declined",
        "decline_code": DECLINES[(i + 3) % len(DECLINES)],
        "advice_code": "try_again_later",
        "failure_message": "Declined by the issuer",
        "amount": "19.99",
        "currency": "USD",
        "attempt_count": 1,
    }


def build(
    start: datetime, *, stripe_failures: int, generic_failures: int, seed: int = 7
) -> Campaign:
    """The campaign's events: ``stripe_failures`` over the three failure types, a payment
    for every fifth of them, ``generic_failures`` from the generic source, then the wave of
    contact and type leaves."""
    campaign = Campaign(start=start, pans=make_pans(seed))
    turns: Counter[str] = Counter()

    def leaves_of(kind: str, event: dict[str, Any]) -> list[Path_]:
        found = list(string_leaves(event))
        campaign.leaves.setdefault(kind, set()).update(dotted(p) for p in found)
        return found

    def rotate(kind: str, candidates: list[Path_]) -> list[Path_]:
        first = (turns[kind] * PER_EVENT) % len(candidates)
        turns[kind] += 1
        count = min(PER_EVENT, len(candidates))
        return [candidates[(first + k) % len(candidates)] for k in range(count)]

    paid: list[tuple[str, str]] = []
    for i in range(stripe_failures):
        kind = FAILURE_TYPES[i % len(FAILURE_TYPES)]
        key = f"{kind.split('.')[0][:2]}_camp{i:04d}"
        event = stripe_failure(kind, i, start, key)
        chosen = rotate(kind, [p for p in leaves_of(kind, event) if not special(p)])
        escaped = campaign.plant(kind, event, chosen)
        known = ("data", "object", "id") not in chosen
        campaign.add(
            "stripe", event, escaped, kind="failure", key=key if known else None, wave="first"
        )
        if known and i % 5 == 0:
            paid.append((kind, key))

    for n, (failure_kind, key) in enumerate(paid):
        kind = _success_kind(failure_kind, n)
        event = stripe_success(kind, n, key, start + timedelta(hours=1))
        candidates = [
            p for p in leaves_of(kind, event) if not special(p) and p != ("data", "object", "id")
        ]
        escaped = campaign.plant(kind, event, rotate(kind, candidates))
        campaign.add("stripe", event, escaped, kind="success", key=key, wave="payments")

    for i in range(generic_failures):
        event = generic_failure(i, start)
        names = dict.fromkeys(
            (GENERIC_FIELDS[i % len(GENERIC_FIELDS)], GENERIC_FIELDS[(i + 3) % len(GENERIC_FIELDS)])
        )
        escaped = []
        kind = "failure"
        for name in names:
            pan, style, text = campaign.value()
            if name in ("event_id", "business_key"):
                text = f"{event[name]}_{text}"
            if name in ("amount", "occurred_at"):
                kind = "invalid"  # a redacted amount or time is no longer one: refused
            event[name] = text
            if style == "escaped":
                escaped.append(pan)
            campaign.planted_leaves.setdefault("generic", set()).add(name)
        campaign.add("generic", event, escaped, kind=kind, key=None, wave="first")
    success = {
        "type": "payment.succeeded",
        "event_id": "gen-ok-1",
        "business_key": "order-1",
        "occurred_at": (start + timedelta(hours=1)).isoformat(),
        "amount": "19.99",
        "currency": "USD",
        "note": "",
    }
    pan, style, success["note"] = campaign.value()
    campaign.add(
        "generic",
        success,
        [pan] if style == "escaped" else [],
        kind="success",
        key="order-1",
        wave="payments",
    )

    # The last wave: one event per contact or type leaf, and per leaf not planted yet.
    for kind in (*FAILURE_TYPES, *SUCCESS_TYPES):
        probe = (
            stripe_failure(kind, 0, start, "probe")
            if kind in FAILURE_TYPES
            else stripe_success(kind, 0, "probe", start)
        )
        all_leaves = list(string_leaves(probe))
        if kind in FAILURE_TYPES:
            all_leaves.append(("data", "object", "metadata", "timezone"))
        campaign.leaves.setdefault(kind, set()).update(dotted(p) for p in all_leaves)
        done = campaign.planted_leaves.get(kind, set())
        for path in all_leaves:
            if not special(path) and dotted(path) in done:
                continue
            i = 10_000 + len(campaign.outgoing)
            if kind in FAILURE_TYPES:
                event = stripe_failure(kind, i, start, f"wave_{i}")
            else:
                event = stripe_success(kind, i, f"wave_{i}", start)
            if path[-1] == "timezone":
                event["data"]["object"]["metadata"]["timezone"] = "America/Chicago"
            escaped = campaign.plant(kind, event, [path])
            expected = (
                "ignored" if path in KIND else "failure" if kind in FAILURE_TYPES else "success"
            )
            campaign.add("stripe", event, escaped, kind=expected, key=None, wave="contact")
    for j, name in enumerate(GENERIC_CONTACT_FIELDS):
        event = generic_failure(900 + j, start)
        pan, style, event[name] = campaign.value()
        campaign.planted_leaves.setdefault("generic", set()).add(name)
        campaign.add(
            "generic",
            event,
            [pan] if style == "escaped" else [],
            kind="any",
            key=None,
            wave="contact",
        )
    other = {"type": "refund.created", "event_id": "gen-other-1", "memo": ""}
    pan, style, other["memo"] = campaign.value()
    campaign.add(
        "generic",
        other,
        [pan] if style == "escaped" else [],
        kind="ignored",
        key=None,
        wave="contact",
    )
    campaign.leaves["generic"] = set(GENERIC_FIELDS) | set(GENERIC_CONTACT_FIELDS)
    return campaign


# -- Braintree and PayPal ----------------------------------------------------------------------

BRAINTREE_FAILURES = ("subscription_charged_unsuccessfully", "subscription_went_past_due")
BRAINTREE_SUCCESS = "subscription_charged_successfully"
BRAINTREE_CONTACT = ("phone", "region", "postal-code", "country-code-alpha2", "currency-iso-code")
# Fewer leaves per notification than for the JSON gateways: a third of its leaves are typed
# (amounts, dates, times, counts), and a card number there makes the notification malformed.
BRAINTREE_PER_EVENT = 2


def _xml_leaves(root: ET.Element, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for index, child in enumerate(root):
        here = (*path, f"{index}:{child.tag}")
        if len(child):
            yield from _xml_leaves(child, here)
        elif child.text and child.text.strip():
            yield here


def _xml_node(root: ET.Element, path: tuple[str, ...]) -> ET.Element:
    node = root
    for step in path:
        node = node[int(step.split(":", 1)[0])]
    return node


def braintree_wave(campaign: Campaign, start: datetime, count: int) -> None:
    """Braintree notifications (failures, and a success for every fourth subscription), every
    text leaf planted in rotation; contact leaves in the contact wave. Signed the way Braintree
    signs them, with the keys ``tests/gateways/test_braintree_intake.py`` uses."""
    from tests.gateways.test_braintree_intake import (
        notification_xml,
        signed,
        transaction_xml,
    )

    def build_one(i: int, kind: str) -> ET.Element:
        status = "settled" if kind == BRAINTREE_SUCCESS else "processor_declined"
        txn = transaction_xml(
            f"txn_camp_{i}",
            status=status,
            created=(start - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            response_code=None if kind == BRAINTREE_SUCCESS else "2001",
            response_text=None if kind == BRAINTREE_SUCCESS else "Insufficient Funds",
            response_type=None if kind == BRAINTREE_SUCCESS else "soft_declined",
            phone=f"(305) 555-{100 + i % 100:04d}",
        )
        xml = notification_xml(
            kind,
            [txn],
            sub_id=f"sub_camp_{i}",
            timestamp=(start - timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        return ET.fromstring(xml)

    def add(root: ET.Element, kind: str, paths: list[tuple[str, ...]], wave: str) -> None:
        references = []
        for path in paths:
            pan, style, text = campaign.value()
            node = _xml_node(root, path)
            node.text = f"{node.text}_{text}" if path[-1].endswith(":id") else text
            if style == "escaped":
                references.append(pan)
            name = ".".join(step.split(":", 1)[1] for step in path)
            campaign.planted_leaves.setdefault(f"braintree {kind}", set()).add(name)
        xml = ET.tostring(root, encoding="unicode")
        for pan in references:  # XML's own escape: character references, decoded when parsed
            xml = xml.replace(pan, "".join(f"&#{ord(c)};" for c in pan))
        signature, payload = signed(xml)
        body = urlencode({"bt_signature": signature, "bt_payload": payload}).encode()
        campaign.outgoing.append(Outgoing("braintree", body, "any", None, wave))

    def name(path: tuple[str, ...]) -> str:
        return ".".join(step.split(":", 1)[1] for step in path)

    turns: Counter[str] = Counter()
    for i in range(count):
        kind = BRAINTREE_SUCCESS if i % 4 == 3 else BRAINTREE_FAILURES[i % 2]
        root = build_one(i, kind)
        leaves = list(_xml_leaves(root))
        campaign.leaves.setdefault(f"braintree {kind}", set()).update(map(name, leaves))
        ordinary = [p for p in leaves if p[-1].split(":", 1)[1] not in BRAINTREE_CONTACT]
        first = (turns[kind] * BRAINTREE_PER_EVENT) % len(ordinary)
        turns[kind] += 1
        chosen = [ordinary[(first + k) % len(ordinary)] for k in range(BRAINTREE_PER_EVENT)]
        add(root, kind, chosen, "first")
    for kind in (*BRAINTREE_FAILURES, BRAINTREE_SUCCESS):
        done = campaign.planted_leaves.get(f"braintree {kind}", set())
        for path in list(_xml_leaves(build_one(0, kind))):
            if path[-1].split(":", 1)[1] in BRAINTREE_CONTACT or name(path) not in done:
                add(build_one(20_000 + len(campaign.outgoing), kind), kind, [path], "contact")


def paypal_wave(campaign: Campaign, start: datetime, count: int) -> None:
    """PayPal failures, and a completed sale for every fourth subscription, every string leaf
    planted in rotation; contact leaves in the contact wave. Signed when sent (the transmission
    time is checked against real time)."""
    from tests.gateways.test_paypal_intake import failed_event, sale_event

    stamp = "%Y-%m-%dT%H:%M:%SZ"

    def build_one(i: int, success: bool) -> dict[str, Any]:
        if success:
            event = sale_event(subscription_id=f"I-CAMPSUB{i}X")
            event["id"] = f"WH-SALE{i}X-CAMP"
            return event
        return failed_event(
            event_id=f"WH-FAIL{i}X-CAMP",
            subscription_id=f"I-CAMPSUB{i}X",
            failed_time=(start - timedelta(minutes=12)).strftime(stamp),
            phone={
                "phone_type": "MOBILE",
                "phone_number": {"national_number": f"305555{2100 + i % 100:04d}"},
            },
        )

    def contact(path: Path_) -> bool:
        return any(
            step in ("phone", "address", "currency_code", "currency") for step in map(str, path)
        )

    identity = {("id",), ("resource", "id"), ("resource", "billing_agreement_id")}

    def add(event: dict[str, Any], kind: str, paths: list[Path_], wave: str) -> None:
        escaped = []
        for path in paths:
            pan, style, text = campaign.value()
            put(event, path, f"{get(event, path)}_{text}" if path in identity else text)
            if style == "escaped":
                escaped.append(pan)
            campaign.planted_leaves.setdefault(f"paypal {kind}", set()).add(dotted(path))
        campaign.add("paypal", event, escaped, kind="any", key=None, wave=wave)

    turns: Counter[str] = Counter()
    for i in range(count):
        success = i % 4 == 3
        event = build_one(i, success)
        kind = event["event_type"]
        leaves = list(string_leaves(event))
        campaign.leaves.setdefault(f"paypal {kind}", set()).update(dotted(p) for p in leaves)
        ordinary = [p for p in leaves if not contact(p)]
        first = (turns[kind] * PER_EVENT) % len(ordinary)
        turns[kind] += 1
        add(event, kind, [ordinary[(first + k) % len(ordinary)] for k in range(PER_EVENT)], "first")
    for success in (False, True):
        probe = build_one(0, success)
        done = campaign.planted_leaves.get(f"paypal {probe['event_type']}", set())
        for path in string_leaves(probe):
            if contact(path) or dotted(path) not in done:
                event = build_one(30_000 + len(campaign.outgoing), success)
                add(event, event["event_type"], [path], "contact")

"""Hostile input against every route of the receiver: whatever arrives, the answer is a clear
4xx or a 2xx, never a 5xx or a crash, and a card number sent anywhere never reaches the store.

Three layers: schemathesis drives the receiver's own OpenAPI in-process; hypothesis sends
correctly signed random and mutated payloads, so they pass the signature check and reach the
parsers; then specific attacks, one test each (oversized, deeply nested, invalid UTF-8,
replayed, monstrous signature headers, control characters bound for the contact centre).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import httpx
import pytest
import schemathesis
from braintree import WebhookNotification
from braintree.util.crypto import Crypto
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from pydantic import ValidationError
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from sqlalchemy import select

from recovery.api.receiver import build_receiver
from recovery.api.routes.callbacks import OUTCOME_PATH
from recovery.clock import FixedClock
from recovery.contact_center.contacts import ContactRequest, contact_id_for
from recovery.contact_center.errors import CardDataRefused
from recovery.gateways.braintree import gateway_from_settings
from recovery.gateways.signing import sign
from recovery.runtime import Runtime
from recovery.services.intake import drain
from recovery.store.db import transaction
from recovery.store.migrate import upgrade
from recovery.store.tables import Base, CaseRow, ContactRow, DispositionRow, InboxRow
from tests.factories import (
    GENERIC_SECRET,
    STRIPE_SECRET,
    T0,
    charge_event,
    intent_failed,
    invoice_failed,
    serve,
    settings_for,
)

MIB = 1024 * 1024
# Test card numbers of every length and brand the guard must catch (13 to 19 digits).
PANS = (
    "4000056655665556",
    "4242424242424242",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "4222222222222",
    "6200000000000005",
    "4000000000000000006",
)
SEEN_STATUSES = frozenset({200, 400, 401, 404, 413, 415, 422})
CALLBACK_CONTACTS = 12


def fuzzing(examples: int) -> settings:
    """Bounded runs; one store lives through every example (hence the fixture health check)."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


# --- an independent card-number scanner -----------------------------------------------------


def luhn(digits: str) -> bool:
    """The Luhn check, written out again here so the guard is not tested with itself."""
    checksum = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        checksum += value
    return checksum % 10 == 0


def card_numbers_in(text: str) -> set[str]:
    """Every Luhn-valid 13-19 digit window of every digit run (single spaces or dashes between
    digits joined), the way a card number could be read back out of ``text``."""
    found: set[str] = set()
    for run in re.findall(r"[0-9](?:[ \-]?[0-9])*", text):
        digits = re.sub(r"[ \-]", "", run)
        for size in range(13, min(19, len(digits)) + 1):
            for start in range(len(digits) - size + 1):
                window = digits[start : start + size]
                if luhn(window):
                    found.add(window)
    return found


def planted_in(text: str) -> set[str]:
    """The planted card numbers that can be read out of ``text``."""
    return card_numbers_in(text) & set(PANS)


def test_the_scanner_reads_every_planted_format() -> None:
    for pan in PANS:
        spaced = " ".join(pan[i : i + 4] for i in range(0, len(pan), 4))
        for text in (pan, spaced, spaced.replace(" ", "-"), f"x9{pan}1y", f'{{"n": {pan}}}'):
            assert pan in planted_in(text), text
    assert planted_in("4000056655665557 and 2026-12-01T17:00:00Z") == set()


# --- the receiver under test ------------------------------------------------------------------


@dataclass
class Receiver:
    runtime: Runtime
    app: FastAPI
    client: TestClient
    url: str
    contact_ids: list[str] = field(default_factory=list)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)

    @property
    def action_credential(self) -> str:
        settings = self.runtime.settings
        secret = settings.genesys_action_secrets[0].get_secret_value()
        token = base64.b64encode(f"{settings.genesys_action_user}:{secret}".encode()).decode()
        return f"Basic {token}"

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        response = self.client.post(path, content=body, headers=headers)
        self.statuses[(path, response.status_code)] += 1
        return response

    def stripe(self, body: bytes, *, timestamp: int | None = None) -> httpx.Response:
        return self.post(
            "/webhooks/stripe",
            body,
            {
                "Content-Type": "application/json",
                "Stripe-Signature": sign(body, STRIPE_SECRET, timestamp or int(time.time())),
            },
        )

    def generic(self, body: bytes, *, timestamp: int | None = None) -> httpx.Response:
        return self.post(
            "/webhooks/generic",
            body,
            {
                "Content-Type": "application/json",
                "Recovery-Signature": sign(body, GENERIC_SECRET, timestamp or int(time.time())),
            },
        )

    def push(self, body: bytes) -> httpx.Response:
        """The body as a wrap-up rule's data action sends it, with its static credential."""
        return self.post(
            OUTCOME_PATH,
            body,
            {"Content-Type": "application/json", "Authorization": self.action_credential},
        )

    def dump(self) -> str:
        """Every row of every table as text, and on SQLite the database files' bytes too."""
        parts: list[str] = []
        with self.runtime.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                parts.extend(repr(tuple(row)) for row in conn.execute(select(table)))
        if self.url.startswith("sqlite:///"):
            path = Path(self.url.removeprefix("sqlite:///"))
            for name in (path, Path(f"{path}-wal")):
                if name.exists():
                    parts.append(name.read_bytes().decode("latin-1"))
        return "\n".join(parts)

    def inbox(self) -> list[InboxRow]:
        with self.runtime.sessions() as session:
            return list(session.scalars(select(InboxRow)))


def seed_contacts(receiver: Receiver) -> None:
    """One case with contacts awaiting their disposition, so that pushes reach the store."""
    now = T0
    with transaction(receiver.runtime.sessions) as session:
        case = CaseRow(
            gateway="stripe",
            business_key="in_hostile",
            phone_e164="+12125550123",
            country="US",
            explicit_tz="America/New_York",
            category="insufficient_funds",
            failed_at=now - timedelta(days=1),
            opened_at=now - timedelta(days=1),
            updated_at=now - timedelta(days=1),
            last_event_id="evt_hostile",
            status="awaiting_disposition",
            missing_fields={},
        )
        session.add(case)
        session.flush()
        for attempt in range(1, CALLBACK_CONTACTS + 1):
            contact_id = contact_id_for("stripe:in_hostile", attempt)
            session.add(
                ContactRow(
                    case_id=case.id,
                    attempt=attempt,
                    contact_id=contact_id,
                    contact_list_id="recovery-contacts",
                    phone_e164="+12125550123",
                    time_zone="America/New_York",
                    planned_at=now,
                    requested_at=now,
                    created_at=now,
                    state="created",
                    disposition_due_at=now + timedelta(hours=2),
                )
            )
            receiver.contact_ids.append(contact_id)


def open_receiver(url: str) -> Receiver:
    upgrade(url)
    runtime = Runtime(settings_for(url), clock_override=FixedClock(T0))
    app, _stop = build_receiver(runtime, trigger=False)
    receiver = Receiver(runtime, app, TestClient(app, raise_server_exceptions=True), url)
    seed_contacts(receiver)
    return receiver


def close_receiver(receiver: Receiver) -> None:
    receiver.app.state.inbox_writer.stop()
    receiver.runtime.close()


@pytest.fixture
def sqlite_receiver(tmp_path: Path) -> Iterator[Receiver]:
    """The full receiver on SQLite only (the longest runs)."""
    made = open_receiver(f"sqlite:///{tmp_path / 'hostile.db'}")
    yield made
    close_receiver(made)


@pytest.fixture
def receiver(store_url: str) -> Iterator[Receiver]:
    """The full receiver on every configured store."""
    made = open_receiver(store_url)
    yield made
    close_receiver(made)


def assert_answered(receiver: Receiver) -> None:
    unexpected = {key: n for key, n in receiver.statuses.items() if key[1] not in SEEN_STATUSES}
    assert not unexpected, unexpected


# --- 1. schemathesis against the receiver's own OpenAPI -------------------------------------

# The webhook routes read the raw body (the signature is over the exact bytes), so the OpenAPI
# FastAPI derives has no request body or signature header for them; described here, the
# generator sends bodies and headers too, not only empty requests.
_JSON_BODY = {"required": True, "content": {"application/json": {"schema": {}}}}
_FORM_BODY = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {
                    "bt_signature": {"type": "string"},
                    "bt_payload": {"type": "string"},
                },
            }
        }
    },
}
_RAW_ROUTES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "/webhooks/stripe": (_JSON_BODY, ("Stripe-Signature",)),
    "/webhooks/generic": (_JSON_BODY, ("Recovery-Signature",)),
    "/webhooks/braintree": (_FORM_BODY, ()),
    "/webhooks/paypal": (
        _JSON_BODY,
        (
            "PAYPAL-TRANSMISSION-ID",
            "PAYPAL-TRANSMISSION-TIME",
            "PAYPAL-TRANSMISSION-SIG",
            "PAYPAL-CERT-URL",
            "PAYPAL-AUTH-ALGO",
        ),
    ),
    OUTCOME_PATH: (_JSON_BODY, ("Authorization", "X-Recovery-Key")),
}
SCHEMATHESIS_EXAMPLES = 60


def described(document: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(document)
    for path, (body, headers) in _RAW_ROUTES.items():
        operation = document["paths"][path]["post"]
        operation["requestBody"] = body
        operation.setdefault("parameters", []).extend(
            {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
            for name in headers
        )
    return document


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(
    sqlite_receiver: Receiver, request: pytest.FixtureRequest
) -> None:
    # A real case in the store, so the authorised admin reads have something to render.
    event = invoice_failed(event_id="evt_seed", invoice_id="in_seed", created=T0)
    assert sqlite_receiver.stripe(json.dumps(event).encode()).status_code == 200
    drain(
        sessions=sqlite_receiver.runtime.sessions,
        codes=sqlite_receiver.runtime.failure_codes,
        clock_now=sqlite_receiver.runtime.clock.now,
        batch_size=10,
    )
    app = sqlite_receiver.app
    document = described(app.openapi())
    assert set(_RAW_ROUTES) <= set(document["paths"])
    app.openapi_schema = document
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    token = sqlite_receiver.runtime.settings.admin_token.get_secret_value()
    tried: Counter[str] = Counter()
    statuses: Counter[tuple[str, int]] = Counter()

    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {*_RAW_ROUTES, "/healthz", "/admin/cases"}
    for operation in operations:
        for mode in GenerationMode:

            @fuzzing(SCHEMATHESIS_EXAMPLES)
            @given(case=operation.as_strategy(generation_mode=mode), authorised=st.booleans())
            def fuzz(case: schemathesis.Case, authorised: bool) -> None:
                if authorised and case.path.startswith("/admin"):
                    case.headers["Authorization"] = f"Bearer {token}"
                # Raises when no response comes back (an exception in the app, a hung request).
                response = case.call()
                tried[case.operation.label] += 1
                statuses[(case.operation.label, response.status_code)] += 1
                case.validate_response(response, checks=[not_a_server_error])

            try:
                fuzz()
            except Unsatisfiable:
                # Nothing in this operation's description can be made invalid (free strings,
                # any JSON): there is no negative case to send.
                assert mode is GenerationMode.NEGATIVE
    request.node.user_properties.append(("examples", dict(tried)))
    request.node.user_properties.append(("statuses", dict(statuses)))
    for operation in operations:
        assert tried[operation.label] >= (1 if operation.path == "/healthz" else 20), operation
    assert not [key for key in statuses if key[1] >= 500]
    # The valid token got through at least once: the admin reads were exercised, not only 401.
    assert statuses[("GET /admin/cases", 200)] > 0


# --- 2. signed random payloads reach the parsers ----------------------------------------------


def formatted_pan(pan: str, style: int) -> str:
    groups = [pan[i : i + 4] for i in range(0, len(pan), 4)]
    return [pan, " ".join(groups), "-".join(groups), f"7{pan}", f"{pan}0"][style]


pan_texts = st.builds(
    lambda before, pan, style, after: before + formatted_pan(pan, style) + after,
    st.text(max_size=4),
    st.sampled_from(PANS),
    st.integers(0, 4),
    st.text(max_size=4),
)
# A card number as text, and as a JSON number (integer, or float: "4000056655665556.0").
pan_values = pan_texts | st.sampled_from(PANS).map(int) | st.sampled_from(PANS).map(float)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities too: Python's json writes and reads them
    | st.text(max_size=40)
    | st.sampled_from(["\ud800", "x\udfff", "\x00", "\u202e", "\r\nX-Injected: 1", "９" * 16])
    | pan_values
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=12) | pan_texts, inner, max_size=5)
    ),
    max_leaves=25,
)


def locations(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key)
            yield from locations(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*path, index)
            yield from locations(value, (*path, index))


@st.composite
def mutated(draw: st.DrawFn, bases: Sequence[Callable[[str], dict[str, Any]]]) -> dict[str, Any]:
    """A real event with a few of its values replaced, removed or turned into card numbers."""
    event = draw(st.sampled_from(bases))(f"h{uuid.uuid4().hex[:12]}")
    for _ in range(draw(st.integers(1, 4))):
        spots = list(locations(event))
        if not spots:
            break
        path = draw(st.sampled_from(spots))
        parent = event
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "remove", "plant", "plant_key"]))
        if action == "remove":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "plant":
            parent[path[-1]] = draw(pan_values)
        elif isinstance(parent, dict):
            parent[draw(pan_texts)] = parent.pop(path[-1])
    return event


def _invoice(suffix: str) -> dict[str, Any]:
    return invoice_failed(event_id=f"evt_{suffix}", invoice_id=f"in_{suffix}", created=T0)


def _intent(suffix: str) -> dict[str, Any]:
    return intent_failed(
        event_id=f"evt_{suffix}", intent_id=f"pi_{suffix}", invoice_id=f"in_{suffix}", created=T0
    )


def _charge(suffix: str) -> dict[str, Any]:
    return charge_event(event_id=f"evt_{suffix}", charge_id=f"ch_{suffix}", created=T0)


def _generic(suffix: str) -> dict[str, Any]:
    return {
        "type": "payment.failed",
        "event_id": f"gen_{suffix}",
        "business_key": f"sub_{suffix}",
        "occurred_at": T0.isoformat(),
        "customer_name": "Jenny Rosen",
        "phone": "(305) 555-0143",
        "state": "FL",
        "decline_code": "insufficient_funds",
        "failure_message": "Your card was declined.",
        "amount": "49.90",
        "currency": "USD",
    }


STRIPE_BASES = [_invoice, _intent, _charge]
GENERIC_BASES = [_generic, lambda s: {**_generic(s), "type": "payment.succeeded"}]
JSON_EXAMPLES = 200


def encoded(value: Any, ascii_only: bool) -> bytes:
    """JSON as a sender would write it: ``\\u``-escaped, or raw UTF-8 (where a lone surrogate
    becomes bytes that are not valid UTF-8, one more hostile case)."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def assert_no_planted_card_number(receiver: Receiver) -> None:
    assert planted_in(receiver.dump()) == set()


def test_signed_random_json_to_stripe_and_generic(
    receiver: Receiver, request: pytest.FixtureRequest
) -> None:
    leaks: list[str] = []

    @fuzzing(JSON_EXAMPLES)
    @given(
        to_stripe=st.booleans(),
        payload=st.one_of(
            json_values, mutated(STRIPE_BASES), mutated(GENERIC_BASES), mutated(STRIPE_BASES)
        ),
        ascii_only=st.booleans(),
    )
    def fuzz(to_stripe: bool, payload: Any, ascii_only: bool) -> None:
        body = encoded(payload, ascii_only)
        response = receiver.stripe(body) if to_stripe else receiver.generic(body)
        assert response.status_code < 500, response.text
        leaks.extend(planted_in(response.text))

    fuzz()
    request.node.user_properties.append(("statuses", dict(receiver.statuses)))
    assert_answered(receiver)
    assert leaks == []
    assert_no_planted_card_number(receiver)
    rows = receiver.inbox()
    # Mutated events got through to the store, some of them carrying a card number (flagged).
    assert len(rows) >= 10 and any(row.pan_redacted for row in rows)


BRAINTREE_KINDS = [
    WebhookNotification.Kind.SubscriptionChargedUnsuccessfully,
    WebhookNotification.Kind.SubscriptionWentPastDue,
    WebhookNotification.Kind.SubscriptionChargedSuccessfully,
    WebhookNotification.Kind.SubscriptionCanceled,
    WebhookNotification.Kind.Check,
]
_TEXT_NODE = re.compile(r">([^<]+)<")


def braintree_form(receiver: Receiver, xml: str) -> bytes:
    """The form Braintree posts for ``xml``, signed with the configured key pair."""
    settings_ = receiver.runtime.settings
    payload = base64.encodebytes(xml.encode("utf-8", "surrogatepass"))
    signature = Crypto.sha1_hmac_hash(settings_.braintree_private_key.get_secret_value(), payload)
    return urlencode(
        {"bt_signature": f"{settings_.braintree_public_key}|{signature}", "bt_payload": payload}
    ).encode()


def test_signed_random_braintree_forms(receiver: Receiver, request: pytest.FixtureRequest) -> None:
    gateway = gateway_from_settings(receiver.runtime.settings)
    samples = [
        base64.b64decode(
            gateway.webhook_testing.sample_notification(kind, f"sub_{n}")["bt_payload"]
        ).decode()
        for n, kind in enumerate(BRAINTREE_KINDS)
    ]
    form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
    leaks: list[str] = []

    @st.composite
    def mutated_xml(draw: st.DrawFn) -> str:
        xml = draw(st.sampled_from(samples))
        nodes = list(_TEXT_NODE.finditer(xml))
        for _ in range(draw(st.integers(1, 3))):
            node = draw(st.sampled_from(nodes))
            value = draw(pan_texts | st.text(max_size=30))
            escaped = escape(value) if draw(st.booleans()) else value
            xml = xml[: node.start(1)] + escaped + xml[node.end(1) :]
            nodes = list(_TEXT_NODE.finditer(xml))
        return xml

    raw_forms = st.one_of(
        st.binary(max_size=300),
        st.dictionaries(st.text(max_size=15), st.text(max_size=40), max_size=25).map(
            lambda fields: urlencode(fields).encode()
        ),
        st.builds(
            lambda sig, payload: urlencode({"bt_signature": sig, "bt_payload": payload}).encode(),
            st.text(max_size=80),
            st.text(max_size=200),
        ),
    )

    @fuzzing(JSON_EXAMPLES)
    @given(
        body=st.one_of(
            raw_forms,
            mutated_xml().map(lambda xml: braintree_form(receiver, xml)),
            st.text(max_size=300).map(lambda xml: braintree_form(receiver, xml)),
        )
    )
    def fuzz(body: bytes) -> None:
        response = receiver.post("/webhooks/braintree", body, form_headers)
        assert response.status_code < 500, response.text
        leaks.extend(planted_in(response.text))

    fuzz()
    request.node.user_properties.append(("statuses", dict(receiver.statuses)))
    assert_answered(receiver)
    assert leaks == []
    assert_no_planted_card_number(receiver)
    assert any(row.gateway == "braintree" for row in receiver.inbox())


def test_random_outcome_callbacks(receiver: Receiver, request: pytest.FixtureRequest) -> None:
    leaks: list[str] = []
    codes = st.sampled_from(["ININ-OUTBOUND-NO-ANSWER", "Promise to Pay", "paid", ""])
    field_values: dict[str, st.SearchStrategy[Any]] = {
        "contactId": st.sampled_from(receiver.contact_ids) | st.text(max_size=70) | pan_texts,
        "callAnalysisResult": codes | st.text(max_size=130) | pan_texts | json_scalars,
        "agentWrapup": codes | st.text(max_size=130) | pan_texts | json_scalars,
        "attempt": st.text(max_size=20) | pan_texts | json_scalars,
    }
    outcomes = st.fixed_dictionaries(
        {"contactId": field_values["contactId"]},
        optional={name: s for name, s in field_values.items() if name != "contactId"},
    )

    # One well-formed outcome for a known contact is always among the examples: the record
    # asserted below must not hang on what the generator happens to draw.
    @fuzzing(JSON_EXAMPLES)
    @given(payload=st.one_of(outcomes, outcomes, outcomes, json_values), ascii_only=st.booleans())
    @example(
        payload={"contactId": receiver.contact_ids[0], "agentWrapup": "Promise to Pay"},
        ascii_only=True,
    )
    def fuzz(payload: Any, ascii_only: bool) -> None:
        response = receiver.push(encoded(payload, ascii_only))
        assert response.status_code < 500, response.text
        leaks.extend(planted_in(response.text))

    fuzz()
    request.node.user_properties.append(("statuses", dict(receiver.statuses)))
    assert_answered(receiver)
    assert leaks == []
    assert_no_planted_card_number(receiver)
    with receiver.runtime.sessions() as session:
        assert session.scalars(select(DispositionRow)).first() is not None


def test_card_numbers_in_an_outcome_for_a_known_contact_are_not_stored(
    receiver: Receiver,
) -> None:
    pan = PANS[0]
    outcome = {
        "contactId": receiver.contact_ids[0],
        "callAnalysisResult": f"ININ-OUTBOUND-LIVE-VOICE {pan}",
        "agentWrapup": f"Paid with {pan}",
        "note": pan,
    }
    response = receiver.push(json.dumps(outcome).encode())
    assert response.status_code == 200, response.text
    assert planted_in(response.text) == set()
    assert_no_planted_card_number(receiver)
    with receiver.runtime.sessions() as session:
        row = session.scalars(select(DispositionRow)).one()
        assert row.wrapup_code.startswith("Paid with ")


@pytest.mark.parametrize("number", [f"{PANS[0]}.0", f"{PANS[0]}e0", "4.000056655665556e15"])
def test_a_card_number_sent_as_a_json_number_is_not_stored(receiver: Receiver, number: str) -> None:
    """The guard reads text; a number is stored as a number, so it must never hold one."""
    generic = json.dumps({**_generic("float"), "amount": "AMOUNT"})
    stripe = json.dumps(_invoice("float"))
    stripe = stripe.replace('"amount_due": 2000', '"amount_due": AMOUNT')
    assert "AMOUNT" in stripe
    for respond, body in ((receiver.generic, generic), (receiver.stripe, stripe)):
        response = respond(body.replace('"AMOUNT"', number).replace("AMOUNT", number).encode())
        assert response.status_code in (200, 400), response.text
    assert_no_planted_card_number(receiver)


# --- 3. specific attacks ----------------------------------------------------------------------

POST_ROUTES = {
    "/webhooks/stripe": "application/json",
    "/webhooks/generic": "application/json",
    "/webhooks/braintree": "application/x-www-form-urlencoded",
    "/webhooks/paypal": "application/json",
    OUTCOME_PATH: "application/json",
}


def oversized() -> bytes:
    return b'{"pad": "' + b"x" * MIB + b'"}'


@pytest.mark.parametrize("path", list(POST_ROUTES))
def test_a_body_over_one_mebibyte_is_413_with_or_without_content_length(
    receiver: Receiver, path: str
) -> None:
    headers = {"Content-Type": POST_ROUTES[path]}
    if path == OUTCOME_PATH:
        # Without its credential the outcome callback refuses before it reads a byte (401).
        assert receiver.post(path, oversized(), dict(headers)).status_code == 401
        headers["Authorization"] = receiver.action_credential
    declared = receiver.post(path, oversized(), headers)
    assert declared.status_code == 413
    assert "content-length" in declared.request.headers

    def chunks() -> Iterator[bytes]:
        body = oversized()
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    streamed = receiver.client.post(path, content=chunks(), headers=headers)
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413
    assert receiver.inbox() == []


def test_chunked_bodies_and_huge_headers_over_real_http(sqlite_receiver: Receiver) -> None:
    """Through uvicorn: a chunked body over the limit, and headers no server should take."""
    with serve(sqlite_receiver.app) as base, httpx.Client(base_url=base, timeout=30) as http:
        for path, content_type in POST_ROUTES.items():

            def chunks() -> Iterator[bytes]:
                for _ in range(20):
                    yield b"[" * (64 * 1024)

            headers = {"Content-Type": content_type}
            if path == OUTCOME_PATH:
                headers["Authorization"] = sqlite_receiver.action_credential
            response = http.post(path, content=chunks(), headers=headers)
            assert response.status_code == 413, (path, response.text)
            assert "content-length" not in response.request.headers
        huge = http.post(
            "/webhooks/stripe",
            content=b"{}",
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": "t=1," + ",".join(["v1=" + "ab" * 32] * 5000),
            },
        )
        assert 400 <= huge.status_code < 500
        assert http.get("/healthz").status_code == 200
    assert sqlite_receiver.inbox() == []


@pytest.mark.parametrize("closed", [False, True])
def test_deeply_nested_json_is_refused_without_a_recursion_error(
    receiver: Receiver, closed: bool
) -> None:
    depth = 100_000
    body = b"[" * depth + (b"]" * depth if closed else b"")
    assert receiver.stripe(body).status_code == 400
    assert receiver.generic(body).status_code == 400
    assert receiver.push(body).status_code in (400, 422)
    nested_object = b'{"a":' * depth + b"1" + b"}" * depth
    assert receiver.stripe(nested_object).status_code == 400
    assert receiver.inbox() == []


@pytest.mark.parametrize("depth", [200, 700, 950, 990])
def test_nesting_just_under_the_parsers_limit_with_a_card_number_inside(
    sqlite_receiver: Receiver, depth: int
) -> None:
    """Deep enough that the card-number walk recurses as far as the parser did."""
    inner = json.dumps({"card": PANS[0]})
    body = ('{"id": "evt_deep", "x": ' + "[" * depth + inner + "]" * depth + "}").encode()
    for response in (sqlite_receiver.stripe(body), sqlite_receiver.generic(body)):
        assert response.status_code == 400, response.text
    assert sqlite_receiver.inbox() == []


def test_an_integer_too_long_to_convert_is_400(receiver: Receiver) -> None:
    # Python refuses to convert more than 4300 digits; the parser's ValueError must not be a 500.
    body = b'{"id": "evt_long", "created": ' + b"9" * 5000 + b"}"
    assert receiver.stripe(body).status_code == 400
    assert receiver.generic(body).status_code == 400
    assert receiver.push(body).status_code in (400, 422)
    assert receiver.inbox() == []


@pytest.mark.parametrize(
    "event_id", ["evt_\ud800", "evt_\x00nul", "evt_" + "x" * 300], ids=["surrogate", "nul", "long"]
)
def test_an_event_id_the_store_cannot_hold_is_a_4xx(receiver: Receiver, event_id: str) -> None:
    event = invoice_failed(event_id="evt_placeholder", invoice_id="in_odd", created=T0)
    event["id"] = event_id
    generic = {**_generic("odd"), "event_id": event_id}
    for response in (
        receiver.stripe(json.dumps(event).encode()),
        receiver.generic(json.dumps(generic).encode()),
    ):
        assert 400 <= response.status_code < 500, response.text
    assert receiver.inbox() == []


def test_invalid_utf8_is_400(receiver: Receiver) -> None:
    event = invoice_failed(event_id="evt_utf", invoice_id="in_utf", created=T0)
    body = json.dumps(event).encode().replace(b"Jenny Rosen", b"Jenny \xff\xfe Rosen")
    assert receiver.stripe(body).status_code == 400
    assert receiver.generic(body).status_code == 400
    assert receiver.push(b'{"contactId": "\xc3\x28"}').status_code in (400, 422)
    assert receiver.inbox() == []


def test_a_replayed_signature_with_an_old_timestamp_is_refused(receiver: Receiver) -> None:
    event = invoice_failed(event_id="evt_replay", invoice_id="in_replay", created=T0)
    body = json.dumps(event).encode()
    old = int(time.time()) - 3600
    stripe = receiver.stripe(body, timestamp=old)
    assert stripe.status_code == 400 and "tolerance" in stripe.json()["error"]
    generic_body = json.dumps(_generic("replay")).encode()
    generic = receiver.generic(generic_body, timestamp=old)
    assert generic.status_code == 400 and "tolerance" in generic.json()["error"]
    # The outcome callback carries a static credential, as Genesys' data actions do: a
    # replayed request is the same outcome again, recorded once.
    outcome = json.dumps({"contactId": receiver.contact_ids[0], "agentWrapup": "paid"}).encode()
    assert receiver.push(outcome).json()["status"] == "recorded"
    assert receiver.push(outcome).json()["status"] == "duplicate"
    # The very same bytes signed now are accepted: the refusal was the timestamp alone.
    assert receiver.stripe(body).status_code == 200
    assert len(receiver.inbox()) == 1


@pytest.mark.parametrize(
    "header",
    [
        lambda body: f"t={int(time.time())}," + ",".join(["v1=" + "0" * 64] * 5000),
        lambda body: ",".join([f"t={int(time.time())}"] * 5000) + ",v1=" + "0" * 64,
        lambda body: "t=" + "9" * 5000 + ",v1=" + "0" * 64,
        lambda body: f"t={int(time.time())},v1=" + "a" * MIB,
        lambda body: "\x00\r\n" * 1000,
        lambda body: "=" * 100_000,
    ],
    ids=["5000-v1", "5000-t", "huge-t", "1MiB-v1", "control-chars", "equals"],
)
def test_a_monstrous_signature_header_is_a_clear_4xx(
    sqlite_receiver: Receiver, header: Callable[[bytes], str]
) -> None:
    body = json.dumps(_generic("sig")).encode()
    for path, name in (
        ("/webhooks/stripe", "Stripe-Signature"),
        ("/webhooks/generic", "Recovery-Signature"),
        (OUTCOME_PATH, "Authorization"),
        (OUTCOME_PATH, "X-Recovery-Key"),
    ):
        started = time.perf_counter()
        response = sqlite_receiver.post(
            path, body, {"Content-Type": "application/json", name: header(body)}
        )
        assert response.status_code in (400, 401), (path, response.text)
        assert time.perf_counter() - started < 2.0
    assert sqlite_receiver.inbox() == []


def test_a_valid_signature_among_thousands_is_still_found(sqlite_receiver: Receiver) -> None:
    body = json.dumps(_generic("many")).encode()
    valid = sign(body, GENERIC_SECRET, int(time.time()))
    header = valid.split(",")[0] + "," + ",".join(["v1=" + "0" * 64] * 3000) + ","
    header += valid.split(",")[1]
    response = sqlite_receiver.post(
        "/webhooks/generic",
        body,
        {"Content-Type": "application/json", "Recovery-Signature": header},
    )
    assert response.status_code == 200


# --- control characters bound for the contact centre ---------------------------------------

CONTROL = "\r\n\t\x00\x07\x1b[2J\x7f\x85\u2028\u2029\u200b\u202e\ufeff"


def request_with(**overrides: str) -> ContactRequest:
    values = {
        "case_key": "stripe:in_ctl",
        "attempt": 1,
        "phone_e164": "+14155552671",
        "transaction_id": "in_ctl",
        "failure_reason": "insufficient_funds",
        "currency": "usd",
        "next_retry_window": "2026-12-02T08:00-21:00",
        "time_zone": "America/Los_Angeles",
    }
    values.update(overrides)
    return ContactRequest.model_validate(values)


def has_control(text: str) -> bool:
    return any(unicodedata.category(char).startswith("C") for char in text)


@pytest.mark.parametrize(
    "name",
    ["transaction_id", "failure_reason", "next_retry_window", "phone_e164", "case_key"],
)
def test_control_characters_never_reach_the_contact_centre(name: str) -> None:
    """A customer's name or a gateway's failure message ends up in the text columns (the
    failure reason, the transaction id); none may carry a line break or a control character."""
    values = {
        "transaction_id": f"in_{CONTROL}ctl\r\nX-Injected: yes",
        "failure_reason": f"Jenny\r\nRosen{CONTROL}: Your card was declined.\r\n\r\n<script>",
        "next_retry_window": f"{CONTROL}2026-12-02{CONTROL}",
        # Nothing printable may be left once the controls are gone, or it is no longer a phone.
        "phone_e164": f"\r\n+1 (415)\t555-2671{CONTROL.replace('[2J', '')}",
        "case_key": f"stripe:in_ctl{CONTROL}",
    }
    writable = request_with(**{name: values[name]}).to_writable("recovery-contacts")
    texts = [writable["id"], writable["contactListId"], *writable["data"].values()]
    texts += list(writable["data"])
    assert not [text for text in texts if has_control(text)], writable
    assert writable["data"]["phone"] == "+14155552671"
    assert json.loads(json.dumps(writable)) == writable


@given(
    name=st.sampled_from(["transaction_id", "failure_reason", "next_retry_window"]),
    value=st.text(max_size=300),
)
@settings(max_examples=200, deadline=None)
def test_any_text_is_cleaned_or_refused_for_the_contact_centre(name: str, value: str) -> None:
    try:
        writable = request_with(**{name: value}).to_writable("recovery-contacts")
    except (ValidationError, CardDataRefused):
        return
    for column in writable["data"].values():
        assert not has_control(column)
        assert planted_in(column) == set()
    assert len(writable["data"]["failureReason"]) <= 200


@pytest.mark.parametrize("name", ["transaction_id", "failure_reason", "next_retry_window"])
@pytest.mark.parametrize("style", range(5))
def test_a_card_number_bound_for_the_contact_centre_is_refused(name: str, style: int) -> None:
    for pan in PANS:
        # Control characters between the digits must not smuggle the number past the check.
        smuggled = formatted_pan(pan, style)
        for value in (smuggled, f"note\r\n{smuggled}", "\x00".join(smuggled)):
            with pytest.raises((CardDataRefused, ValidationError)):
                request_with(**{name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("contactId", "\x00"),
        ("wrapupCode", "Paid\x00"),
        ("wrapupCode", "Paid\ud800"),
        ("contactListId", "list\x00"),
        ("phoneColumn", "phone\udfff"),
    ],
    ids=["nul-contact", "nul-wrapup", "surrogate-wrapup", "nul-list", "surrogate-column"],
)
def test_a_push_text_the_store_cannot_hold_is_a_4xx(
    receiver: Receiver, name: str, value: str
) -> None:
    push = {
        "contactId": receiver.contact_ids[0],
        "wrapupCode": "paid",
        "callAttemptedAt": T0.isoformat(),
        name: value,
    }
    response = receiver.push(json.dumps(push).encode())
    assert 400 <= response.status_code < 500, response.text
    with receiver.runtime.sessions() as session:
        assert session.scalars(select(DispositionRow)).first() is None


def test_a_detailed_outcome_is_recorded_within_seconds_when_the_contact_centre_is_down(
    sqlite_receiver: Receiver,
) -> None:
    """The wrap-up note is read while the data action waits for its answer: with the contact
    centre unreachable (this receiver has none), the read gives up within seconds and the
    outcome is recorded without its note, instead of retrying the login for 40 s and more."""
    contact_id = sqlite_receiver.contact_ids[0]
    started = time.monotonic()
    response = sqlite_receiver.push(
        encoded({"contactId": contact_id, "agentWrapup": "Promise to Pay"}, True)
    )
    took = time.monotonic() - started
    assert response.status_code == 200 and response.json()["status"] == "recorded"
    assert took < 15, f"the callback took {took:.1f} s"
    with sqlite_receiver.runtime.sessions() as session:
        recorded = session.scalars(
            select(DispositionRow).where(DispositionRow.contact_id == contact_id)
        ).one()
        assert recorded.disposition == "promise_to_pay"

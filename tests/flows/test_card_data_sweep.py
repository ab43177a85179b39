"""No card number survives a whole campaign, wherever it was planted and wherever we look.

A demo-sized campaign (Stripe failures of the three failure types and payments of the four
success types, Braintree and PayPal notifications, the generic source) carries card numbers in
every string field the gateways send. It runs through the real receiver, the ingest flow,
several rounds of advance across lawful windows, the emulator's dials pushing outcomes back to
the receiver, dispositions, reconcile, close-on-payment, the review queue and the report. Then
every place that holds data is read: the store (each row, and the database files' bytes), every
log record at DEBUG (what reaches the console comes from those records), Prefect's own database
(each row of each table, and its files), the artifacts through the Prefect client, result and
report files, every answer of the receiver, and everything the emulator holds or was sent. The
scanner (``tests/support/card_scan.py``) is written independently of the guard it checks.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from recovery.api.app import create_app
from recovery.api.routes.admin import build_admin_router
from recovery.api.routes.callbacks import build_callbacks_router
from recovery.clock import FixedClock
from recovery.contact_center.contacts import ContactRequest, contact_id_for
from recovery.gateways.signing import sign
from recovery.runtime import Runtime
from recovery.services.intake import drain
from recovery.store.db import transaction
from recovery.store.tables import Base, CaseRow, ContactRow, DispositionRow, InboxRow
from tests.factories import GENERIC_SECRET, invoice_failed, settings_for, stripe_headers
from tests.gateways.test_braintree_intake import PRIVATE_KEY as BRAINTREE_PRIVATE_KEY
from tests.gateways.test_braintree_intake import PUBLIC_KEY as BRAINTREE_PUBLIC_KEY
from tests.support.card_scan import (
    Scan,
    card_runs,
    dumps,
    luhn_ok,
    scan_files,
    scan_sqlite,
    sqlite_path,
)
from tests.support.paypal_pki import CERT_URL as PAYPAL_CERT_URL
from tests.support.paypal_pki import WEBHOOK_ID as PAYPAL_WEBHOOK_ID
from tests.support.paypal_pki import headers_for as paypal_headers
from tests.support.paypal_pki import pki
from tests.support.planted_campaign import (
    FORMATS,
    Campaign,
    Outgoing,
    braintree_wave,
    build,
    luhn_complete,
    make_pans,
    paypal_wave,
    render,
)
from tests.support.running_system import System, run_flows

pytestmark = pytest.mark.prefect

# Tuesday 1 December 2026, 17:00 UTC: noon in New York, 09:00 in Los Angeles.
START = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


@dataclass
class Figures:
    sent: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    flow_runs: Counter[str] = field(default_factory=Counter)
    returned: list[Any] = field(default_factory=list)
    night_contacts: int = -1


def hear_everything(caplog: pytest.LogCaptureFixture) -> None:
    """caplog's handler on every logger that does not pass its records up to the root
    (Prefect's extra and internal loggers, uvicorn's): called once the servers are up, since
    uvicorn configures its loggers afresh when it starts."""
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and not logger.propagate:
            if caplog.handler not in logger.handlers:
                logger.addHandler(caplog.handler)


@pytest.fixture
def every_log_record(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG for the root and Prefect's loggers; see ``hear_everything``."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="prefect")
    hear_everything(caplog)
    try:
        yield caplog
    finally:
        for logger in list(logging.root.manager.loggerDict.values()):
            if isinstance(logger, logging.Logger) and caplog.handler in logger.handlers:
                logger.removeHandler(caplog.handler)


def deliver(hs: System, out: Outgoing) -> Any:
    """One delivery, signed the way its gateway signs (PayPal's transmission time is real)."""
    if out.gateway == "stripe":
        return hs.post_stripe_body(out.body)
    if out.gateway == "generic":
        return hs.post_generic_body(out.body)
    url = f"{hs.receiver}/webhooks/{out.gateway}"
    if out.gateway == "braintree":
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        return hs.http.post(url, content=out.body, headers=form)
    sent_at = datetime.now(UTC).replace(microsecond=0)
    headers = {
        "Content-Type": "application/json",
        # A fresh transmission for every delivery, as PayPal sends (the store refuses a
        # transmission id seen with another body).
        **paypal_headers(out.body, sent_at=sent_at, transmission_id=str(uuid.uuid4())),
    }
    return hs.http.post(url, content=out.body, headers=headers)


def campaign_system(
    running_system: Callable[..., System], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> System:
    """The system with every gateway configured: Braintree's test key pair, and PayPal's
    signing certificate (from a test PKI whose root the settings name as the trust anchor)
    served from its PayPal address by this test instead of the network."""
    served = pki().served
    monkeypatch.setattr(
        "recovery.gateways.paypal.HttpFetcher.__call__",
        lambda _self, url: served if url == PAYPAL_CERT_URL else b"",
    )
    return running_system(  # type: ignore[no-any-return]
        start=START,
        scenario="mixed",
        extra_env={
            "RECOVERY_BRAINTREE_ENVIRONMENT": "sandbox",
            "RECOVERY_BRAINTREE_MERCHANT_ID": "merchant_for_tests",
            "RECOVERY_BRAINTREE_PUBLIC_KEY": BRAINTREE_PUBLIC_KEY,
            "RECOVERY_BRAINTREE_PRIVATE_KEY": BRAINTREE_PRIVATE_KEY,
            "RECOVERY_PAYPAL_WEBHOOK_ID": PAYPAL_WEBHOOK_ID,
            "RECOVERY_PAYPAL_TRUST_ANCHORS_FILE": str(pki().anchors_file(tmp_path)),
            "RECOVERY_PAYPAL_INTERMEDIATES_FILE": str(pki().intermediates_file(tmp_path)),
        },
    )


def send(hs: System, campaign: Campaign, wave: str, figures: Figures) -> None:
    """Post one wave: each event answered as its kind says (the bodies are all recorded)."""
    for out in campaign.wave(wave):
        response = deliver(hs, out)
        figures.sent[f"{out.gateway} {out.kind}"] += 1
        figures.statuses[response.status_code] += 1
        expected = {"invalid": (400,), "any": (200, 400)}.get(out.kind, (200,))
        assert response.status_code in expected, (out.kind, response.status_code, response.text)


def flows(figures: Figures, *names: str) -> None:
    for name, value in run_flows(*names).items():
        figures.flow_runs[name] += 1
        figures.returned.append(value)


def dial(hs: System, figures: Figures) -> None:
    figures.returned.append(hs.dial())


def play(hs: System, campaign: Campaign, figures: Figures, days: int) -> None:
    """The campaign: a wave of failures, payments an hour later, calls across several days'
    windows (and one night, when nothing may be created), then the wave of events whose
    contact fields held card numbers, the review queue and the report."""
    hs.control("scenario", {"name": "mixed", "seed": 11, "drop_event_fraction": 0.15})
    send(hs, campaign, "first", figures)
    # Gateways redeliver: the same bodies again, freshly signed.
    for out in campaign.wave("first")[:25]:
        response = deliver(hs, out)
        figures.statuses[response.status_code] += 1
        figures.sent["redelivery"] += 1
        assert response.json()["status"] == "duplicate"
    flows(figures, "ingest", "advance")
    dial(hs, figures)
    flows(figures, "dispositions", "advance", "close_on_payment")

    hs.set_time(START + timedelta(hours=2))
    send(hs, campaign, "payments", figures)
    flows(figures, "ingest", "close_on_payment", "advance")
    dial(hs, figures)
    flows(figures, "dispositions", "advance")

    for day in range(1, days):
        hs.set_time(START + timedelta(days=day))
        flows(figures, "advance")
        dial(hs, figures)
        flows(figures, "dispositions", "advance", "reconcile")
        if day == 3:
            # Saturday 06:00 UTC: night in every continental zone.
            hs.set_time(START + timedelta(days=3, hours=13))
            before = hs.emulator_state.counters.contacts_created
            flows(figures, "advance")
            figures.night_contacts = hs.emulator_state.counters.contacts_created - before

    hs.set_time(START + timedelta(days=days, hours=1))
    send(hs, campaign, "contact", figures)
    flows(figures, "ingest", "advance")
    dial(hs, figures)
    flows(figures, "dispositions", "advance", "reconcile", "close_on_payment")
    flows(figures, "review_queue", "report")


def prefect_database() -> Path:
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    return sqlite_path(str(PREFECT_SERVER_DATABASE_CONNECTION_URL.value()))


def settle_prefect(database: Path) -> tuple[int, int]:
    """Ship buffered logs and events, then wait until the server has persisted them (its
    event persister flushes every few seconds); the log and event rows it then holds."""
    import sqlite3

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all()
    EventsWorker.drain_all()
    deadline = time.monotonic() + 30
    counts: list[tuple[int, int]] = []
    while time.monotonic() < deadline:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
        try:
            counts.append(
                (
                    connection.execute("SELECT count(*) FROM log").fetchone()[0],
                    connection.execute("SELECT count(*) FROM events").fetchone()[0],
                )
            )
        finally:
            connection.close()
        if len(counts) >= 7 and counts[-1] == counts[-4]:
            break
        time.sleep(1)
    return counts[-1]


def read_artifacts() -> list[Any]:
    from prefect.client.orchestration import get_client

    async def read() -> list[Any]:
        async with get_client() as client:
            found: list[Any] = []
            while True:
                page = await client.read_artifacts(limit=200, offset=len(found))
                found.extend(page)
                if len(page) < 200:
                    return found

    return anyio.run(read)


def sweep(hs: System, campaign: Campaign, figures: Figures, caplog: Any) -> Scan:
    scan = Scan(planted=frozenset(campaign.pans))
    store = sqlite_path(hs.store_url)
    scan_sqlite(scan, "store", store)

    database = prefect_database()
    logs, events = settle_prefect(database)
    scan.figures["prefect database: log rows"] = logs
    scan.figures["prefect database: event rows"] = events
    scan_sqlite(scan, "prefect database", database)
    artifacts = read_artifacts()
    scan.text(
        "prefect artifacts (client)",
        dumps([a.model_dump(mode="json") for a in artifacts]),
        unit="artifacts",
        count=len(artifacts),
    )
    from prefect.settings import PREFECT_HOME, PREFECT_LOCAL_STORAGE_PATH

    scan_files(scan, "prefect results and home files", Path(str(PREFECT_HOME.value())), ["*"])
    scan_files(
        scan, "prefect results and home files", Path(str(PREFECT_LOCAL_STORAGE_PATH.value())), ["*"]
    )
    # The server's own folder (its database files are read above): its log.
    scan_files(scan, "prefect server log", prefect_database().parent, ["*.log"])
    scan_files(scan, "data folder files (reports)", hs.data_dir, ["*"])
    scan_files(scan, "log files", store.parent, ["*.log"])

    records = caplog.records
    scan.text(
        "log records",
        "\n".join(
            f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''} {r.stack_info or ''}"
            for r in records
        ),
        count=len(records),
    )
    scan.text("log records formatted", caplog.text)

    state = hs.emulator_state
    with state.lock:
        held = {
            "lists": {
                list_id: [
                    {**c.to_wire(), "dials": c.dials, "records": c.call_records}
                    for c in contact_list.contacts.values()
                ]
                for list_id, contact_list in state.lists.items()
            },
            "queues": {k: list(v.queue) for k, v in state.lists.items()},
            "dnc": {k: sorted(v) for k, v in state.dnc.items()},
            "tokens": list(state.tokens),
            "poisoned": dict(state.poisoned),
            "counters": state.counters.as_dict(),
        }
    contacts_held = sum(len(c.contacts) for c in state.lists.values())
    scan.text("emulator state", dumps(held), unit="contacts", count=contacts_held)
    exchanges = hs.emulator_log.snapshot()
    scan.text(
        "emulator requests received",
        "\n".join(
            f"{e.method} {e.path}?{e.query} {e.request.decode('latin-1')}" for e in exchanges
        ),
        unit="requests",
        count=len(exchanges),
    )
    scan.text(
        "emulator responses sent",
        "\n".join(e.response.decode("latin-1") for e in exchanges),
        unit="responses",
        count=len(exchanges),
    )
    answered = hs.receiver_log.snapshot()
    scan.text(
        "receiver responses",
        "\n".join(f"{e.status} {e.path} {e.response.decode('latin-1')}" for e in answered),
        unit="responses",
        count=len(answered),
    )
    scan.text(
        "flow return values", dumps(figures.returned), unit="values", count=len(figures.returned)
    )
    return scan


def run_sweep(
    hs: System,
    caplog: Any,
    *,
    stripe: int,
    generic: int,
    others: int,
    days: int,
) -> None:
    """Play a campaign of ``stripe`` Stripe, ``generic`` generic-source and ``others`` Braintree
    and PayPal failures over ``days`` days, then read everything back."""
    campaign = build(START, stripe_failures=stripe, generic_failures=generic)
    braintree_wave(campaign, START, others)
    paypal_wave(campaign, START, others)
    assert campaign.uncovered() == {}, "every string leaf of every event type is planted"
    hear_everything(caplog)
    figures = Figures()
    began = time.monotonic()
    play(hs, campaign, figures, days)
    played = time.monotonic() - began
    with hs.runtime.sessions() as s:
        keys = s.execute(select(CaseRow.gateway, CaseRow.business_key).limit(40)).all()
    # Outside the session: on SQLite every transaction of the store takes the write lock.
    lookups = [f"/cases/{quote(f'{g}:{k}', safe='')}" for g, k in keys if "/" not in k]
    for path in ("/cases?limit=1000", "/stats", *lookups):
        assert hs.admin(path).status_code == 200, path
    with hs.runtime.sessions() as s:
        inbox = Counter(
            (kind, flagged)
            for kind, flagged in s.execute(select(InboxRow.kind, InboxRow.pan_redacted))
        )
        gateways = Counter(s.scalars(select(InboxRow.gateway)))
        cases = s.scalar(select(func.count()).select_from(CaseRow)) or 0
        outcomes = Counter(s.execute(select(CaseRow.outcome)).scalars())
        contacts = Counter(s.execute(select(ContactRow.state)).scalars())
        pushed = Counter(s.execute(select(DispositionRow.source)).scalars())
    counters = hs.counters()

    answered = Counter(
        (e.path.rsplit("/", 1)[0] if e.path.startswith("/admin/cases/") else e.path, e.status)
        for e in hs.receiver_log.snapshot()
    )
    refused_pushes = [
        e.response.decode()[:200]
        for e in hs.receiver_log.snapshot()
        if e.path.startswith("/callbacks/") and e.status != 200
    ]
    scan = sweep(hs, campaign, figures, caplog)
    print(
        f"\ncard-data sweep: {stripe} Stripe + {generic} generic failures over {days} days "
        f"(played in {played:.0f} s)\n"
        f"  fields planted: {campaign.fields_planted} with {len(campaign.pans)} card numbers "
        f"of 13-19 digits ({dict(campaign.formats)})\n"
        f"  leaves planted per event type: "
        f"{ {k: len(v) for k, v in sorted(campaign.planted_leaves.items())} }\n"
        f"  events sent: {sum(figures.sent.values())} {dict(figures.sent)}; "
        f"answers {dict(figures.statuses)}\n"
        f"  inbox rows (kind, flagged): {dict(inbox)}; by gateway {dict(gateways)}\n"
        f"  cases {cases}; outcomes {dict(outcomes)}\n"
        f"  contacts by state {dict(contacts)}; dispositions by source {dict(pushed)}\n"
        f"  emulator {counters}\n"
        f"  receiver answers (path, status): {dict(sorted(answered.items()))}\n"
        f"  outcome callbacks refused: {refused_pushes}\n"
        f"  flow runs {dict(figures.flow_runs)}; "
        f"contacts created at night {figures.night_contacts}\n"
        f"{scan.report()}"
    )

    # The campaign really ran: every failure recorded once and flagged, calls made, outcomes
    # delivered by the data action, payments closing cases, outcomes read back by reconcile.
    assert inbox[("failure", False)] == 0 and inbox[("success", False)] == 0
    assert inbox[("ignored", False)] == 0
    assert inbox[("failure", True)] >= campaign.count(wave="first", kind="failure")
    # (Proportions of the campaign: 210 Stripe failures made at least 200 cases, 100 contacts
    # and dials, 50 data-action requests and 30 recoveries.)
    assert inbox[("failure", True)] >= stripe * 20 // 21
    assert gateways["braintree"] >= others // 3 and gateways["paypal"] >= others // 2
    assert cases >= stripe * 20 // 21
    assert counters["contacts_created"] >= stripe // 2 and counters["dials"] >= stripe // 2
    assert counters["actions_sent"] >= stripe // 4 and counters["actions_dropped"] >= 1
    assert counters["duplicates"] == 0 and counters["refused_outside_window"] == 0
    assert outcomes["recovered"] >= stripe // 7
    assert pushed["poll"] >= 1
    assert figures.night_contacts == 0
    assert scan.figures["prefect database table rows rows"] > 1000
    assert scan.figures["log records lines"] > 1000

    assert scan.findings == [], scan.report()
    assert scan.planted_hits == [], scan.report()


@pytest.mark.slow
def test_no_card_number_survives_a_campaign(
    running_system: Callable[..., System],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    every_log_record: pytest.LogCaptureFixture,
) -> None:
    hs = campaign_system(running_system, tmp_path, monkeypatch)
    # Every string leaf of every event type still carries a card number (checked), over the
    # four days that include a night.
    run_sweep(hs, every_log_record, stripe=90, generic=15, others=20, days=4)


@pytest.mark.slow
@pytest.mark.soak
def test_no_card_number_survives_a_full_size_campaign(
    running_system: Callable[..., System],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    every_log_record: pytest.LogCaptureFixture,
) -> None:
    hs = campaign_system(running_system, tmp_path, monkeypatch)
    run_sweep(hs, every_log_record, stripe=210, generic=30, others=40, days=4)


@pytest.mark.slow
@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_no_card_number_survives_a_long_campaign(
    running_system: Callable[..., System],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    every_log_record: pytest.LogCaptureFixture,
) -> None:
    hs = campaign_system(running_system, tmp_path, monkeypatch)
    run_sweep(hs, every_log_record, stripe=1500, generic=200, others=200, days=10)


# -- the scanner itself, and the intake's edges, without the Prefect harness ----------------


def test_the_scanner_sees_every_planted_form_and_nothing_innocent() -> None:
    pans = make_pans(3)
    for pan in pans:
        for style in FORMATS:
            assert card_runs(render(pan, style)), (pan, style)
        assert luhn_ok(pan) and not luhn_ok(pan[:-1] + str((int(pan[-1]) + 1) % 10))
    scan = Scan(planted=frozenset(pans))
    scan.text("dotted", pans[0][:4] + "." + pans[0][4:])  # outside the definition...
    assert scan.findings == [] and len(scan.planted_hits) == 1  # ...but its digits are seen
    innocent = Scan(planted=frozenset(pans))
    innocent.text(
        "innocent",
        "+14155552671; 2026-12-01T17:00:00+00:00; 3f2a0b1c-4d5e-4f60-8a7b-9c0d1e2f3a4b "
        "in_1Pgc6tB7WZ01zgkWu9fdqL6I 1796144100 20.00 [redacted-card-number] ***2671",
    )
    assert innocent.findings == [] and innocent.planted_hits == []
    # A hex digest may hold a Luhn-valid decimal stretch; a card number next to a short hex
    # token is still one.
    digest = "btn_5c04d" + luhn_complete("41646601234593") + "bfe80a060004d5f44fb8"
    assert card_runs(digest)
    hexed = Scan()
    hexed.text("hex", f"{digest}; cafe{pans[2]}")
    assert [f.masked[-4:] for f in hexed.findings] == [pans[2][-4:]]
    # Raw database bytes: columns glued together are not card numbers, a card number is.
    raw = Scan()
    raw.blob("raw", b"2026-12-01 16:44:00.0000002026-12-01 17:00:00.000000evt_1\x00")
    assert raw.findings == []
    raw.blob("raw", b"2026-12-01 16:44:00.000000" + pans[1].encode() + b"\x00")
    assert len(raw.findings) == 1


def _receiver(store_url: str, clock: FixedClock) -> tuple[TestClient, Runtime]:
    runtime = Runtime(
        settings_for(
            store_url, genesys_action_secrets=PROBE_ACTION_SECRET, admin_token=PROBE_ADMIN
        ),
        clock_override=clock,
    )
    routers = [
        # Only names reach this receiver: a code that is not an id is its own name.
        build_callbacks_router(
            sessions=runtime.sessions,
            settings=runtime.settings,
            clock=clock,
            wrapup_name=lambda code: code,
        ),
        build_admin_router(sessions=runtime.sessions, settings=runtime.settings),
    ]
    app = create_app(
        settings=runtime.settings, sessions=runtime.sessions, clock=clock, extra_routers=routers
    )
    return TestClient(app), runtime


PROBE_ADMIN = "admin_probe_token_0123456789"
PROBE_ACTION_SECRET = "action_probe_secret_0123"


def _generic(client: TestClient, body: bytes) -> Any:
    headers = {
        "Content-Type": "application/json",
        "Recovery-Signature": sign(body, GENERIC_SECRET, int(time.time())),
    }
    return client.post("/webhooks/generic", content=body, headers=headers)


def _store_text(runtime: Runtime) -> str:
    with runtime.engine.connect() as connection:
        return "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in connection.execute(table.select())
        )


def _generic_failure(event_id: str, key: str, amount: str = '"19.99"') -> bytes:
    # Written by hand: the amount goes into the body exactly as given (a JSON number's text).
    return (
        f'{{"type": "payment.failed", "event_id": "{event_id}", "business_key": "{key}", '
        '"occurred_at": "2026-12-01T16:00:00+00:00", "phone": "+14155552671", '
        f'"state": "CA", "amount": {amount}, "currency": "USD"}}'
    ).encode()


def test_webhook_errors_never_echo_a_card_number(store_url: str) -> None:
    pan = make_pans(5)[1]
    client, runtime = _receiver(store_url, FixedClock(START))
    try:
        answers = []
        stripe_bodies = [
            json.dumps({"id": f"evt_{pan}", "type": "invoice.payment_failed", "data": pan}),
            json.dumps([pan, render(pan, "spaced")]),
            f'{{"id": "evt_1", "note": "{render(pan, "dashed")}", ',
        ]
        for body in stripe_bodies:
            answers.append(
                client.post(
                    "/webhooks/stripe", content=body.encode(), headers=stripe_headers(body.encode())
                )
            )
        answers.append(
            client.post(
                "/webhooks/stripe",
                content=stripe_bodies[0].encode(),
                headers={"Stripe-Signature": f"t=1,v1={pan}", "Content-Type": "application/json"},
            )
        )
        for field_name in ("occurred_at", "amount", "country", "state", "currency", "type"):
            event = json.loads(_generic_failure("gen-err", "order-err"))
            event[field_name] = render(pan, "sentence")
            answers.append(_generic(client, json.dumps(event).encode()))
        answers.append(_generic(client, json.dumps({pan: 1, "event_id": pan}).encode()))
        answers.append(
            client.post(
                "/webhooks/generic", content=pan.encode(), headers={"Content-Type": "text/plain"}
            )
        )
        statuses = Counter(a.status_code for a in answers)
        assert statuses[200] + statuses[400] + statuses[415] == len(answers), statuses
        assert statuses[400] >= 8
        echoed = [a.text for a in answers if card_runs(a.text) or pan in re.sub(r"\D", "", a.text)]
        assert echoed == []
        assert card_runs(_store_text(runtime)) == []
    finally:
        runtime.close()


def test_a_card_number_sent_as_a_json_float_is_not_stored(store_url: str) -> None:
    pans = [p for p in make_pans(9) if len(p) <= 16][:4]
    client, runtime = _receiver(store_url, FixedClock(START))
    try:
        for n, pan in enumerate(pans):
            event = invoice_failed(
                event_id=f"evt_float_{n}", invoice_id=f"in_float_{n}", created=START
            )
            # The same JSON number written four ways: 4158906276223013.0, 4.158906276223013e15,
            # 41589062.76223013e8, 41589.06276223013e11.
            point = (len(pan), 1, 8, 5)[n % 4]
            exponent = len(pan) - point
            number = f"{pan}.0" if point == len(pan) else f"{pan[:point]}.{pan[point:]}e{exponent}"
            text = json.dumps(event)
            for name in ("amount_due", "amount_remaining"):
                text = text.replace(f'"{name}": 2000', f'"{name}": {number}')
            body = text.encode()
            answer = client.post("/webhooks/stripe", content=body, headers=stripe_headers(body))
            assert answer.status_code in (200, 400)
            assert re.sub(r"\D", "", answer.text).find(pan) < 0
        # The generic source, with the same numbers as its amount.
        for n, pan in enumerate(pans):
            _generic(client, _generic_failure(f"gen-float-{n}", f"order-float-{n}", f"{pan}.0"))
        stored = _store_text(runtime)
        assert card_runs(stored) == []
        digits = re.sub(r"\D", "", stored)
        assert [pan for pan in pans if pan in digits] == []
    finally:
        runtime.close()


def test_distinct_long_numeric_ids_stay_distinct(store_url: str) -> None:
    # Snowflake-style ids: 19 digits, almost all of which hold some Luhn-valid 13-19 window.
    first, second = "1798423145923002369", "1798423145923002370"
    assert card_runs(first) and card_runs(second)
    client, runtime = _receiver(store_url, FixedClock(START))
    try:
        answers = [
            _generic(client, _generic_failure(first, first)).json(),
            _generic(client, _generic_failure(second, second)).json(),
        ]
        assert [a["status"] for a in answers] == ["recorded", "recorded"]
        drain(
            sessions=runtime.sessions,
            codes=runtime.failure_codes,
            clock_now=runtime.clock.now,
            batch_size=100,
        )
        with runtime.sessions() as s:
            assert s.scalar(select(func.count()).select_from(CaseRow)) == 2
    finally:
        runtime.close()


def _seed_contact(runtime: Runtime, key: str = "in_probe") -> str:
    """A case awaiting the outcome of its first contact, as dispatch leaves it."""
    request = ContactRequest(
        case_key=f"stripe:{key}",
        attempt=1,
        phone_e164="+12125550123",
        transaction_id=key,
        failure_reason="card_expired",
        time_zone="America/New_York",
    )
    with transaction(runtime.sessions) as session:
        case = CaseRow(
            gateway="stripe",
            business_key=key,
            phone_e164="+12125550123",
            country="US",
            category="card_expired",
            failed_at=START - timedelta(hours=2),
            opened_at=START - timedelta(hours=2),
            updated_at=START - timedelta(hours=1),
            last_event_id="evt_probe",
            status="awaiting_disposition",
            missing_fields={},
        )
        session.add(case)
        session.flush()
        session.add(
            ContactRow(
                case_id=case.id,
                attempt=1,
                contact_id=request.contact_id,
                contact_list_id="recovery-contacts",
                phone_e164=request.phone_e164,
                time_zone=request.time_zone,
                planned_at=START - timedelta(hours=1),
                requested_at=START - timedelta(hours=1),
                created_at=START - timedelta(hours=1),
                state="created",
                disposition_due_at=START + timedelta(hours=3),
            )
        )
    return request.contact_id


def _push(client: TestClient, payload: dict[str, Any]) -> Any:
    """The outcome as a wrap-up rule's data action posts it, with its header credential."""
    return client.post(
        "/callbacks/genesys/outcome",
        content=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "X-Recovery-Key": PROBE_ACTION_SECRET},
    )


def test_card_numbers_in_an_outcome_callback_are_not_stored(store_url: str) -> None:
    pan = make_pans(13)[3]
    client, runtime = _receiver(store_url, FixedClock(START))
    try:
        contact_id = _seed_contact(runtime)
        answer = _push(
            client,
            {
                "contactId": contact_id,
                "callAnalysisResult": f"ININ-OUTBOUND-LIVE-VOICE {render(pan, 'spaced')}",
                "agentWrapup": f"Promise to Pay - card {render(pan, 'dashed')}",
                "note": pan,
            },
        )
        assert answer.status_code == 200 and card_runs(answer.text) == []
        assert card_runs(_store_text(runtime)) == []
    finally:
        runtime.close()


def test_an_outcome_for_a_contact_id_that_looks_like_a_card_number_is_recorded(
    store_url: str,
) -> None:
    """About 1 in 170 of our own contact ids (UUIDs) holds a Luhn-valid stretch of decimal
    digits: its outcome must still be recorded from the push, not wait for the reconcile poll."""
    key = next(
        f"in_probe_{n}" for n in range(5000) if card_runs(contact_id_for(f"stripe:in_probe_{n}", 1))
    )
    client, runtime = _receiver(store_url, FixedClock(START))
    try:
        contact_id = _seed_contact(runtime, key)
        answer = _push(
            client,
            {
                "contactId": contact_id,
                "callAnalysisResult": "ININ-OUTBOUND-NO-ANSWER",
            },
        )
        assert (answer.status_code, answer.json().get("status")) == (200, "recorded")
    finally:
        runtime.close()


def test_not_found_answers_do_not_echo_a_card_number(store_url: str) -> None:
    pan = make_pans(17)[4]
    client, runtime = _receiver(store_url, FixedClock(START))
    try:
        pushed = _push(
            client,
            {
                "contactId": pan,
                "callAnalysisResult": "ININ-OUTBOUND-NO-ANSWER",
            },
        )
        looked_up = client.get(
            f"/admin/cases/stripe:{pan}", headers={"Authorization": f"Bearer {PROBE_ADMIN}"}
        )
        assert (pushed.status_code, looked_up.status_code) == (404, 404)
        assert [card_runs(pushed.text), card_runs(looked_up.text)] == [[], []]
    finally:
        runtime.close()

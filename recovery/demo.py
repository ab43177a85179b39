"""``make demo``: a recovery campaign of three weeks, played in a few minutes on the embedded
default.

Every part starts the way ``recovery serve`` starts it (the real Prefect server, the served flows
on their schedules, the Genesys emulator with the ``mixed`` scenario, the receiver), with time
compressed by settings alone: every process is given the same ``RECOVERY_CLOCK=virtual:...``,
and the schedule intervals, the dial margin and the emulator's dial interval are chosen for
the compression. The demo then posts a campaign of signed Stripe webhooks to the receiver at
their virtual times (failures over the first days, re-deliveries, payments arriving mid-way,
card numbers where none belong), shows progress, and ends with the funnel, in the terminal and
as the Prefect table artifact ``demo-funnel``.

``python -m recovery.demo --help`` lists the knobs; ``--keep`` keeps everything running.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any, TypedDict

import httpx
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from recovery import samples
from recovery.clock import Clock, VirtualClock, parse_clock
from recovery.domain.compliance import CallHistory, CallingRules, load_rules, permitted
from recovery.logging import install_log_scrubbing
from recovery.settings import Settings
from recovery.store.cases import to_view
from recovery.store.tables import CaseRow, ContactRow, DispositionRow, HistoryRow, InboxRow
from recovery.supervisor import Supervisor

DEMO_DIR = Path("data/demo")
SECRET = "whsec_demo_0123456789abcdef"
# One virtual week per real minute: three weeks in three minutes.
DEFAULT_SPEED = 10_080.0
# Friday 4 December 2026, 00:00 in New York: the virtual clock's origin. Starting the parts
# takes half a minute or so, so the campaign itself begins two to four virtual days later and
# runs over Christmas (a public holiday where the rules say so).
VIRTUAL_ORIGIN = datetime(2026, 12, 4, 5, 0, tzinfo=UTC)
ARTIFACT_KEY = "demo-funnel"

# Variables of the caller's shell that would point the demo at another store, server or contact
# centre (the rest, such as an operator's own calling rules, apply to the demo as well).
_FOREIGN_ENV = (
    "RECOVERY_MODE",
    "RECOVERY_DATA_DIR",
    "RECOVERY_DATABASE_URL",
    "RECOVERY_CLOCK",
    "RECOVERY_PREFECT_API_URL",
    "RECOVERY_INGEST_DEPLOYMENT",
    "RECOVERY_GENESYS_REGION",
    "RECOVERY_GENESYS_BASE_URL",
    "RECOVERY_GENESYS_LOGIN_URL",
    "PREFECT_API_URL",
    "PREFECT_HOME",
    "PREFECT_PROFILES_PATH",
    "PREFECT_API_DATABASE_CONNECTION_URL",
    "PREFECT_SERVER_DATABASE_CONNECTION_URL",
)


# --- time compression -----------------------------------------------------------------------


@dataclass(frozen=True)
class Tuning:
    """How the embedded default is set up to play weeks in minutes: settings only.

    ``speed`` is virtual seconds per real second. The advance flow plans a contact only when
    calling stays lawful for the dial margin after its decision, and checks once more (without
    the margin) right before sending it. The margin has to cover, in virtual time, the real
    delay from the decision to the emulator's dial: the rest of the advance run (the rate
    limit, the create-contacts task: 0.2 to 3 s on a busy two-core machine) and one dial
    interval; ``latency_budget`` is that delay in real seconds. Every flow run is a process of
    its own (3 to 6 s before its first line runs on such a machine), so the schedules are as
    short as the runner's four processes sustain, and the flows off the critical path
    (dispositions, reconcile) run seldom to leave them to advance and ingest."""

    speed: float
    advance_interval: int = 3
    dispositions_interval: int = 300
    reconcile_interval: int = 20
    close_on_payment_interval: int = 20
    trigger_bucket: int = 5
    dial_interval: float = 0.05
    latency_budget: float = 2.5
    chunk_size: int = 25
    lease_seconds: int = 30
    # An advance run keeps watching for due cases this long (real seconds), and the runs the
    # schedule starts meanwhile are skipped: cases are taken up as they fall due, not only
    # when a new process has started (3 to 6 s, half a virtual day).
    advance_linger: float = 30.0

    @property
    def dial_margin_minutes(self) -> int:
        return min(600, math.ceil(self.speed * self.latency_budget / 60))

    def env(self) -> dict[str, str]:
        return {
            "RECOVERY_ADVANCE_INTERVAL_SECONDS": str(self.advance_interval),
            "RECOVERY_ADVANCE_LINGER_SECONDS": str(self.advance_linger),
            "RECOVERY_DISPOSITIONS_INTERVAL_SECONDS": str(self.dispositions_interval),
            "RECOVERY_RECONCILE_INTERVAL_SECONDS": str(self.reconcile_interval),
            "RECOVERY_CLOSE_ON_PAYMENT_INTERVAL_SECONDS": str(self.close_on_payment_interval),
            "RECOVERY_TRIGGER_BUCKET_SECONDS": str(self.trigger_bucket),
            "RECOVERY_DIAL_MARGIN_MINUTES": str(self.dial_margin_minutes),
            "RECOVERY_LEASE_SECONDS": str(self.lease_seconds),
            # Small chunks: the contacts of a chunk are sent right after it is decided.
            "RECOVERY_ADVANCE_CHUNK_SIZE": str(self.chunk_size),
            # The runner looks for due runs every 10 s by default: a virtual day.
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        }

    def describe(self) -> str:
        return (
            f"virtual clock x{self.speed:g} (1 virtual day = {86400 / self.speed:.1f} s); "
            f"advance every {self.advance_interval} s, reconcile every "
            f"{self.reconcile_interval} s, emulator dials every {self.dial_interval} s, dial "
            f"margin {self.dial_margin_minutes} virtual min ({self.latency_budget} s real)"
        )


# --- the campaign ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    state: str
    postal_code: str
    area_code: str
    weight: int


# Billing addresses and phones across the US. 208 (Idaho) spans Mountain and Pacific time,
# 850 (Florida panhandle) Eastern and Central, 907 (Alaska) Alaska and Hawaii-Aleutian time;
# when the address and the phone disagree, calling must be lawful in both zones.
PLACES = (
    Place("CA", "94103", "415", 9),
    Place("CA", "90012", "213", 9),
    Place("WA", "98101", "206", 4),
    Place("OR", "97201", "503", 3),
    Place("NV", "89101", "702", 3),
    Place("AZ", "85004", "602", 4),
    Place("CO", "80202", "303", 4),
    Place("UT", "84101", "801", 3),
    Place("ID", "83702", "208", 4),
    Place("ID", "83814", "208", 3),
    Place("TX", "75201", "214", 6),
    Place("TX", "77002", "713", 6),
    Place("TX", "79901", "915", 3),
    Place("IL", "60601", "312", 5),
    Place("MN", "55401", "612", 3),
    Place("FL", "33131", "305", 6),
    Place("FL", "32501", "850", 4),
    Place("FL", "32301", "850", 3),
    Place("GA", "30303", "404", 4),
    Place("NY", "10001", "212", 7),
    Place("MA", "02108", "617", 5),
    Place("RI", "02903", "401", 4),
    Place("PA", "19103", "215", 4),
    Place("MI", "48226", "313", 3),
    Place("AK", "99501", "907", 4),
    Place("HI", "96813", "808", 2),
)

# (Stripe error code, decline code, share): a subscription business's usual mix of declines.
REASONS = (
    ("card_declined", "insufficient_funds", 28),
    ("card_declined", "generic_decline", 12),
    ("card_declined", "do_not_honor", 8),
    ("expired_card", None, 18),
    ("card_declined", "lost_card", 5),
    ("card_declined", "stolen_card", 2),
    ("incorrect_cvc", None, 3),
    ("processing_error", None, 9),
    ("authentication_required", "authentication_required", 10),
    ("card_declined", "try_again_later", 5),
)
PRICES = (900, 1500, 1999, 2900, 4900, 9900, 14900)
FIRST_NAMES = ("Ana", "Ben", "Chloe", "Dev", "Elena", "Femi", "Grace", "Hiro", "Ines", "Jon")
LAST_NAMES = ("Alvarez", "Brooks", "Chen", "Diallo", "Evans", "Fischer", "Garcia", "Hughes")
# Stripe's published test card numbers: the receiver must strip them wherever they appear.
TEST_PANS = ("4242 4242 4242 4242", "5555-5555-5555-4444", "378282246310005")


@dataclass(frozen=True)
class Delivery:
    """One webhook, posted once the virtual clock reaches ``at``."""

    at: datetime
    event: dict[str, Any]
    kind: str  # failure | redelivery | success


@dataclass
class CampaignPlan:
    deliveries: list[Delivery]
    payments: int
    paid_on_their_own: int
    paid_before_failure_arrived: int
    with_card_number: int
    invalid_phone: int


class _Where(TypedDict):
    phone: str
    state: str
    postal_code: str


@dataclass(frozen=True)
class _Payment:
    number: int
    customer: str
    name: str
    place: Place
    phone: str
    code: str
    decline: str | None
    amount: int
    failed_at: datetime

    @property
    def invoice(self) -> str:
        return f"in_demo{self.number:04d}"

    @property
    def intent(self) -> str:
        return f"pi_demo{self.number:04d}"

    def where(self) -> _Where:
        return {
            "phone": self.phone,
            "state": self.place.state,
            "postal_code": self.place.postal_code,
        }


def _failure_events(p: _Payment, shape: float) -> list[dict[str, Any]]:
    """The events Stripe sends about one failed payment, oldest first."""
    tag = f"evt_demo{p.number:04d}"
    if shape >= 0.8:
        # A one-off charge (an upgrade, an add-on): no invoice; the intent is the payment.
        return [
            samples.intent_failed(
                event_id=f"{tag}_pi",
                intent_id=p.intent,
                created=p.failed_at,
                code=p.code,
                decline_code=p.decline,
                amount=p.amount,
                customer=p.customer,
                **p.where(),
            )
        ]
    # A renewal: the payment intent (or, on older integrations, the charge) fails with the
    # decline reason, and the invoice's failure follows.
    if shape < 0.6:
        detail = samples.intent_failed(
            event_id=f"{tag}_pi",
            intent_id=p.intent,
            invoice_id=p.invoice,
            created=p.failed_at,
            code=p.code,
            decline_code=p.decline,
            amount=p.amount,
            customer=p.customer,
            **p.where(),
        )
    else:
        detail = samples.charge_event(
            event_id=f"{tag}_ch",
            charge_id=f"ch_demo{p.number:04d}",
            created=p.failed_at,
            invoice_id=p.invoice,
            intent_id=p.intent,
            failure_code=p.code,
            amount=p.amount,
            **p.where(),
        )
        detail["data"]["object"]["outcome"]["reason"] = p.decline or p.code
    invoice = samples.invoice_failed(
        event_id=f"{tag}_inv",
        invoice_id=p.invoice,
        created=p.failed_at + timedelta(seconds=2),
        customer=p.customer,
        amount_due=p.amount,
        name=p.name,
        **p.where(),
    )
    return [detail, invoice]


def _success_event(p: _Payment, *, renewal: bool, at: datetime) -> dict[str, Any]:
    if renewal:
        return samples.invoice_failed(
            event_id=f"evt_demo{p.number:04d}_paid",
            invoice_id=p.invoice,
            created=at,
            customer=p.customer,
            amount_due=p.amount,
            event_type="invoice.paid",
            **p.where(),
        )
    event = samples.intent_failed(
        event_id=f"evt_demo{p.number:04d}_paid",
        intent_id=p.intent,
        created=at,
        amount=p.amount,
        customer=p.customer,
        **p.where(),
    )
    event["type"] = "payment_intent.succeeded"
    event["data"]["object"].update(status="succeeded", last_payment_error=None)
    return event


def build_campaign(
    *, payments: int, start: datetime, spread: timedelta, rng: random.Random
) -> CampaignPlan:
    """The webhooks of ``payments`` failed payments spread over ``spread`` from ``start``, in
    the shapes Stripe sends them, with re-deliveries and some payments arriving later."""
    plan = CampaignPlan([], payments, 0, 0, 0, 0)
    used: Counter[str] = Counter()
    customers: list[tuple[str, str, Place, str]] = []
    for i in range(payments):
        if customers and rng.random() < 0.06:
            # A second subscription of a customer: the same number, a case of its own.
            customer, name, place, phone = rng.choice(customers)
        else:
            place = rng.choices(PLACES, weights=[p.weight for p in PLACES], k=1)[0]
            used[place.area_code] += 1
            # 555-0100 to 555-0199: numbers reserved for fiction.
            phone = f"+1{place.area_code}55501{used[place.area_code] % 100:02d}"
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            customer = f"cus_demo{i:04d}"
            customers.append((customer, name, place, phone))
        code, decline, _ = rng.choices(REASONS, weights=[r[2] for r in REASONS], k=1)[0]
        if i % 97 == 13:
            phone = "+1 555 0100"  # too short: the case opens closed as unreachable
            plan.invalid_phone += 1
        payment = _Payment(
            number=i,
            customer=customer,
            name=name,
            place=place,
            phone=phone,
            code=code,
            decline=decline,
            amount=rng.choice(PRICES),
            failed_at=start + spread * rng.random(),
        )
        shape = rng.random()
        events = _failure_events(payment, shape)
        if i % 41 == 7:
            # A card number typed where none belongs: the receiver replaces it on arrival.
            obj = events[-1]["data"]["object"]
            pan = TEST_PANS[plan.with_card_number % len(TEST_PANS)]
            if "customer_name" in obj:
                obj["customer_name"] = f"{payment.name} {pan}"
            else:
                obj["metadata"] = {"note": f"customer read out card {pan} to the agent"}
            plan.with_card_number += 1
        early_success = i % 53 == 11
        for event in events:
            at = datetime.fromtimestamp(event["created"], UTC)
            if early_success:
                at += timedelta(minutes=30)  # held up in transit: the success overtakes it
            plan.deliveries.append(Delivery(at, event, "failure"))
            if rng.random() < 0.15:
                # Stripe delivers at least once: some events come again, minutes later.
                again = at + timedelta(minutes=rng.uniform(1, 90))
                plan.deliveries.append(Delivery(again, event, "redelivery"))
        if early_success:
            # The gateway's own retry succeeded minutes later, and its success arrives first:
            # the older failure must not open a case.
            paid_at = payment.failed_at + timedelta(minutes=10)
            plan.paid_before_failure_arrived += 1
        elif rng.random() < 0.14:
            # The customer pays on their own (a gateway retry, a new card in the portal).
            paid_at = payment.failed_at + timedelta(hours=rng.uniform(2, 10 * 24))
            plan.paid_on_their_own += 1
        else:
            continue
        success = _success_event(payment, renewal=shape < 0.8, at=paid_at)
        plan.deliveries.append(Delivery(paid_at, success, "success"))
    plan.deliveries.sort(key=lambda d: d.at)
    return plan


class Feeder:
    """Posts each delivery to the receiver once the virtual clock reaches its time."""

    def __init__(self, plan: CampaignPlan, *, receiver: str, clock: Clock) -> None:
        self.plan = plan
        self.receiver = receiver
        self.clock = clock
        self.posted = 0
        self.kinds: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-feeder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        pending = list(self.plan.deliveries)
        with (
            httpx.Client(base_url=self.receiver, timeout=15) as client,
            ThreadPoolExecutor(max_workers=6) as pool,
        ):
            while pending and not self._stop.is_set():
                now = self.clock.now()
                due = 0
                while due < len(pending) and pending[due].at <= now:
                    due += 1
                if not due:
                    self._stop.wait(0.05)
                    continue
                batch, pending = pending[:due], pending[due:]
                for answer in pool.map(lambda d: self._post(client, d), batch):
                    self.answers[answer] += 1
                self.kinds.update(d.kind for d in batch)
                self.posted += len(batch)

    def _post(self, client: httpx.Client, delivery: Delivery) -> str:
        # Stripe signs with the wall clock, and the receiver checks it against the wall clock.
        body, header = samples.signed(delivery.event, SECRET)
        headers = {"Stripe-Signature": header, "Content-Type": "application/json"}
        for attempt in range(1, 6):
            try:
                response = client.post("/webhooks/stripe", content=body, headers=headers)
                if response.status_code < 500:
                    status = response.json().get("status", "")
                    return f"{response.status_code} {status}".strip()
            except httpx.HTTPError:
                pass
            if self._stop.wait(0.2 * attempt):
                break
        return "not delivered"


# --- reading the store and the emulator -----------------------------------------------------


def read_only_engine(database_url: str) -> Engine:
    """The demo only reads the store: a read-only connection never takes SQLite's write lock
    away from the receiver and the flows."""
    path = Path(database_url.removeprefix("sqlite:///")).resolve()
    return create_engine(
        f"sqlite:///file:{path}?mode=ro&uri=true", connect_args={"check_same_thread": False}
    )


def emulator_counters(emulator: str) -> dict[str, int]:
    try:
        counters: dict[str, int] = httpx.get(f"{emulator}/__emulator__/counters", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return counters


@dataclass
class Snapshot:
    at: datetime
    statuses: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    contacts: int = 0
    dispositions: int = 0
    counters: dict[str, int] = field(default_factory=dict)


def take_snapshot(engine: Engine, emulator: str, at: datetime) -> Snapshot:
    snap = Snapshot(at=at)
    with Session(engine) as session:
        rows = session.execute(
            select(CaseRow.status, CaseRow.outcome, func.count()).group_by(
                CaseRow.status, CaseRow.outcome
            )
        )
        for status, outcome, count in rows:
            snap.statuses[status] += count
            if outcome:
                snap.outcomes[outcome] += count
        created = select(func.count()).where(ContactRow.created_at.is_not(None))
        snap.contacts = int(session.scalar(created) or 0)
        snap.dispositions = int(
            session.scalar(select(func.count()).select_from(DispositionRow)) or 0
        )
    snap.counters = emulator_counters(emulator)
    return snap


# --- the funnel -----------------------------------------------------------------------------

_JURISDICTION = r"(US(?:-[A-Z]{2})?)"
_RULES = (
    (re.compile(rf"^{_JURISDICTION} hours "), "outside calling hours"),
    (re.compile(rf"^{_JURISDICTION} no calls on public holidays"), "public holiday"),
    (re.compile(rf"^{_JURISDICTION} no calls on "), "no calls that weekday"),
    (re.compile(rf"^{_JURISDICTION} cap (\d+) attempts per rolling (\S+):"), "attempt cap"),
    (re.compile(rf"^{_JURISDICTION} no call within (\S+) after a conversation"), "cool-down"),
)
_MARGIN = re.compile(r"the window closes within the \d+ min dial margin")
_WITHDRAWN = "withdrawn before it was sent: not permitted now: "


def compliance_reason(reason: str) -> str | None:
    """A decision reason that names a calling rule, as '<rule> (<jurisdiction>)'; else None."""
    for pattern, label in _RULES:
        found = pattern.match(reason)
        if found is None:
            continue
        if label == "attempt cap":
            return f"cap of {found.group(2)} calls per {found.group(3)} ({found.group(1)})"
        if label == "cool-down":
            return f"{found.group(2)} after a conversation ({found.group(1)})"
        return f"{label} ({found.group(1)})"
    if _MARGIN.search(reason):
        return "window closes within the dial margin"
    return None


@dataclass
class Funnel:
    """What the campaign came to, as (section, measure, value) rows."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)
    cases: int = 0
    recovered: int = 0
    refused_outside_window: int = 0
    dialled_outside_rules: int = 0

    def add(self, section: str, measure: str, value: object) -> None:
        self.rows.append((section, measure, str(value)))


def _share(part: int, whole: int) -> str:
    return f"{part} ({100 * part / whole:.0f}%)" if whole else str(part)


def _quantiles(values: Sequence[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return f"{statistics.median(ordered):.2f} / {p95:.2f} / {ordered[-1]:.2f}"


def build_funnel(
    *,
    engine: Engine,
    counters: dict[str, int],
    feeder: Feeder,
    tuning: Tuning,
    rules: CallingRules,
    started: datetime,
    ended: datetime,
) -> Funnel:
    """The funnel from the store (cases, their history, contacts, outcomes) and the emulator."""
    with Session(engine) as session:
        cases = list(session.scalars(select(CaseRow)))
        dispositions = list(session.scalars(select(DispositionRow)))
        contacts = list(session.scalars(select(ContactRow)))
        history = list(
            session.scalars(
                select(HistoryRow).where(
                    HistoryRow.kind.in_(("decision", "note", "payment_succeeded"))
                )
            )
        )
        inbox_rows = int(session.scalar(select(func.count()).select_from(InboxRow)) or 0)
        redacted = int(session.scalar(select(func.count()).where(InboxRow.pan_redacted)) or 0)
    funnel = Funnel(cases=len(cases))
    funnel.refused_outside_window = int(counters.get("refused_outside_window", 0))
    by_case: dict[int, list[DispositionRow]] = defaultdict(list)
    for outcome in dispositions:
        if outcome.case_id is not None:
            by_case[outcome.case_id].append(outcome)
    n = len(cases)

    days = (ended - started).total_seconds() / 86400
    section = "intake"
    funnel.add(
        section,
        "virtual period",
        f"{started:%a %d %b %H:%M} - {ended:%a %d %b %H:%M} UTC, {days:.1f} days",
    )
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(feeder.kinds.items()))
    funnel.add(section, "signed webhooks posted", f"{feeder.posted} ({kinds or '-'})")
    for answer, count in sorted(feeder.answers.items()):
        funnel.add(section, f"  answered {answer}", count)
    funnel.add(section, "inbox rows (one per event)", inbox_rows)
    funnel.add(section, "events with a card number replaced", redacted)

    section = "funnel"
    spoke = {c for c, found in by_case.items() if any(d.right_party for d in found)}
    promised = {
        c for c, found in by_case.items() if any(d.disposition == "promise_to_pay" for d in found)
    }
    recovered = [c for c in cases if c.outcome == "recovered"]
    by_payment = {h.case_id for h in history if h.kind == "payment_succeeded"}
    funnel.recovered = len(recovered)
    funnel.add(section, "cases opened", n)
    funnel.add(
        section, "reachable (a valid phone)", _share(sum(bool(c.phone_e164) for c in cases), n)
    )
    funnel.add(
        section, "contacted (queued for a call)", _share(sum(c.contacts_made > 0 for c in cases), n)
    )
    funnel.add(section, "dialled (an outcome recorded)", _share(len(by_case), n))
    funnel.add(section, "right-party contact", _share(len(spoke), n))
    funnel.add(section, "promised to pay", _share(len(promised), n))
    funnel.add(section, "recovered", _share(len(recovered), n))
    on_call = sum(c.id not in by_payment for c in recovered)
    funnel.add(section, "  on the call (paid, card updated)", on_call)
    funnel.add(section, "  by a payment event", len(recovered) - on_call)

    section = "amounts"
    failed: dict[str, Decimal] = defaultdict(Decimal)
    won: dict[str, Decimal] = defaultdict(Decimal)
    for case in cases:
        if case.amount is None:
            continue
        currency = (case.currency or "?").upper()
        failed[currency] += case.amount
        if case.outcome == "recovered":
            won[currency] += case.amount
    for currency in sorted(failed):
        funnel.add(
            section,
            f"recovered {currency}",
            f"{won[currency]:,.2f} of {failed[currency]:,.2f}",
        )

    section = "compliance"
    waits: Counter[str] = Counter()
    waited: dict[str, set[int]] = defaultdict(set)
    withdrawn: Counter[str] = Counter()
    for entry in history:
        reasons = [str(r) for r in (entry.reasons or [])]
        if entry.kind == "note":
            for reason in reasons:
                if _WITHDRAWN in reason:
                    parts = reason.split(_WITHDRAWN, 1)[1].split("; ")
                    for label in {compliance_reason(p) for p in parts} - {None}:
                        withdrawn[str(label)] += 1
        elif entry.kind == "decision" and (entry.data or {}).get("action") != "contact":
            for label in {compliance_reason(r) for r in reasons} - {None}:
                waits[str(label)] += 1
                waited[str(label)].add(entry.case_id)
    for label, count in waits.most_common():
        funnel.add(section, f"waited: {label}", f"{len(waited[label])} cases, {count} decisions")
    for label, count in withdrawn.most_common():
        funnel.add(section, f"withdrawn at dispatch: {label}", f"{count} contacts")
    if not waits and not withdrawn:
        funnel.add(section, "waited", "never")

    section = "closed"
    for outcome_name, count in Counter(c.outcome for c in cases if c.outcome).most_common():
        funnel.add(section, str(outcome_name), _share(count, n))
    for status, count in Counter(c.status for c in cases if c.status != "closed").most_common():
        funnel.add("still open", status, count)
    funnel.add(
        "still open", "flagged for review (any status)", sum(c.flagged_for_review for c in cases)
    )

    section = "contact centre"
    created = {c.contact_id: c for c in contacts if c.created_at is not None}
    funnel.add(section, "contacts created", len(created))
    outcomes = Counter(d.disposition for d in dispositions)
    funnel.add(section, "outcomes", ", ".join(f"{k} {v}" for k, v in outcomes.most_common()) or "-")
    pushed = sum(d.source == "push" for d in dispositions)
    funnel.add(
        section, "outcomes by push / by reconcile", f"{pushed} / {len(dispositions) - pushed}"
    )
    # From the decision to plan a contact to its dial, in real seconds: the dial margin
    # (virtual) has to cover it.
    lags = [
        (d.occurred_at - created[d.contact_id].requested_at).total_seconds() / tuning.speed
        for d in dispositions
        if d.contact_id in created
    ]
    if lags:
        funnel.add(
            section,
            "decision to dial, real s (median / p95 / max)",
            f"{_quantiles(lags)} (margin covers {tuning.latency_budget})",
        )
    for name in ("dials", "on_dnc_list", "pushes_sent", "pushes_failed", "rate_limited"):
        funnel.add(section, f"emulator: {name.replace('_', ' ')}", counters.get(name, 0))
    funnel.add(section, "emulator: refused outside the window", funnel.refused_outside_window)
    # The emulator knows only 08:00-21:00; the calling rules are stricter in some states
    # (Florida ends at 20:00, Rhode Island at 18:00, ...): check every dial against them.
    by_id = {c.id: c for c in cases}
    contact_case = {c.contact_id: c.case_id for c in contacts}
    funnel.dialled_outside_rules = sum(
        not permitted(
            to_view(by_id[contact_case[d.contact_id]]).contact, CallHistory(), d.occurred_at, rules
        ).permitted
        for d in dispositions
        if d.contact_id in contact_case
    )
    funnel.add(section, "dialled outside the calling rules' hours", funnel.dialled_outside_rules)
    return funnel


def print_funnel(console: Console, funnel: Funnel) -> None:
    table = Table(title="The campaign's funnel", title_justify="left")
    table.add_column("", style="dim")
    table.add_column("measure")
    table.add_column("value", justify="right")
    previous = None
    for section, measure, value in funnel.rows:
        table.add_row(section if section != previous else "", measure, value)
        previous = section
    console.print(table)


def publish_funnel(api_url: str, funnel: Funnel) -> str:
    """The funnel as the table artifact ``demo-funnel`` on the demo's Prefect server, over
    Prefect's REST API (as the receiver starts runs: the library imports no Prefect); its id."""
    body = {
        "key": ARTIFACT_KEY,
        "type": "table",
        "description": (
            f"Payment-recovery demo: {funnel.cases} cases, {funnel.recovered} recovered, "
            f"{funnel.refused_outside_window} dials refused outside the calling window, "
            f"{funnel.dialled_outside_rules} outside the calling rules' hours"
        ),
        "data": json.dumps(
            [{"section": s, "measure": m.strip(), "value": v} for s, m, v in funnel.rows]
        ),
    }
    response = httpx.post(f"{api_url}/artifacts/", json=body, timeout=30)
    response.raise_for_status()
    return str(response.json()["id"])


# --- progress -------------------------------------------------------------------------------


def render_progress(
    snap: Snapshot, *, start: datetime, days: float, feeder: Feeder
) -> RenderableType:
    elapsed = min(days, max(0.0, (snap.at - start).total_seconds() / 86400))
    head = Table.grid(padding=(0, 1))
    head.add_row(
        Text(f"{snap.at:%a %d %b %Y %H:%M} UTC", style="bold"),
        ProgressBar(total=days, completed=elapsed, width=30),
        Text(f"day {elapsed:4.1f} of {days:g}"),
    )
    waiting = ", ".join(f"{k} {v}" for k, v in sorted(snap.statuses.items()) if k != "closed")
    closed = ", ".join(f"{k} {v}" for k, v in snap.outcomes.most_common()) or "-"
    refused = snap.counters.get("refused_outside_window", 0)
    return Group(
        head,
        Text(f"webhooks {feeder.posted} of {len(feeder.plan.deliveries)}"),
        Text(f"cases {sum(snap.statuses.values())}: {waiting or '-'}"),
        Text(
            f"contacts created {snap.contacts}, dialled {snap.counters.get('dials', 0)}, "
            f"outcomes recorded {snap.dispositions}"
        ),
        Text(f"closed: {closed}"),
        Text(
            f"dials refused outside the calling window: {refused}",
            style="bold red" if refused else "green",
        ),
    )


def plain_progress(snap: Snapshot, *, start: datetime, feeder: Feeder) -> str:
    elapsed = (snap.at - start).total_seconds() / 86400
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(snap.statuses.items())) or "-"
    return (
        f"day {elapsed:4.1f} {snap.at:%a %d %b %H:%M} UTC: webhooks {feeder.posted}; "
        f"cases {sum(snap.statuses.values())} ({statuses}); contacts {snap.contacts}; "
        f"outcomes {snap.dispositions}; recovered {snap.outcomes.get('recovered', 0)}; "
        f"refused {snap.counters.get('refused_outside_window', 0)}"
    )


# --- running it -----------------------------------------------------------------------------

DEPLOYMENTS = (
    "ingest/ingest",
    "advance/advance",
    "dispositions/dispositions",
    "close-on-payment/close-on-payment",
    "reconcile/reconcile",
    "review-queue/review-queue",
)


def wait_for_deployments(api_url: str, names: Sequence[str], *, timeout: float) -> None:
    """Wait until the served flows have registered their deployments, so that the first
    webhooks' ingest trigger finds its deployment."""
    deadline = time.monotonic() + timeout
    missing = list(names)
    with httpx.Client(base_url=api_url, timeout=5) as client:
        while missing:
            try:
                if client.get(f"/deployments/name/{missing[0]}").status_code == 200:
                    missing.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"deployments not served after {timeout:.0f} s: {missing}")
            time.sleep(0.3)


def wait_for_first_run(api_url: str, *, timeout: float) -> None:
    """Wait until the runner has completed a flow run: the flows are warm, the campaign may
    begin."""
    deadline = time.monotonic() + timeout
    query = {"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}
    with httpx.Client(base_url=api_url, timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                if int(client.post("/flow_runs/count", json=query).json()) > 0:
                    return
            except (httpx.HTTPError, ValueError, TypeError):
                pass
            time.sleep(0.5)
    raise RuntimeError(f"no flow run completed within {timeout:.0f} s; see the flows log")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DemoResult:
    funnel: Funnel
    prefect_ui: str
    artifact_id: str | None
    exit_code: int


@contextmanager
def _embedded(
    settings: Settings, env: dict[str, str], tuning: Tuning, say: Callable[[str], None]
) -> Iterator[Supervisor]:
    from recovery.serve import run_embedded

    supervisor = run_embedded(
        settings,
        env=env,
        prefect_port=free_port(),
        with_emulator=True,
        emulator_port=free_port(),
        scenario="mixed",
        dial_interval=tuning.dial_interval,
        say=say,
        block=False,
    )
    if not supervisor.parts:
        # Ctrl-C while starting: run_embedded has stopped what it started.
        raise KeyboardInterrupt
    try:
        yield supervisor
    finally:
        say("stopping every part")
        supervisor.stop()


def _environment(data: Path, clock_spec: str, api_port: int, tuning: Tuning) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env.update(
        {
            "RECOVERY_DATA_DIR": str(data),
            "RECOVERY_CLOCK": clock_spec,
            "RECOVERY_API_HOST": "127.0.0.1",
            "RECOVERY_API_PORT": str(api_port),
            "RECOVERY_STRIPE_WEBHOOK_SECRETS": SECRET,
            **tuning.env(),
        }
    )
    return env


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(
    *,
    payments: int = 240,
    days: float = 21.0,
    failure_days: float = 4.0,
    speed: float = DEFAULT_SPEED,
    keep: bool = False,
    seed: int = 7,
    data_dir: Path = DEMO_DIR,
    console: Console | None = None,
) -> DemoResult:
    """Set up a fresh ``data_dir``, start the embedded default on a virtual clock, play the
    campaign for ``days`` virtual days, print and publish the funnel, and stop everything
    (after Ctrl-C when ``keep``)."""
    console = console or Console()
    install_log_scrubbing()
    began = time.monotonic()
    tuning = Tuning(speed=speed)
    data = data_dir.resolve()
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    clock_spec = f"virtual:{VIRTUAL_ORIGIN.isoformat()}@{speed:g}"
    api_port = free_port()
    env = _environment(data, clock_spec, api_port, tuning)
    settings = Settings(
        mode="development",
        data_dir=data,
        database_url=f"sqlite:///{(data / 'recovery.db').as_posix()}",
        clock=clock_spec,
        api_host="127.0.0.1",
        api_port=api_port,
    )
    console.rule("payment recovery: a three-week campaign on the embedded default")
    console.print(tuning.describe(), highlight=False)

    def say(line: str) -> None:
        console.print(line, highlight=False)

    with _embedded(settings, env, tuning, say) as supervisor:
        api_url = supervisor.env["PREFECT_API_URL"]
        ui = api_url.removesuffix("/api")
        emulator = supervisor.env["RECOVERY_GENESYS_BASE_URL"]
        wait_for_deployments(api_url, DEPLOYMENTS, timeout=120)
        wait_for_first_run(api_url, timeout=120)
        clock = parse_clock(clock_spec, data)
        assert isinstance(clock, VirtualClock)
        start = clock.now()
        end = start + timedelta(days=days)
        plan = build_campaign(
            payments=payments,
            start=start,
            spread=timedelta(days=failure_days),
            rng=random.Random(seed),
        )
        say(
            f"campaign: {plan.payments} failed payments over {failure_days:g} virtual days "
            f"from {start:%a %d %b %H:%M} UTC, {len(plan.deliveries)} webhooks (re-deliveries "
            f"included); {plan.paid_on_their_own} customers pay on their own, "
            f"{plan.paid_before_failure_arrived} successes overtake their failure, "
            f"{plan.with_card_number} events carry a card number, {plan.invalid_phone} an "
            "invalid phone"
        )
        engine = read_only_engine(settings.database_url)
        feeder = Feeder(plan, receiver=f"http://127.0.0.1:{api_port}", clock=clock)
        feeder.start()
        try:
            _watch(console, supervisor, engine, emulator, clock, start, end, days, feeder)
        finally:
            feeder.stop()
        funnel = build_funnel(
            engine=engine,
            counters=emulator_counters(emulator),
            feeder=feeder,
            tuning=tuning,
            rules=load_rules(settings.calling_rules_file, settings.calling_rules_profile),
            started=start,
            ended=clock.now(),
        )
        engine.dispose()
        print_funnel(console, funnel)
        artifact_id: str | None = None
        try:
            artifact_id = publish_funnel(api_url, funnel)
            say(f"published as the Prefect table artifact '{ARTIFACT_KEY}'")
        except httpx.HTTPError as exc:
            console.print(f"[red]could not publish the funnel artifact: {exc}[/red]")
        refused = funnel.refused_outside_window
        breaches = funnel.dialled_outside_rules
        for count, what in (
            (refused, "dials the emulator refused outside 08:00-21:00 local time"),
            (breaches, "dials outside the calling rules' hours (the store's own check)"),
        ):
            style = "bold black on green" if count == 0 else "bold white on red"
            console.print(Text(f"  {what}: {count}  ", style=style))
        say(f"Prefect UI: {ui}/runs (flow runs), {ui}/artifacts/key/{ARTIFACT_KEY} (funnel)")
        if keep:
            say("everything keeps running, the virtual clock too; Ctrl-C stops it all")
            try:
                supervisor.wait()
            except KeyboardInterrupt:
                pass
        else:
            say(
                "the Prefect server (and its UI) stops with the demo; "
                "`python -m recovery.demo --keep` keeps everything running until Ctrl-C"
            )
    exit_code = 0
    if refused or breaches:
        exit_code = 1
        console.print(
            f"[bold red]{refused + breaches} dials fell outside the calling window: the demo "
            "fails (too busy a machine for this speed? try --speed 5040)[/bold red]"
        )
    say(
        f"store {data / 'recovery.db'}, logs {data / 'logs'}; "
        f"{time.monotonic() - began:.0f} s in all"
    )
    return DemoResult(funnel, ui, artifact_id, exit_code)


def _watch(
    console: Console,
    supervisor: Supervisor,
    engine: Engine,
    emulator: str,
    clock: VirtualClock,
    start: datetime,
    end: datetime,
    days: float,
    feeder: Feeder,
) -> None:
    """Show progress until the virtual clock reaches ``end``; stop early if a part dies."""

    def check_parts() -> None:
        for part in supervisor.parts:
            if part.process is not None and part.process.poll() is not None:
                raise RuntimeError(f"{part.name} exited; see {part.log_file}")

    if console.is_terminal:
        snap = take_snapshot(engine, emulator, clock.now())
        view = render_progress(snap, start=start, days=days, feeder=feeder)
        with Live(view, console=console, refresh_per_second=4) as live:
            while clock.now() < end:
                check_parts()
                snap = take_snapshot(engine, emulator, clock.now())
                live.update(render_progress(snap, start=start, days=days, feeder=feeder))
                time.sleep(0.5)
        return
    next_report = start
    while clock.now() < end:
        check_parts()
        if clock.now() >= next_report:
            snap = take_snapshot(engine, emulator, clock.now())
            console.print(plain_progress(snap, start=start, feeder=feeder), highlight=False)
            next_report += timedelta(days=1)
        time.sleep(0.25)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recovery.demo",
        description="Play a three-week payment-recovery campaign in a few minutes.",
    )
    parser.add_argument("--payments", type=int, default=240, help="failed payments (240)")
    parser.add_argument("--days", type=float, default=21.0, help="virtual days to play (21)")
    parser.add_argument(
        "--failure-days", type=float, default=4.0, help="virtual days the failures span (4)"
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=DEFAULT_SPEED,
        help=f"virtual seconds per real second ({DEFAULT_SPEED:g}: a week a minute)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the campaign (7)")
    parser.add_argument(
        "--keep", action="store_true", help="keep everything running after the funnel"
    )
    args = parser.parse_args(argv)
    if args.payments < 1 or args.days <= 0 or not 0 < args.failure_days <= args.days:
        parser.error("need --payments >= 1 and 0 < --failure-days <= --days")
    if args.speed <= 0:
        parser.error("--speed must be positive")
    # A closed terminal stops everything, as Ctrl-C does (run_embedded does so for SIGTERM).
    signal.signal(signal.SIGHUP, _interrupt)
    # Piped output gets a width that fits the funnel rather than rich's 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=110)
    try:
        result = run(
            payments=args.payments,
            days=args.days,
            failure_days=args.failure_days,
            speed=args.speed,
            keep=args.keep,
            seed=args.seed,
            console=console,
        )
    except KeyboardInterrupt:
        console.print("interrupted: every part is stopped")
        return 130
    except RuntimeError as exc:
        console.print(f"[red]the demo failed: {exc}[/red]")
        return 1
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())

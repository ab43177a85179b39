"""Support for the advance crash and concurrency tests and the sequence benchmark: due cases
created straight in the store, advance workers as real OS processes, the emulator in a thread,
and the invariants a run must keep however often its workers die."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.clock import Clock
from recovery.contact_center.contacts import contact_id_for
from recovery.contact_center.emulator.app import create_emulator_app
from recovery.contact_center.emulator.server import serve_in_thread
from recovery.contact_center.emulator.state import EmulatorConfig
from recovery.domain.models import (
    ContactPoint,
    FailureCategory,
    Gateway,
    PaymentFailure,
)
from recovery.store.cases import apply_failure, case_key
from recovery.store.db import transaction
from recovery.store.tables import CaseRow, ContactRow, HistoryRow

REPO = Path(__file__).resolve().parents[2]

# Tuesday 1 December 2026, 13:00 in New York and 10:00 in Los Angeles: calling is lawful in
# every zone the seeded cases live in, for hours (well beyond the dial margin).
CALLABLE_INSTANT = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)

# (state, area code, postal code): several zones and state rules, each number its own.
PLACES = (
    ("CA", "415", "94103"),
    ("NY", "212", "10001"),
    ("TX", "512", "78701"),
    ("IL", "312", "60601"),
    ("CO", "303", "80202"),
)

CLIENT_ID = "advance-test-client"
CLIENT_SECRET = "advance-test-secret-0123456789"
CONTACT_LIST = "recovery-contacts"
DNC_LIST = "recovery-dnc"


def due_failure(index: int, at: datetime, prefix: str) -> PaymentFailure:
    """An expired-card failure at ``at`` (first call at the first lawful instant)."""
    state, area, postal = PLACES[index % len(PLACES)]
    return PaymentFailure(
        gateway=Gateway.stripe,
        event_id=f"evt_{prefix}_{index:07d}",
        event_type="payment_intent.payment_failed",
        business_key=f"{prefix}_{index:07d}",
        customer_ref=f"cus_{prefix}_{index:07d}",
        contact=ContactPoint(
            phone_e164=f"+1{area}{2_000_000 + index:07d}",
            country="US",
            state=state,
            postal_code=postal,
        ),
        failure_code="card_declined",
        decline_code="expired_card",
        amount=Decimal("49.00"),
        currency="usd",
        occurred_at=at,
    )


def seed_due_cases(
    sessions: sessionmaker[Session],
    *,
    count: int,
    at: datetime,
    prefix: str = "in_due",
    start: int = 0,
    per_transaction: int = 1000,
) -> list[str]:
    """Open ``count`` cases due at ``at`` with the store's own repository function; their keys."""
    keys: list[str] = []
    for first in range(start, start + count, per_transaction):
        last = min(first + per_transaction, start + count)
        with transaction(sessions) as session:
            for index in range(first, last):
                result = apply_failure(
                    session=session,
                    failure=due_failure(index, at, prefix),
                    category=FailureCategory.card_expired,
                    category_reason="expired_card",
                    now=at,
                )
                assert result.action == "opened" and result.key is not None, result
                keys.append(result.key)
    return keys


# -- the emulator ---------------------------------------------------------------------------


@dataclass
class Emulator:
    """The emulator served on loopback, driven through its control API."""

    url: str
    http: httpx.Client

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, f"{self.url}/__emulator__/{path}", json=body)
        response.raise_for_status()
        return response.json()

    def counters(self) -> dict[str, int]:
        found: dict[str, int] = self.control("GET", "counters")
        return found

    def contacts(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.control("GET", f"contact-lists/{CONTACT_LIST}/contacts")
        return found

    def fault(self, *, status: int, apply: bool, delay_seconds: float, count: int = 1) -> None:
        self.control(
            "POST",
            "faults",
            {"status": status, "apply": apply, "delay_seconds": delay_seconds, "count": count},
        )

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")


@contextmanager
def running_emulator(clock: Clock, *, requests_per_minute: int | None = None) -> Iterator[Emulator]:
    """The emulator in a thread of this process (no dialer: nothing is called back)."""
    config = EmulatorConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        contact_lists=[CONTACT_LIST],
        dnc_lists=[DNC_LIST],
        requests_per_minute=requests_per_minute,
        dial_interval_seconds=None,
    )
    app = create_emulator_app(config, clock=clock)
    with serve_in_thread(app) as url, httpx.Client(timeout=30) as http:
        yield Emulator(url=url, http=http)


# -- worker processes -----------------------------------------------------------------------


def worker_env(
    *,
    store_url: str,
    clock_file: Path,
    emulator_url: str,
    data_dir: Path,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a worker process: this machine's, minus any project or Prefect
    settings, plus the shared store, clock and emulator."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("RECOVERY_", "PREFECT_"))
    }
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "RECOVERY_DATABASE_URL": store_url,
            "RECOVERY_DATA_DIR": str(data_dir),
            "RECOVERY_CLOCK": f"file:{clock_file}",
            "RECOVERY_GENESYS_REGION": "emulator",
            "RECOVERY_GENESYS_BASE_URL": emulator_url,
            "RECOVERY_GENESYS_CLIENT_ID": CLIENT_ID,
            "RECOVERY_GENESYS_CLIENT_SECRET": CLIENT_SECRET,
            "RECOVERY_GENESYS_CONTACT_LIST_ID": CONTACT_LIST,
            "RECOVERY_GENESYS_DNC_LIST_ID": DNC_LIST,
            **(extra or {}),
        }
    )
    return env


@dataclass
class Worker:
    """One advance worker process (``tests/support/advance_worker.py``)."""

    name: str
    process: subprocess.Popen[str]
    log_path: Path
    summary: dict[str, Any] | None = None

    @classmethod
    def start(
        cls, name: str, env: Mapping[str, str], *, cwd: Path, go_file: Path | None = None
    ) -> Worker:
        argv = [sys.executable, "-m", "tests.support.advance_worker", "--name", name]
        if go_file is not None:
            argv += ["--go", str(go_file)]
        log_path = cwd / f"worker-{name}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                argv, env=dict(env), cwd=cwd, stdout=subprocess.PIPE, stderr=log, text=True
            )
        return cls(name=name, process=process, log_path=log_path)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the worker has imported everything and built its runtime."""
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            line = self.process.stdout.readline() if selector.select(timeout) else ""
        if line.strip() != "ready":
            raise RuntimeError(f"worker {self.name} did not start: {line!r}\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> bool:
        """SIGKILL: no cleanup, no last commit. True when it was still running."""
        was_alive = self.alive()
        if was_alive:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return was_alive

    def finish(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait for a worker that runs out of due cases; its summary."""
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"worker {self.name} still running\n{self.log_tail()}") from None
        if self.process.returncode != 0:
            raise RuntimeError(
                f"worker {self.name} exited {self.process.returncode}\n{self.log_tail()}"
            )
        self.summary = json.loads(out.strip().splitlines()[-1])
        return self.summary

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# -- invariants -----------------------------------------------------------------------------


@dataclass
class StoreFacts:
    """What the store says about a set of cases, read in one go."""

    cases: dict[str, CaseRow] = field(default_factory=dict)
    contacts: dict[str, list[ContactRow]] = field(default_factory=dict)
    history: dict[str, Counter[str]] = field(default_factory=dict)


def read_store(sessions: sessionmaker[Session], keys: Sequence[str]) -> StoreFacts:
    facts = StoreFacts()
    with sessions() as session:
        by_id: dict[int, str] = {}
        for case in session.scalars(select(CaseRow)):
            key = case_key(case.gateway, case.business_key)
            facts.cases[key] = case
            by_id[case.id] = key
        facts.contacts = {key: [] for key in keys}
        for row in session.scalars(select(ContactRow).order_by(ContactRow.id)):
            facts.contacts.setdefault(by_id[row.case_id], []).append(row)
        facts.history = {key: Counter() for key in keys}
        for entry in session.scalars(select(HistoryRow).order_by(HistoryRow.id)):
            kind = entry.kind
            if kind == "decision":
                kind = f"decision:{entry.data.get('action')}"
            facts.history.setdefault(by_id[entry.case_id], Counter())[kind] += 1
    return facts


def first_contact_problems(
    facts: StoreFacts,
    keys: Sequence[str],
    emulator_contacts: Sequence[dict[str, Any]],
    counters: Mapping[str, int],
) -> list[str]:
    """Every case advanced to exactly one first contact, held once by the contact centre and
    recorded in the store; an empty list when all is well (else what is wrong, per case)."""
    problems: list[str] = []
    expected = {contact_id_for(key, 1): key for key in keys}
    held = [c["id"] for c in emulator_contacts]
    if len(held) != len(set(held)):
        problems.append(f"the emulator lists {len(held) - len(set(held))} ids more than once")
    extra = set(held) - set(expected)
    missing = set(expected) - set(held)
    if extra:
        problems.append(f"{len(extra)} contacts at the emulator belong to no case and attempt 1")
    if missing:
        problems.append(f"{len(missing)} cases have no contact at the emulator")
    if counters.get("duplicates", 0):
        problems.append(f"emulator counted {counters['duplicates']} duplicate contacts")
    if counters.get("contacts_created", 0) != len(expected):
        problems.append(
            f"emulator created {counters.get('contacts_created')} contacts for {len(expected)} "
            "cases"
        )
    for key in keys:
        case = facts.cases.get(key)
        if case is None:
            problems.append(f"{key}: no case")
            continue
        rows = facts.contacts.get(key, [])
        states = [(r.attempt, r.state, r.contact_id == contact_id_for(key, 1)) for r in rows]
        if states != [(1, "created", True)]:
            problems.append(f"{key}: contacts rows {states}")
        if (case.status, case.contacts_made, case.lease_owner) != (
            "awaiting_disposition",
            1,
            None,
        ):
            problems.append(
                f"{key}: case {case.status}, {case.contacts_made} contacts, "
                f"lease {case.lease_owner}"
            )
        kinds = facts.history.get(key, Counter())
        decisions = {k: n for k, n in kinds.items() if k.startswith("decision")}
        if decisions != {"decision:contact": 1}:
            problems.append(f"{key}: decisions {decisions}")
        if kinds["contact_requested"] != 1 or kinds["contact_created"] != 1:
            problems.append(
                f"{key}: {kinds['contact_requested']} contact_requested and "
                f"{kinds['contact_created']} contact_created entries"
            )
    return problems

"""Personal data can be erased: ``recovery forget`` (by customer reference or phone) and the
retention run, on SQLite and PostgreSQL, with the Genesys emulator over real HTTP.

A forgotten person's cases close, their personal fields are erased or replaced by a keyed
fingerprint, their queued contacts are removed from the contact list, the copies of their
events in the inbox are scrubbed, and a suppression on their number is kept as a fingerprint,
so the number stays blocked for any later case. An audit line names no personal data. The
retention run erases the personal fields of cases closed longer than the retention period.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from recovery.cli import app
from recovery.clock import FileClock
from recovery.contact_center.client import GenesysClient
from recovery.contact_center.throttle import RetryPolicy
from recovery.domain.compliance import CallingRules, load_rules
from recovery.domain.fingerprint import keyed_fingerprint
from recovery.domain.models import CaseStatus, ContactPoint, Gateway, Outcome, PaymentFailure
from recovery.domain.policy import Policy, load_policy
from recovery.domain.taxonomy import load_failure_codes
from recovery.services.advance import decide_due
from recovery.services.dispatch import dispatch
from recovery.services.intake import ingest_batch
from recovery.services.privacy import purge_expired
from recovery.store.cases import case_key, close_case
from recovery.store.db import make_engine, make_sessionmaker, transaction
from recovery.store.inbox import record_delivery
from recovery.store.suppression import add_suppression, find_suppression, list_suppressions
from recovery.store.tables import Base, CaseRow, ContactRow, InboxRow, PrivacyAuditRow
from tests.support.due_cases import CALLABLE_INSTANT
from tests.support.emulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    CONTACT_LIST,
    Emulator,
    running_emulator,
)

PRIVACY_KEY = "privacy-key-for-tests-0123456789"
FINGERPRINT = keyed_fingerprint(PRIVACY_KEY.encode())
LEASE = timedelta(seconds=30)

# The person to forget: two cases, two numbers (the second one asked not to be called).
ADA = {
    "customer_ref": "cus_ada_lovelace",
    "customer_name": "Ada Lovelace",
    "phones": ("+14155550101", "+14155550102"),
    "postal_code": "94109",
}
# Someone else, who must stay as they are.
GRACE = {
    "customer_ref": "cus_grace_hopper",
    "customer_name": "Grace Hopper",
    "phones": ("+12125550199",),
    "postal_code": "10001",
}


def failure(person: dict[str, Any], index: int, key: str, state: str = "CA") -> PaymentFailure:
    return PaymentFailure(
        gateway=Gateway.generic,
        event_id=f"evt_{key}",
        event_type="payment.failed",
        business_key=key,
        customer_ref=person["customer_ref"],
        customer_name=person["customer_name"],
        contact=ContactPoint(
            phone_e164=person["phones"][index],
            country="US",
            state=state,
            postal_code=person["postal_code"],
        ),
        failure_code="card_declined",
        decline_code="expired_card",
        amount=Decimal("49.00"),
        currency="usd",
        occurred_at=CALLABLE_INSTANT,
    )


@dataclass
class Bench:
    sessions: sessionmaker[Session]
    emulator: Emulator
    client: GenesysClient
    clock: FileClock
    policy: Policy
    rules: CallingRules

    def deliver(self, item: PaymentFailure) -> None:
        with transaction(self.sessions) as session:
            record_delivery(
                session=session,
                gateway="generic",
                event_id=item.event_id,
                event_type=item.event_type,
                kind="failure",
                payload=item.model_dump(mode="json"),
                pan_redacted=False,
                now=self.clock.now(),
            )
        ingest_batch(
            sessions=self.sessions, codes=load_failure_codes(), now=self.clock.now(), limit=50
        )

    def advance(self, owner: str) -> None:
        decided = decide_due(
            sessions=self.sessions,
            policy=self.policy,
            rules=self.rules,
            now=self.clock.now(),
            owner=owner,
            limit=100,
            lease=LEASE,
            contact_list_id=CONTACT_LIST,
        )
        if decided.to_dispatch:
            dispatch(
                sessions=self.sessions,
                client=self.client,
                contact_row_ids=decided.to_dispatch,
                rules=self.rules,
                now=self.clock.now(),
            )

    def held(self) -> set[str]:
        return {c["id"] for c in self.emulator.contacts()}

    def case(self, key: str) -> CaseRow:
        with self.sessions() as session:
            return session.scalars(select(CaseRow).where(CaseRow.business_key == key)).one()

    def contacts_of(self, key: str) -> list[ContactRow]:
        case_id = self.case(key).id
        with self.sessions() as session:
            return list(session.scalars(select(ContactRow).where(ContactRow.case_id == case_id)))

    def dump(self) -> str:
        rows: list[str] = []
        with self.sessions() as session:
            for table in Base.metadata.sorted_tables:
                for row in session.execute(select(table).order_by(*table.primary_key.columns)):
                    rows.append(f"{table.name} {json.dumps([str(v) for v in row])}")
        return "\n".join(rows)

    def forget(self, *args: str) -> Result:
        return CliRunner().invoke(app, ["forget", *args])


@pytest.fixture
def bench(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bench]:
    clock_file = tmp_path / "clock"
    clock_file.write_text(CALLABLE_INSTANT.isoformat())
    clock = FileClock(clock_file)
    engine = make_engine(store_url)
    with running_emulator(clock) as emulator:
        for name, value in {
            "RECOVERY_DATABASE_URL": store_url,
            "RECOVERY_CLOCK": f"file:{clock_file}",
            "RECOVERY_STRIPE_API_BASE": "http://127.0.0.1:9",
            "RECOVERY_GENESYS_REGION": "emulator",
            "RECOVERY_GENESYS_BASE_URL": emulator.url,
            "RECOVERY_GENESYS_CLIENT_ID": CLIENT_ID,
            "RECOVERY_GENESYS_CLIENT_SECRET": CLIENT_SECRET,
            "RECOVERY_GENESYS_CONTACT_LIST_ID": CONTACT_LIST,
            "RECOVERY_PRIVACY_KEY": PRIVACY_KEY,
        }.items():
            monkeypatch.setenv(name, value)
        client = GenesysClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=emulator.url,
            clock=clock,
            sleep=lambda _seconds: None,
            retry=RetryPolicy(server_error_backoff=(0.0,)),
        )
        try:
            yield Bench(
                make_sessionmaker(engine, fingerprint=FINGERPRINT),
                emulator,
                client,
                clock,
                load_policy(),
                load_rules(),
            )
        finally:
            client.close()
            engine.dispose()


def seed(bench: Bench) -> None:
    """Ada's first case has a contact queued at the contact centre; her second number is
    suppressed (do not call); Grace's case has a contact queued too."""
    bench.deliver(failure(ADA, 0, "in_ada_1"))
    bench.deliver(failure(GRACE, 0, "in_grace_1", state="NY"))
    bench.advance("first")
    assert len(bench.held()) == 2
    with transaction(bench.sessions) as session:
        add_suppression(
            session=session,
            phone_e164=ADA["phones"][1],
            reason="do_not_call",
            source="operator",
            now=bench.clock.now(),
        )
    bench.deliver(failure(ADA, 1, "in_ada_2"))


def personal_values(person: dict[str, Any]) -> list[str]:
    digits = [phone.lstrip("+") for phone in person["phones"]]
    return [
        person["customer_ref"],
        person["customer_name"],
        *person["customer_name"].split(),
        *person["phones"],
        *digits,
        person["postal_code"],
    ]


def document(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def test_forget_a_customer(bench: Bench, caplog: pytest.LogCaptureFixture) -> None:
    seed(bench)
    grace_contacts = {c.contact_id for c in bench.contacts_of("in_grace_1")}
    caplog.set_level(logging.INFO)
    done = document(bench.forget("--customer", ADA["customer_ref"], "--json"))
    subject = FINGERPRINT(ADA["customer_ref"])
    assert done == {
        "action": "forget",
        "subject": f"customer {subject}",
        "cases": 2,
        "contacts_removed": 1,
        "contacts_gone": 0,
        "suppressions": 1,
        "inbox_rows": 2,
    }
    # Nothing of Ada is left in any table; Grace is untouched.
    dump = bench.dump()
    for value in personal_values(ADA):
        assert value not in dump, value
    for value in personal_values(GRACE):
        assert value in dump, value
    # Her queued contact is gone from the contact list; Grace's is still there.
    assert bench.held() == grace_contacts
    for key in ("in_ada_1", "in_ada_2"):
        case = bench.case(key)
        assert case.status == CaseStatus.closed.value
        assert case.outcome == Outcome.suppressed.value
        assert case.erased_at is not None
        assert case.customer_ref == subject and case.customer_name is None
        assert case.phone_e164 is not None and case.phone_e164.startswith("fp:")
        assert case.postal_code is None
    assert {c.state for c in bench.contacts_of("in_ada_1")} == {"removed"}
    # The audit: stored and logged, naming no personal data.
    with bench.sessions() as session:
        (audit,) = session.scalars(select(PrivacyAuditRow)).all()
    assert audit.action == "forget" and audit.subject == f"customer {subject}"
    assert (audit.cases, audit.contacts_removed, audit.suppressions) == (2, 1, 1)
    logged = caplog.text
    assert f"customer {subject}" in logged
    for value in personal_values(ADA):
        assert value not in logged, value
    # Forgetting again finds nothing more to erase.
    again = document(bench.forget("--customer", ADA["customer_ref"], "--json"))
    assert again["cases"] == 0 and again["contacts_removed"] == 0


def test_a_forgotten_number_stays_blocked(bench: Bench) -> None:
    seed(bench)
    document(bench.forget("--customer", ADA["customer_ref"], "--json"))
    blocked = ADA["phones"][1]
    with bench.sessions() as session:
        row = find_suppression(session=session, phone_e164=blocked, now=bench.clock.now())
        assert row is not None and row.reason == "do_not_call"
        assert row.phone_e164 == FINGERPRINT(blocked)
        assert all(blocked not in r.phone_e164 for r in list_suppressions(session=session))
    # A later failure of someone else with that number is never called.
    someone = {**GRACE, "customer_ref": "cus_new", "phones": (blocked,)}
    bench.deliver(failure(someone, 0, "in_new_1"))
    held = bench.held()
    bench.advance("after")
    case = bench.case("in_new_1")
    assert case.status == CaseStatus.closed.value and case.outcome == Outcome.suppressed.value
    assert bench.held() == held
    # The window command sees the block too.
    verdict = CliRunner().invoke(
        app, ["window", "--phone", blocked, "--at", CALLABLE_INSTANT.isoformat(), "--json"]
    )
    assert verdict.exit_code == 0, verdict.output
    assert json.loads(verdict.stdout)["permitted"] is False


def test_forget_a_phone(bench: Bench) -> None:
    seed(bench)
    phone = ADA["phones"][0]
    done = document(bench.forget("--phone", phone, "--json"))
    assert done["subject"] == f"phone {FINGERPRINT(phone)}"
    assert (done["cases"], done["contacts_removed"]) == (1, 1)
    dump = bench.dump()
    assert phone not in dump and phone.lstrip("+") not in dump
    first, second = bench.case("in_ada_1"), bench.case("in_ada_2")
    assert first.erased_at is not None and first.customer_name is None
    # Her other case, on her other number, is not about this phone.
    assert second.erased_at is None and second.phone_e164 == ADA["phones"][1]


def test_forget_refuses_bad_input_and_changes_nothing(bench: Bench) -> None:
    seed(bench)
    before = bench.dump()
    for args in ([], ["--customer", "x", "--phone", "+14155550101"], ["--phone", "4155550101"]):
        result = bench.forget(*args)
        assert result.exit_code == 2, (args, result.output)
    assert bench.dump() == before


def test_forget_with_the_contact_centre_down_changes_nothing(bench: Bench) -> None:
    seed(bench)
    before = bench.dump()
    bench.emulator.fault(status=503, apply=False, delay_seconds=0, count=50)
    result = bench.forget("--customer", ADA["customer_ref"])
    assert result.exit_code == 1, result.output
    assert "nothing changed" in result.output
    assert bench.dump() == before


# --- retention ---------------------------------------------------------------------------------


def test_retention_erases_cases_closed_longer_than_the_period(bench: Bench) -> None:
    seed(bench)
    now = bench.clock.now()
    with transaction(bench.sessions) as session:
        for key, days in (("in_ada_1", 45), ("in_grace_1", 10)):
            case = session.scalars(select(CaseRow).where(CaseRow.business_key == key)).one()
            close_case(
                session=session,
                case=case,
                outcome=Outcome.recovered,
                at=now - timedelta(days=days),
                now=now - timedelta(days=days),
                reasons=["paid"],
            )
        # A contact of a closed case no longer queued (the close-on-payment flow removed it).
        for row in session.scalars(select(ContactRow)):
            row.state = "removed"
    summary = purge_expired(
        sessions=bench.sessions, fingerprint=FINGERPRINT, now=now, retention_days=30
    )
    assert summary.cases == 1 and summary.inbox_rows == 1
    ada, grace, open_case = bench.case("in_ada_1"), bench.case("in_grace_1"), bench.case("in_ada_2")
    assert ada.erased_at == now and ada.customer_name is None
    assert ada.phone_e164 == FINGERPRINT(ADA["phones"][0])
    assert grace.erased_at is None and grace.customer_name == GRACE["customer_name"]
    assert open_case.erased_at is None and open_case.customer_name == ADA["customer_name"]
    with bench.sessions() as session:
        payloads = {
            r.event_id: r.payload for r in session.scalars(select(InboxRow).order_by(InboxRow.id))
        }
        audit = session.scalars(select(PrivacyAuditRow)).one()
    assert payloads["evt_in_ada_1"]["customer_name"] is None
    assert payloads["evt_in_ada_2"]["customer_name"] == ADA["customer_name"]
    assert audit.action == "retention" and audit.cases == 1
    assert ADA["customer_ref"] not in json.dumps(audit.detail)
    # A second run finds nothing more.
    again = purge_expired(
        sessions=bench.sessions, fingerprint=FINGERPRINT, now=now, retention_days=30
    )
    assert again.cases == 0
    assert case_key(ada.gateway, ada.business_key) == "generic:in_ada_1"


def test_retention_off_erases_nothing(bench: Bench) -> None:
    seed(bench)
    before = bench.dump()
    summary = purge_expired(
        sessions=bench.sessions,
        fingerprint=FINGERPRINT,
        now=bench.clock.now() + timedelta(days=3650),
        retention_days=None,
    )
    assert summary.cases == 0
    assert bench.dump() == before


class _EventFeed(BaseHTTPRequestHandler):
    """Prefect's ``POST /events`` as a recorder: every event document it is sent."""

    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (the handler's name is http.server's)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path.endswith("/events"):
            type(self).received.extend(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_forget_sends_a_closed_event_for_each_case_it_closes(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(bench)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EventFeed)
    _EventFeed.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{server.server_port}/api")
        document(bench.forget("--customer", ADA["customer_ref"], "--json"))
    finally:
        server.shutdown()
    closes = [e for e in _EventFeed.received if e["event"] == "recovery.case.closed"]
    assert sorted(e["resource"]["prefect.resource.id"] for e in closes) == [
        f"recovery.case.{case_key(Gateway.generic, key)}" for key in ("in_ada_1", "in_ada_2")
    ]
    assert {e["resource"]["recovery.outcome"] for e in closes} == {Outcome.suppressed.value}
    # No personal data in what was sent.
    sent = json.dumps(_EventFeed.received)
    for value in personal_values(ADA):
        assert value not in sent, value

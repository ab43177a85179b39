"""Retry-aware waits in a real store (SQLite, and PostgreSQL when a URL is given): recorded
from the inbox as ingest applies it, decided by the advance step, shown by ``cases show``, and
published as ``waiting`` business events without personal data."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from recovery.cli import app
from recovery.clock import FileClock
from recovery.domain.compliance import load_rules
from recovery.domain.models import (
    CardUpdated,
    ContactPoint,
    Gateway,
    PaymentFailure,
    PaymentSucceeded,
)
from recovery.domain.policy import load_policy
from recovery.domain.taxonomy import load_failure_codes
from recovery.services.advance import Decided, decide_due
from recovery.services.intake import drain
from recovery.store.db import make_engine, make_sessionmaker, transaction
from recovery.store.inbox import record_delivery
from recovery.store.migrate import upgrade
from recovery.store.tables import CaseRow, HistoryRow
from tests.support.due_cases import CALLABLE_INSTANT
from tests.support.emulator import CONTACT_LIST

T = CALLABLE_INSTANT  # Tuesday 10:00 in Los Angeles
PHONE = "+14155550142"
PAGE = "https://invoice.stripe.com/i/acct_1/test_page?s=ap"


@dataclass
class Store:
    sessions: sessionmaker[Session]
    clock: FileClock

    def deliver(self, item: BaseModel, kind: str) -> None:
        with transaction(self.sessions) as session:
            assert record_delivery(
                session=session,
                gateway="stripe",
                event_id=getattr(item, "event_id"),  # noqa: B009
                event_type=getattr(item, "event_type"),  # noqa: B009
                kind=kind,
                payload=item.model_dump(mode="json"),
                pan_redacted=False,
                now=self.clock.now(),
            )

    def ingest(self) -> dict[str, int]:
        summary = drain(
            sessions=self.sessions,
            codes=load_failure_codes(),
            clock_now=self.clock.now,
            batch_size=50,
        )
        return dict(summary.results)

    def decide(self) -> Decided:
        return decide_due(
            sessions=self.sessions,
            policy=load_policy(),
            rules=load_rules(),
            now=self.clock.now(),
            owner="test",
            limit=100,
            lease=timedelta(seconds=30),
            contact_list_id=CONTACT_LIST,
        )

    def case(self, key: str) -> CaseRow:
        with self.sessions() as session:
            return session.scalars(select(CaseRow).where(CaseRow.business_key == key)).one()

    def kinds(self, key: str) -> list[str]:
        case_id = self.case(key).id
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(HistoryRow.kind)
                    .where(HistoryRow.case_id == case_id)
                    .order_by(HistoryRow.id)
                )
            )


@pytest.fixture
def store(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    clock_file = tmp_path / "clock"
    clock = FileClock(clock_file)
    clock.set(T)
    upgrade(store_url)
    monkeypatch.setenv("RECOVERY_DATABASE_URL", store_url)
    monkeypatch.setenv("RECOVERY_CLOCK", f"file:{clock_file}")
    engine = make_engine(store_url)
    try:
        yield Store(make_sessionmaker(engine), clock)
    finally:
        engine.dispose()


def failure(
    key: str,
    at: datetime,
    *,
    decline: str = "insufficient_funds",
    retry: datetime | None = None,
    event: str | None = None,
    customer: str = "cus_1",
    phone: str = PHONE,
) -> PaymentFailure:
    return PaymentFailure(
        gateway=Gateway.stripe,
        event_id=event or f"evt_{key}_{at.timestamp():.0f}",
        event_type="invoice.payment_failed",
        business_key=key,
        customer_ref=customer,
        customer_name="Ada Lovelace",
        contact=ContactPoint(phone_e164=phone, state="CA", postal_code="94103"),
        failure_code="card_declined",
        decline_code=decline,
        amount=Decimal("20.00"),
        currency="usd",
        occurred_at=at,
        next_retry_at=retry,
        payment_link=PAGE,
    )


def test_a_soft_decline_waits_for_the_retry_and_says_so(store: Store) -> None:
    retry = T + timedelta(days=10)
    store.deliver(failure("in_w", T, retry=retry), "failure")
    assert store.ingest() == {"opened": 1}
    decided = store.decide()
    assert decided.actions == {"wait": 1} and decided.to_dispatch == []
    case = store.case("in_w")
    assert case.status == "awaiting_retry" and case.next_due_at == retry + timedelta(days=1)
    (event,) = decided.events
    assert (event.event, event.key) == ("recovery.case.waiting", "stripe:in_w")
    assert event.resource() == {
        "prefect.resource.id": "recovery.case.stripe:in_w",
        "prefect.resource.name": "stripe:in_w",
        "recovery.gateway": "stripe",
        "recovery.category": "insufficient_funds",
    }
    assert event.payload == {
        "status": "awaiting_retry",
        "until": (retry + timedelta(days=1)).isoformat(),
        "why": "policy",
        "waiting_for": "gateway_retry",
        "retry_at": retry.isoformat(),
    }
    published = json.dumps([dataclasses.asdict(e) for e in decided.events], default=dict)
    assert PHONE not in published and "Ada" not in published and PAGE not in published

    shown = CliRunner().invoke(app, ["cases", "show", "stripe:in_w"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "waiting for the gateway's own retry: no call before" in shown.stdout
    assert f"next retry at: {retry.isoformat()}" in shown.stdout
    assert "soft decline, the gateway retries at" in shown.stdout
    assert PAGE not in shown.stdout  # the link opens the customer's invoice: --reveal only
    document = json.loads(
        CliRunner().invoke(app, ["cases", "show", "stripe:in_w", "--json"]).stdout
    )
    assert document["waiting"]["waiting_for"] == "gateway_retry"
    assert document["waiting"]["retry_at"] == retry.isoformat()
    assert document["waiting"]["unwaited_at"] == (T + timedelta(days=7)).isoformat()
    assert PAGE not in json.dumps(document)
    revealed = CliRunner().invoke(app, ["cases", "show", "stripe:in_w", "--json", "--reveal"])
    assert json.loads(revealed.stdout)["payment_link"] == PAGE


def test_a_failure_at_the_retry_makes_the_case_due_and_moves_it_on(store: Store) -> None:
    retry = T + timedelta(days=3)
    store.deliver(failure("in_m", T, decline="do_not_honor", retry=retry), "failure")
    store.ingest()
    store.decide()
    assert store.case("in_m").next_due_at == retry + timedelta(days=1)

    store.clock.set(retry + timedelta(minutes=1))
    store.deliver(failure("in_m", retry, decline="do_not_honor"), "failure")
    assert store.ingest() == {"updated": 1}
    assert store.case("in_m").next_due_at == retry + timedelta(minutes=1)
    decided = store.decide()
    assert decided.actions == {"contact": 1} and decided.events == []


def test_a_card_update_pauses_every_open_case_of_its_customer(store: Store) -> None:
    retry = T + timedelta(days=2)
    store.deliver(failure("in_c1", T, decline="expired_card", retry=retry), "failure")
    store.deliver(failure("in_c2", T, decline="expired_card", retry=retry), "failure")
    other = failure("in_c3", T, decline="expired_card", customer="cus_2", phone="+14155550143")
    store.deliver(other, "failure")
    paid = failure("in_c4", T, decline="expired_card")
    store.deliver(paid, "failure")
    store.deliver(
        PaymentSucceeded(
            gateway=Gateway.stripe,
            event_id="evt_c4_paid",
            event_type="invoice.paid",
            business_key="in_c4",
            occurred_at=T + timedelta(seconds=30),
        ),
        "success",
    )
    store.clock.set(T + timedelta(minutes=1))
    updated = CardUpdated(
        gateway=Gateway.stripe,
        event_id="evt_card",
        event_type="payment_method.automatically_updated",
        customer_ref="cus_1",
        occurred_at=T + timedelta(seconds=50),
    )
    store.deliver(updated, "card_updated")
    assert store.ingest() == {"opened": 4, "closed": 1, "updated": 1}
    assert "card_updated" in store.kinds("in_c1") and "card_updated" in store.kinds("in_c2")
    assert "card_updated" not in store.kinds("in_c3") + store.kinds("in_c4")

    decided = store.decide()
    # the other customer's expired card is called at once; the updated ones wait
    assert decided.actions == {"contact": 1, "wait": 2}
    for key in ("in_c1", "in_c2"):
        case = store.case(key)
        assert case.status == "awaiting_retry"
        assert case.next_due_at == retry + timedelta(days=1)
    assert sorted(e.key for e in decided.events) == ["stripe:in_c1", "stripe:in_c2"]
    assert {e.payload["waiting_for"] for e in decided.events} == {"card_update"}


def test_a_card_update_for_a_customer_without_an_open_case_is_ignored(store: Store) -> None:
    store.deliver(
        CardUpdated(
            gateway=Gateway.stripe,
            event_id="evt_lonely",
            event_type="payment_method.automatically_updated",
            customer_ref="cus_nobody",
            occurred_at=T,
        ),
        "card_updated",
    )
    assert store.ingest() == {"ignored": 1}

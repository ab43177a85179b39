"""Ingest applies most of a batch together (new cases, successes with nothing to close) and the
rest row by row: the result is the same as applying every row on its own, on SQLite and
PostgreSQL, including when a concurrent runner opens one of the batch's cases meanwhile."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import recovery.services.intake as intake
from recovery.domain.models import (
    ContactPoint,
    FailureCategory,
    Gateway,
    PaymentFailure,
    PaymentSucceeded,
)
from recovery.domain.taxonomy import load_failure_codes
from recovery.services.intake import drain
from recovery.store.cases import apply_failure
from recovery.store.db import make_engine, make_sessionmaker, transaction
from recovery.store.inbox import record_delivery
from recovery.store.tables import Base, CaseRow, HistoryRow, InboxRow, PaymentSuccessRow
from tests.factories import T0

CODES = load_failure_codes()


@pytest.fixture
def sessions(store_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(store_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def failure(
    key: str, event: str, *, at: Any = T0, gateway: Gateway = Gateway.stripe, **kw: Any
) -> PaymentFailure:
    values: dict[str, Any] = {
        "gateway": gateway,
        "event_id": event,
        "event_type": "invoice.payment_failed",
        "business_key": key,
        "contact": ContactPoint(phone_e164="+14155552671", state="CA"),
        "decline_code": "insufficient_funds",
        "amount": Decimal("20.00"),
        "currency": "usd",
        "occurred_at": at,
    }
    values.update(kw)
    return PaymentFailure(**values)


def success(
    key: str, event: str, *, at: Any, gateway: Gateway = Gateway.stripe
) -> PaymentSucceeded:
    return PaymentSucceeded(
        gateway=gateway,
        event_id=event,
        event_type="invoice.paid",
        business_key=key,
        occurred_at=at,
    )


def deliver(sessions: sessionmaker[Session], *items: BaseModel) -> None:
    with transaction(sessions) as session:
        for item in items:
            kind = "failure" if isinstance(item, PaymentFailure) else "success"
            assert record_delivery(
                session=session,
                gateway=getattr(item, "gateway").value,  # noqa: B009
                event_id=getattr(item, "event_id"),  # noqa: B009
                event_type=getattr(item, "event_type"),  # noqa: B009
                kind=kind,
                payload=item.model_dump(mode="json"),
                pan_redacted=False,
                now=T0,
            )


def ingest(sessions: sessionmaker[Session], batch_size: int = 100) -> dict[str, int]:
    summary = drain(sessions=sessions, codes=CODES, clock_now=lambda: T0, batch_size=batch_size)
    return dict(summary.results)


def state(sessions: sessionmaker[Session]) -> dict[str, Any]:
    with sessions() as s:
        cases = {
            (c.gateway, c.business_key): (c.status, c.outcome, c.category)
            for c in s.scalars(select(CaseRow))
        }
        history = sorted(
            (c.business_key, h.kind)
            for h, c in s.execute(select(HistoryRow, CaseRow).join(CaseRow))
        )
        successes = sorted(s.scalars(select(PaymentSuccessRow.business_key)))
        results = {e: r for e, r in s.execute(select(InboxRow.event_id, InboxRow.result))}
    return {"cases": cases, "history": history, "successes": successes, "results": results}


def mixed_batch(sessions: sessionmaker[Session]) -> None:
    # An existing case that a new failure updates, and a remembered success a late failure meets.
    with transaction(sessions) as session:
        apply_failure(
            session=session,
            failure=failure("in_old", "evt_old"),
            category=FailureCategory.insufficient_funds,
            category_reason="t",
            now=T0,
        )
    deliver(sessions, success("in_paid_before", "evt_pb", at=T0 + timedelta(hours=1)))
    ingest(sessions)
    deliver(
        sessions,
        failure("in_new_1", "evt_n1"),
        failure("in_new_2", "evt_n2", decline_code="expired_card"),
        failure("in_old", "evt_old_2", decline_code="expired_card"),
        failure("in_paid_before", "evt_pbf"),  # older than its success: ignored
        success("in_unknown", "evt_u", at=T0),  # nothing to close: remembered
        failure("in_pair", "evt_p1"),
        success("in_pair", "evt_p2", at=T0 + timedelta(minutes=5)),  # closes the pair's case
        failure("sub_1@2026-11-01T00:00:00Z", "evt_pp1", gateway=Gateway.paypal),
        success("sub_1", "evt_pp2", at=T0 + timedelta(minutes=5), gateway=Gateway.paypal),
        failure("in_bad", "evt_bad"),
    )
    with transaction(sessions) as session:
        row = session.scalars(select(InboxRow).where(InboxRow.event_id == "evt_bad")).one()
        row.payload = {"nonsense": True}


def test_a_batch_applied_together_ends_as_every_row_on_its_own(
    sessions: sessionmaker[Session], store_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mixed_batch(sessions)
    together_keys: list[str] = []
    real = intake.open_cases

    def watched(**kw: Any) -> Any:
        together_keys.extend(item.failure.business_key for item in kw["items"])
        return real(**kw)

    monkeypatch.setattr(intake, "open_cases", watched)
    results = ingest(sessions, batch_size=100)
    # the payments nothing else in the batch or the store knows were opened together
    assert sorted(together_keys) == ["in_new_1", "in_new_2"]
    assert results == {"opened": 4, "updated": 1, "ignored": 2, "closed": 2, "error": 1}
    together = state(sessions)
    assert together["cases"][("stripe", "in_pair")][:2] == ("closed", "recovered")
    assert together["cases"][("paypal", "sub_1@2026-11-01T00:00:00Z")][:2] == (
        "closed",
        "recovered",
    )
    assert together["cases"][("stripe", "in_old")][2] == "card_expired"
    assert ("stripe", "in_paid_before") not in together["cases"]
    assert "in_unknown" in together["successes"]

    # The same inbox applied one row per batch: nothing can be applied together.
    monkeypatch.setattr(intake, "open_cases", real)
    other = make_engine(f"sqlite:///{tmp_path / 'one_by_one.db'}")
    Base.metadata.create_all(other)
    one_by_one = make_sessionmaker(other)
    try:
        mixed_batch(one_by_one)
        assert ingest(one_by_one, batch_size=1) == results
        assert state(one_by_one) == together
    finally:
        other.dispose()


def test_a_case_a_concurrent_runner_opens_meanwhile_is_updated_not_doubled(
    sessions: sessionmaker[Session], store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("on SQLite the batch holds the write lock: nobody can open a case meanwhile")
    deliver(sessions, failure("in_race", "evt_r1"), failure("in_calm", "evt_c1"))
    real = intake.open_cases

    def racing(**kw: Any) -> Any:
        # Another runner opens the case between this batch's read and its insert.
        with transaction(sessions) as other:
            apply_failure(
                session=other,
                failure=failure("in_race", "evt_r0"),
                category=FailureCategory.insufficient_funds,
                category_reason="the other runner",
                now=T0,
            )
        return real(**kw)

    monkeypatch.setattr(intake, "open_cases", racing)
    assert ingest(sessions) == {"opened": 1, "updated": 1}
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(CaseRow)) == 2
        kinds = sorted(
            h.kind
            for h, c in s.execute(select(HistoryRow, CaseRow).join(CaseRow))
            if c.business_key == "in_race"
        )
    assert kinds == ["failure_recorded", "failure_updated"]

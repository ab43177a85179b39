"""A PayPal success (keyed by subscription) closes the open unpaid episodes before it, and a
failure older than a recorded success opens nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.domain.models import (
    ContactPoint,
    FailureCategory,
    Gateway,
    PaymentFailure,
    PaymentSucceeded,
)
from recovery.store.cases import apply_failure, apply_success
from recovery.store.tables import CaseRow
from tests.factories import T0


def failure(key: str, event_id: str, at_hours: int) -> PaymentFailure:
    return PaymentFailure(
        gateway=Gateway.paypal,
        event_id=event_id,
        event_type="BILLING.SUBSCRIPTION.PAYMENT.FAILED",
        business_key=key,
        contact=ContactPoint(phone_e164="+14155552671"),
        occurred_at=T0 + timedelta(hours=at_hours),
    )


def success(at_hours: int, event_id: str = "WH-ok") -> PaymentSucceeded:
    return PaymentSucceeded(
        gateway=Gateway.paypal,
        event_id=event_id,
        event_type="PAYMENT.SALE.COMPLETED",
        business_key="I-SUB1",
        occurred_at=T0 + timedelta(hours=at_hours),
    )


def test_success_closes_earlier_episodes_only(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, s.begin():
        for key, event_id, hours in (
            ("I-SUB1@2026-11-01", "WH-1", 0),
            ("I-SUB1@2026-12-01", "WH-2", 48),
            ("I-SUB2@2026-11-01", "WH-3", 0),
        ):
            apply_failure(
                session=s,
                failure=failure(key, event_id, hours),
                category=FailureCategory.unknown,
                category_reason="test",
                now=T0,
            )
        result = apply_success(session=s, success=success(24), now=T0)
        assert result.action == "closed"
    with sessions() as s:
        outcomes = {c.business_key: (c.status, c.outcome) for c in s.scalars(select(CaseRow))}
    assert outcomes == {
        "I-SUB1@2026-11-01": ("closed", "recovered"),
        "I-SUB1@2026-12-01": ("open", None),
        "I-SUB2@2026-11-01": ("open", None),
    }


def test_a_failure_older_than_the_success_opens_nothing(sessions: sessionmaker[Session]) -> None:
    with sessions() as s, s.begin():
        apply_success(session=s, success=success(24), now=T0)
        late = apply_failure(
            session=s,
            failure=failure("I-SUB1@2026-11-01", "WH-9", 1),
            category=FailureCategory.unknown,
            category_reason="test",
            now=T0,
        )
        newer = apply_failure(
            session=s,
            failure=failure("I-SUB1@2026-12-01", "WH-10", 30),
            category=FailureCategory.unknown,
            category_reason="test",
            now=T0,
        )
    assert late.action == "ignored" and newer.action == "opened"


def test_wildcards_in_a_success_key_match_only_themselves(
    sessions: sessionmaker[Session],
) -> None:
    """LIKE's ``%`` and ``_`` (and the escape character) in a PayPal success key are literal: a
    success keyed ``%`` closes no case, ``I-SUB_`` closes only the subscription named that, and
    case counts (``i-sub1`` is not ``I-SUB1``)."""
    with sessions() as s, s.begin():
        for key, event_id in (
            ("I-SUB1@2026-11-01", "WH-1"),
            ("I-SUBX@2026-11-01", "WH-2"),
            ("I-SUB_@2026-11-01", "WH-3"),
            ("A\\B@2026-11-01", "WH-4"),
        ):
            apply_failure(
                session=s,
                failure=failure(key, event_id, 0),
                category=FailureCategory.unknown,
                category_reason="test",
                now=T0,
            )
    wildcards = (
        ("%", "WH-a"),
        ("_", "WH-b"),
        ("I-SUB%", "WH-c"),
        ("A\\%", "WH-d"),
        ("i-sub1", "WH-f"),
    )
    for key, event_id in wildcards:
        with sessions() as s, s.begin():
            wildcard = success(24, event_id).model_copy(update={"business_key": key})
            assert apply_success(session=s, success=wildcard, now=T0).action == "ignored", key
    with sessions() as s:
        assert {c.business_key for c in s.scalars(select(CaseRow)) if c.status == "closed"} == set()
    with sessions() as s, s.begin():
        literal = success(24, "WH-e").model_copy(update={"business_key": "I-SUB_"})
        assert apply_success(session=s, success=literal, now=T0).action == "closed"
    with sessions() as s:
        closed = {c.business_key for c in s.scalars(select(CaseRow)) if c.status == "closed"}
    assert closed == {"I-SUB_@2026-11-01"}

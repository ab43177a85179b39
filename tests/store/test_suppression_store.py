"""The suppression list on a real store (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recovery.store.db import transaction
from recovery.store.suppression import (
    add_suppression,
    find_suppression,
    list_suppressions,
    remove_suppression,
)
from recovery.store.tables import SuppressionRow

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PHONE, OTHER = "+13055550123", "+14155550188"


def count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(SuppressionRow)) or 0


def test_add_then_find(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        row = add_suppression(
            session=session, phone_e164=PHONE, reason="do_not_call", source="agent", now=NOW
        )
        assert (row.phone_e164, row.scope, row.reason, row.source) == (
            PHONE,
            "*",
            "do_not_call",
            "agent",
        )
        assert row.id is not None
    with sessions() as session:
        found = find_suppression(session=session, phone_e164=PHONE, now=NOW)
        assert found is not None and found.reason == "do_not_call"
        assert found.created_at == NOW  # aware UTC on every backend
        assert find_suppression(session=session, phone_e164=OTHER, now=NOW) is None
        # A suppression for everyone also stops calls about any one customer.
        assert find_suppression(session=session, phone_e164=PHONE, customer_ref="c1", now=NOW)


def test_add_is_idempotent(sessions: sessionmaker[Session]) -> None:
    ids = set()
    for reason in ("do_not_call", "consent_revoked", "do_not_call"):
        with transaction(sessions) as session:
            row = add_suppression(
                session=session, phone_e164=PHONE, reason=reason, source="agent", now=NOW
            )
            ids.add(row.id)
            assert row.reason == "do_not_call"  # the first reason stands
    assert len(ids) == 1
    assert count(sessions) == 1


def test_concurrent_adds_leave_one_row(sessions: sessionmaker[Session]) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def add() -> None:
        try:
            barrier.wait()
            with transaction(sessions) as session:
                add_suppression(
                    session=session, phone_e164=PHONE, reason="do_not_call", source="w", now=NOW
                )
        except BaseException as exc:  # reported below, from the main thread
            errors.append(exc)

    threads = [threading.Thread(target=add) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert count(sessions) == 1


def test_expired_rows_do_not_count(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        add_suppression(
            session=session,
            phone_e164=PHONE,
            reason="wrong_number",
            source="agent",
            now=NOW,
            expires_at=NOW + timedelta(days=30),
        )
    with sessions() as session:
        assert find_suppression(session=session, phone_e164=PHONE, now=NOW + timedelta(days=29))
        assert (
            find_suppression(session=session, phone_e164=PHONE, now=NOW + timedelta(days=30))
            is None
        )
        assert list_suppressions(session=session, now=NOW + timedelta(days=31)) == []
        assert len(list_suppressions(session=session)) == 1


def test_adding_over_an_expired_row_revives_it(sessions: sessionmaker[Session]) -> None:
    later = NOW + timedelta(days=60)
    with transaction(sessions) as session:
        add_suppression(
            session=session,
            phone_e164=PHONE,
            reason="wrong_number",
            source="agent",
            now=NOW,
            expires_at=NOW + timedelta(days=30),
        )
    with transaction(sessions) as session:
        row = add_suppression(
            session=session, phone_e164=PHONE, reason="do_not_call", source="ivr", now=later
        )
        assert (row.reason, row.source, row.created_at, row.expires_at) == (
            "do_not_call",
            "ivr",
            later,
            None,
        )
    with sessions() as session:
        assert find_suppression(session=session, phone_e164=PHONE, now=later + timedelta(days=999))


def test_an_active_expiry_only_moves_later(sessions: sessionmaker[Session]) -> None:
    soon, later = NOW + timedelta(days=10), NOW + timedelta(days=20)
    with transaction(sessions) as session:
        add_suppression(
            session=session, phone_e164=PHONE, reason="r", source="s", now=NOW, expires_at=later
        )
        row = add_suppression(
            session=session, phone_e164=PHONE, reason="r", source="s", now=NOW, expires_at=soon
        )
        assert row.expires_at == later
        row = add_suppression(session=session, phone_e164=PHONE, reason="r", source="s", now=NOW)
        assert row.expires_at is None  # never expiring is the latest


def test_per_customer_scope(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        add_suppression(
            session=session,
            phone_e164=PHONE,
            reason="wrong_number",
            source="agent",
            now=NOW,
            scope="cus_1",
        )
    with sessions() as session:
        assert find_suppression(session=session, phone_e164=PHONE, now=NOW) is None
        assert (
            find_suppression(session=session, phone_e164=PHONE, customer_ref="cus_2", now=NOW)
            is None
        )
        found = find_suppression(session=session, phone_e164=PHONE, customer_ref="cus_1", now=NOW)
        assert found is not None and found.scope == "cus_1"
    with transaction(sessions) as session:
        add_suppression(
            session=session,
            phone_e164=PHONE,
            reason="do_not_call",
            source="agent",
            now=NOW + timedelta(hours=1),
        )
    with sessions() as session:
        found = find_suppression(session=session, phone_e164=PHONE, customer_ref="cus_1", now=NOW)
        assert found is not None and found.scope == "*"  # everyone's suppression first
        assert len(list_suppressions(session=session, now=NOW)) == 2


def test_remove(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        add_suppression(session=session, phone_e164=PHONE, reason="r", source="s", now=NOW)
        add_suppression(
            session=session, phone_e164=PHONE, reason="r", source="s", now=NOW, scope="c"
        )
    with transaction(sessions) as session:
        assert remove_suppression(session=session, phone_e164=PHONE)
    with transaction(sessions) as session:
        assert not remove_suppression(session=session, phone_e164=PHONE)
        assert find_suppression(session=session, phone_e164=PHONE, now=NOW) is None
        assert find_suppression(session=session, phone_e164=PHONE, customer_ref="c", now=NOW)


def test_list_is_oldest_first(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        add_suppression(
            session=session, phone_e164=OTHER, reason="r", source="s", now=NOW + timedelta(hours=1)
        )
        add_suppression(session=session, phone_e164=PHONE, reason="r", source="s", now=NOW)
    with sessions() as session:
        assert [r.phone_e164 for r in list_suppressions(session=session)] == [PHONE, OTHER]


def test_bad_input_is_refused(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        with pytest.raises(ValueError, match="E.164"):
            add_suppression(
                session=session, phone_e164="305-555-0123", reason="r", source="s", now=NOW
            )
        with pytest.raises(ValueError, match="timezone-aware"):
            add_suppression(
                session=session, phone_e164=PHONE, reason="r", source="s", now=datetime(2026, 1, 1)
            )
        with pytest.raises(ValueError, match="timezone-aware"):
            find_suppression(session=session, phone_e164=PHONE, now=datetime(2026, 1, 1))

"""Planning a chunk's contacts at once (``store.contacts.plan_contacts``): new attempts are
inserted, an attempt withdrawn or refused before sending is planned again in place under the
same row, and an attempt already held by the contact centre is never planned twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from recovery.store.contacts import ContactPlan, plan_contacts, record_created
from recovery.store.db import transaction
from recovery.store.tables import CaseRow, ContactRow, HistoryRow
from tests.support.case_rows import case_row

NOW = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)


def case(session: Session, key: str) -> CaseRow:
    return case_row(session, key, now=NOW, status="open", category="expired_card", next_due_at=NOW)


def contact(session: Session, of: CaseRow, state: str) -> ContactRow:
    row = ContactRow(
        case_id=of.id,
        attempt=1,
        contact_id=f"old-{of.business_key}",
        contact_list_id="list",
        phone_e164="+12125550123",
        time_zone="America/Chicago",
        planned_at=NOW - timedelta(hours=3),
        requested_at=NOW - timedelta(hours=3),
        state=state,
    )
    session.add(row)
    session.flush()
    return row


def plan(of: CaseRow) -> ContactPlan:
    return ContactPlan(
        case=of,
        attempt=1,
        contact_id=f"c-{of.business_key}",
        contact_list_id="list",
        time_zone="America/New_York",
        planned_at=NOW,
        disposition_due_at=NOW + timedelta(hours=2),
        reasons=[f"call {of.business_key}"],
        timezones=["America/New_York"],
    )


def test_new_and_replanned_attempts_in_one_chunk(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        fresh, withdrawn, refused = (case(session, k) for k in ("in_new", "in_wd", "in_ref"))
        old_withdrawn = contact(session, withdrawn, "cancelled").id
        old_refused = contact(session, refused, "rejected").id
        planned = plan_contacts(
            session=session, plans=[plan(fresh), plan(withdrawn), plan(refused)], now=NOW
        )
        ids = (fresh.id, withdrawn.id, refused.id)
    # In the order given; the replanned attempts keep their rows.
    assert [(p.case_id, p.attempt, p.replanned) for p in planned] == [
        (ids[0], 1, False),
        (ids[1], 1, True),
        (ids[2], 1, True),
    ]
    assert [p.row_id for p in planned[1:]] == [old_withdrawn, old_refused]
    with sessions() as session:
        rows = {r.case_id: r for r in session.scalars(select(ContactRow))}
        assert len(rows) == 3
        for p in planned:
            row = rows[p.case_id]
            assert (row.id, row.state, row.contact_id) == (p.row_id, "requested", p.contact_id)
            assert row.time_zone == "America/New_York"
            assert row.planned_at.replace(tzinfo=UTC) == NOW
        for case_id in ids:
            row_case = session.get(CaseRow, case_id)
            assert row_case is not None and row_case.status == "contact_requested"
            (decision,) = session.scalars(
                select(HistoryRow).where(HistoryRow.case_id == case_id)
            ).all()
            assert decision.kind == "decision"
            assert decision.data["action"] == "contact" and decision.data["attempt"] == 1


def test_an_attempt_the_contact_centre_holds_is_never_planned_again(
    sessions: sessionmaker[Session],
) -> None:
    with pytest.raises(RuntimeError, match="attempt 1 already created"):
        with transaction(sessions) as session:
            held, fresh = case(session, "in_held"), case(session, "in_fresh")
            contact(session, held, "created")
            plan_contacts(session=session, plans=[plan(fresh), plan(held)], now=NOW)
    # The chunk's transaction rolled back: nothing of it stayed.
    with sessions() as session:
        assert session.scalars(select(ContactRow)).all() == []
        assert session.scalars(select(HistoryRow)).all() == []


def test_contacts_created_are_recorded_together_and_a_recorded_one_is_left_alone(
    sessions: sessionmaker[Session],
) -> None:
    """``record_created`` writes a batch with one statement per table: each contact still
    requested becomes created, its case awaits the outcome (released, due when the outcome is
    due) with two history lines; a contact another worker already recorded is left as it is."""
    later = NOW + timedelta(minutes=5)
    with transaction(sessions) as session:
        first, second, done = (case(session, k) for k in ("in_a", "in_b", "in_done"))
        for row in (first, second, done):
            row.lease_owner, row.lease_until = "advance-1", NOW + timedelta(minutes=10)
        rows = {c.business_key: contact(session, c, "requested") for c in (first, second)}
        rows["in_b"].disposition_due_at = NOW + timedelta(hours=2)
        recorded = contact(session, done, "created")
        ids = {c.business_key: c.id for c in (first, second, done)}
    with transaction(sessions) as session:
        moved = record_created(
            session=session,
            contact_ids=["old-in_a", "old-in_b", recorded.contact_id, "unknown"],
            now=later,
        )
    assert [(m.contact_id, m.state, m.case_status) for m in moved] == [
        ("old-in_a", "created", "awaiting_disposition"),
        ("old-in_b", "created", "awaiting_disposition"),
    ]
    assert [e.event for m in moved for e in m.events] == ["recovery.contact.created"] * 2
    assert moved[0].events[0].resource()["prefect.resource.id"] == "recovery.case.stripe:in_a"
    with sessions() as session:
        for key, due in (("in_a", later), ("in_b", NOW + timedelta(hours=2))):
            row = session.get(CaseRow, ids[key])
            assert row is not None
            assert (row.status, row.contacts_made, row.lease_owner) == (
                "awaiting_disposition",
                1,
                None,
            )
            assert row.status_reason == "attempt 1 queued at the contact centre"
            assert row.next_due_at is not None and row.next_due_at.replace(tzinfo=UTC) == due
            sent = session.scalars(select(ContactRow).where(ContactRow.case_id == ids[key])).one()
            assert sent.state == "created" and sent.created_at is not None
            kinds = [
                h.kind
                for h in session.scalars(
                    select(HistoryRow).where(HistoryRow.case_id == ids[key]).order_by(HistoryRow.id)
                )
            ]
            assert kinds == ["contact_requested", "contact_created"]
        untouched = session.get(CaseRow, ids["in_done"])
        assert untouched is not None
        assert (untouched.status, untouched.contacts_made, untouched.lease_owner) == (
            "open",
            0,
            "advance-1",
        )
        assert (
            session.scalars(select(HistoryRow).where(HistoryRow.case_id == ids["in_done"])).all()
            == []
        )

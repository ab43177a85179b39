"""The disposition callback over real HTTP, on SQLite and PostgreSQL: recorded once, duplicates
change nothing, bad signatures and unknown contacts store nothing, unknown wrap-ups are kept
as ``unknown`` for review. The good path is driven by the emulator's own signed push."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recovery.api.routes.callbacks import DISPOSITION_PATH, build_callbacks_router
from recovery.clock import FixedClock
from recovery.contact_center.client import GenesysClient
from recovery.contact_center.contacts import ContactRequest
from recovery.contact_center.emulator import create_emulator_app
from recovery.contact_center.emulator.server import serve_in_thread
from recovery.domain.models import Disposition
from recovery.gateways.signing import sign
from recovery.settings import Settings
from recovery.store.db import transaction
from recovery.store.dispositions import (
    UnknownContact,
    contacts_awaiting_disposition,
    record_disposition,
)
from recovery.store.tables import CaseRow, ContactRow, DispositionRow, HistoryRow
from tests.integration.genesys_fixtures import (
    CLIENT_ID,
    CLIENT_SECRET,
    CONTACT_LIST,
    NOON_EASTERN,
    SleepRecorder,
    emulator_config,
)

SECRET = "callback-secret-for-tests-0123"
NOW = NOON_EASTERN


def make_case(session: Session, key: str, *, status: str = "awaiting_disposition") -> CaseRow:
    case = CaseRow(
        gateway="stripe",
        business_key=key,
        phone_e164="+12125550123",
        country="US",
        explicit_tz="America/New_York",
        category="insufficient_funds",
        amount=None,
        failed_at=NOW - timedelta(days=1),
        opened_at=NOW - timedelta(days=1),
        updated_at=NOW - timedelta(days=1),
        last_event_id=f"evt_{key}",
        status=status,
        next_due_at=None,
        missing_fields={},
    )
    session.add(case)
    session.flush()
    return case


def make_contact(session: Session, case: CaseRow, attempt: int = 1) -> ContactRow:
    request = ContactRequest(
        case_key=f"stripe:{case.business_key}",
        attempt=attempt,
        phone_e164="+12125550123",
        transaction_id=case.business_key,
        failure_reason="insufficient_funds",
        time_zone="America/New_York",
    )
    row = ContactRow(
        case_id=case.id,
        attempt=attempt,
        contact_id=request.contact_id,
        contact_list_id=CONTACT_LIST,
        phone_e164=request.phone_e164,
        time_zone=request.time_zone,
        planned_at=NOW - timedelta(hours=1),
        requested_at=NOW - timedelta(hours=1),
        created_at=NOW - timedelta(hours=1),
        state="created",
        disposition_due_at=NOW + timedelta(hours=2),
    )
    session.add(row)
    session.flush()
    return row


class Receiver:
    def __init__(self, sessions: sessionmaker[Session], base_url: str, clock: FixedClock):
        self.sessions = sessions
        self.base_url = base_url
        self.clock = clock
        self.http = httpx.Client(timeout=10)

    def push(self, payload: dict[str, Any], *, secret: str = SECRET) -> httpx.Response:
        body = json.dumps(payload).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "Recovery-Signature": sign(body, secret, timestamp),
        }
        return self.http.post(f"{self.base_url}{DISPOSITION_PATH}", content=body, headers=headers)

    def counts(self) -> tuple[int, int]:
        with self.sessions() as session:
            dispositions = session.scalar(select(func.count()).select_from(DispositionRow))
            history = session.scalar(
                select(func.count()).select_from(HistoryRow).where(HistoryRow.kind == "disposition")
            )
        return int(dispositions or 0), int(history or 0)


@pytest.fixture
def receiver(sessions: sessionmaker[Session]) -> Iterator[Receiver]:
    clock = FixedClock(NOW)
    settings = Settings(callback_secret=SecretStr(SECRET), _env_file=None)
    app = FastAPI()
    app.include_router(build_callbacks_router(sessions=sessions, settings=settings, clock=clock))
    with serve_in_thread(app) as base_url:
        handle = Receiver(sessions, base_url, clock)
        yield handle
        handle.http.close()


@pytest.fixture
def contact(sessions: sessionmaker[Session]) -> ContactRow:
    with transaction(sessions) as session:
        case = make_case(session, "in_1001")
        return make_contact(session, case)


def payload(contact_id: str, code: str = "Promise to Pay", **extra: Any) -> dict[str, Any]:
    return {
        "contactId": contact_id,
        "contactListId": CONTACT_LIST,
        "wrapupCode": code,
        "isRightPartyContact": True,
        "callAttemptedAt": "2026-03-03T16:55:00.000Z",
        "phoneColumn": "phone",
        "data": {"phone": "+12125550123"},
        **extra,
    }


def test_emulator_push_is_recorded_once(
    sessions: sessionmaker[Session], receiver: Receiver, contact: ContactRow
) -> None:
    config = emulator_config(
        callback_url=f"{receiver.base_url}{DISPOSITION_PATH}",
        callback_secret=SECRET,
        scenario="all-promise-to-pay",
    )
    emulator_app = create_emulator_app(config, clock=receiver.clock)
    with serve_in_thread(emulator_app) as emulator_url:
        with GenesysClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=emulator_url,
            sleep=SleepRecorder(),
        ) as client:
            created = client.add_contacts(
                CONTACT_LIST,
                [
                    ContactRequest(
                        case_key="stripe:in_1001",
                        attempt=1,
                        phone_e164="+12125550123",
                        time_zone="America/New_York",
                    )
                ],
            )
        assert created.created == [contact.contact_id]
        report = httpx.post(f"{emulator_url}/__emulator__/dial", json={}).json()
    assert report["dialled"] == 1 and report["pushes_sent"] == 1
    with sessions() as session:
        row = session.execute(select(DispositionRow)).scalar_one()
        assert row.contact_id == contact.contact_id and row.attempt == 1
        assert row.disposition == "promise_to_pay" and row.wrapup_code == "Promise to Pay"
        assert row.right_party is True and row.source == "push"
        assert row.occurred_at == NOW and row.received_at == NOW
        case = session.get(CaseRow, contact.case_id)
        assert case is not None and case.next_due_at == NOW
        history = session.execute(
            select(HistoryRow).where(HistoryRow.kind == "disposition")
        ).scalar_one()
        assert history.disposition == "promise_to_pay" and history.at == NOW
        stored = session.get(ContactRow, contact.id)
        assert stored is not None and stored.state == "dispositioned"
    assert receiver.counts() == (1, 1)


def test_duplicate_push_changes_nothing(
    sessions: sessionmaker[Session], receiver: Receiver, contact: ContactRow
) -> None:
    first = receiver.push(payload(contact.contact_id))
    assert first.status_code == 200 and first.json()["status"] == "recorded"
    with transaction(sessions) as session:
        session.get(CaseRow, contact.case_id).next_due_at = None  # type: ignore[union-attr]
    receiver.clock.advance(timedelta(minutes=5))
    again = receiver.push(payload(contact.contact_id, code="Paid"))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert receiver.counts() == (1, 1)
    with sessions() as session:
        assert session.execute(select(DispositionRow.disposition)).scalar_one() == "promise_to_pay"
        case = session.get(CaseRow, contact.case_id)
        assert case is not None and case.next_due_at is None


@pytest.mark.parametrize(
    "secret_or_header",
    ["another-secret-entirely", None, "stale"],
    ids=["wrong-secret", "no-header", "stale-timestamp"],
)
def test_bad_signature_is_401_and_nothing_stored(
    receiver: Receiver, contact: ContactRow, secret_or_header: str | None
) -> None:
    body = json.dumps(payload(contact.contact_id)).encode()
    headers = {"Content-Type": "application/json"}
    now = int(time.time())
    if secret_or_header == "stale":
        headers["Recovery-Signature"] = sign(body, SECRET, now - 3600)
    elif secret_or_header is not None:
        headers["Recovery-Signature"] = sign(body, secret_or_header, now)
    response = receiver.http.post(
        f"{receiver.base_url}{DISPOSITION_PATH}", content=body, headers=headers
    )
    assert response.status_code == 401
    assert receiver.counts() == (0, 0)


def test_unknown_contact_is_404_and_nothing_stored(receiver: Receiver, contact: ContactRow) -> None:
    response = receiver.push(payload("00000000-0000-5000-8000-000000000000"))
    assert response.status_code == 404
    assert receiver.counts() == (0, 0)


def test_unknown_wrapup_is_recorded_as_unknown(
    sessions: sessionmaker[Session], receiver: Receiver, contact: ContactRow
) -> None:
    response = receiver.push(payload(contact.contact_id, code="Talked About The Weather"))
    assert response.status_code == 200 and response.json()["disposition"] == "unknown"
    with sessions() as session:
        row = session.execute(select(DispositionRow)).scalar_one()
        assert row.disposition == "unknown" and row.wrapup_code == "Talked About The Weather"
        assert row.detail["mapped"] is False


@pytest.mark.parametrize(
    "change",
    [
        {"callAttemptedAt": "2026-03-03T16:55:00"},  # no offset
        {"wrapupCode": ""},
        {"contactId": None},
        {"data": {"phone": 12125550123}},
    ],
    ids=["naive-time", "empty-code", "no-contact", "non-string-data"],
)
def test_invalid_body_is_422_and_nothing_stored(
    receiver: Receiver, contact: ContactRow, change: dict[str, Any]
) -> None:
    response = receiver.push({**payload(contact.contact_id), **change})
    assert response.status_code == 422
    assert "12125550123" not in response.text
    assert receiver.counts() == (0, 0)


def test_not_json_is_422(receiver: Receiver) -> None:
    body = b"{not json"
    timestamp = int(time.time())
    response = receiver.http.post(
        f"{receiver.base_url}{DISPOSITION_PATH}",
        content=body,
        headers={"Recovery-Signature": sign(body, SECRET, timestamp)},
    )
    assert response.status_code == 422


# -- the repository functions directly --------------------------------------------------------


def test_record_disposition_unknown_contact_raises(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(UnknownContact), transaction(sessions) as session:
        record_disposition(
            session=session,
            contact_id="nope",
            wrapup_code="Paid",
            disposition=Disposition.paid,
            right_party=True,
            source="poll",
            occurred_at=NOW,
            now=NOW,
            detail={},
        )


def test_a_closed_case_records_but_is_not_made_due(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        case = make_case(session, "in_closed", status="closed")
        row = make_contact(session, case)
        result = record_disposition(
            session=session,
            contact_id=row.contact_id,
            wrapup_code="ININ-OUTBOUND-NO-ANSWER",
            disposition=Disposition.no_answer,
            right_party=False,
            source="poll",
            occurred_at=NOW,
            now=NOW,
        )
        assert result.recorded and result.attempt == 1
    with sessions() as session:
        stored = session.get(CaseRow, result.case_id)
        assert stored is not None and stored.next_due_at is None


def test_contacts_awaiting_disposition(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        case = make_case(session, "in_wait")
        overdue = make_contact(session, case, attempt=1)
        overdue.disposition_due_at = NOW - timedelta(minutes=1)
        later = make_contact(session, case, attempt=2)
        later.disposition_due_at = NOW + timedelta(minutes=1)
        done = make_contact(session, case, attempt=3)
        done.disposition_due_at = NOW - timedelta(hours=1)
        done.state = "dispositioned"
        oldest = make_contact(session, case, attempt=4)
        oldest.disposition_due_at = NOW - timedelta(hours=2)
    with sessions() as session:
        found = contacts_awaiting_disposition(session=session, now=NOW, limit=10)
        assert [c.attempt for c in found] == [4, 1]
        assert [
            c.attempt for c in contacts_awaiting_disposition(session=session, now=NOW, limit=1)
        ] == [4]

"""The outcome callback (a wrap-up rule's data action) over real HTTP, on SQLite and
PostgreSQL: recorded once, duplicates change nothing, a missing or wrong static credential and
unknown contacts store nothing, unknown wrap-ups are kept as ``unknown`` for review, wrap-up
code ids are named through the contact centre. The good path is driven by the emulator's own
wrap-up rule and data action."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recovery.api.routes.callbacks import OUTCOME_PATH, build_callbacks_router
from recovery.clock import FixedClock
from recovery.contact_center.client import GenesysClient
from recovery.contact_center.contacts import ContactRequest
from recovery.contact_center.emulator import create_emulator_app
from recovery.contact_center.emulator.server import serve_in_thread
from recovery.contact_center.wrapups import WrapupNames
from recovery.domain.models import Disposition
from recovery.settings import Settings
from recovery.store.db import transaction
from recovery.store.dispositions import (
    UnknownContact,
    contacts_awaiting_disposition,
    record_disposition,
)
from recovery.store.tables import CaseRow, ContactRow, DispositionRow, HistoryRow
from tests.support.case_rows import case_row, contact_row
from tests.support.emulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    CONTACT_LIST,
    NOON_EASTERN,
    SleepRecorder,
    emulator_config,
)

OLD_SECRET = "action-secret-old-0123456789"
NEW_SECRET = "action-secret-new-9876543210"
NOW = NOON_EASTERN


def make_case(session: Session, key: str, *, status: str = "awaiting_disposition") -> CaseRow:
    return case_row(session, key, now=NOW, status=status, category="insufficient_funds")


def make_contact(session: Session, case: CaseRow, attempt: int = 1) -> ContactRow:
    request = ContactRequest(
        case_key=f"stripe:{case.business_key}",
        attempt=attempt,
        phone_e164="+12125550123",
        transaction_id=case.business_key,
        failure_reason="insufficient_funds",
        time_zone="America/New_York",
    )
    return contact_row(
        session,
        case,
        request.contact_id,
        at=NOW - timedelta(hours=1),
        disposition_due_at=NOW + timedelta(hours=2),
        contact_list_id=CONTACT_LIST,
        attempt=attempt,
    )


class Receiver:
    def __init__(
        self, sessions: sessionmaker[Session], base_url: str, clock: FixedClock, emulator: str
    ):
        self.sessions = sessions
        self.base_url = base_url
        self.clock = clock
        self.emulator = emulator
        self.http = httpx.Client(timeout=10)

    def post(
        self,
        payload: dict[str, Any] | str,
        *,
        secret: str | None = NEW_SECRET,
        header: bool = False,
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if secret is not None and header:
            headers["X-Recovery-Key"] = secret
        elif secret is not None:
            token = base64.b64encode(f"genesys:{secret}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        if isinstance(payload, str):
            return self.http.post(
                f"{self.base_url}{OUTCOME_PATH}", content=payload, headers=headers
            )
        return self.http.post(f"{self.base_url}{OUTCOME_PATH}", json=payload, headers=headers)

    def counts(self) -> tuple[int, int]:
        with self.sessions() as session:
            dispositions = session.scalar(select(func.count()).select_from(DispositionRow))
            history = session.scalar(
                select(func.count()).select_from(HistoryRow).where(HistoryRow.kind == "disposition")
            )
        return int(dispositions or 0), int(history or 0)


SETTINGS = {
    "genesys_action_secrets": [SecretStr(NEW_SECRET), SecretStr(OLD_SECRET)],
    "genesys_action_user": "genesys",
    "genesys_action_header": "X-Recovery-Key",
}


@pytest.fixture
def receiver(sessions: sessionmaker[Session]) -> Iterator[Receiver]:
    clock = FixedClock(NOW)
    settings = Settings(_env_file=None, **SETTINGS)  # type: ignore[arg-type]
    emulator_app = create_emulator_app(emulator_config(), clock=clock)
    with (
        serve_in_thread(emulator_app) as emulator_url,
        GenesysClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=emulator_url,
            sleep=SleepRecorder(),
        ) as client,
    ):
        names = WrapupNames(client, clock=clock, ttl=timedelta(minutes=15))
        app = FastAPI()
        app.include_router(
            build_callbacks_router(
                sessions=sessions, settings=settings, clock=clock, wrapup_name=names.name
            )
        )
        app.state.emulator = emulator_app.state.emulator
        with serve_in_thread(app) as base_url:
            handle = Receiver(sessions, base_url, clock, emulator_url)
            yield handle
            handle.http.close()


@pytest.fixture
def contact(sessions: sessionmaker[Session]) -> ContactRow:
    with transaction(sessions) as session:
        case = make_case(session, "in_1001")
        return make_contact(session, case)


def payload(
    contact_id: str, wrapup: str = "", analysis: str = "ININ-OUTBOUND-NO-ANSWER"
) -> dict[str, Any]:
    return {"contactId": contact_id, "callAnalysisResult": analysis, "agentWrapup": wrapup}


def code_id(receiver: Receiver, name: str) -> str:
    state = receiver.http.get(f"{receiver.emulator}/__emulator__/counters")  # the emulator answers
    assert state.status_code == 200
    token = receiver.http.post(
        f"{receiver.emulator}/oauth/token",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
    ).json()["access_token"]
    codes = receiver.http.get(
        f"{receiver.emulator}/api/v2/routing/wrapupcodes",
        params={"pageSize": 100},
        headers={"Authorization": f"Bearer {token}"},
    ).json()["entities"]
    return next(c["id"] for c in codes if c["name"] == name)


def test_the_emulators_data_action_is_recorded_once(
    sessions: sessionmaker[Session], receiver: Receiver, contact: ContactRow
) -> None:
    http = receiver.http
    emulator = receiver.emulator
    http.put(
        f"{emulator}/__emulator__/data-actions/outcome",
        json={
            "id": "outcome",
            "url": f"{receiver.base_url}{OUTCOME_PATH}",
            "basic_username": "genesys",
            "basic_password": OLD_SECRET,  # the secret being rotated out still works
        },
    ).raise_for_status()
    with GenesysClient(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=emulator, sleep=SleepRecorder()
    ) as client:
        codes = [c["id"] for c in client.api_pages("/routing/wrapupcodes", what="codes")]
        rules = client.api_json(
            "POST",
            "/outbound/rulesets",
            what="rule set",
            json={
                "name": "outcomes",
                "rules": [
                    {
                        "name": "send",
                        "category": "DIALER_WRAPUP",
                        "conditions": [{"type": "wrapupCondition", "codes": codes}],
                        "actions": [
                            {
                                "type": "dataActionBehavior",
                                "actionTypeName": "DATA_ACTION",
                                "dataAction": {"id": "outcome"},
                                "contactIdField": "contactId",
                                "callAnalysisResultField": "callAnalysisResult",
                                "agentWrapupField": "agentWrapup",
                            }
                        ],
                    }
                ],
            },
        )
        campaign = client.api_json("GET", "/outbound/campaigns/recovery-campaign", what="campaign")
        client.api_json(
            "PUT",
            "/outbound/campaigns/recovery-campaign",
            what="campaign",
            json={**campaign, "ruleSets": [{"id": rules["id"]}]},
        )
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
    http.post(f"{emulator}/__emulator__/scenario", json={"name": "all-promise-to-pay"})
    report = http.post(f"{emulator}/__emulator__/dial", json={}).json()
    assert report["dialled"] == 1 and report["actions_sent"] == 1
    with sessions() as session:
        row = session.execute(select(DispositionRow)).scalar_one()
        assert row.contact_id == contact.contact_id and row.attempt == 1
        # The rule sent the code's id; the receiver named it through the contact centre.
        assert row.disposition == "promise_to_pay" and row.wrapup_code == "Promise to Pay"
        assert row.right_party is True and row.source == "push"
        assert row.detail["channel"] == "data_action"
        assert row.occurred_at == NOW and row.received_at == NOW
        case = session.get(CaseRow, contact.case_id)
        assert case is not None and case.next_due_at == NOW
        stored = session.get(ContactRow, contact.id)
        assert stored is not None and stored.state == "dispositioned"
    assert receiver.counts() == (1, 1)


def test_a_header_secret_and_a_system_code(
    sessions: sessionmaker[Session], receiver: Receiver, contact: ContactRow
) -> None:
    answer = receiver.post(payload(contact.contact_id), secret=OLD_SECRET, header=True)
    assert answer.status_code == 200 and answer.json()["status"] == "recorded"
    with sessions() as session:
        row = session.execute(select(DispositionRow)).scalar_one()
        assert (row.wrapup_code, row.disposition) == ("ININ-OUTBOUND-NO-ANSWER", "no_answer")


def test_duplicate_changes_nothing(
    sessions: sessionmaker[Session], receiver: Receiver, contact: ContactRow
) -> None:
    first = receiver.post(payload(contact.contact_id, wrapup=code_id(receiver, "Promise to Pay")))
    assert first.status_code == 200 and first.json()["status"] == "recorded"
    with transaction(sessions) as session:
        session.get(CaseRow, contact.case_id).next_due_at = None  # type: ignore[union-attr]
    receiver.clock.advance(timedelta(minutes=5))
    again = receiver.post(payload(contact.contact_id, wrapup=code_id(receiver, "Paid")))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert receiver.counts() == (1, 1)
    with sessions() as session:
        assert session.execute(select(DispositionRow.disposition)).scalar_one() == "promise_to_pay"
        case = session.get(CaseRow, contact.case_id)
        assert case is not None and case.next_due_at is None


@pytest.mark.parametrize(
    ("secret", "header", "user"),
    [
        ("another-secret-entirely", False, "genesys"),
        ("another-secret-entirely", True, "genesys"),
        (NEW_SECRET, False, "someone-else"),
        (None, False, "genesys"),
    ],
    ids=["wrong-basic-secret", "wrong-header-secret", "wrong-user", "no-credential"],
)
def test_a_bad_credential_is_401_and_nothing_stored(
    receiver: Receiver, contact: ContactRow, secret: str | None, header: bool, user: str
) -> None:
    if user != "genesys":
        token = base64.b64encode(f"{user}:{secret}".encode()).decode()
        response = receiver.http.post(
            f"{receiver.base_url}{OUTCOME_PATH}",
            json=payload(contact.contact_id),
            headers={"Authorization": f"Basic {token}"},
        )
    else:
        response = receiver.post(payload(contact.contact_id), secret=secret, header=header)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Basic")
    assert receiver.counts() == (0, 0)


def test_unknown_contact_is_404_and_nothing_stored(receiver: Receiver, contact: ContactRow) -> None:
    response = receiver.post(payload("00000000-0000-5000-8000-000000000000"))
    assert response.status_code == 404
    assert receiver.counts() == (0, 0)


def test_unknown_wrapup_is_recorded_as_unknown(
    sessions: sessionmaker[Session], receiver: Receiver, contact: ContactRow
) -> None:
    response = receiver.post(payload(contact.contact_id, wrapup="Talked About The Weather"))
    assert response.status_code == 200
    with sessions() as session:
        row = session.execute(select(DispositionRow)).scalar_one()
        assert row.disposition == "unknown" and row.wrapup_code == "Talked About The Weather"
        assert row.detail["mapped"] is False


@pytest.mark.parametrize(
    "change",
    [
        {"contactId": None},
        {"contactId": ""},
        {"agentWrapup": "", "callAnalysisResult": ""},
        {"agentWrapup": 12125550123},
    ],
    ids=["no-contact", "empty-contact", "no-code", "non-string-code"],
)
def test_invalid_body_is_422_and_nothing_stored(
    receiver: Receiver, contact: ContactRow, change: dict[str, Any]
) -> None:
    response = receiver.post({**payload(contact.contact_id), **change})
    assert response.status_code == 422
    assert "12125550123" not in response.text
    assert receiver.counts() == (0, 0)


def test_not_json_is_refused(receiver: Receiver) -> None:
    assert receiver.post("{not json").status_code == 422
    token = base64.b64encode(f"genesys:{NEW_SECRET}".encode()).decode()
    form = receiver.http.post(
        f"{receiver.base_url}{OUTCOME_PATH}",
        content=b"contactId=x",
        headers={
            "Authorization": f"Basic {token}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert form.status_code == 415


def test_the_retired_signed_push_is_gone(receiver: Receiver) -> None:
    gone = receiver.http.post(f"{receiver.base_url}/callbacks/genesys/disposition", json={})
    assert gone.status_code == 404


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


def test_an_outcome_confirms_a_contact_whose_sending_was_never_confirmed(
    sessions: sessionmaker[Session],
) -> None:
    """A worker died waiting for the contact centre's answer; the contact was dialled and its
    outcome arrives: the attempt enters the history (the frequency caps count it) once."""
    with transaction(sessions) as session:
        case = make_case(session, "in_unconfirmed", status="contact_requested")
        # The sender's lease, held while the contact is in flight.
        case.lease_owner, case.lease_until = "advance-1", NOW + timedelta(seconds=30)
        row = make_contact(session, case)
        row.state, row.created_at = "requested", None
        contact_id, case_id = row.contact_id, case.id
    with transaction(sessions) as session:
        first = record_disposition(
            session=session,
            contact_id=contact_id,
            wrapup_code="ININ-OUTBOUND-NO-ANSWER",
            disposition=Disposition.no_answer,
            right_party=False,
            source="poll",
            occurred_at=NOW,
            now=NOW,
        )
    # The contact's creation is an event too, before its outcome's.
    assert [e.event for e in first.events] == [
        "recovery.contact.created",
        "recovery.disposition.recorded",
    ]
    # The outcome settles the contact: the case is due now and free for its next decision,
    # not held until the sender's lease runs out.
    with sessions() as session:
        settled = session.get(CaseRow, case_id)
        assert settled is not None
        assert settled.lease_owner is None and settled.lease_until is None
        assert settled.next_due_at is not None and settled.next_due_at <= NOW
    with transaction(sessions) as session:
        again = record_disposition(
            session=session,
            contact_id=contact_id,
            wrapup_code="ININ-OUTBOUND-NO-ANSWER",
            disposition=Disposition.no_answer,
            right_party=False,
            source="push",
            occurred_at=NOW,
            now=NOW,
        )
        assert again.duplicate
    with sessions() as session:
        kinds = [
            (h.kind, h.data.get("confirmed_by_outcome"))
            for h in session.scalars(
                select(HistoryRow).where(HistoryRow.case_id == case_id).order_by(HistoryRow.id)
            )
        ]
        assert kinds == [
            ("contact_requested", True),
            ("contact_created", True),
            ("disposition", None),
        ]
        stored = session.get(ContactRow, row.id)
        assert stored is not None and stored.state == "dispositioned"
        assert stored.created_at == stored.requested_at
        case_row = session.get(CaseRow, case_id)
        assert case_row is not None and case_row.contacts_made == 1

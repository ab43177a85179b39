"""The emulator over real HTTP: Genesys-style validation and errors, the rate limit, the
callable window and DNC guard of its dialer, doNotQueue, and seeded scenarios."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support import emulator as served_emulator
from tests.support.emulator import (
    CLIENT_ID,
    CONTACT_LIST,
    DNC_LIST,
    NOON_EASTERN,
    Emulator,
    serve_app,
)

emulator_server = served_emulator.emulator_server
emulator = served_emulator.emulator

ERROR_KEYS = {"message", "code", "status", "messageParams", "contextId", "details", "errors"}


def contact(
    contact_id: str | None, *, phone: str = "+14155552671", zone: str | None = "America/New_York"
) -> dict[str, Any]:
    data = {"phone": phone, "transactionId": f"tx-{contact_id}", "attemptCount": "1"}
    if zone is not None:
        data["timeZone"] = zone
    body: dict[str, Any] = {"contactListId": CONTACT_LIST, "data": data, "callable": True}
    if contact_id is not None:
        body["id"] = contact_id
    return body


def add(emulator: Emulator, contacts: list[dict[str, Any]], **params: str) -> Any:
    return emulator.api(
        "POST", f"/contactlists/{CONTACT_LIST}/contacts", json=contacts, params=params
    )


# -- login and validation -----------------------------------------------------------------


def test_token_endpoint(emulator: Emulator) -> None:
    good = emulator.http.post(
        f"{emulator.base_url}/oauth/token",
        auth=(CLIENT_ID, "emulator-secret-for-tests"),
        data={"grant_type": "client_credentials"},
    )
    assert good.status_code == 200
    body = good.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 86_400
    assert body["access_token"]
    bad = emulator.http.post(
        f"{emulator.base_url}/oauth/token",
        auth=(CLIENT_ID, "wrong"),
        data={"grant_type": "client_credentials"},
    )
    assert bad.status_code == 401
    grant = emulator.http.post(
        f"{emulator.base_url}/oauth/token",
        auth=(CLIENT_ID, "emulator-secret-for-tests"),
        data={"grant_type": "password"},
    )
    assert grant.status_code == 400


def test_missing_or_revoked_token_is_401(emulator: Emulator) -> None:
    anonymous = emulator.http.get(f"{emulator.base_url}/api/v2/outbound/callabletimesets")
    assert anonymous.status_code == 401 and set(anonymous.json()) == ERROR_KEYS
    token = emulator.token()
    assert emulator.api("GET", "/callabletimesets", token=token).status_code == 200
    emulator.control("POST", "/revoke-tokens")
    revoked = emulator.api("GET", "/callabletimesets", token=token)
    assert revoked.status_code == 401 and revoked.json()["code"] == "bad.credentials"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([{"id": "a", "data": {"phone": "+14155552671"}}], "contactListId"),
        ([{"id": "a", "contactListId": CONTACT_LIST}], "data"),
        ([{"id": "a", "contactListId": CONTACT_LIST, "data": {"attempt": 1}}], "string"),
        ([{"id": "a", "contactListId": "other", "data": {}}], "contactListId"),
        ({"id": "a"}, "array"),
        ([], "At least one"),
    ],
    ids=["no-list-id", "no-data", "non-string", "other-list", "not-array", "empty"],
)
def test_invalid_contacts_are_refused_as_a_whole(emulator: Emulator, body: Any, field: str) -> None:
    good = contact("good")
    payload = [good, *body] if isinstance(body, list) and body else body
    response = add(emulator, payload)
    assert response.status_code == 400
    error = response.json()
    assert set(error) == ERROR_KEYS
    assert error["status"] == 400 and field in error["message"]
    assert emulator.contacts() == []  # the valid one was not added either


def test_unknown_contact_list_and_contact_are_404(emulator: Emulator) -> None:
    response = emulator.api("POST", "/contactlists/nope/contacts", json=[contact("a")])
    assert response.status_code == 404
    assert response.json()["code"] == "not.found" and set(response.json()) == ERROR_KEYS
    missing = emulator.api("GET", f"/contactlists/{CONTACT_LIST}/contacts/nope")
    assert missing.status_code == 404
    dnc = emulator.api("POST", "/dnclists/nope/phonenumbers", json=["+14155552671"])
    assert dnc.status_code == 404


def test_bad_query_parameter_is_400(emulator: Emulator) -> None:
    response = add(emulator, [contact("a")], priority="maybe")
    assert response.status_code == 400


def test_search_and_callable_time_sets(emulator: Emulator) -> None:
    add(emulator, [contact(f"c{i}", phone=f"+1415555{i:04d}") for i in range(5)])
    page = emulator.api(
        "POST", f"/contactlists/{CONTACT_LIST}/contacts/search", json={"pageSize": 2}
    ).json()
    assert page["total"] == 5 and page["pageCount"] == 3 and len(page["entities"]) == 2
    found = emulator.api(
        "POST",
        f"/contactlists/{CONTACT_LIST}/contacts/search",
        json={"pageSize": 10, "criteria": {"column": "phone", "value": "+14155550003"}},
    ).json()
    assert [c["id"] for c in found["entities"]] == ["c3"]
    too_big = emulator.api(
        "POST", f"/contactlists/{CONTACT_LIST}/contacts/search", json={"pageSize": 101}
    )
    assert too_big.status_code == 400
    sets = emulator.api("GET", "/callabletimesets").json()
    time_set = sets["entities"][0]
    slots = time_set["callableTimes"][0]["timeSlots"]
    assert {(s["startTime"], s["stopTime"]) for s in slots} == {("08:00:00", "21:00:00")}
    assert sorted(s["day"] for s in slots) == list(range(1, 8))
    one = emulator.api("GET", f"/callabletimesets/{time_set['id']}")
    assert one.status_code == 200 and one.json()["id"] == time_set["id"]


# -- upserts, duplicates, queueing --------------------------------------------------------


def test_same_id_upserts_and_an_update_is_queued_again(emulator: Emulator) -> None:
    assert add(emulator, [contact("c1")]).status_code == 200
    assert add(emulator, [contact("c1")]).status_code == 200
    counters = emulator.counters()
    assert (counters["contacts_created"], counters["upserts"], counters["duplicates"]) == (1, 1, 0)
    assert emulator.dial()["dialled"] == 1
    # Without doNotQueue=true an update queues the contact again, dialled or not; the list's
    # limit of one attempt per contact is what keeps the dialler from calling it again.
    add(emulator, [contact("c1")])
    assert [c["queued"] for c in emulator.contacts()] == [True]
    assert emulator.dial()["dialled"] == 0
    log = emulator.dial_log()
    assert [(e["placed"], e["result"]) for e in log] == [
        (True, log[0]["result"]),
        (False, "ININ-OUTBOUND-CONTACT-ATTEMPT-LIMIT-SKIPPED"),
    ]
    # With doNotQueue=true the contact is left where it is: not queued again.
    add(emulator, [contact("c1")], doNotQueue="true")
    assert [c["queued"] for c in emulator.contacts()] == [False]


def test_without_ids_a_retry_duplicates_the_contact(emulator: Emulator) -> None:
    add(emulator, [contact(None)])
    add(emulator, [contact(None)])
    counters = emulator.counters()
    assert counters["contacts_created"] == 2 and counters["duplicates"] == 1
    assert emulator.dial()["dialled"] == 2


def test_do_not_queue_has_no_effect_on_new_contacts_and_priority(emulator: Emulator) -> None:
    # "For new contacts, this parameter has no effect": a new contact is queued.
    add(emulator, [contact("new", phone="+14155550009")], doNotQueue="true")
    assert emulator.dial()["dialled"] == 1
    add(emulator, [contact("a", phone="+14155550001"), contact("b", phone="+14155550002")])
    add(emulator, [contact("first", phone="+14155550003")], priority="true")
    queued = [c["id"] for c in emulator.contacts() if c["queued"]]
    assert set(queued) == {"a", "b", "first"}
    order = list(emulator.state.lists[CONTACT_LIST].queue)
    assert order[0] == "first"
    emulator.dial()
    assert emulator.placed() == ["new", "first", "a", "b"]


# -- rate limit ----------------------------------------------------------------------------


@pytest.mark.parametrize("window", ["fixed", "sliding"])
def test_rate_limit_answers_429_like_the_service(emulator: Emulator, window: str) -> None:
    emulator.control("POST", "/rate-limit", {"requests_per_minute": 3, "window": window})
    token = emulator.token()
    for expected_count in (1, 2, 3):
        ok = emulator.api("GET", "/callabletimesets", token=token)
        assert ok.status_code == 200
        assert ok.headers["inin-ratelimit-count"] == str(expected_count)
        assert ok.headers["inin-ratelimit-allowed"] == "3"
        assert 0 <= int(ok.headers["inin-ratelimit-reset"]) <= 60
    limited = emulator.api("GET", "/callabletimesets", token=token)
    assert limited.status_code == 429
    seconds = int(limited.headers["Retry-After"])
    assert 1 <= seconds <= 60
    body = limited.json()
    assert body["code"] == "too.many.requests.retry.after" and body["status"] == 429
    assert body["message"] == (
        f"Rate limit exceeded the maximum. Retry the request in [{seconds}] seconds"
    )
    # The budget is per token.
    assert emulator.api("GET", "/callabletimesets").status_code == 200
    assert emulator.counters()["rate_limited"] == 1


def test_injected_faults(emulator: Emulator) -> None:
    emulator.fault(503, count=2)
    emulator.fault(429)
    token = emulator.token()
    statuses = [emulator.api("GET", "/callabletimesets", token=token) for _ in range(4)]
    assert [r.status_code for r in statuses] == [503, 503, 429, 200]
    assert "Retry-After" not in statuses[2].headers
    emulator.fault(429, retry_after=7)
    limited = emulator.api("GET", "/callabletimesets", token=token)
    assert limited.headers["Retry-After"] == "7"


# -- the dialer ----------------------------------------------------------------------------


def test_dialer_refuses_outside_the_callable_window(emulator: Emulator) -> None:
    add(
        emulator,
        [
            contact("ny", phone="+12125550001", zone="America/New_York"),
            contact("la", phone="+13105550002", zone="America/Los_Angeles"),
            contact("nozone", phone="+13105550003", zone=None),
            contact("badzone", phone="+13105550004", zone="Nowhere/Special"),
        ],
    )
    # 07:30 in New York, 04:30 in Los Angeles: too early everywhere.
    early = emulator.dial(datetime(2026, 3, 3, 12, 30, tzinfo=UTC))
    assert early["dialled"] == 0 and early["refused_outside_window"] == 4
    # 12:30 in New York, 09:30 in Los Angeles: both callable; a zone the callable time set
    # does not list (none, or no zone at all) is never callable.
    noon = emulator.dial(datetime(2026, 3, 3, 17, 30, tzinfo=UTC))
    assert noon["dialled"] == 2 and noon["refused_outside_window"] == 2
    # 21:00 sharp in New York is already outside (the window ends at 21:00).
    add(emulator, [contact("late", phone="+12125550005", zone="America/New_York")])
    late = emulator.dial(datetime(2026, 3, 4, 2, 0, tzinfo=UTC))
    assert late["dialled"] == 0
    assert emulator.counters()["refused_outside_window"] == 4 + 2 + 3
    records = {c["id"]: c.get("callRecords") for c in emulator.contacts()}
    assert records["ny"]["phone"]["lastAttempt"] == "2026-03-03T17:30:00.000Z"
    assert records["nozone"] is None and records["late"] is None


def test_the_dial_log_since_an_instant(emulator: Emulator) -> None:
    add(emulator, [contact("ny", phone="+12125550001", zone="America/New_York")])
    emulator.dial(datetime(2026, 3, 3, 13, 30, tzinfo=UTC))
    add(emulator, [contact("ny2", phone="+12125550002", zone="America/New_York")])
    emulator.dial(datetime(2026, 3, 3, 17, 30, tzinfo=UTC))
    log = emulator.dial_log()
    assert {e["at"] for e in log} == {"2026-03-03T13:30:00.000Z", "2026-03-03T17:30:00.000Z"}
    control = f"{emulator.base_url}/__emulator__/dial-log"
    later = emulator.http.get(control, params={"since": "2026-03-03T10:30:00-05:00"}).json()
    assert later and all(e["at"] == "2026-03-03T17:30:00.000Z" for e in later)
    assert emulator.http.get(control, params={"since": "2026-03-04T00:00:00Z"}).json() == []
    for bad in ("yesterday", "2026-03-03T13:30:00"):
        refused = emulator.http.get(control, params={"since": bad})
        assert refused.status_code == 400 and "since" in refused.json()["message"]


def test_numbers_on_a_dnc_list_are_not_called(emulator: Emulator) -> None:
    assert (
        emulator.api("POST", f"/dnclists/{DNC_LIST}/phonenumbers", json=["+1 212 555 0001"])
    ).status_code == 200
    add(emulator, [contact("a", phone="+12125550001"), contact("b", phone="+12125550002")])
    report = emulator.dial()
    assert report["dialled"] == 1 and report["on_dnc_list"] == 1
    got = emulator.api("GET", f"/contactlists/{CONTACT_LIST}/contacts/a").json()
    assert got["callRecords"]["phone"]["lastResult"] == "ININ-OUTBOUND-ON-DO-NOT-CALL-LIST"


def outcomes(emulator: Emulator, seed: int) -> dict[str, str]:
    emulator.control("POST", "/reset")
    emulator.control("POST", "/scenario", {"name": "mixed", "seed": seed})
    add(emulator, [contact(f"c{i:03d}", phone=f"+1212555{i:04d}") for i in range(60)])
    emulator.dial()
    ids = [f"c{i:03d}" for i in range(60)]
    got = emulator.api("POST", f"/contactlists/{CONTACT_LIST}/contacts/bulk", json=ids[:50])
    got2 = emulator.api("POST", f"/contactlists/{CONTACT_LIST}/contacts/bulk", json=ids[50:])
    return {c["id"]: c["callRecords"]["phone"]["lastResult"] for c in got.json() + got2.json()}


def test_seeded_scenario_is_reproducible(emulator: Emulator) -> None:
    first = outcomes(emulator, seed=7)
    again = outcomes(emulator, seed=7)
    other = outcomes(emulator, seed=8)
    assert len(first) == 60
    assert first == again
    assert first != other
    assert len(set(first.values())) >= 4  # a mix, not one code


@pytest.mark.parametrize(
    ("scenario", "code"), [("all-no-answer", "ININ-OUTBOUND-NO-ANSWER"), ("all-paid", "Paid")]
)
def test_single_outcome_scenarios(emulator: Emulator, scenario: str, code: str) -> None:
    emulator.control("POST", "/scenario", {"name": scenario})
    add(emulator, [contact(f"c{i}", phone=f"+1212555{i:04d}") for i in range(10)])
    emulator.dial()
    results = {c["callRecords"]["phone"]["lastResult"] for c in emulator.contacts()}
    # The dialler's codes are names; an agent's code is the organisation's wrap-up code id.
    codes = emulator.platform("GET", "/routing/wrapupcodes", params={"pageSize": 100}).json()
    names = {c["id"]: c["name"] for c in codes["entities"]}
    assert {names.get(r, r) for r in results} == {code}
    assert (code in names.values()) == (results != {code})


def test_unknown_scenario_is_refused(emulator: Emulator) -> None:
    response = emulator.http.post(
        f"{emulator.base_url}/__emulator__/scenario", json={"name": "chaos"}
    )
    assert response.status_code == 400


def test_dialer_runs_on_its_own_interval_when_configured() -> None:
    import time

    from recovery.clock import FixedClock
    from recovery.contact_center.emulator import create_emulator_app
    from tests.support.emulator import emulator_config

    app = create_emulator_app(
        emulator_config(dial_interval_seconds=0.05), clock=FixedClock(NOON_EASTERN)
    )
    with serve_app(app) as url:
        handle = Emulator(base_url=url, clock=FixedClock(NOON_EASTERN), state=app.state.emulator)
        try:
            assert add(handle, [contact("auto")]).status_code == 200
            deadline = time.monotonic() + 5
            while handle.counters()["dials"] == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert handle.counters()["dials"] == 1
        finally:
            handle.http.close()

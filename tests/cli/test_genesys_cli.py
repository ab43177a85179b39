"""``recovery genesys check`` and ``recovery genesys setup`` against emulated organisations over
real HTTP: a misconfigured one is reported line by line (exit 1), set up, and then passes
(exit 0); what setup cannot correct is said, and the check keeps failing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import time as dtime
from typing import Any

import pytest
from typer.testing import CliRunner

from recovery.cli import app
from recovery.clock import FixedClock
from recovery.contact_center.contacts import CONTACT_COLUMNS
from recovery.contact_center.emulator import create_emulator_app
from recovery.contact_center.emulator.server import serve_in_thread
from tests.support.emulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    CONTACT_LIST,
    DNC_LIST,
    NOON_EASTERN,
    Emulator,
    emulator_config,
)

SEVEN_ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
]


@pytest.fixture
def misconfigured(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """An organisation as Genesys leaves it: no attempt limits, a campaign that is not always
    running and does not check the DNC list, a time set too wide that misses zones."""
    config = emulator_config(
        attempt_limits=None,
        campaign_dnc_lists=False,
        always_running=False,
        time_set_zones=SEVEN_ZONES,
        callable_from=dtime(7, 0),
        callable_until=dtime(22, 0),
    )
    clock = FixedClock(NOON_EASTERN)
    emulator_app = create_emulator_app(config, clock=clock)
    with serve_in_thread(emulator_app) as url:
        for name, value in {
            "RECOVERY_GENESYS_REGION": "emulator",
            "RECOVERY_GENESYS_BASE_URL": url,
            "RECOVERY_GENESYS_CLIENT_ID": CLIENT_ID,
            "RECOVERY_GENESYS_CLIENT_SECRET": CLIENT_SECRET,
            "RECOVERY_GENESYS_CONTACT_LIST_ID": CONTACT_LIST,
            "RECOVERY_GENESYS_DNC_LIST_ID": DNC_LIST,
            "RECOVERY_GENESYS_CAMPAIGN_ID": "recovery-campaign",
        }.items():
            monkeypatch.setenv(name, value)
        handle = Emulator(base_url=url, clock=clock, state=emulator_app.state.emulator)
        try:
            yield handle
        finally:
            handle.http.close()


def run(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, ["genesys", *args])
    return result.exit_code, [line for line in result.output.splitlines() if line]


def test_check_reports_each_problem_and_setup_fixes_them(misconfigured: Emulator) -> None:
    requests_before = misconfigured.counters()["requests"]
    code, lines = run("check")
    assert code == 1
    assert lines == [
        "contact list recovery-contacts has no attempt limits: Genesys recycles every contact "
        "it leaves callable, without end",
        "campaign recovery-campaign is not always running: contacts added after the list is "
        "depleted are not dialled",
        "campaign recovery-campaign does not check DNC list recovery-dnc",
        "callable time set 'Default 07:00-22:00 local' allows 07:00-22:00 on Monday, Tuesday, "
        "Wednesday, Thursday, Friday, Saturday, Sunday in America/Anchorage, America/Chicago, "
        "America/Denver, America/Los_Angeles, America/New_York, America/Phoenix, "
        "Pacific/Honolulu; the calling rules allow 08:00-21:00 at most",
        "callable time set 'Default 07:00-22:00 local' does not list America/Adak, "
        "America/Boise, America/North_Dakota/Center, America/Puerto_Rico, America/St_Thomas, "
        "Pacific/Guam, Pacific/Pago_Pago, Pacific/Saipan: contacts in those zones are never "
        "dialled",
    ]
    # Read only: nothing was created or changed by the check.
    token = misconfigured.token()
    assert (
        misconfigured.platform("GET", "/outbound/attemptlimits", token=token).json()["total"] == 0
    )
    campaign = misconfigured.platform(
        "GET", "/outbound/campaigns/recovery-campaign", token=token
    ).json()
    assert campaign["version"] == 1
    assert misconfigured.counters()["requests"] > requests_before

    code, lines = run("setup")
    assert code == 0, lines
    assert lines == [
        "created attempt limits 'Payment recovery: one dial per contact' (one attempt per "
        "contact, never reset)",
        "contact list recovery-contacts now uses attempt limits 'Payment recovery: one dial "
        "per contact'",
        "created callable time set 'Payment recovery calling hours' (15 zones)",
        "campaign recovery-campaign now checks DNC list recovery-dnc, uses callable time set "
        "'Payment recovery calling hours', is always running",
    ]
    assert run("check") == (0, ["the contact centre is set up as the project needs"])
    # Idempotent: a second run has nothing to do.
    assert run("setup") == (0, ["nothing to do: the contact centre is set up"])

    limits = misconfigured.platform("GET", "/outbound/attemptlimits", token=token).json()[
        "entities"
    ]
    assert [(x["maxAttemptsPerContact"], x["resetPeriod"], x["recallEntries"]) for x in limits] == [
        (1, "NEVER", {})
    ]


def test_what_setup_cannot_correct_is_said(
    misconfigured: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = misconfigured.token()
    # A list without the columns the project sends: columns are fixed once a list exists.
    narrow = misconfigured.platform(
        "POST",
        "/outbound/contactlists",
        token=token,
        json={
            "name": "narrow",
            "columnNames": ["phone", "timeZone"],
            "phoneColumns": [
                {"columnName": "phone", "type": "cell", "callableTimeColumn": "timeZone"}
            ],
        },
    ).json()
    campaign = misconfigured.platform(
        "GET", "/outbound/campaigns/recovery-campaign", token=token
    ).json()
    campaign["contactList"] = {"id": narrow["id"]}
    assert (
        misconfigured.platform(
            "PUT", "/outbound/campaigns/recovery-campaign", token=token, json=campaign
        ).status_code
        == 200
    )
    # An organisation's own wrap-up code the disposition map does not know.
    misconfigured.platform(
        "POST", "/routing/wrapupcodes", token=token, json={"name": "Left A Message With Mum"}
    )
    monkeypatch.setenv("RECOVERY_GENESYS_CONTACT_LIST_ID", narrow["id"])
    code, lines = run("check")
    assert code == 1
    missing = ", ".join(c for c in CONTACT_COLUMNS if c not in ("phone", "timeZone"))
    assert (
        f"contact list {narrow['id']} lacks the columns {missing}: the contact centre refuses "
        "contacts that carry them"
    ) in lines
    assert "wrap-up code 'Left A Message With Mum' is not mapped in the disposition map" in lines

    code, lines = run("setup")
    assert code == 1
    assert any(
        line.startswith(f"not done: contact list {narrow['id']} cannot be corrected")
        for line in lines
    )
    assert (
        "not done: wrap-up code 'Left A Message With Mum': map it in the disposition map" in lines
    )
    code, still = run("check")
    assert code == 1 and any("lacks the columns" in line for line in still)


def test_a_data_action_rule_set_is_checked_and_created(
    misconfigured: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECOVERY_GENESYS_DATA_ACTION_ID", "outcome-action")
    misconfigured.control(
        "PUT",
        "/data-actions/outcome-action",
        {"id": "outcome-action", "url": "http://127.0.0.1:9/x"},
    )
    code, lines = run("check")
    assert code == 1
    assert (
        "campaign recovery-campaign has no wrap-up rule that sends outcomes to data action "
        "outcome-action"
    ) in lines
    code, lines = run("setup")
    assert code == 0, lines
    assert any(line.startswith("created rule set 'Payment recovery outcomes'") for line in lines)
    assert run("check")[0] == 0
    rule_sets: list[dict[str, Any]] = misconfigured.platform("GET", "/outbound/rulesets").json()[
        "entities"
    ]
    action = rule_sets[0]["rules"][0]["actions"][0]
    assert (
        action["contactIdField"],
        action["callAnalysisResultField"],
        action["agentWrapupField"],
    ) == (
        "contactId",
        "callAnalysisResult",
        "agentWrapup",
    )


def test_check_exits_1_when_the_contact_centre_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECOVERY_GENESYS_REGION", "emulator")
    monkeypatch.setenv("RECOVERY_GENESYS_BASE_URL", "http://127.0.0.1:9")
    result = CliRunner().invoke(app, ["genesys", "check"])
    assert result.exit_code == 1
    assert "the contact centre could not be read" in result.output

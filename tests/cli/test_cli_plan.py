"""``recovery plan``: the JSON contract, the table, and exit 2 on bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from recovery.cli import app
from recovery.domain.compliance import CallHistory, load_rules, permitted
from recovery.domain.models import ContactPoint
from recovery.domain.policy import DEFAULT_POLICY

runner = CliRunner()

CA = ["--phone", "+14155550123", "--state", "CA"]


def plan(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["plan", *args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def utc(text: str) -> datetime:
    assert text.endswith("Z")
    return datetime.fromisoformat(text)


def test_json_contract() -> None:
    data = plan(
        "--reason",
        "insufficient_funds",
        *CA,
        "--failed-at",
        "2026-11-02T10:00:00-08:00",
        "--dispositions",
        "no_answer,busy,promise_to_pay:2026-12-04",
    )
    assert list(data) == ["steps"]
    steps = data["steps"]
    for step in steps:
        assert step["action"] in ("contact", "wait", "close", "review")
        at = utc(step["at"])
        assert at.utcoffset() == timedelta(0)
        local = datetime.fromisoformat(step["local_time"])
        assert local.utcoffset() == timedelta(hours=-8)  # Los Angeles in November/December
        assert local == at
        assert isinstance(step["reasons"], list) and step["reasons"]
        assert ("outcome" in step) == (step["action"] == "close")
        assert ("disposition" in step) == (step["action"] == "contact")
    contacts = [s for s in steps if s["action"] == "contact"]
    # scripted outcomes one per attempt, then no_answer
    assert [s["disposition"] for s in contacts] == [
        "no_answer",
        "busy",
        "promise_to_pay:2026-12-04",
        "no_answer",
    ]
    assert [s["attempt"] for s in contacts] == [1, 2, 3, 4]
    assert utc(contacts[0]["at"]) == datetime(2026, 11, 9, 18, tzinfo=UTC)  # 7 days' grace
    assert steps[-1] == {**steps[-1], "action": "close", "outcome": "exhausted"}
    rules = load_rules()
    contact = ContactPoint(phone_e164="+14155550123", state="CA")
    assert permitted(contact, CallHistory(), utc(contacts[0]["at"]), rules).permitted


def test_the_payday_policy_calls_after_three_days_then_on_paydays() -> None:
    payday = str(Path(DEFAULT_POLICY).with_name("policy-payday.yaml"))
    steps = plan(
        "--reason",
        "insufficient_funds",
        *CA,
        "--failed-at",
        "2026-11-02T10:00:00-08:00",
        "--dispositions",
        "no_answer,no_answer",
        "--policy",
        payday,
    )["steps"]
    contacts = [s for s in steps if s["action"] == "contact"]
    assert utc(contacts[0]["at"]) == datetime(2026, 11, 5, 18, tzinfo=UTC)  # 3 days' grace
    # then the next 1st or 15th of the month, at 08:00 in Los Angeles
    assert utc(contacts[1]["at"]) == datetime(2026, 11, 15, 16, tzinfo=UTC)
    assert utc(contacts[2]["at"]) == datetime(2026, 12, 1, 16, tzinfo=UTC)


def test_a_stripe_decline_code_is_mapped_through_the_taxonomy() -> None:
    by_code = plan("--reason", "expired_card", *CA, "--failed-at", "2026-11-02T10:00:00-08:00")
    by_name = plan("--reason", "card_expired", *CA, "--failed-at", "2026-11-02T10:00:00-08:00")
    assert by_code == by_name
    assert by_code["steps"][0]["action"] == "contact"  # an expired card is called at once


def test_do_not_call_ends_the_plan() -> None:
    steps = plan(
        "--reason",
        "generic_decline",
        "--phone",
        "+12145550123",
        "--state",
        "TX",
        "--failed-at",
        "2026-12-05T09:00:00-06:00",
        "--dispositions",
        "do_not_call,no_answer",
    )["steps"]
    assert [s["action"] for s in steps] == ["wait", "contact", "close"]
    assert steps[-1]["outcome"] == "suppressed"
    # Sunday in Texas: not before noon, in El Paso's Mountain time too
    assert steps[1]["at"] == "2026-12-06T19:00:00Z"


def test_callback_and_explicit_time_zone() -> None:
    steps = plan(
        "--reason",
        "card_expired",
        "--phone",
        "+14155550123",
        "--tz",
        "America/Los_Angeles",
        "--failed-at",
        "2026-11-02T10:00:00-08:00",
        "--dispositions",
        "callback_requested:2026-11-03T15:30:00-08:00,paid",
    )["steps"]
    contacts = [s for s in steps if s["action"] == "contact"]
    assert [s["at"] for s in contacts] == ["2026-11-02T18:00:00Z", "2026-11-03T23:30:00Z"]
    assert steps[-1]["outcome"] == "recovered"


def test_failed_at_defaults_to_now() -> None:
    steps = plan("--reason", "processing_error", *CA)["steps"]
    first = utc(steps[0]["at"])
    assert first >= datetime.now(UTC) + timedelta(days=2) - timedelta(minutes=5)


def test_table_output() -> None:
    result = runner.invoke(
        app,
        ["plan", "--reason", "card_expired", *CA, "--failed-at", "2026-11-02T22:00:00-08:00"],
    )
    assert result.exit_code == 0, result.output
    assert "America/Los_Angeles" in result.stdout
    assert "contact" in result.stdout and "exhausted" in result.stdout
    assert "Tue 2026-11-03 08:00 PST" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reason", "broke", *CA], "unknown reason 'broke'"),
        (["--reason", "card_expired", "--phone", "555-0123"], "--phone"),
        (["--reason", "card_expired", "--phone", "+1415555012"], "not a valid phone"),
        (["--reason", "card_expired", *CA, "--failed-at", "2026-11-02T10:00:00"], "UTC offset"),
        (["--reason", "card_expired", *CA, "--failed-at", "yesterday"], "ISO 8601"),
        (["--reason", "card_expired", *CA, "--dispositions", "no_answer,hung_up"], "'hung_up'"),
        (["--reason", "card_expired", *CA, "--dispositions", "no_answer,,busy"], "empty item"),
        (
            ["--reason", "card_expired", *CA, "--dispositions", "promise_to_pay:next week"],
            "YYYY-MM-DD",
        ),
        (
            ["--reason", "card_expired", *CA, "--dispositions", "callback_requested:2026-12-03"],
            "UTC offset",
        ),
        (["--reason", "card_expired", *CA, "--dispositions", "busy:2026-12-03"], "take a value"),
        (["--reason", "card_expired", *CA, "--tz", "Mars/Olympus"], "--tz"),
        (["--reason", "card_expired", *CA, "--state", "California"], "--state"),
        (["--reason", "card_expired", *CA, "--retry-in", "soon"], "--retry-in"),
        (
            ["--reason", "card_expired", *CA, "--retry-in", "1d", "--next-retry", "2026-12-01"],
            "not both",
        ),
        (
            ["--reason", "card_expired", *CA, "--failed-at", "2026-11-02T10:00:00-08:00"]
            + ["--next-retry", "2026-11-01T10:00:00-08:00"],
            "after the failure",
        ),
        (["--reason", "card_expired", *CA, "--retry-outcome", "paid"], "needs --next-retry"),
        (["--reason", "card_expired", *CA, "--retry-in", "1d", "--retry-outcome", "x"], "paid"),
    ],
)
def test_bad_arguments_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["plan", *args, "--json"])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stdout == ""


FAILED_MONDAY = ["--failed-at", "2026-11-02T10:00:00-08:00"]


def test_a_retry_in_three_days_that_succeeds_closes_the_case_with_no_call() -> None:
    steps = plan(
        "--reason", "insufficient_funds", *CA, *FAILED_MONDAY, "--retry-in", "3d",
        "--retry-outcome", "paid",
    )["steps"]  # fmt: skip
    assert [s["action"] for s in steps] == ["wait", "event", "close"]
    assert steps[1]["event"] == "gateway retry: paid"
    assert steps[-1]["outcome"] == "recovered"
    assert steps[-1]["at"] == "2026-11-05T18:00:00Z"  # at the retry, before any call


def test_a_soft_decline_waits_past_the_retry_the_gateway_announced() -> None:
    payday = str(Path(DEFAULT_POLICY).with_name("policy-payday.yaml"))
    steps = plan(
        "--reason", "insufficient_funds", *CA, *FAILED_MONDAY, "--retry-in", "3d",
        "--policy", payday,
    )["steps"]  # fmt: skip
    first = steps[0]
    assert first["status"] == "awaiting_retry" and first["waiting_for"] == "gateway_retry"
    assert first["retry_at"] == "2026-11-05T18:00:00Z"
    contacts = [s for s in steps if s["action"] == "contact"]
    # the 3-day grace ends with the retry; the first call comes a day after it
    assert contacts[0]["at"] == "2026-11-06T18:00:00Z"


def test_a_failed_retry_moves_the_case_on() -> None:
    steps = plan(
        "--reason", "generic_decline", *CA, *FAILED_MONDAY, "--retry-in", "3d",
        "--retry-outcome", "failed",
    )["steps"]  # fmt: skip
    contacts = [s for s in steps if s["action"] == "contact"]
    # called at the retry's failure, not a day after the retry
    assert contacts[0]["at"] == "2026-11-05T18:00:00Z"
    assert any("failed" in r for r in contacts[0]["reasons"])


def test_an_expired_card_is_called_at_the_first_lawful_minute_whatever_the_retry() -> None:
    steps = plan(
        "--reason", "expired_card", *CA, "--failed-at", "2026-11-02T06:30:00-08:00",
        "--retry-in", "1d",
    )["steps"]  # fmt: skip
    assert steps[0]["action"] == "wait" and steps[0]["status"] == "awaiting_window"
    assert steps[1]["action"] == "contact" and steps[1]["at"] == "2026-11-02T16:00:00Z"
    assert "waiting_for" not in steps[0]


def test_a_bad_policy_file_exits_2_naming_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(DEFAULT_POLICY.read_text().replace("max_attempts: 5", "max_attempts: -1", 1))
    result = runner.invoke(app, ["plan", "--reason", "card_expired", *CA, "--policy", str(path)])
    assert result.exit_code == 2
    assert "categories.card_expired.max_attempts" in result.stderr


def test_an_operator_policy_changes_the_plan(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(DEFAULT_POLICY.read_text().replace("max_attempts: 5", "max_attempts: 2", 1))
    args = ["--reason", "card_expired", *CA, "--failed-at", "2026-11-02T10:00:00-08:00"]
    steps = plan(*args, "--policy", str(path))["steps"]
    assert [s["action"] for s in steps].count("contact") == 2
    assert steps[-1]["outcome"] == "exhausted"


def test_a_number_without_a_time_zone_is_parked_for_review_not_dialled() -> None:
    steps = plan(
        "--reason",
        "lost_card",
        "--phone",
        "+18005550199",
        "--failed-at",
        "2026-12-05T09:00:00-06:00",
    )["steps"]
    assert [s["action"] for s in steps] == ["review"]
    assert steps[0]["status"] == "needs_contact_info"
    assert steps[0]["at"] == "2026-12-05T15:00:00Z"
    assert any(r.startswith("timezone_unknown") for r in steps[0]["reasons"])

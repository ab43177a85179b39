"""The policy file and the wrap-up mapping: loading, validation errors naming the entry, and
the calendar arithmetic of aligned delays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from recovery.domain.models import Disposition, FailureCategory, Outcome
from recovery.domain.policy import (
    DEFAULT_POLICY,
    DataFileError,
    DayOfMonth,
    NextWeekday,
    delay_end,
    format_delay,
    is_right_party,
    load_disposition_map,
    load_policy,
    map_wrapup,
    parse_duration,
)

# --- durations and delays ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("36h", timedelta(hours=36)),
        ("2d", timedelta(days=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 1H30M ", timedelta(hours=1, minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("0m", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_delay(expected)) == expected


@pytest.mark.parametrize("text", ["", "2", "2w", "h2", "2d 3h", "-1d", "1.5h", "3h2d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)


def test_next_weekday_is_strictly_after_the_start_day() -> None:
    friday = NextWeekday(next_weekday="friday")
    # Friday 2026-12-04 10:00 in New York -> the next Friday, midnight local
    start = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
    assert delay_end(friday, start, ["America/New_York"]) == datetime(
        2026, 12, 11, 5, 0, tzinfo=UTC
    )
    # Thursday -> the next day
    assert delay_end(friday, start - timedelta(days=1), ["America/New_York"]) == datetime(
        2026, 12, 4, 5, 0, tzinfo=UTC
    )


def test_day_of_month_finds_the_next_listed_day() -> None:
    paydays = DayOfMonth(day_of_month=(15, 1))
    assert paydays.day_of_month == (1, 15)
    la = ["America/Los_Angeles"]
    assert delay_end(paydays, datetime(2026, 11, 23, 18, tzinfo=UTC), la) == datetime(
        2026, 12, 1, 8, tzinfo=UTC
    )
    # on the 1st itself -> the 15th
    assert delay_end(paydays, datetime(2026, 12, 1, 17, tzinfo=UTC), la) == datetime(
        2026, 12, 15, 8, tzinfo=UTC
    )
    # across a year end
    assert delay_end(paydays, datetime(2026, 12, 20, 17, tzinfo=UTC), la) == datetime(
        2027, 1, 1, 8, tzinfo=UTC
    )


def test_an_aligned_delay_holds_in_every_candidate_zone() -> None:
    paydays = DayOfMonth(day_of_month=(1,))
    start = datetime(2026, 11, 20, 12, tzinfo=UTC)
    both = delay_end(paydays, start, ["America/New_York", "America/Los_Angeles"])
    assert both == datetime(2026, 12, 1, 8, tzinfo=UTC)  # Los Angeles' midnight, the later


def test_an_aligned_delay_across_a_dst_change() -> None:
    sunday = NextWeekday(next_weekday="sunday")
    # 2026-03-08 is the US spring-forward Sunday: midnight there is still EST (UTC-5)
    start = datetime(2026, 3, 6, 15, tzinfo=UTC)
    assert delay_end(sunday, start, ["America/New_York"]) == datetime(2026, 3, 8, 5, tzinfo=UTC)
    # the next Sunday is in EDT (UTC-4)
    assert delay_end(sunday, datetime(2026, 3, 8, 15, tzinfo=UTC), ["America/New_York"]) == (
        datetime(2026, 3, 15, 4, tzinfo=UTC)
    )


def test_a_fixed_delay_needs_no_zone() -> None:
    start = datetime(2026, 3, 7, 20, tzinfo=UTC)
    assert delay_end(timedelta(hours=36), start, ()) == start + timedelta(hours=36)


# --- the shipped policy ---


def test_the_shipped_policy_covers_everything() -> None:
    policy = load_policy()
    assert set(policy.categories) == set(FailureCategory)
    assert set(policy.dispositions) == set(Disposition)
    insufficient = policy.for_category(FailureCategory.insufficient_funds)
    assert insufficient.first_contact == timedelta(days=7)
    assert insufficient.gateway_retry is not None
    assert insufficient.gateway_retry.after == timedelta(days=1)
    payday = load_policy(DEFAULT_POLICY.with_name("policy-payday.yaml"))
    paid_on = payday.for_category(FailureCategory.insufficient_funds)
    assert paid_on.first_contact == timedelta(days=3)
    assert paid_on.retry == (DayOfMonth(day_of_month=(1, 15)),)
    # the two files differ in the insufficient-funds schedule only
    assert {c: payday.for_category(c) for c in FailureCategory if c != "insufficient_funds"} == {
        c: policy.for_category(c) for c in FailureCategory if c != "insufficient_funds"
    }
    assert payday.dispositions == policy.dispositions
    dnc = policy.for_disposition(Disposition.do_not_call)
    assert (dnc.action, dnc.outcome, dnc.suppress, dnc.stop_phone_cases) == (
        "close",
        Outcome.suppressed,
        "all",
        True,
    )
    wrong = policy.for_disposition(Disposition.wrong_number)
    assert (wrong.outcome, wrong.suppress) == (Outcome.unreachable, "customer")
    assert policy.for_disposition(Disposition.dispute).flag_review
    assert policy.for_disposition(Disposition.unknown).action == "review"
    for d in (Disposition.no_answer, Disposition.busy, Disposition.voicemail, Disposition.machine):
        assert policy.for_disposition(d).action == "retry"
    for d in (Disposition.paid, Disposition.payment_updated):
        assert policy.for_disposition(d).outcome is Outcome.recovered


def test_retry_delays_repeat_the_last_one() -> None:
    cat = load_policy().for_category(FailureCategory.card_expired)
    assert [cat.retry_delay(n) for n in (1, 2, 3, 4, 9)] == [
        timedelta(days=1),
        timedelta(days=2),
        timedelta(days=3),
        timedelta(days=3),
        timedelta(days=3),
    ]


# --- bad policy files name the entry ---


def policy_with(tmp_path: Path, edit: dict[str, object]) -> Path:
    """The shipped policy with ``edit`` applied (dotted paths; None deletes)."""
    data = yaml.safe_load(DEFAULT_POLICY.read_text())
    for dotted, value in edit.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("edit", "names"),
    [
        ({"categories.unknown": None}, "categories: no entry for unknown"),
        (
            {"categories.card_expired.first_contact": "soon"},
            "categories.card_expired.first_contact",
        ),
        ({"categories.card_expired.retry": ["1d", "2x"]}, "categories.card_expired.retry.1"),
        ({"categories.card_expired.retry": []}, "categories.card_expired.retry"),
        ({"categories.card_expired.retry": ["0m"]}, "at least 1m"),
        ({"categories.card_expired.max_attempts": 0}, "categories.card_expired.max_attempts"),
        (
            {"categories.card_expired.expires_after": "400d"},
            "categories.card_expired.expires_after",
        ),
        (
            {"categories.card_expired.disposition_timeout": "8d"},
            "categories.card_expired.disposition_timeout",
        ),
        (
            {"categories.insufficient_funds.retry": [{"day_of_month": [1, 31]}]},
            "categories.insufficient_funds.retry.0",
        ),
        (
            {"categories.generic_decline.retry": [{"next_weekday": "fryday"}]},
            "categories.generic_decline.retry.0",
        ),
        ({"categories.card_expired.retry": [{"every": "week"}]}, "bad delay"),
        ({"categories.card_expired.cap": 3}, "categories.card_expired.cap"),
        ({"categories.card_stolen": {}}, "categories.card_stolen"),
        ({"dispositions.busy": None}, "dispositions: no entry for busy"),
        ({"dispositions.dispute": {"action": "close"}}, "dispositions.dispute"),
        ({"dispositions.paid.action": "hangup"}, "dispositions.paid.action"),
        ({"dispositions.no_answer.outcome": "expired"}, "dispositions.no_answer"),
        ({"dispositions.promise_to_pay.grace": None}, "dispositions.promise_to_pay"),
        ({"dispositions.callback_requested.delay": None}, "dispositions.callback_requested"),
        ({"dispositions.do_not_call.stop_phone_cases": False}, "do_not_call must close"),
        ({"dispositions.do_not_call": {"action": "retry"}}, "do_not_call must close"),
        ({"version": 2}, "version"),
    ],
)
def test_bad_policy_files_name_the_entry(
    tmp_path: Path, edit: dict[str, object], names: str
) -> None:
    with pytest.raises(DataFileError) as err:
        load_policy(policy_with(tmp_path, edit))
    assert names in str(err.value)
    assert str(tmp_path) in str(err.value)


def test_an_operator_policy_is_loaded_by_path(tmp_path: Path) -> None:
    path = policy_with(
        tmp_path,
        {
            "categories.card_expired.max_attempts": 2,
            "categories.card_expired.retry": ["36h", {"next_weekday": "friday"}],
        },
    )
    cat = load_policy(path).for_category(FailureCategory.card_expired)
    assert cat.max_attempts == 2
    assert cat.retry == (timedelta(hours=36), NextWeekday(next_weekday="friday"))


def test_bad_yaml_is_a_data_file_error(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("categories: {card_expired: [\n")
    with pytest.raises(DataFileError, match="not valid YAML"):
        load_policy(path)


# --- the wrap-up mapping ---

REQUIRED_WRAPUPS = {
    "ININ-OUTBOUND-NO-ANSWER": Disposition.no_answer,
    "ININ-OUTBOUND-BUSY": Disposition.busy,
    "ININ-OUTBOUND-MACHINE": Disposition.machine,
    "ININ-OUTBOUND-ON-DO-NOT-CALL-LIST": Disposition.do_not_call,
    "ININ-OUTBOUND-INVALID-PHONE-NUMBER": Disposition.wrong_number,
    "ININ-OUTBOUND-SIT-UNCALLABLE": Disposition.wrong_number,
    "ININ-OUTBOUND-SIT-CALLABLE": Disposition.no_answer,
    "ININ-OUTBOUND-AMBIGUOUS": Disposition.no_answer,
    "ININ-OUTBOUND-PREVIEW-SKIPPED": Disposition.no_answer,
    "Promise to Pay": Disposition.promise_to_pay,
    "Callback Requested": Disposition.callback_requested,
    "Never Call": Disposition.do_not_call,
    "Paid": Disposition.paid,
    "Card Updated": Disposition.payment_updated,
    "Wrong Number": Disposition.wrong_number,
    "Dispute": Disposition.dispute,
    "Voicemail": Disposition.voicemail,
}


@pytest.mark.parametrize(("code", "expected"), sorted(REQUIRED_WRAPUPS.items()))
def test_wrapup_codes(code: str, expected: Disposition) -> None:
    mapping = load_disposition_map()
    assert map_wrapup(code, mapping) is expected
    assert map_wrapup(code.lower(), mapping) is expected
    assert map_wrapup(f"  {code.upper()} ", mapping) is expected


def test_unknown_wrapups_are_unknown_and_own_names_mean_themselves() -> None:
    mapping = load_disposition_map()
    assert map_wrapup("ININ-OUTBOUND-SOMETHING-NEW", mapping) is Disposition.unknown
    assert map_wrapup("", mapping) is Disposition.unknown
    assert map_wrapup("Promise  to   PAY", mapping) is Disposition.promise_to_pay
    assert map_wrapup("callback_requested", mapping) is Disposition.callback_requested


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("version: 1\ncodes:\n  Paid: paid\n  PAID: paid\n", "'PAID' appears twice"),
        ("version: 1\ncodes:\n  Paid Twice: paid_twice\n", "codes.paid twice"),
        ("version: 1\ncodes: [Paid]\n", "codes"),
        ("version: 1\n", "codes"),
    ],
)
def test_bad_disposition_maps_name_the_entry(tmp_path: Path, text: str, names: str) -> None:
    path = tmp_path / "dispositions.yaml"
    path.write_text(text)
    with pytest.raises(DataFileError) as err:
        load_disposition_map(path)
    assert names in str(err.value)


def test_right_party_dispositions() -> None:
    spoke = {d for d in Disposition if is_right_party(d)}
    assert spoke == {
        Disposition.promise_to_pay,
        Disposition.callback_requested,
        Disposition.paid,
        Disposition.payment_updated,
        Disposition.dispute,
        Disposition.do_not_call,
    }

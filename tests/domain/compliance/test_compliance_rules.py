"""The calling rules, row by row: hours, Sundays, holidays, caps, cooldown, DST, rule files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from recovery.domain.compliance import (
    CallHistory,
    CallingRules,
    RulesFileError,
    load_rules,
    next_permitted,
    permitted,
    resolve_contact,
)
from recovery.domain.models import ContactPoint

NY, CHI, DEN, LA = "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"
WEDNESDAY, SATURDAY, SUNDAY = (2025, 6, 11), (2025, 6, 14), (2025, 6, 15)
INDEPENDENCE_DAY = (2025, 7, 4)  # a Friday; a public holiday in every state's calendar


@pytest.fixture(scope="module")
def rules() -> CallingRules:
    return load_rules()


def local(zone: str, day: tuple[int, int, int], hour: int, minute: int = 0) -> datetime:
    return datetime(*day, hour, minute, tzinfo=ZoneInfo(zone))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@dataclass(frozen=True)
class Row:
    """One row of the reference table, with a contact that lives in it (one zone)."""

    state: str
    phone: str
    postal_code: str
    zone: str
    weekday: tuple[int, int] | None  # hours, Wednesday
    saturday: tuple[int, int] | None
    sunday: tuple[int, int] | None  # None: no calls
    holidays_banned: bool
    cap: tuple[int, timedelta] | None

    @property
    def contact(self) -> ContactPoint:
        return ContactPoint(phone_e164=self.phone, state=self.state, postal_code=self.postal_code)


DAY, WEEK = timedelta(days=1), timedelta(days=7)
TABLE = [
    Row("GA", "+14045550123", "30301", NY, (8, 21), (8, 21), (8, 21), False, None),  # US only
    Row("FL", "+13055550123", "33101", NY, (8, 20), (8, 20), (8, 20), False, (3, DAY)),
    Row("OK", "+14055550123", "73101", CHI, (8, 20), (8, 20), (8, 20), False, (3, DAY)),
    Row("MD", "+14105550123", "21201", NY, (8, 20), (8, 20), (8, 20), False, (3, DAY)),
    Row("MA", "+16175550123", "02108", NY, (8, 20), (8, 20), (8, 20), False, (2, WEEK)),
    Row("WA", "+12065550123", "98101", LA, (8, 20), (8, 20), (8, 20), False, None),
    Row("WY", "+13075550123", "82001", DEN, (8, 20), (8, 20), (8, 20), False, None),
    Row("CT", "+12035550123", "06101", NY, (9, 20), (9, 20), (9, 20), False, None),
    Row("NV", "+17025550123", "89101", LA, (9, 20), (9, 20), (9, 20), False, None),
    Row("MI", "+13135550123", "48201", NY, (9, 21), (9, 21), (9, 21), False, None),
    Row("MN", "+16125550123", "55401", CHI, (9, 21), (9, 21), (9, 21), False, None),
    Row("NM", "+15055550123", "87101", DEN, (9, 21), (9, 21), (9, 21), False, None),
    Row("KY", "+15025550123", "40202", NY, (10, 21), (10, 21), (10, 21), False, None),
    Row("TX", "+15125550123", "78701", CHI, (9, 21), (9, 21), (12, 21), False, None),
    Row("AL", "+12055550123", "35203", CHI, (8, 20), (8, 20), None, True, None),
    Row("LA", "+15045550123", "70112", CHI, (8, 20), (8, 20), None, True, None),
    Row("MS", "+16015550123", "39201", CHI, (8, 20), (8, 20), None, False, None),
    Row("UT", "+18015550123", "84101", DEN, (8, 21), (8, 21), None, True, None),
    Row("RI", "+14015550123", "02903", NY, (9, 18), (10, 17), None, True, None),
]
IDS = [row.state for row in TABLE]


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_the_contact_of_the_row_lives_in_one_zone(row: Row) -> None:
    resolution = resolve_contact(row.contact)
    assert resolution.timezones == (row.zone,)
    assert resolution.jurisdictions == ("US", f"US-{row.state}")


@pytest.mark.parametrize("row", TABLE, ids=IDS)
@pytest.mark.parametrize(
    ("day", "field"), [(WEDNESDAY, "weekday"), (SATURDAY, "saturday"), (SUNDAY, "sunday")]
)
def test_hours_are_half_open_local_windows(
    rules: CallingRules, row: Row, day: tuple[int, int, int], field: str
) -> None:
    hours = getattr(row, field)
    history = CallHistory()
    if hours is None:
        verdict = permitted(row.contact, history, local(row.zone, day, 12), rules)
        assert not verdict.permitted
        assert any(f"US-{row.state} no calls on Sunday in {row.zone}" in r for r in verdict.reasons)
        return
    start, end = hours
    cases = [(start, 0, True), (start - 1, 59, False), (end - 1, 59, True), (end, 0, False)]
    for hour, minute, expected in cases:
        at = local(row.zone, day, hour, minute)
        verdict = permitted(row.contact, history, at, rules)
        assert verdict.permitted is expected, (row.state, at, verdict.reasons)
        if expected:
            assert verdict.next_permitted_at == at and verdict.reasons == ()
        else:
            assert f"in {row.zone}: {hour:02d}:{minute:02d} local is outside" in " ".join(
                verdict.reasons
            )


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_state_holidays(rules: CallingRules, row: Row) -> None:
    at = local(row.zone, INDEPENDENCE_DAY, 12)
    verdict = permitted(row.contact, CallHistory(), at, rules)
    if not row.holidays_banned:
        assert verdict.permitted, verdict.reasons
        return
    assert not verdict.permitted
    assert any(
        f"US-{row.state} no calls on public holidays in {row.zone}" in r and "Independence Day" in r
        for r in verdict.reasons
    )
    # The next window opens with Saturday's hours.
    opening = row.saturday[0] if row.saturday else 0
    assert verdict.next_permitted_at == local(row.zone, (2025, 7, 5), opening).astimezone(UTC)


@pytest.mark.parametrize("row", [r for r in TABLE if r.cap], ids=[r.state for r in TABLE if r.cap])
def test_state_caps_over_rolling_windows(rules: CallingRules, row: Row) -> None:
    assert row.cap is not None
    limit, window = row.cap
    first = local(row.zone, WEDNESDAY, 10)
    attempts = tuple(first + timedelta(minutes=30 * i) for i in range(limit))
    at = attempts[-1] + timedelta(minutes=30)
    verdict = next_permitted(row.contact, CallHistory(attempts=attempts), at, rules)
    assert not verdict.permitted
    assert any(
        r.startswith(f"US-{row.state} cap {limit} attempts per rolling") for r in verdict.reasons
    )
    # The window rolls: the call is allowed again exactly when the first attempt leaves it.
    assert verdict.next_permitted_at == (first + window).astimezone(UTC)
    # One attempt fewer is within the cap.
    fewer = CallHistory(attempts=attempts[:-1])
    assert permitted(row.contact, fewer, at, rules).permitted


def test_attempts_a_whole_window_apart_never_share_it(rules: CallingRules) -> None:
    contact = TABLE[1].contact  # Florida: 3 per 24 h
    first = local(NY, WEDNESDAY, 4)
    attempts = (first, first + timedelta(hours=1), first + DAY)
    # No 24 h window holds all three, so a call between them is at most the third in any.
    at = local(NY, WEDNESDAY, 12)
    assert permitted(contact, CallHistory(attempts=attempts), at, rules).permitted
    assert next_permitted(contact, CallHistory(attempts=attempts), at, rules).permitted


def test_federal_seven_attempts_in_seven_days(rules: CallingRules) -> None:
    contact = TABLE[0].contact  # Georgia: federal rules only
    first = local(NY, (2025, 6, 2), 10)
    attempts = tuple(first + timedelta(days=i) for i in range(7))
    at = local(NY, (2025, 6, 8), 15)
    verdict = next_permitted(contact, CallHistory(attempts=attempts), at, rules)
    assert not verdict.permitted
    assert any(r.startswith("US cap 7 attempts per rolling 7d") for r in verdict.reasons)
    assert verdict.next_permitted_at == (first + WEEK).astimezone(UTC)
    assert permitted(contact, CallHistory(attempts=attempts[1:]), at, rules).permitted


def test_no_call_within_seven_days_after_a_conversation(rules: CallingRules) -> None:
    contact = TABLE[0].contact
    talked = local(NY, (2025, 6, 2), 10)
    history = CallHistory(last_conversation=talked)
    verdict = next_permitted(contact, history, talked + timedelta(hours=1), rules)
    assert not verdict.permitted
    assert any("US no call within 7d after a conversation" in r for r in verdict.reasons)
    assert verdict.next_permitted_at == (talked + WEEK).astimezone(UTC)


def test_a_callback_request_lifts_the_cooldown_from_that_time(rules: CallingRules) -> None:
    contact = TABLE[0].contact
    talked = local(NY, (2025, 6, 2), 10)
    callback = local(NY, (2025, 6, 3), 14, 30)
    history = CallHistory(last_conversation=talked, callback_at=callback)
    verdict = next_permitted(contact, history, talked + timedelta(minutes=5), rules)
    assert verdict.next_permitted_at == callback.astimezone(UTC)
    assert not permitted(contact, history, callback - timedelta(minutes=1), rules).permitted
    assert permitted(contact, history, callback, rules).permitted


def test_a_callback_never_lifts_hours(rules: CallingRules) -> None:
    contact = TABLE[1].contact  # Florida: 08:00-20:00
    talked = local(NY, (2025, 6, 2), 10)
    callback = local(NY, (2025, 6, 3), 20, 30)  # asked for after hours
    history = CallHistory(last_conversation=talked, callback_at=callback)
    verdict = next_permitted(contact, history, talked + timedelta(minutes=5), rules)
    assert verdict.next_permitted_at == local(NY, (2025, 6, 4), 8).astimezone(UTC)


def test_a_callback_never_lifts_caps(rules: CallingRules) -> None:
    contact = TABLE[1].contact  # Florida: 3 per 24 h
    attempts = tuple(local(NY, (2025, 6, 3), h) for h in (9, 10, 11))
    talked = attempts[-1]
    callback = local(NY, (2025, 6, 3), 15)
    history = CallHistory(attempts=attempts, last_conversation=talked, callback_at=callback)
    verdict = next_permitted(contact, history, callback, rules)
    assert not verdict.permitted
    assert any(r.startswith("US-FL cap 3") for r in verdict.reasons)
    assert verdict.next_permitted_at == local(NY, (2025, 6, 4), 9).astimezone(UTC)


def test_a_callback_asked_before_the_last_conversation_is_stale(rules: CallingRules) -> None:
    contact = TABLE[0].contact
    talked = local(NY, (2025, 6, 2), 10)
    history = CallHistory(last_conversation=talked, callback_at=talked - timedelta(hours=1))
    verdict = next_permitted(contact, history, talked + timedelta(hours=2), rules)
    assert verdict.next_permitted_at == (talked + WEEK).astimezone(UTC)


def test_west_coast_at_dawn(rules: CallingRules) -> None:
    """09:00 in New York is 06:00 in Los Angeles: a 415 number is not called."""
    contact = ContactPoint(phone_e164="+14155550123")
    at = utc(2025, 6, 11, 13, 0)
    assert at.astimezone(ZoneInfo(NY)).hour == 9
    verdict = permitted(contact, CallHistory(), at, rules)
    assert not verdict.permitted
    assert verdict.timezones == (LA,)
    assert verdict.reasons == (
        "US hours 08:00-21:00 in America/Los_Angeles: 06:00 local is outside",
    )
    assert verdict.next_permitted_at == utc(2025, 6, 11, 15, 0)


def test_split_area_code_must_be_permitted_in_every_zone(rules: CallingRules) -> None:
    contact = ContactPoint(phone_e164="+12085550123")  # Boise and Los Angeles
    early = utc(2025, 6, 11, 14, 30)  # 08:30 in Boise, 07:30 in Los Angeles
    verdict = permitted(contact, CallHistory(), early, rules)
    assert not verdict.permitted
    assert verdict.reasons == (
        "US hours 08:00-21:00 in America/Los_Angeles: 07:30 local is outside",
    )
    assert verdict.next_permitted_at == utc(2025, 6, 11, 15, 0)
    late = utc(2025, 6, 12, 3, 0)  # 21:00 in Boise, 20:00 in Los Angeles
    assert "America/Boise: 21:00 local" in permitted(contact, CallHistory(), late, rules).reasons[0]


def test_both_states_rules_apply(rules: CallingRules) -> None:
    # A Texas phone billed in Rhode Island: Sunday is banned by RI, hours by both.
    contact = ContactPoint(phone_e164="+15125550123", state="RI", postal_code="02903")
    verdict = permitted(contact, CallHistory(), local(CHI, SUNDAY, 13), rules)
    assert verdict.jurisdictions == ("US", "US-RI", "US-TX")
    assert not verdict.permitted
    assert any("US-RI no calls on Sunday in America/Chicago" in r for r in verdict.reasons)
    assert any("US-RI no calls on Sunday in America/New_York" in r for r in verdict.reasons)


def test_a_permitted_verdict(rules: CallingRules) -> None:
    at = local(NY, WEDNESDAY, 12)
    for verdict in (
        permitted(TABLE[0].contact, CallHistory(), at, rules),
        next_permitted(TABLE[0].contact, CallHistory(), at, rules),
    ):
        assert verdict.permitted
        assert verdict.at == at
        assert verdict.next_permitted_at == at.astimezone(UTC)
        assert verdict.next_permitted_at.tzinfo == UTC
        assert verdict.reasons == ()


def test_suppressed_and_unknown_have_no_next_instant(rules: CallingRules) -> None:
    at = local(NY, WEDNESDAY, 12)
    suppressed = permitted(TABLE[0].contact, CallHistory(suppression="do_not_call"), at, rules)
    assert (suppressed.permitted, suppressed.next_permitted_at) == (False, None)
    assert suppressed.reasons == ("suppressed: do_not_call",)
    unknown = next_permitted(ContactPoint(phone_e164="+18005550123"), CallHistory(), at, rules)
    assert (unknown.permitted, unknown.next_permitted_at) == (False, None)
    assert unknown.reasons[0].startswith("timezone_unknown: ")


def test_a_country_without_rules_is_not_dialled(rules: CallingRules) -> None:
    verdict = permitted(
        ContactPoint(phone_e164="+14165550123"), CallHistory(), utc(2025, 6, 11, 16), rules
    )
    assert (verdict.permitted, verdict.next_permitted_at) == (False, None)
    assert verdict.reasons == ("no_rules: no calling rules for jurisdiction CA",)


def test_naive_instants_are_refused(rules: CallingRules) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        permitted(TABLE[0].contact, CallHistory(), datetime(2025, 6, 11, 12), rules)
    with pytest.raises(ValueError):
        CallHistory(attempts=(datetime(2025, 6, 11, 12),))


# --- daylight saving time -------------------------------------------------------------------


def write_rules(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(body)
    return path


def hours_profile(tmp_path: Path, window: str) -> CallingRules:
    path = write_rules(
        tmp_path,
        f"""
version: 1
profiles:
  test:
    rows:
      - {{jurisdiction: US, hours: {{daily: "{window}"}}, source: test}}
""",
    )
    return load_rules(path, "test")


def test_strict_hours_across_the_23_and_25_hour_days(rules: CallingRules) -> None:
    contact = TABLE[0].contact  # New York
    # Spring forward: 08:00 EDT is 12:00 UTC; the day before, 08:00 EST was 13:00 UTC.
    spring = next_permitted(contact, CallHistory(), utc(2025, 3, 9, 6, 0), rules)
    assert spring.next_permitted_at == utc(2025, 3, 9, 12, 0)
    # Fall back: 21:00 EST is 02:00 UTC the next day, and 08:00 is 13:00 UTC.
    assert permitted(contact, CallHistory(), utc(2025, 11, 3, 1, 59), rules).permitted
    fall = next_permitted(contact, CallHistory(), utc(2025, 11, 3, 2, 0), rules)
    assert fall.next_permitted_at == utc(2025, 11, 3, 13, 0)


def test_a_window_starting_at_a_time_that_does_not_exist(tmp_path: Path) -> None:
    rules = hours_profile(tmp_path, "02:30-04:00")
    contact = ContactPoint(explicit_tz=NY)
    # 2025-03-09 in New York: 02:00-02:59 never happens; the window opens at 03:00 EDT.
    verdict = next_permitted(contact, CallHistory(), utc(2025, 3, 9, 6, 0), rules)  # 01:00 EST
    assert verdict.next_permitted_at == utc(2025, 3, 9, 7, 0)
    assert not permitted(contact, CallHistory(), utc(2025, 3, 9, 6, 59, 59), rules).permitted
    assert permitted(contact, CallHistory(), utc(2025, 3, 9, 7, 59, 59), rules).permitted
    assert not permitted(contact, CallHistory(), utc(2025, 3, 9, 8, 0), rules).permitted


def test_a_window_inside_the_hour_that_happens_twice(tmp_path: Path) -> None:
    rules = hours_profile(tmp_path, "01:30-01:45")
    contact = ContactPoint(explicit_tz=NY)
    # 2025-11-02 in New York: 01:30 EDT is 05:30 UTC, and 01:30 EST is 06:30 UTC.
    first = next_permitted(contact, CallHistory(), utc(2025, 11, 2, 5, 0), rules)
    assert first.next_permitted_at == utc(2025, 11, 2, 5, 30)
    second = next_permitted(contact, CallHistory(), utc(2025, 11, 2, 5, 45), rules)
    assert second.next_permitted_at == utc(2025, 11, 2, 6, 30)
    between = permitted(contact, CallHistory(), utc(2025, 11, 2, 6, 0), rules)  # 01:00 EST
    assert not between.permitted
    assert between.reasons == ("US hours 01:30-01:45 in America/New_York: 01:00 local is outside",)
    assert not permitted(contact, CallHistory(), utc(2025, 11, 2, 6, 45), rules).permitted


def test_no_window_within_the_horizon(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path,
        """
version: 1
profiles:
  closed:
    horizon_days: 3
    rows:
      - {jurisdiction: US, hours: {mon-sat: none, sun: "09:00-10:00"}, source: test}
""",
    )
    rules = load_rules(path, "closed")
    contact = ContactPoint(explicit_tz=NY)
    verdict = next_permitted(contact, CallHistory(), local(NY, WEDNESDAY, 12), rules)
    assert (verdict.permitted, verdict.next_permitted_at) == (False, None)
    assert verdict.reasons[-1].startswith("no_window: no permitted instant within 3 days")
    found = next_permitted(contact, CallHistory(), local(NY, (2025, 6, 13), 12), rules)
    assert found.next_permitted_at == local(NY, SUNDAY, 9).astimezone(UTC)


# --- the rules file -------------------------------------------------------------------------


def test_the_shipped_rules(rules: CallingRules) -> None:
    assert rules.profile == "strict"
    assert rules.horizon_days == 14
    assert all(row.source.strip() for row in rules.rows)
    jurisdictions = {row.jurisdiction for row in rules.rows}
    assert {f"US-{row.state}" for row in TABLE if row.state != "GA"} <= jurisdictions


def test_an_operator_profile_extends_strict(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path,
        """
version: 1
profiles:
  counsel-approved:
    extends: strict
    rows:
      - {jurisdiction: US-FL, hours: {daily: "08:00-21:00"}, source: "counsel memo 2025-05"}
""",
    )
    custom = load_rules(path, "counsel-approved")
    strict = load_rules()
    contact, at = TABLE[1].contact, local(NY, WEDNESDAY, 20, 30)
    assert not permitted(contact, CallHistory(), at, strict).permitted
    assert permitted(contact, CallHistory(), at, custom).permitted
    # Rows of jurisdictions it does not mention are inherited.
    assert [r for r in custom.rows if r.jurisdiction == "US-RI"] == [
        r for r in strict.rows if r.jurisdiction == "US-RI"
    ]
    assert custom.horizon_days == 14


GOOD_ROW = '{jurisdiction: US, hours: {daily: "08:00-21:00"}, source: s}'


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ('{jurisdiction: US-FL, hours: {daily: "08:00-25:00"}, source: s}', "outside 00:00-24:00"),
        ('{jurisdiction: US-FL, hours: {daily: "20:00-08:00"}, source: s}', "ends before"),
        ('{jurisdiction: US-FL, hours: {mon-fri: "08:00-20:00"}, source: s}', "no entry for sat"),
        ('{jurisdiction: US-FL, hours: {daily: "8am-8pm"}, source: s}', "expected a window"),
        (
            '{jurisdiction: US-FL, hours: {daily: "08:00-20:00", sun: none}, source: s}',
            "more than once",
        ),
        ('{jurisdiction: US-FL, hours: {daily: "08:00-20:00"}}', "source"),
        ('{jurisdiction: US-FL, hours: {daily: "08:00-20:00"}, source: " "}', "source"),
        ("{jurisdiction: Florida, source: s}", "expected a country"),
        (
            "{jurisdiction: US-FL, caps: [{max_attempts: 0, window: 24h}], source: s}",
            "max_attempts",
        ),
        ("{jurisdiction: US-FL, caps: [{max_attempts: 3, window: soon}], source: s}", "duration"),
        ("{jurisdiction: US-ZZ, holidays: no_calls, source: s}", "holiday calendar"),
        ("{jurisdiction: US-FL, holidays: sometimes, source: s}", "holidays"),
        ("{jurisdiction: US-FL, curfew: true, source: s}", "curfew"),
    ],
)
def test_a_bad_row_is_named(tmp_path: Path, row: str, fragment: str) -> None:
    path = write_rules(
        tmp_path,
        f"""
version: 1
profiles:
  p:
    rows:
      - {GOOD_ROW}
      - {row}
""",
    )
    with pytest.raises(RulesFileError) as caught:
        load_rules(path, "p")
    message = str(caught.value)
    assert "profiles.p.rows[1]" in message
    assert fragment in message
    jurisdiction = row.split("jurisdiction: ", 1)[1].split(",", 1)[0]
    assert f"({jurisdiction})" in message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("version: 1\nprofiles: {p: {rows: [" + GOOD_ROW + "]}}\n", "no profile 'missing'"),
        ("version: 2\nprofiles: {}\n", "version"),
        ("version: 1\nprofiles: {missing: {rows: []}}\n", "has no rows"),
        ("version: 1\nprofiles: {missing: {extends: missing}}\n", "cycle"),
        (
            "version: 1\nprofiles: {missing: {baseline: [US], "
            "rows: [{jurisdiction: US-FL, source: s}]}}\n",
            "baseline 'US' has no rows",
        ),
        ("version: 1\nprofiles: [\n", "not valid YAML"),
    ],
)
def test_a_bad_file_is_explained(tmp_path: Path, body: str, fragment: str) -> None:
    with pytest.raises(RulesFileError, match="rules.yaml") as caught:
        load_rules(write_rules(tmp_path, body), "missing")
    assert fragment in str(caught.value)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RulesFileError, match="cannot read"):
        load_rules(tmp_path / "nope.yaml")


def test_rules_stay_equal_after_use_and_survive_a_json_round_trip(rules: CallingRules) -> None:
    fresh = load_rules()
    next_permitted(TABLE[1].contact, CallHistory(), local(NY, WEDNESDAY, 12), rules)
    assert rules == fresh
    copy = CallingRules.model_validate_json(rules.model_dump_json())
    assert copy == rules
    at = local(NY, WEDNESDAY, 20, 30)
    assert permitted(TABLE[1].contact, CallHistory(), at, copy) == permitted(
        TABLE[1].contact, CallHistory(), at, rules
    )

"""Properties of the engine over random contacts, instants (every DST change) and histories.

The interval engine (``next_permitted``) is checked against the direct per-instant check
(``permitted``) and against the naive stepper that walks minute by minute with it.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recovery.domain.compliance import (
    CallHistory,
    CallingRules,
    load_rules,
    naive_next_permitted,
    next_permitted,
    permitted,
)
from recovery.domain.compliance.zones import _tables
from recovery.domain.models import ContactPoint

US_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Boise",
    "America/Anchorage",
    "America/Adak",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
)
SPLIT_AREA_CODES = ("208", "850", "907", "605", "701", "915", "270", "931", "541", "906", "812")
RULE_STATES = ("FL", "OK", "MD", "MA", "WA", "WY", "CT", "NV", "MI", "MN", "NM", "KY", "TX")
RULE_STATES += ("AL", "LA", "MS", "UT", "RI", "ID", "AK", "AZ", "CA", "GA", "HI", "ND", "IN")
START, END = datetime(2024, 1, 1, tzinfo=UTC), datetime(2028, 12, 31, tzinfo=UTC)
RULES: CallingRules = load_rules()


@cache
def dst_changes() -> tuple[datetime, ...]:
    """Every UTC offset change of the US zones over the years tested (they fall on hours)."""
    changes: set[datetime] = set()
    for key in US_ZONES:
        zone = ZoneInfo(key)
        at, previous = START, START.astimezone(zone).utcoffset()
        while at < END:
            at += timedelta(hours=1)
            offset = at.astimezone(zone).utcoffset()
            if offset != previous:
                changes.add(at)
            previous = offset
    return tuple(sorted(changes))


@st.composite
def contacts(draw: st.DrawFn) -> ContactPoint:
    area_codes = sorted(_tables().area_codes)
    npa = draw(st.sampled_from(SPLIT_AREA_CODES) | st.sampled_from(area_codes))
    exchange = draw(st.integers(200, 999))
    line = draw(st.integers(0, 9999))
    state = draw(st.none() | st.sampled_from(RULE_STATES))
    postal = draw(st.none() | st.integers(0, 99999).map(lambda z: f"{z:05d}")) if state else None
    tz = draw(st.none() | st.none() | st.sampled_from(US_ZONES))
    return ContactPoint(
        phone_e164=f"+1{npa}{exchange}{line:04d}", state=state, postal_code=postal, explicit_tz=tz
    )


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    near_dst = draw(st.booleans())
    if near_dst:
        change = draw(st.sampled_from(dst_changes()))
        return change + timedelta(seconds=draw(st.integers(-36 * 3600, 36 * 3600)))
    return draw(st.datetimes(START.replace(tzinfo=None), END.replace(tzinfo=None))).replace(
        tzinfo=UTC
    )


@st.composite
def histories(draw: st.DrawFn, after: datetime) -> CallHistory:
    seconds_before = st.integers(1, 9 * 86400)
    attempts = draw(st.lists(seconds_before, max_size=9))
    conversation = draw(st.none() | seconds_before)
    callback = None
    if conversation is not None:
        callback = draw(st.none() | st.integers(-86400, 5 * 86400))
    talked = None if conversation is None else after - timedelta(seconds=conversation)
    return CallHistory(
        attempts=tuple(after - timedelta(seconds=s) for s in attempts),
        last_conversation=talked,
        callback_at=None
        if talked is None or callback is None
        else talked + timedelta(seconds=callback),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[ContactPoint, CallHistory, datetime]:
    after = draw(instants())
    return draw(contacts()), draw(histories(after)), after


def assert_inside_federal_hours(at: datetime, zones: tuple[str, ...]) -> None:
    for key in zones:
        local = at.astimezone(ZoneInfo(key))
        minutes = local.hour * 60 + local.minute
        assert 8 * 60 <= minutes < 21 * 60, (at, key, local)


PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(cases())
def test_next_permitted_is_the_earliest_permitted_instant(
    case: tuple[ContactPoint, CallHistory, datetime],
) -> None:
    contact, history, after = case
    verdict = next_permitted(contact, history, after, RULES)
    exact = verdict.next_permitted_at
    naive = naive_next_permitted(contact, history, after, RULES)
    if exact is None:
        assert naive is None
        return
    assert after <= exact <= after + RULES.horizon
    check = permitted(contact, history, exact, RULES)
    assert check.permitted, check.reasons
    assert_inside_federal_hours(exact, verdict.timezones)
    # The stepper tries after, after + 1 min, ...: none before `exact` may be permitted, and
    # the first it finds is within a minute after `exact`.
    if naive is None:
        assert exact > after + RULES.horizon - timedelta(minutes=1)
    else:
        assert timedelta(0) <= naive - exact < timedelta(minutes=1)
    # Just before the answer, the call was not permitted (unless the answer is `after`).
    if exact > after:
        assert not permitted(contact, history, exact - timedelta(microseconds=1), RULES).permitted


@PROPERTY
@given(cases())
def test_permitted_and_next_permitted_agree(
    case: tuple[ContactPoint, CallHistory, datetime],
) -> None:
    contact, history, at = case
    direct = permitted(contact, history, at, RULES)
    searched = next_permitted(contact, history, at, RULES)
    assert direct == searched
    if direct.permitted:
        assert direct.next_permitted_at == at and direct.reasons == ()
        assert_inside_federal_hours(at, direct.timezones)
    else:
        assert direct.reasons
    if not direct.timezones:
        assert direct.next_permitted_at is None
        assert any(r.startswith("timezone_unknown") for r in direct.reasons)


@settings(max_examples=60, deadline=None)
@given(cases(), st.integers(1, 600))
def test_no_permitted_instant_is_skipped_between_two_answers(
    case: tuple[ContactPoint, CallHistory, datetime], step_minutes: int
) -> None:
    """Asking again from any instant before the answer gives the same answer."""
    contact, history, after = case
    first = next_permitted(contact, history, after, RULES).next_permitted_at
    if first is None or first == after:
        return
    later = min(after + timedelta(minutes=step_minutes), first)
    again = next_permitted(contact, history, later, RULES).next_permitted_at
    assert again == first


def test_every_dst_change_of_the_years_tested() -> None:
    """Around each offset change of each US zone, the engine and the stepper agree."""
    changes = dst_changes()
    assert len(changes) >= 40  # two a year in each zone that observes DST
    checked = 0
    for key in US_ZONES:
        zone = ZoneInfo(key)
        contact = ContactPoint(explicit_tz=key)
        for change in changes:
            before, after_change = (change - timedelta(seconds=1)), change
            if before.astimezone(zone).utcoffset() == after_change.astimezone(zone).utcoffset():
                continue  # another zone's change
            for delta in (-12, -1, 1, 6):
                after = change + timedelta(hours=delta, minutes=17)
                exact = next_permitted(contact, CallHistory(), after, RULES).next_permitted_at
                naive = naive_next_permitted(contact, CallHistory(), after, RULES)
                assert exact is not None and naive is not None
                assert timedelta(0) <= naive - exact < timedelta(minutes=1), (key, after)
                assert permitted(contact, CallHistory(), exact, RULES).permitted
                checked += 1
    assert checked >= 4 * 40


@cache
def night_rules() -> CallingRules:
    """Windows that straddle the hours DST skips or repeats, as an operator file may have."""
    folder = Path(tempfile.mkdtemp(prefix="night-rules-"))
    path = folder / "rules.yaml"
    path.write_text(
        """
version: 1
profiles:
  night:
    horizon_days: 3
    rows:
      - jurisdiction: US
        hours: {mon-sat: ["00:30-01:45", "02:15-03:30"], sun: "01:10-02:50"}
        source: test
"""
    )
    return load_rules(path, "night")


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(US_ZONES),
    st.sampled_from(dst_changes()),
    st.integers(-30 * 3600, 30 * 3600),
)
def test_windows_inside_the_skipped_and_repeated_hours(
    key: str, change: datetime, offset_seconds: int
) -> None:
    rules = night_rules()
    contact = ContactPoint(explicit_tz=key)
    after = change + timedelta(seconds=offset_seconds)
    exact = next_permitted(contact, CallHistory(), after, rules).next_permitted_at
    naive = naive_next_permitted(contact, CallHistory(), after, rules)
    assert exact is not None and naive is not None
    assert timedelta(0) <= naive - exact < timedelta(minutes=1)
    assert permitted(contact, CallHistory(), exact, rules).permitted
    if exact > after:
        assert not permitted(
            contact, CallHistory(), exact - timedelta(microseconds=1), rules
        ).permitted

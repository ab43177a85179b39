"""The compliance engine: may this contact be called at an instant, and when next.

Two views of the same rules, kept deliberately independent:

* ``permitted`` checks one instant directly: the local wall-clock time and date in every
  candidate zone against every applicable row, then the caps and the conversation
  cooldown. It also writes the reasons, each as a sentence and as a ``Hold`` (fields).
* ``next_permitted`` never steps through time. For each local day in each zone it turns
  the day's windows into UTC intervals (exact across daylight-saving changes, because each
  stretch of constant UTC offset is mapped on its own), intersects the zones, and skips
  the blackouts of the caps and the cooldown. Day calendars are cached per rule set, zones
  and UTC day, so a decision is a handful of lookups.

Instants are handled internally as integer microseconds since the epoch, so nothing is
rounded. ``naive_next_permitted`` steps minute by minute with ``permitted``'s check; it is
the yardstick for tests and benchmarks, not for production.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

import holidays
from pydantic import AwareDatetime, BaseModel

from recovery.domain.compliance.holds import Hold, HoldRule
from recovery.domain.compliance.rules import (
    DAY_NAMES,
    CallingRules,
    DayWindows,
    Plan,
    format_duration,
    format_windows,
)
from recovery.domain.compliance.zones import Resolution, resolve_contact
from recovery.domain.models import ContactPoint

SUPPRESSED = "suppressed"
NO_RULES = "no_rules"
NO_WINDOW = "no_window"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_ONE_US = timedelta(microseconds=1)
_SECOND = 1_000_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
# Sampling step when looking for UTC-offset changes around a local day; no zone changes
# its offset twice within this span.
_OFFSET_PROBE = 6 * _HOUR
# Offsets stay within +-14 h; this margin covers every instant whose wall date is the day.
_DAY_MARGIN = 18 * _HOUR
_CALENDAR_CACHE_LIMIT = 200_000

Interval = tuple[int, int]
# One refusal: the reason for people and the same refusal as fields.
Refusal = tuple[str, Hold]


class CallHistory(BaseModel, frozen=True):
    """What the rules need to know of a case's past calls (all instants aware)."""

    attempts: tuple[AwareDatetime, ...] = ()
    last_conversation: AwareDatetime | None = None
    callback_at: AwareDatetime | None = None
    suppression: str | None = None


class Verdict(BaseModel, frozen=True):
    """The answer for one contact at one instant, with reasons naming rule, zone and place.

    ``next_permitted_at`` is UTC and equals ``at`` when the call is permitted; it is None
    when the number is suppressed, the zone is unknown, no rules cover the contact's
    country, or no window opens within the horizon.

    ``holds`` are the reasons as fields (``recovery.domain.compliance.holds``): one per
    reason, in the same order, so a refused verdict has at least one.
    """

    permitted: bool
    at: datetime
    next_permitted_at: datetime | None
    timezones: tuple[str, ...]
    jurisdictions: tuple[str, ...]
    reasons: tuple[str, ...]
    holds: tuple[Hold, ...]


def _to_us(value: datetime) -> int:
    return (value - _EPOCH) // _ONE_US


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _iso(value: int) -> str:
    return _from_us(value).isoformat(timespec="seconds")


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


@cache
def _zone(key: str) -> ZoneInfo:
    return ZoneInfo(key)


# --- holidays ---------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _holiday_names(country: str, subdiv: str | None, year: int) -> dict[date, str]:
    calendar = holidays.country_holidays(country, subdiv=subdiv, years=year)
    return {day: str(name) for day, name in calendar.items()}


@lru_cache(maxsize=8192)
def _blocked_ordinals(
    calendars: tuple[tuple[str, str | None, str], ...], year: int
) -> frozenset[int]:
    return frozenset(
        day.toordinal()
        for country, subdiv, _ in calendars
        for day in _holiday_names(country, subdiv, year)
    )


# --- local days as UTC intervals --------------------------------------------------------


def _offset_us(zone: ZoneInfo, at_us: int) -> int:
    local = datetime.fromtimestamp(at_us // _SECOND, tz=zone)
    offset = local.utcoffset()
    assert offset is not None
    return offset // _ONE_US


@lru_cache(maxsize=4096)
def _transitions(zone_key: str, year: int) -> tuple[int, ...]:
    """Instants (first second of the new offset) when the zone's UTC offset changes."""
    zone = _zone(zone_key)
    lo = (date(year, 1, 1).toordinal() - _EPOCH_ORDINAL) * _DAY
    hi = (date(year + 1, 1, 1).toordinal() - _EPOCH_ORDINAL) * _DAY
    found: list[int] = []
    previous_at, previous = lo, _offset_us(zone, lo)
    for probe in [*range(lo + _OFFSET_PROBE, hi, _OFFSET_PROBE), hi]:
        offset = _offset_us(zone, probe)
        if offset != previous:
            # Offsets change on whole seconds: bisect to the first second of the new one.
            a, b = previous_at // _SECOND, probe // _SECOND
            while b - a > 1:
                mid = (a + b) // 2
                if _offset_us(zone, mid * _SECOND) == previous:
                    a = mid
                else:
                    b = mid
            found.append(b * _SECOND)
        previous_at, previous = probe, offset
    return tuple(found)


@lru_cache(maxsize=1 << 16)
def _offset_segments(zone_key: str, ordinal: int) -> tuple[tuple[int, int, int], ...]:
    """Stretches (start, end, offset) of constant UTC offset around one local day."""
    zone = _zone(zone_key)
    midnight = (ordinal - _EPOCH_ORDINAL) * _DAY
    lo, hi = midnight - _DAY_MARGIN, midnight + _DAY + _DAY_MARGIN
    years = {_from_us(lo).year, _from_us(hi).year}
    changes = sorted({t for y in years for t in _transitions(zone_key, y) if lo < t < hi})
    segments: list[tuple[int, int, int]] = []
    start, offset = lo, _offset_us(zone, lo)
    for change in changes:
        segments.append((start, change, offset))
        start, offset = change, _offset_us(zone, change)
    segments.append((start, hi, offset))
    return tuple(segments)


def _local_intervals(zone_key: str, ordinal: int, windows: DayWindows) -> list[Interval]:
    """The UTC instants whose wall-clock time in the zone falls in the day's windows.

    Each stretch of constant offset maps wall time to UTC linearly, so a window is exact
    even on a 23- or 25-hour day (and may come out as two pieces when it covers a
    repeated hour).
    """
    midnight = (ordinal - _EPOCH_ORDINAL) * _DAY
    segments = _offset_segments(zone_key, ordinal)
    out: list[Interval] = []
    for a, b in windows:
        for seg_start, seg_end, offset in segments:
            s = midnight + a * _MINUTE - offset
            e = midnight + b * _MINUTE - offset
            if s < seg_start:
                s = seg_start
            if e > seg_end:
                e = seg_end
            if s < e:
                out.append((s, e))
    return out if len(out) < 2 else _merge(out)


def _merge(intervals: list[Interval]) -> list[Interval]:
    intervals.sort()
    merged: list[Interval] = []
    for s, e in intervals:
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def _intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        s = max(a[i][0], b[j][0])
        e = min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _day_windows(plan: Plan, ordinal: int) -> DayWindows:
    if plan.holiday_calendars:
        year = date.fromordinal(ordinal).year
        if ordinal in _blocked_ordinals(plan.holiday_calendars, year):
            return ()
    return plan.week[(ordinal - 1) % 7]


_calendar_cache: dict[tuple[int, tuple[str, ...], int], tuple[Interval, ...]] = {}


def _calendar_day(plan: Plan, zones: tuple[str, ...], day: int) -> tuple[Interval, ...]:
    """Intervals of UTC day ``day`` permitted by hours and holidays in every zone."""
    # Keyed by the plan's calendar (hours and holiday calendars), which many jurisdiction
    # sets share, rather than by the plan itself.
    key = (plan.calendar_key, zones, day)
    cached = _calendar_cache.get(key)
    if cached is not None:
        return cached
    start, end = day * _DAY, (day + 1) * _DAY
    result: list[Interval] = [(start, end)]
    for zone_key in zones:
        intervals: list[Interval] = []
        # A UTC day overlaps at most the local dates before, of and after it.
        for ordinal in range(_EPOCH_ORDINAL + day - 1, _EPOCH_ORDINAL + day + 2):
            windows = _day_windows(plan, ordinal)
            if windows:
                intervals.extend(_local_intervals(zone_key, ordinal, windows))
        result = _intersect(result, intervals)
        if not result:
            break
    if len(_calendar_cache) >= _CALENDAR_CACHE_LIMIT:
        _calendar_cache.clear()
    frozen = tuple(result)
    _calendar_cache[key] = frozen
    return frozen


# --- caps and cooldown ------------------------------------------------------------------


def _attempts_us(history: CallHistory) -> list[int]:
    return sorted(_to_us(a) for a in history.attempts)


def _blackouts(
    plan: Plan, history: CallHistory, attempts: list[int]
) -> tuple[list[int], list[int]]:
    """Merged [start, end) intervals in which the caps or the cooldown forbid a call."""
    spans: list[Interval] = []
    if plan.caps and attempts:
        for limit, window, _ in plan.caps:
            for i in range(len(attempts) - limit + 1):
                first, last = attempts[i], attempts[i + limit - 1]
                # A call at t joins these in one window iff its span stays under the window.
                if last - first < window:
                    spans.append((last - window + 1, first + window))
    if plan.cooldowns and history.last_conversation is not None:
        talked = _to_us(history.last_conversation)
        callback = _to_us(history.callback_at) if history.callback_at is not None else None
        for period, exempt, _ in plan.cooldowns:
            end = talked + period
            # A callback asked for before the last conversation is stale.
            if exempt and callback is not None and callback >= talked:
                end = min(end, callback)
            if talked < end:
                spans.append((talked, end))
    merged = _merge(spans)
    return [s for s, _ in merged], [e for _, e in merged]


def _search(
    plan: Plan,
    zones: tuple[str, ...],
    blackouts: tuple[list[int], list[int]],
    after: int,
    limit: int,
) -> int | None:
    starts, ends = blackouts
    t = after
    day = t // _DAY
    while t <= limit and day <= limit // _DAY:
        for s, e in _calendar_day(plan, zones, day):
            if e <= t:
                continue
            candidate = s if s > t else t
            if starts:
                i = bisect_right(starts, candidate) - 1
                if i >= 0 and ends[i] > candidate:
                    candidate = ends[i]
            if candidate < e:
                return candidate if candidate <= limit else None
            t = candidate
        day = max(day + 1, t // _DAY)
    return None


# --- the direct check, with reasons -----------------------------------------------------

# Holds are values drawn from a small set (rules x jurisdictions x zones): each is built once.


@lru_cache(maxsize=8192)
def _hold(
    rule: HoldRule,
    jurisdiction: str | None = None,
    zone: str | None = None,
    weekday: str | None = None,
) -> Hold:
    return Hold(rule=rule, jurisdiction=jurisdiction, zone=zone, weekday=weekday)


@lru_cache(maxsize=1024)
def _cap_hold(limit: int, window: int, jurisdiction: str) -> Hold:
    period = format_duration(timedelta(microseconds=window))
    return Hold(rule="attempt_cap", jurisdiction=jurisdiction, limit=limit, period=period)


@lru_cache(maxsize=1024)
def _cooldown_hold(period: int, jurisdiction: str) -> Hold:
    text = format_duration(timedelta(microseconds=period))
    return Hold(rule="cooldown", jurisdiction=jurisdiction, period=text)


def _refusals(
    plan: Plan,
    zones: tuple[str, ...],
    history: CallHistory,
    attempts: list[int],
    at: datetime,
    at_us: int,
    first_only: bool = False,
) -> list[Refusal]:
    refusals: list[Refusal] = []
    for zone_key in zones:
        local = at.astimezone(_zone(zone_key))
        wall = ((local.hour * 60 + local.minute) * 60 + local.second) * _SECOND + local.microsecond
        weekday = local.weekday()
        for jurisdiction, hours, uniform in plan.hours:
            windows = hours[weekday]
            if not windows:
                refusals.append(
                    (
                        f"{jurisdiction} no calls on {DAY_NAMES[weekday]} in {zone_key}: "
                        f"{local.date().isoformat()} local",
                        _hold("weekday", jurisdiction, zone_key, DAY_NAMES[weekday]),
                    )
                )
            elif not any(a * _MINUTE <= wall < b * _MINUTE for a, b in windows):
                day = "" if uniform else f"{DAY_NAMES[weekday][:3]} "
                refusals.append(
                    (
                        f"{jurisdiction} hours {day}{format_windows(windows)} in {zone_key}: "
                        f"{local.hour:02d}:{local.minute:02d} local is outside",
                        _hold("hours", jurisdiction, zone_key),
                    )
                )
            else:
                continue
            if first_only:
                return refusals
        for country, subdiv, jurisdiction in plan.holiday_calendars:
            name = _holiday_names(country, subdiv, local.year).get(local.date())
            if name is not None:
                refusals.append(
                    (
                        f"{jurisdiction} no calls on public holidays in {zone_key}: "
                        f"{local.date().isoformat()} is {name}",
                        _hold("holiday", jurisdiction, zone_key),
                    )
                )
                if first_only:
                    return refusals
    if plan.caps and attempts:
        for limit, window, jurisdiction in plan.caps:
            for i in range(len(attempts) - limit + 1):
                first, last = attempts[i], attempts[i + limit - 1]
                if max(at_us, last) - min(at_us, first) < window:
                    hold = _cap_hold(limit, window, jurisdiction)
                    refusals.append(
                        (
                            f"{jurisdiction} cap {limit} attempts per rolling {hold.period}: "
                            f"{limit} attempts from {_iso(first)} to {_iso(last)}",
                            hold,
                        )
                    )
                    if first_only:
                        return refusals
                    break
    if plan.cooldowns and history.last_conversation is not None:
        talked = _to_us(history.last_conversation)
        callback = _to_us(history.callback_at) if history.callback_at is not None else None
        for period, exempt, jurisdiction in plan.cooldowns:
            if not talked <= at_us < talked + period:
                continue
            if exempt and callback is not None and talked <= callback <= at_us:
                continue
            hold = _cooldown_hold(period, jurisdiction)
            refusals.append(
                (
                    f"{jurisdiction} no call within {hold.period} after a conversation: "
                    f"last conversation {_iso(talked)}",
                    hold,
                )
            )
            if first_only:
                return refusals
    return refusals


# --- public API -------------------------------------------------------------------------


def _gate(
    contact: ContactPoint, history: CallHistory, rules: CallingRules
) -> tuple[Resolution, Plan | None, tuple[Refusal, ...]]:
    """Resolution, plan, and the refusals that forbid any call at all (no next instant)."""
    resolution = resolve_contact(contact)
    if history.suppression is not None:
        return (
            resolution,
            None,
            ((f"{SUPPRESSED}: {history.suppression}", _hold("suppressed")),),
        )
    if resolution.unknown:
        unknown = _hold("timezone_unknown")
        return resolution, None, tuple((reason, unknown) for reason in resolution.reasons)
    plan = rules.plan(resolution.jurisdictions)
    if plan.missing:
        return (
            resolution,
            None,
            tuple(
                (
                    f"{NO_RULES}: no calling rules for jurisdiction {j}",
                    _hold("no_rules", j),
                )
                for j in plan.missing
            ),
        )
    return resolution, plan, ()


def _verdict(
    ok: bool,
    at: datetime,
    next_at: int | None,
    resolution: Resolution,
    refusals: Sequence[Refusal],
) -> Verdict:
    return Verdict(
        permitted=ok,
        at=at,
        next_permitted_at=None if next_at is None else _from_us(next_at),
        timezones=resolution.timezones,
        jurisdictions=resolution.jurisdictions,
        reasons=tuple(reason for reason, _ in refusals),
        holds=tuple(hold for _, hold in refusals),
    )


def _no_window(rules: CallingRules, after: int) -> Refusal:
    return (
        f"{NO_WINDOW}: no permitted instant within {rules.horizon_days} days after {_iso(after)}",
        _hold("no_window"),
    )


def permitted(
    contact: ContactPoint, history: CallHistory, at: datetime, rules: CallingRules
) -> Verdict:
    """Whether a call to ``contact`` at ``at`` satisfies every rule; if not, why and when."""
    _require_aware(at, "at")
    resolution, plan, blocked = _gate(contact, history, rules)
    if plan is None:
        return _verdict(False, at, None, resolution, blocked)
    at_us = _to_us(at)
    attempts = _attempts_us(history)
    refusals = _refusals(plan, resolution.timezones, history, attempts, at, at_us)
    if not refusals:
        return _verdict(True, at, at_us, resolution, ())
    limit = at_us + rules.horizon_days * _DAY
    blackouts = _blackouts(plan, history, attempts)
    found = _search(plan, resolution.timezones, blackouts, at_us, limit)
    if found is None:
        refusals.append(_no_window(rules, at_us))
    return _verdict(False, at, found, resolution, refusals)


def next_permitted(
    contact: ContactPoint, history: CallHistory, after: datetime, rules: CallingRules
) -> Verdict:
    """The earliest instant at or after ``after`` when every rule allows the call.

    Looks ``rules.horizon_days`` ahead at most; beyond that the verdict has no next instant
    and a ``no_window`` reason.
    """
    _require_aware(after, "after")
    resolution, plan, blocked = _gate(contact, history, rules)
    if plan is None:
        return _verdict(False, after, None, resolution, blocked)
    after_us = _to_us(after)
    limit = after_us + rules.horizon_days * _DAY
    attempts = _attempts_us(history)
    blackouts = _blackouts(plan, history, attempts)
    found = _search(plan, resolution.timezones, blackouts, after_us, limit)
    if found == after_us:
        return _verdict(True, after, found, resolution, ())
    refusals = _refusals(plan, resolution.timezones, history, attempts, after, after_us)
    if found is None:
        refusals.append(_no_window(rules, after_us))
    return _verdict(False, after, found, resolution, refusals)


def naive_next_permitted(
    contact: ContactPoint, history: CallHistory, after: datetime, rules: CallingRules
) -> datetime | None:
    """The first instant ``after + k minutes`` that ``permitted`` accepts (a yardstick)."""
    _require_aware(after, "after")
    resolution, plan, _ = _gate(contact, history, rules)
    if plan is None:
        return None
    at_us = _to_us(after)
    limit = at_us + rules.horizon_days * _DAY
    attempts = _attempts_us(history)
    while at_us <= limit:
        at = _from_us(at_us)
        if not _refusals(plan, resolution.timezones, history, attempts, at, at_us, True):
            return at
        at_us += _MINUTE
    return None

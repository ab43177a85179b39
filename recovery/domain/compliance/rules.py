"""The calling rules as data: one YAML file of profiles, each a list of rows with a source.

A row belongs to one jurisdiction (``US`` or ``US-FL``) and may carry calling hours per
weekday, a holiday ban, frequency caps over rolling windows and a no-call period after a
conversation. Every row of every applicable jurisdiction applies at once, so the strictest
wins. Hours are half-open local wall-clock windows: ``08:00-21:00`` allows 08:00, not 21:00.

A profile may ``extends`` another (in the same file, else in the shipped file): it inherits
the rows of every jurisdiction it does not mention itself, and its own rows replace the
base's rows for the jurisdictions it does mention.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import weakref
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import holidays
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

Window = tuple[int, int]  # minutes since local midnight, half-open
DayWindows = tuple[Window, ...]
Week = tuple[DayWindows, ...]  # seven entries, Monday first

_WINDOW_RE = re.compile(r"^([0-2]\d):([0-5]\d)\s*-\s*([0-2]\d):([0-5]\d)$")
_DURATION_RE = re.compile(r"^(\d+)\s*(m|h|d)$")
_JURISDICTION_RE = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
_TIMEDELTA = TypeAdapter(timedelta)
# Plans are cached by this key rather than by value: hashing a plan's rows on every call
# would cost more than the decision itself.
_PLAN_KEYS = itertools.count(1)
_CALENDAR_KEYS: dict[tuple[Week, tuple[tuple[str, str | None], ...]], int] = {}
# Plans per rules object, by identity: kept off the model so that equal rules stay equal, and
# dropped when the rules object is collected.
_PLANS: dict[int, dict[tuple[str, ...], Plan]] = {}


class RulesFileError(ValueError):
    """A calling-rules file that cannot be used; the message names the row and the reason."""


def default_rules_path() -> Path:
    """The rules file shipped with the package."""
    return Path(__file__).resolve().parents[2] / "data" / "calling_rules.yaml"


def _parse_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        match = _DURATION_RE.match(value.strip())
        if match:
            seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            if seconds > 0:
                return timedelta(seconds=seconds)
        elif value.startswith("P"):
            # ISO 8601, as pydantic writes a timedelta to JSON.
            with contextlib.suppress(ValidationError):
                parsed = _TIMEDELTA.validate_python(value)
                if parsed > timedelta(0):
                    return parsed
    raise ValueError(f"expected a positive duration like '24h' or '7d', got {value!r}")


def format_duration(value: timedelta) -> str:
    """``7d``, ``24h``, ``90m``: days only from two days up, as the rules table writes them."""
    seconds = int(value.total_seconds())
    if seconds % 86400 == 0 and seconds >= 2 * 86400:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def _parse_window(text: str) -> Window:
    match = _WINDOW_RE.match(text.strip())
    if not match:
        raise ValueError(f"expected a window like '08:00-20:00', got {text!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start >= 24 * 60 or end > 24 * 60:
        raise ValueError(f"window {text!r} is outside 00:00-24:00")
    if end <= start:
        raise ValueError(f"window {text!r} ends before it starts")
    return start, end


def _parse_days(key: str) -> list[int]:
    key = key.strip().lower()
    if key in ("daily", "all"):
        return list(range(7))
    first, sep, last = key.partition("-")
    if first not in WEEKDAYS or (sep and last not in WEEKDAYS):
        raise ValueError(f"unknown day {key!r}: use mon..sun, a range like 'mon-sat' or 'daily'")
    a = WEEKDAYS.index(first)
    b = WEEKDAYS.index(last) if sep else a
    if b < a:
        raise ValueError(f"day range {key!r} runs backwards")
    return list(range(a, b + 1))


def _parse_week(value: object) -> Week:
    if not isinstance(value, dict):
        raise ValueError("hours must map days ('mon-sat', 'sun', ...) to windows or 'none'")
    week: list[DayWindows | None] = [None] * 7
    for key, spec in value.items():
        days = _parse_days(str(key))
        if isinstance(spec, str) and spec.strip().lower() in ("none", "no calls", "closed"):
            windows: DayWindows = ()
        else:
            items = spec if isinstance(spec, list) else [spec]
            if not items or not all(isinstance(item, str) for item in items):
                raise ValueError(f"hours for {key!r}: expected 'HH:MM-HH:MM' or 'none'")
            parsed = sorted(_parse_window(item) for item in items)
            for (_, end), (start, _) in zip(parsed, parsed[1:], strict=False):
                if start < end:
                    raise ValueError(f"hours for {key!r}: windows overlap")
            windows = tuple(parsed)
        for day in days:
            if week[day] is not None:
                raise ValueError(f"hours: {WEEKDAYS[day]} is given more than once")
            week[day] = windows
    missing = [WEEKDAYS[i] for i, windows in enumerate(week) if windows is None]
    if missing:
        raise ValueError(f"hours: no entry for {', '.join(missing)} (use 'none' for no calls)")
    return tuple(w for w in week if w is not None)


def format_windows(windows: DayWindows) -> str:
    if not windows:
        return "no calls"
    return ", ".join(f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in windows)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Cap(_Strict):
    """At most ``max_attempts`` dial attempts in any rolling ``window``."""

    max_attempts: int = Field(ge=1)
    window: timedelta

    @field_validator("window", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return _parse_duration(value)


class ConversationCooldown(_Strict):
    """No call within ``period`` after a right-party conversation."""

    period: timedelta
    callback_exempt: bool = True

    @field_validator("period", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta:
        return _parse_duration(value)


class RuleRow(_Strict):
    """One row of the rules table: a jurisdiction, what it restricts, and where it comes from."""

    jurisdiction: str
    hours: Week | None = None
    holidays: Literal["allowed", "no_calls"] = "allowed"
    caps: tuple[Cap, ...] = ()
    conversation_cooldown: ConversationCooldown | None = None
    source: str = Field(min_length=1)
    note: str | None = None

    @field_validator("jurisdiction")
    @classmethod
    def _jurisdiction(cls, value: str) -> str:
        if not _JURISDICTION_RE.match(value):
            raise ValueError(f"jurisdiction {value!r}: expected a country 'US' or 'US-FL'")
        return value

    @field_validator("hours", mode="before")
    @classmethod
    def _hours(cls, value: object) -> Week | None:
        if value is None:
            return None
        if isinstance(value, tuple | list) and len(value) == 7:
            # Already parsed (a copy, or a JSON round trip of one): seven lists of windows.
            return tuple(tuple((int(a), int(b)) for a, b in day) for day in value)
        return _parse_week(value)

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("every row needs a source")
        return value

    def holiday_calendar(self) -> tuple[str, str | None]:
        """The (country, subdivision) whose public holidays this row's ban refers to."""
        country, _, subdiv = self.jurisdiction.partition("-")
        return country, subdiv or None


class _ProfileIn(_Strict):
    description: str | None = None
    extends: str | None = None
    horizon_days: int | None = Field(default=None, ge=1, le=60)
    baseline: tuple[str, ...] | None = None
    require_country_rules: bool | None = None
    rows: list[Any] = Field(default_factory=list)


class _FileIn(_Strict):
    version: Literal[1]
    profiles: dict[str, _ProfileIn]


@dataclass(frozen=True, slots=True)
class Plan:
    """The rows that apply to one set of jurisdictions, pre-combined for the engine."""

    key: int
    calendar_key: int  # equal for plans with the same hours and holiday calendars
    jurisdictions: tuple[str, ...]
    rows: tuple[RuleRow, ...]
    hours: tuple[tuple[str, Week, bool], ...]  # (jurisdiction, hours, same every day)
    week: Week  # intersection of every row's hours
    holiday_calendars: tuple[tuple[str, str | None, str], ...]  # (country, subdiv, jurisdiction)
    caps: tuple[tuple[int, int, str], ...]  # (max_attempts, window in microseconds, jurisdiction)
    cooldowns: tuple[tuple[int, bool, str], ...]  # (period in microseconds, exempt, jurisdiction)
    missing: tuple[str, ...]  # country jurisdictions without any row


class CallingRules(_Strict):
    """A validated profile: the rows the engine applies, and how far ahead it looks."""

    profile: str
    description: str | None = None
    horizon_days: int = 14
    baseline: tuple[str, ...] = ("US",)
    require_country_rules: bool = True
    rows: tuple[RuleRow, ...]
    source_file: str | None = None

    @property
    def horizon(self) -> timedelta:
        return timedelta(days=self.horizon_days)

    def plan(self, jurisdictions: tuple[str, ...]) -> Plan:
        """The combined rows for these jurisdictions (cached per rules object)."""
        plans = _PLANS.get(id(self))
        if plans is None:
            plans = _PLANS[id(self)] = {}
            weakref.finalize(self, _PLANS.pop, id(self), None)
        plan = plans.get(jurisdictions)
        if plan is None:
            plan = plans[jurisdictions] = self._build_plan(jurisdictions)
        return plan

    def _build_plan(self, jurisdictions: tuple[str, ...]) -> Plan:
        applicable = set(jurisdictions) | set(self.baseline)
        rows = tuple(row for row in self.rows if row.jurisdiction in applicable)
        week: list[DayWindows] = [((0, 24 * 60),)] * 7
        for row in rows:
            if row.hours is not None:
                week = [_intersect(a, b) for a, b in zip(week, row.hours, strict=True)]
        calendars = tuple(
            (*row.holiday_calendar(), row.jurisdiction)
            for row in rows
            if row.holidays == "no_calls"
        )
        caps = tuple(
            (cap.max_attempts, _micros(cap.window), row.jurisdiction)
            for row in rows
            for cap in row.caps
        )
        cooldowns = tuple(
            (
                _micros(row.conversation_cooldown.period),
                row.conversation_cooldown.callback_exempt,
                row.jurisdiction,
            )
            for row in rows
            if row.conversation_cooldown is not None
        )
        with_rows = {row.jurisdiction for row in self.rows}
        missing: tuple[str, ...] = ()
        if self.require_country_rules:
            missing = tuple(j for j in jurisdictions if "-" not in j and j not in with_rows)
        calendar = (tuple(week), tuple(sorted({c[:2] for c in calendars})))
        return Plan(
            key=next(_PLAN_KEYS),
            calendar_key=_CALENDAR_KEYS.setdefault(calendar, len(_CALENDAR_KEYS) + 1),
            jurisdictions=jurisdictions,
            rows=rows,
            hours=tuple(
                (row.jurisdiction, row.hours, len(set(row.hours)) == 1)
                for row in rows
                if row.hours is not None
            ),
            week=tuple(week),
            holiday_calendars=calendars,
            caps=caps,
            cooldowns=cooldowns,
            missing=missing,
        )


def _micros(value: timedelta) -> int:
    return value // timedelta(microseconds=1)


def _intersect(a: DayWindows, b: DayWindows) -> DayWindows:
    out: list[Window] = []
    for s1, e1 in a:
        for s2, e2 in b:
            s, e = max(s1, s2), min(e1, e2)
            if s < e:
                out.append((s, e))
    return tuple(sorted(out))


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesFileError(f"{path}: cannot read the rules file: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesFileError(f"{path}: not valid YAML: {exc}") from exc


def _parse_file(path: Path) -> _FileIn:
    data = _read_yaml(path)
    try:
        return _FileIn.model_validate(data)
    except ValidationError as exc:
        raise RulesFileError(f"{path}: {_explain(exc)}") from exc


def _explain(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    return "; ".join(parts)


def _validate_row(raw: object, where: str, index: int) -> RuleRow:
    jurisdiction = raw.get("jurisdiction", "?") if isinstance(raw, dict) else "?"
    label = f"{where}.rows[{index}] ({jurisdiction})"
    try:
        row = RuleRow.model_validate(raw)
    except ValidationError as exc:
        raise RulesFileError(f"{label}: {_explain(exc)}") from exc
    if row.holidays == "no_calls":
        country, subdiv = row.holiday_calendar()
        supported = holidays.list_supported_countries()
        if country not in supported or (subdiv is not None and subdiv not in supported[country]):
            raise RulesFileError(
                f"{label}: holidays: no_calls needs a holiday calendar, and the holidays "
                f"package has none for {row.jurisdiction}"
            )
    return row


def _resolve_profile(
    files: dict[str, _FileIn], path: Path, name: str, seen: tuple[str, ...]
) -> CallingRules:
    source = files["operator"] if name in files["operator"].profiles else files["shipped"]
    profile = source.profiles.get(name)
    if profile is None:
        known = sorted(set(files["operator"].profiles) | set(files["shipped"].profiles))
        raise RulesFileError(f"{path}: no profile {name!r} (known: {', '.join(known)})")
    where = f"{path}: profiles.{name}"
    rows: list[RuleRow] = []
    for index, raw in enumerate(profile.rows):
        rows.append(_validate_row(raw, where, index))
    base: CallingRules | None = None
    if profile.extends is not None:
        if profile.extends in seen or profile.extends == name:
            raise RulesFileError(f"{where}: extends {profile.extends!r} makes a cycle")
        base = _resolve_profile(files, path, profile.extends, (*seen, name))
        own = {row.jurisdiction for row in rows}
        rows = [row for row in base.rows if row.jurisdiction not in own] + rows
    if not rows:
        raise RulesFileError(f"{where}: the profile has no rows")
    values: dict[str, Any] = {"profile": name, "rows": tuple(rows), "source_file": str(path)}
    for field in ("description", "horizon_days", "baseline", "require_country_rules"):
        value = getattr(profile, field)
        if value is None and base is not None:
            value = getattr(base, field)
        if value is not None:
            values[field] = value
    baseline = values.get("baseline", ("US",))
    for jurisdiction in baseline:
        if not any(row.jurisdiction == jurisdiction for row in rows):
            raise RulesFileError(f"{where}: baseline {jurisdiction!r} has no rows")
    return CallingRules(**values)


def load_rules(path: Path | None = None, profile: str = "strict") -> CallingRules:
    """Load and validate one profile of a rules file (the shipped file when ``path`` is None).

    Raises ``RulesFileError`` naming the profile, the row (index and jurisdiction) and the
    reason when the file cannot be used.
    """
    shipped_path = default_rules_path()
    chosen = shipped_path if path is None else Path(path)
    shipped = _parse_file(shipped_path)
    operator = shipped if chosen == shipped_path else _parse_file(chosen)
    return _resolve_profile({"operator": operator, "shipped": shipped}, chosen, profile, ())

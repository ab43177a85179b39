"""The recovery policy and the wrap-up code mapping: data files validated by pydantic.

``recovery/data/policy.yaml`` says, per failure category, when the first call may happen, the
delays between attempts, the attempt cap, the case's expiry and how long to wait for a call's
outcome; and per disposition what happens next. ``recovery/data/dispositions.yaml`` maps the
contact centre's wrap-up codes to dispositions. An operator's own files are loaded by path; a
bad file raises ``DataFileError`` naming the entry and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from recovery.domain.models import Disposition, FailureCategory, Outcome
from recovery.domain.taxonomy import DATA_DIR, DataFileError, describe_errors, read_yaml_model

__all__ = [
    "DEFAULT_DISPOSITION_MAP",
    "DEFAULT_POLICY",
    "RIGHT_PARTY",
    "CategoryPolicy",
    "DataFileError",
    "DayOfMonth",
    "Delay",
    "DispositionMap",
    "DispositionRule",
    "Duration",
    "GatewayRetry",
    "NextWeekday",
    "Policy",
    "delay_end",
    "format_delay",
    "is_mapped",
    "is_right_party",
    "load_disposition_map",
    "load_policy",
    "map_wrapup",
    "parse_duration",
]

DEFAULT_POLICY = DATA_DIR / "policy.yaml"
DEFAULT_DISPOSITION_MAP = DATA_DIR / "dispositions.yaml"

# Kept far below datetime's range so that adding any policy duration to any date is safe.
MAX_DURATION = timedelta(days=366)

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def parse_duration(text: str) -> timedelta:
    """``90m``, ``36h``, ``2d``, ``1d12h`` (units d, h, m, s) to a ``timedelta``."""
    match = _DURATION.match(text.strip().lower())
    if not text.strip() or match is None:
        raise ValueError(f"bad duration {text!r}: expected e.g. 90m, 36h, 2d or 1d12h")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def _to_duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, str):
        result = parse_duration(value)
    else:
        raise ValueError(f"bad duration {value!r}: expected text such as 36h or 2d")
    if result < timedelta(0) or result > MAX_DURATION:
        raise ValueError(f"duration {format_delay(result)} is outside 0..366d")
    return result


Duration = Annotated[timedelta, BeforeValidator(_to_duration)]


class NextWeekday(_Frozen):
    """Midnight, local time, of the next given weekday (strictly after the start's date)."""

    next_weekday: Literal[
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
    ]


class DayOfMonth(_Frozen):
    """Midnight, local time, of the next of the given days of the month (1..28)."""

    day_of_month: tuple[Annotated[int, Field(ge=1, le=28)], ...] = Field(min_length=1)

    @field_validator("day_of_month", mode="after")
    @classmethod
    def _sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(sorted(set(value)))


def _to_delay(value: Any) -> Any:
    if isinstance(value, timedelta | str):
        return _to_duration(value)
    if isinstance(value, NextWeekday | DayOfMonth):
        return value
    if isinstance(value, dict):
        if "next_weekday" in value:
            return _aligned(NextWeekday, value)
        if "day_of_month" in value:
            return _aligned(DayOfMonth, value)
    raise ValueError(
        f"bad delay {value!r}: expected a duration (36h, 2d), {{next_weekday: friday}} "
        "or {day_of_month: [1, 15]}"
    )


def _aligned(model: type[NextWeekday] | type[DayOfMonth], value: dict[str, Any]) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise ValueError(describe_errors(exc)) from None


Delay = Annotated[timedelta | NextWeekday | DayOfMonth, BeforeValidator(_to_delay)]


def format_delay(delay: timedelta | NextWeekday | DayOfMonth) -> str:
    """The policy file's own spelling of a delay, for reasons and tables."""
    if isinstance(delay, NextWeekday):
        return f"next {delay.next_weekday}"
    if isinstance(delay, DayOfMonth):
        return "next day " + "/".join(str(d) for d in delay.day_of_month) + " of the month"
    total = int(delay.total_seconds())
    if total == 0:
        return "0m"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            out += f"{total // size}{unit}"
            total %= size
    return out


def delay_end(
    delay: timedelta | NextWeekday | DayOfMonth, start: datetime, zones: Sequence[str]
) -> datetime:
    """The earliest instant a delay allows, counted from ``start`` (aware), in UTC.

    An aligned delay is honoured in every candidate zone: the result is the latest of the
    local midnights, so the day has begun wherever the customer may be. Without a zone, UTC.
    """
    if isinstance(delay, timedelta):
        return (start + delay).astimezone(UTC)
    latest: datetime | None = None
    for name in zones or ("UTC",):
        tz = ZoneInfo(name)
        day = start.astimezone(tz).date() + timedelta(days=1)
        day = _next_matching(delay, day)
        at = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
        if latest is None or at > latest:
            latest = at
    assert latest is not None
    return latest


def _next_matching(delay: NextWeekday | DayOfMonth, day: date) -> date:
    if isinstance(delay, NextWeekday):
        want = _WEEKDAYS.index(delay.next_weekday)
        return day + timedelta(days=(want - day.weekday()) % 7)
    for offset in range(32):
        candidate = day + timedelta(days=offset)
        if candidate.day in delay.day_of_month:
            return candidate
    raise AssertionError("every month has days 1..28")  # pragma: no cover


class GatewayRetry(_Frozen):
    """How the first call of a soft decline waits for the gateway's own retry.

    ``after``: the first call comes no sooner than this long after the retry the gateway
    announced (time for the retry's success to arrive, which closes the case with no call).
    ``within``: a retry announced further out than this after the failure is not waited for.
    """

    after: Duration
    within: Duration

    @field_validator("within", mode="after")
    @classmethod
    def _horizon(cls, value: timedelta) -> timedelta:
        if value < timedelta(hours=1):
            raise ValueError("must be at least 1h")
        return value


class CategoryPolicy(_Frozen):
    """Timing and caps for one failure category."""

    first_contact: Delay
    retry: tuple[Delay, ...] = Field(min_length=1, max_length=20)
    max_attempts: int = Field(ge=1, le=50)
    expires_after: Duration
    disposition_timeout: Duration
    # Honoured for the taxonomy's soft declines only (recovery/data/failure_codes.yaml).
    gateway_retry: GatewayRetry | None = None

    @field_validator("retry", mode="after")
    @classmethod
    def _positive_retry(
        cls, value: tuple[timedelta | NextWeekday | DayOfMonth, ...]
    ) -> tuple[timedelta | NextWeekday | DayOfMonth, ...]:
        for i, delay in enumerate(value):
            if isinstance(delay, timedelta) and delay < timedelta(minutes=1):
                raise ValueError(f"entry {i}: a delay between attempts must be at least 1m")
        return value

    @field_validator("expires_after", mode="after")
    @classmethod
    def _expiry(cls, value: timedelta) -> timedelta:
        if value < timedelta(hours=1):
            raise ValueError("a case must live at least 1h")
        return value

    @field_validator("disposition_timeout", mode="after")
    @classmethod
    def _timeout(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= value <= timedelta(days=7):
            raise ValueError("must be between 1m and 7d")
        return value

    def retry_delay(self, attempts_made: int) -> timedelta | NextWeekday | DayOfMonth:
        """The delay after attempt ``attempts_made`` (1-based); the last one repeats."""
        return self.retry[min(max(attempts_made, 1), len(self.retry)) - 1]


class DispositionRule(_Frozen):
    """What a call outcome leads to."""

    action: Literal["retry", "promise", "callback", "close", "review"]
    outcome: Outcome | None = None
    suppress: Literal["customer", "all"] | None = None
    stop_phone_cases: bool = False
    flag_review: bool = False
    delay: Delay | None = None
    grace: Duration | None = None
    max_promise: Duration | None = None

    @model_validator(mode="after")
    def _consistent(self) -> DispositionRule:
        if self.action == "close" and self.outcome is None:
            raise ValueError("action close needs an outcome")
        if self.action != "close":
            for name in ("outcome", "suppress"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} is only for action close")
            if self.stop_phone_cases:
                raise ValueError("stop_phone_cases is only for action close")
        if self.action == "promise" and (self.grace is None or self.delay is None):
            raise ValueError("action promise needs grace and delay (used when no date is given)")
        if self.action != "promise" and (self.grace is not None or self.max_promise is not None):
            raise ValueError("grace and max_promise are only for action promise")
        if self.action == "callback" and self.delay is None:
            raise ValueError("action callback needs delay (used when no time is given)")
        if self.action in ("close", "review") and self.delay is not None:
            raise ValueError(f"action {self.action} takes no delay")
        return self


class Policy(_Frozen):
    """The whole recovery policy; every category and every disposition must have an entry."""

    version: Literal[1] = 1
    categories: dict[FailureCategory, CategoryPolicy]
    dispositions: dict[Disposition, DispositionRule]
    # After the card network updated the customer's card, no call until this long after the
    # gateway's next retry (which uses the new card).
    after_card_update: Duration = timedelta(days=1)

    @field_validator("categories", mode="after")
    @classmethod
    def _all_categories(
        cls, value: dict[FailureCategory, CategoryPolicy]
    ) -> dict[FailureCategory, CategoryPolicy]:
        missing = [c.value for c in FailureCategory if c not in value]
        if missing:
            raise ValueError(f"no entry for {', '.join(missing)}")
        return value

    @field_validator("dispositions", mode="after")
    @classmethod
    def _all_dispositions(
        cls, value: dict[Disposition, DispositionRule]
    ) -> dict[Disposition, DispositionRule]:
        missing = [d.value for d in Disposition if d not in value]
        if missing:
            raise ValueError(f"no entry for {', '.join(missing)}")
        dnc = value[Disposition.do_not_call]
        # A request to stop calling must be honoured at once and everywhere: not configurable.
        if not (
            dnc.action == "close"
            and dnc.outcome == Outcome.suppressed
            and dnc.suppress == "all"
            and dnc.stop_phone_cases
        ):
            raise ValueError(
                "do_not_call must close the case as suppressed with suppress: all and "
                "stop_phone_cases: true"
            )
        return value

    def for_category(self, category: FailureCategory) -> CategoryPolicy:
        return self.categories[category]

    def for_disposition(self, disposition: Disposition) -> DispositionRule:
        return self.dispositions[disposition]


def load_policy(path: Path | None = None) -> Policy:
    """The shipped policy, or an operator's file; raises ``DataFileError`` naming the entry."""
    return read_yaml_model(path or DEFAULT_POLICY, Policy, "policy")


# Dispositions that can only be given after speaking with the customer: they count as a
# right-party conversation (which starts the 7-day quiet period of the strict profile).
RIGHT_PARTY: frozenset[Disposition] = frozenset(
    {
        Disposition.promise_to_pay,
        Disposition.callback_requested,
        Disposition.paid,
        Disposition.payment_updated,
        Disposition.dispute,
        Disposition.do_not_call,
    }
)


def is_right_party(disposition: Disposition) -> bool:
    """Whether this disposition means a conversation with the customer took place."""
    return disposition in RIGHT_PARTY


def _norm_code(code: str) -> str:
    return " ".join(code.split()).casefold()


class DispositionMap(_Frozen):
    """Wrap-up codes (normalised: case and runs of spaces ignored) to dispositions."""

    version: Literal[1] = 1
    codes: dict[str, Disposition]

    @field_validator("codes", mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, item in value.items():
            norm = _norm_code(str(key))
            if not norm:
                raise ValueError("an empty wrap-up code")
            if norm in out:
                raise ValueError(f"wrap-up code {str(key)!r} appears twice (case is ignored)")
            out[norm] = item
        return out


def load_disposition_map(path: Path | None = None) -> DispositionMap:
    """The shipped wrap-up mapping, or an operator's file."""
    return read_yaml_model(path or DEFAULT_DISPOSITION_MAP, DispositionMap, "disposition map")


_OWN_NAMES = {d.value: d for d in Disposition}


def is_mapped(code: str, mapping: DispositionMap) -> bool:
    """Whether the mapping names this wrap-up code (the project's own disposition names
    always mean themselves)."""
    norm = _norm_code(code)
    return norm in mapping.codes or norm in _OWN_NAMES


def map_wrapup(code: str, mapping: DispositionMap) -> Disposition:
    """The disposition of a wrap-up code; ``unknown`` for a code the mapping does not know."""
    norm = _norm_code(code)
    found = mapping.codes.get(norm)
    if found is not None:
        return found
    return _OWN_NAMES.get(norm, Disposition.unknown)

"""The compliance engine: is a call permitted at an instant, and when is the next one."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel

from recovery.domain.compliance.rules import CallingRules
from recovery.domain.models import ContactPoint


class CallHistory(BaseModel, frozen=True):
    """What the rules need to know of a case's past calls (all instants aware)."""

    attempts: tuple[AwareDatetime, ...] = ()
    last_conversation: AwareDatetime | None = None
    callback_at: AwareDatetime | None = None
    suppression: str | None = None


class Verdict(BaseModel, frozen=True):
    """The answer for one contact at one instant, with the reasons naming rule and zone."""

    permitted: bool
    at: datetime
    next_permitted_at: datetime | None
    timezones: tuple[str, ...]
    jurisdictions: tuple[str, ...]
    reasons: tuple[str, ...]


def permitted(
    contact: ContactPoint, history: CallHistory, at: datetime, rules: CallingRules
) -> Verdict:
    raise NotImplementedError


def next_permitted(
    contact: ContactPoint, history: CallHistory, after: datetime, rules: CallingRules
) -> Verdict:
    raise NotImplementedError


def naive_next_permitted(
    contact: ContactPoint, history: CallHistory, after: datetime, rules: CallingRules
) -> datetime | None:
    raise NotImplementedError

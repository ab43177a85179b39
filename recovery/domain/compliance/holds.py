"""Why a call may not be made, as fields: the rule, the jurisdiction whose row it is, the zone.

The compliance engine answers every refusal twice: a sentence for people (``Verdict.reasons``)
and a ``Hold`` for programs (``Verdict.holds``, one per reason, in the same order). The state
machine carries the holds of the verdict that shaped a step, the advance service writes them
into the case history (``data["holds"]``, a list of ``Hold.as_data()`` documents), and the
report and the demo count them from there, never from the sentences.

The rule vocabulary (``HoldRule``) is stable: it is stored in case histories.

* ``hours`` (jurisdiction, zone): the local time is outside the jurisdiction's calling hours.
* ``weekday`` (jurisdiction, zone, weekday): the jurisdiction allows no calls on this local
  weekday (``Sunday``).
* ``holiday`` (jurisdiction, zone): the local date is a public holiday the jurisdiction bans
  calls on.
* ``attempt_cap`` (jurisdiction, limit, period): ``limit`` attempts already made within a
  rolling ``period``.
* ``cooldown`` (jurisdiction, period): within ``period`` after a conversation with the
  customer.
* ``suppressed``: the number is on the suppression list.
* ``timezone_unknown``: no time zone can be determined for the contact.
* ``no_rules`` (jurisdiction): no calling rules cover the contact's country.
* ``no_window``: no permitted instant within the rules' horizon.
* ``dial_margin`` (period): calling stops being lawful within ``period``, the dial margin that
  gives the dialer time to call (written by the advance service, not the engine).

``jurisdiction`` is the row's (``US``, ``US-FL``): one of the contact's jurisdictions or of the
rules' baseline, which applies to every contact. ``zone`` is the IANA zone in which the local
time or date was read; ``period`` is a duration as the rules file writes it (``24h``, ``7d``).
The first five are the calling rules proper (``CALLING_RULES``). A hold carries no personal
data: no phone number, name, customer reference or instant of a call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recovery.domain.compliance.rules import format_duration

HoldRule = Literal[
    "hours",
    "weekday",
    "holiday",
    "attempt_cap",
    "cooldown",
    "suppressed",
    "timezone_unknown",
    "no_rules",
    "no_window",
    "dial_margin",
]
HOLD_RULES: tuple[HoldRule, ...] = get_args(HoldRule)
# The rules of the calling-rules table: each belongs to one jurisdiction's row.
CALLING_RULES: frozenset[HoldRule] = frozenset(
    ("hours", "weekday", "holiday", "attempt_cap", "cooldown")
)


class Hold(BaseModel):
    """One reason a call may not be made now, as fields (see the module's table)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: HoldRule
    jurisdiction: str | None = None
    zone: str | None = None
    weekday: str | None = None
    limit: int | None = Field(default=None, ge=1)
    period: str | None = None

    @property
    def calling_rule(self) -> bool:
        """Whether this is a rule of the calling-rules table (and so has a jurisdiction)."""
        return self.rule in CALLING_RULES

    def as_data(self) -> dict[str, Any]:
        """The JSON document stored in a history entry's ``data["holds"]`` (unset fields
        left out)."""
        return self.model_dump(exclude_none=True)


def dial_margin_hold(margin: timedelta) -> Hold:
    """The hold of a contact not planned or not sent because calling stops being lawful
    within ``margin`` (the time the dialer needs to call it)."""
    return Hold(rule="dial_margin", period=format_duration(margin))


def holds_data(holds: Iterable[Hold]) -> list[dict[str, Any]]:
    """Holds as the list stored in a history entry's ``data["holds"]``."""
    return [hold.as_data() for hold in holds]


def read_holds(data: Mapping[str, Any] | None) -> tuple[Hold, ...] | None:
    """The holds a history entry's ``data`` records; None when it records none at all (an
    entry written before holds were recorded, or one that is no decision or withdrawal).

    A stored hold this version cannot read (a rule it does not know) is skipped rather than
    failing the whole reader."""
    if not data or not isinstance(data.get("holds"), list):
        return None
    found: list[Hold] = []
    for item in data["holds"]:
        try:
            found.append(Hold.model_validate(item))
        except ValidationError:
            continue
    return tuple(found)

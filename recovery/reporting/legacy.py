"""Case histories recorded before compliance refusals were stored as fields.

A decision or a withdrawn contact recorded since then carries its refusals in
``data["holds"]``, and the report reads only those. An entry recorded before has no ``holds``
key: its refusals exist only as the compliance engine's sentences in ``reasons``, so
``legacy_holds_from_prose`` reads them back, once, here; nothing else in the package parses
reason text. The sentences it knows are the ones the engine wrote then (and still writes):

* ``US-FL hours 08:00-20:00 in America/New_York: 21:30 local is outside``
* ``US no calls on Sunday in America/Chicago: 2026-10-04 local``
* ``US-MA no calls on public holidays in America/New_York: 2026-10-12 is Columbus Day``
* ``US-FL cap 3 attempts per rolling 24h: 3 attempts from ... to ...``
* ``US no call within 7d after a conversation: last conversation ...``
* ``the window closes within the 15 min dial margin`` (the advance service's)

A withdrawn contact's note joins several sentences in one line
(``attempt 2 withdrawn before it was sent: not permitted now: <sentence>; <sentence>``), so a
sentence is looked for anywhere in a reason, not only at its start.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from recovery.domain.compliance.holds import Hold, dial_margin_hold
from recovery.domain.compliance.rules import DAY_NAMES

_DAYS = "|".join(DAY_NAMES)
_SENTENCE = re.compile(
    r"(?:^|; |: )(?P<jurisdiction>[A-Z]{2}(?:-[A-Z0-9]{1,3})?) (?:"
    r"hours (?:.*? )?in (?P<hours_zone>[\w/+-]+):"
    rf"|no calls on (?P<weekday>{_DAYS}) in (?P<weekday_zone>[\w/+-]+):"
    r"|no calls on public holidays in (?P<holiday_zone>[\w/+-]+):"
    r"|cap (?P<limit>\d+) attempts per rolling (?P<cap_period>\w+):"
    r"|no call within (?P<cooldown_period>\w+) after a conversation:"
    r")"
)
_MARGIN = re.compile(r"the window closes within the (?P<minutes>\d+) min dial margin")
_WITHDRAWN_UNSENT = re.compile(r"^attempt \d+ withdrawn before it was sent: ")


def legacy_holds_from_prose(reasons: Iterable[object], *, withdrawal: bool) -> tuple[Hold, ...]:
    """The holds an entry recorded before holds were stored states in its reasons.

    ``withdrawal``: the entry is a note; then only a contact withdrawn before it was sent
    counts (as the report counted it then), never an operator's remark quoting a rule."""
    found: list[Hold] = []
    for reason in reasons:
        if not isinstance(reason, str):
            continue
        if withdrawal and not _WITHDRAWN_UNSENT.match(reason):
            continue
        margin = _MARGIN.search(reason)
        if margin is not None:
            found.append(dial_margin_hold(timedelta(minutes=int(margin["minutes"]))))
        for match in _SENTENCE.finditer(reason):
            found.append(_hold(match))
    return tuple(dict.fromkeys(found))


def _hold(match: re.Match[str]) -> Hold:
    jurisdiction = match["jurisdiction"]
    if match["hours_zone"] is not None:
        return Hold(rule="hours", jurisdiction=jurisdiction, zone=match["hours_zone"])
    if match["weekday"] is not None:
        return Hold(
            rule="weekday",
            jurisdiction=jurisdiction,
            zone=match["weekday_zone"],
            weekday=match["weekday"],
        )
    if match["holiday_zone"] is not None:
        return Hold(rule="holiday", jurisdiction=jurisdiction, zone=match["holiday_zone"])
    if match["limit"] is not None:
        return Hold(
            rule="attempt_cap",
            jurisdiction=jurisdiction,
            limit=int(match["limit"]),
            period=match["cap_period"],
        )
    return Hold(rule="cooldown", jurisdiction=jurisdiction, period=match["cooldown_period"])

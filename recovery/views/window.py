"""Rendering of a calling-window verdict (``recovery window``): the JSON contract and the
readable table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from recovery.domain.compliance.engine import Verdict


def _utc_iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def verdict_document(verdict: Verdict) -> dict[str, Any]:
    """The JSON contract of ``recovery window --json``."""
    return {
        "permitted": verdict.permitted,
        "next_permitted_at": _utc_iso(verdict.next_permitted_at),
        "timezones": list(verdict.timezones),
        "jurisdictions": list(verdict.jurisdictions),
        "reasons": list(verdict.reasons),
    }


def verdict_rows(verdict: Verdict) -> list[tuple[str, str]]:
    """(label, text) lines for a readable rendering, with local times of the next window."""
    rows = [
        ("asked about", _utc_iso(verdict.at) or ""),
        ("permitted", "yes" if verdict.permitted else "no"),
    ]
    nxt = verdict.next_permitted_at
    if nxt is None:
        rows.append(("next permitted", "none"))
    else:
        rows.append(("next permitted", _utc_iso(nxt) or ""))
        for zone in verdict.timezones:
            local = nxt.astimezone(ZoneInfo(zone))
            rows.append((f"  in {zone}", local.strftime("%a %Y-%m-%d %H:%M:%S %Z")))
    rows.append(("time zones", ", ".join(verdict.timezones) or "unknown"))
    rows.append(("jurisdictions", ", ".join(verdict.jurisdictions)))
    for reason in verdict.reasons:
        rows.append(("reason", reason))
    return rows


def print_verdict(verdict: Verdict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None)
    for label, text in verdict_rows(verdict):
        table.add_row(label, text)
    Console().print(table)

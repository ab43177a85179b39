"""The demo's terminal: live progress, or a line a virtual day when the output is not a
terminal."""

from __future__ import annotations

from datetime import datetime

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from recovery.demo.feeder import Feeder
from recovery.demo.funnel import Snapshot

# --- progress -------------------------------------------------------------------------------


def render_progress(
    snap: Snapshot, *, start: datetime, days: float, feeder: Feeder
) -> RenderableType:
    elapsed = min(days, max(0.0, (snap.at - start).total_seconds() / 86400))
    head = Table.grid(padding=(0, 1))
    head.add_row(
        Text(f"{snap.at:%a %d %b %Y %H:%M} UTC", style="bold"),
        ProgressBar(total=days, completed=elapsed, width=30),
        Text(f"day {elapsed:4.1f} of {days:g}"),
    )
    waiting = ", ".join(f"{k} {v}" for k, v in sorted(snap.statuses.items()) if k != "closed")
    closed = ", ".join(f"{k} {v}" for k, v in snap.outcomes.most_common()) or "-"
    refused = snap.counters.get("refused_outside_window", 0)
    return Group(
        head,
        Text(f"webhooks {feeder.posted} of {len(feeder.plan.deliveries)}"),
        Text(f"cases {sum(snap.statuses.values())}: {waiting or '-'}"),
        Text(
            f"contacts created {snap.contacts}, dialled {snap.counters.get('dials', 0)}, "
            f"outcomes recorded {snap.dispositions}"
        ),
        Text(f"closed: {closed}"),
        Text(
            f"dials refused outside the calling window: {refused}",
            style="bold red" if refused else "green",
        ),
    )


def plain_progress(snap: Snapshot, *, start: datetime, feeder: Feeder) -> str:
    elapsed = (snap.at - start).total_seconds() / 86400
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(snap.statuses.items())) or "-"
    return (
        f"day {elapsed:4.1f} {snap.at:%a %d %b %H:%M} UTC: webhooks {feeder.posted}; "
        f"cases {sum(snap.statuses.values())} ({statuses}); contacts {snap.contacts}; "
        f"outcomes {snap.dispositions}; recovered {snap.outcomes.get('recovered', 0)}; "
        f"refused {snap.counters.get('refused_outside_window', 0)}"
    )

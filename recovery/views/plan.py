"""Terminal rendering of a simulated plan (``recovery plan``)."""

from __future__ import annotations

from datetime import UTC

from recovery.domain.simulate import Plan


def print_plan(plan: Plan, *, json_output: bool = False) -> None:
    """Write the timeline to stdout: one JSON object, or a table."""
    import json
    import sys

    if json_output:
        sys.stdout.write(json.dumps(plan.as_json()) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{plan.category.value}: local times in {plan.timezone}")
    for column in ("#", "local time", "UTC", "action", "detail", "reasons"):
        table.add_column(column, overflow="fold")
    for index, step in enumerate(plan.steps, start=1):
        if step.action == "contact":
            detail = f"attempt {step.attempt}: {step.disposition}"
        elif step.action == "close":
            detail = step.outcome.value if step.outcome else ""
        elif step.action == "event":
            detail = step.event or ""
        elif step.waiting_for is not None:
            detail = f"{step.status.value}: {step.waiting_for.replace('_', ' ')}"
        else:
            detail = step.status.value
        table.add_row(
            str(index),
            step.local_time.strftime("%a %Y-%m-%d %H:%M %Z"),
            step.at.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ"),
            step.action,
            detail,
            "\n".join(step.reasons),
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)

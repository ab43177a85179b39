"""Terminal rendering of cases: the table of ``recovery cases list`` and the timeline of
``recovery cases show``."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

WAITING_FOR = {
    "gateway_retry": "the gateway's own retry",
    "card_update": "the gateway's retry with the updated card",
}


def print_case_table(rows: list[dict[str, Any]], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"{len(rows)} cases")
    for column in (
        "key",
        "status",
        "outcome",
        "category",
        "phone",
        "state",
        "amount",
        "next_due_at",
        "contacts_made",
    ):
        table.add_column(column.replace("_", " "))
    for row in rows:
        amount = f"{row['amount']} {row['currency'] or ''}" if row["amount"] else "-"
        table.add_row(
            row["key"],
            row["status"],
            row["outcome"] or "",
            row["category"],
            row["phone"] or "-",
            row["state"] or "",
            amount,
            row["next_due_at"] or "",
            str(row["contacts_made"]),
        )
    console.print(table)


def print_case_detail(detail: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"[bold]{detail['key']}[/bold]  {detail['status']} {detail['outcome'] or ''}")
    for label in (
        "category",
        "failure_code",
        "decline_code",
        "advice_code",
        "phone",
        "state",
        "postal_code",
        "time_zone",
        "amount",
        "currency",
        "failed_at",
        "next_due_at",
        "next_retry_at",
        "payment_link",
        "contacts_made",
        "reason",
    ):
        if detail.get(label) not in (None, ""):
            console.print(f"  {label.replace('_', ' ')}: {detail[label]}")
    if detail.get("events_url"):
        console.print(f"  events in Prefect: {detail['events_url']}", soft_wrap=True)
    waiting = detail.get("waiting")
    if waiting:
        what = WAITING_FOR.get(str(waiting["waiting_for"]), str(waiting["waiting_for"]))
        console.print(f"  waiting for {what}: no call before {waiting['until']}")
        for reason in waiting["reasons"]:
            console.print(f"    {reason}")
    if detail["missing_fields"]:
        console.print(f"  missing fields: {', '.join(detail['missing_fields'])}")
    timeline = Table(title="timeline")
    for column in ("at (UTC)", "kind", "status", "disposition", "reasons"):
        timeline.add_column(column)
    for entry in detail["history"]:
        timeline.add_row(
            entry["at"],
            entry["kind"],
            entry["status"] or "",
            entry["disposition"] or "",
            "\n".join(entry["reasons"]),
        )
    console.print(timeline)
    if detail["contacts"]:
        contacts = Table(title="contacts")
        for column in ("attempt", "contact id", "state", "planned at", "disposition"):
            contacts.add_column(column)
        for contact in detail["contacts"]:
            contacts.add_row(
                str(contact["attempt"]),
                contact["contact_id"],
                contact["state"],
                contact["planned_at"],
                contact["disposition"] or "",
            )
        console.print(contacts)

"""Case views for people and scripts: summaries, timelines, tables. Phones masked by default."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.logging import mask_phone
from recovery.store.cases import case_key, history_of
from recovery.store.tables import CaseRow, ContactRow, DispositionRow


def money(amount: Decimal | None) -> str | None:
    """``Decimal('20.0000')`` -> ``'20.00'``; more places only when they carry digits."""
    if amount is None:
        return None
    cents = amount.quantize(Decimal("0.01"))
    return str(cents if cents == amount else amount.normalize())


def case_summary(case: CaseRow, *, reveal: bool = False) -> dict[str, Any]:
    return {
        "key": case_key(case.gateway, case.business_key),
        "status": case.status,
        "outcome": case.outcome,
        "category": case.category,
        "phone": case.phone_e164 if reveal else mask_phone(case.phone_e164),
        "state": case.state,
        "amount": money(case.amount),
        "currency": case.currency,
        "failed_at": case.failed_at.isoformat(),
        "next_due_at": case.next_due_at.isoformat() if case.next_due_at else None,
        "contacts_made": case.contacts_made,
        "reason": case.status_reason,
    }


def case_detail(session: Session, case: CaseRow, *, reveal: bool = False) -> dict[str, Any]:
    detail = case_summary(case, reveal=reveal)
    detail.update(
        customer_ref=case.customer_ref,
        postal_code=case.postal_code,
        country=case.country,
        time_zone=case.explicit_tz,
        failure_code=case.failure_code,
        decline_code=case.decline_code,
        advice_code=case.advice_code,
        missing_fields=(case.missing_fields or {}).get("fields", []),
        opened_at=case.opened_at.isoformat(),
        closed_at=case.closed_at.isoformat() if case.closed_at else None,
        flagged_for_review=case.flagged_for_review,
    )
    detail["history"] = [
        {
            "at": row.at.isoformat(),
            "recorded_at": row.recorded_at.isoformat(),
            "kind": row.kind,
            "status": row.status,
            "disposition": row.disposition,
            "reasons": list(row.reasons or []),
            "data": row.data or {},
        }
        for row in history_of(session=session, case_id=case.id)
    ]
    contacts = session.scalars(
        select(ContactRow).where(ContactRow.case_id == case.id).order_by(ContactRow.attempt)
    )
    dispositions = {
        (d.contact_id, d.attempt): d
        for d in session.scalars(select(DispositionRow).where(DispositionRow.case_id == case.id))
    }
    detail["contacts"] = []
    for contact in contacts:
        disposition = dispositions.get((contact.contact_id, contact.attempt))
        detail["contacts"].append(
            {
                "attempt": contact.attempt,
                "contact_id": contact.contact_id,
                "state": contact.state,
                "planned_at": contact.planned_at.isoformat(),
                "created_at": contact.created_at.isoformat() if contact.created_at else None,
                "time_zone": contact.time_zone,
                "disposition": disposition.disposition if disposition else None,
                "wrapup_code": disposition.wrapup_code if disposition else None,
            }
        )
    return detail


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
        "contacts_made",
        "reason",
    ):
        if detail.get(label) not in (None, ""):
            console.print(f"  {label.replace('_', ' ')}: {detail[label]}")
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

"""Cases as people and scripts read them: summaries and whole timelines, phones masked unless
revealed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from recovery.domain.events import timeline_url
from recovery.domain.models import CaseStatus, HistoryKind
from recovery.log_scrubbing import mask_phone
from recovery.store.cases import (
    case_key,
    failure_facts,
    find_case,
    history_of,
    list_cases,
    to_entries,
)
from recovery.store.contacts import contacts_of_case
from recovery.store.dispositions import dispositions_of_case
from recovery.store.tables import CaseRow


class UnknownCase(LookupError):
    """No case has this key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no case {key!r} (use gateway:business_key when ambiguous)")


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
    rows = history_of(session=session, case_id=case.id)
    detail["history"] = [
        {
            "at": row.at.isoformat(),
            "recorded_at": row.recorded_at.isoformat(),
            "kind": row.kind,
            "status": row.status,
            "disposition": row.disposition,
            "reasons": list(row.reasons or []),
            "data": _shown(row.data or {}, reveal=reveal),
        }
        for row in rows
    ]
    detail.update(retry_facts(case, rows, reveal=reveal))
    contacts = contacts_of_case(session=session, case_id=case.id)
    dispositions = {
        (d.contact_id, d.attempt): d for d in dispositions_of_case(session=session, case_id=case.id)
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


HIDDEN_LINK = "(on file; --reveal shows it)"


def _shown(data: dict[str, Any], *, reveal: bool) -> dict[str, Any]:
    """History data as shown: a payment link (it opens the customer's invoice) only revealed."""
    if reveal or not data.get("payment_link"):
        return data
    return {**data, "payment_link": HIDDEN_LINK}


def retry_facts(case: CaseRow, rows: list[Any], *, reveal: bool) -> dict[str, Any]:
    """The gateway's next retry, the payment link, and the retry-aware wait the case is in
    (what it waits for, until when, and why), from its history."""
    entries = to_entries(rows)
    facts = failure_facts(entries)
    failures = [
        e for e in entries if e.kind in (HistoryKind.failure_recorded, HistoryKind.failure_updated)
    ]
    latest = max(failures, key=lambda e: e.at, default=None)
    out: dict[str, Any] = {
        "next_retry_at": latest.data.get("next_retry_at") if latest else None,
        "payment_link": (facts.payment_link if reveal else HIDDEN_LINK)
        if facts.payment_link
        else None,
        "waiting": None,
    }
    if case.status != CaseStatus.awaiting_retry.value:
        return out
    decision = next(
        (
            e
            for e in reversed(entries)
            if e.kind is HistoryKind.decision and e.data.get("waiting_for")
        ),
        None,
    )
    if decision is not None:
        out["waiting"] = {
            "waiting_for": decision.data["waiting_for"],
            "until": decision.data.get("next_due_at"),
            "retry_at": decision.data.get("retry_at"),
            "unwaited_at": decision.data.get("unwaited_at"),
            "reasons": list(decision.reasons),
        }
    return out


def list_summaries(
    *, sessions: sessionmaker[Session], status: str | None, limit: int, reveal: bool = False
) -> list[dict[str, Any]]:
    """Summaries of up to ``limit`` cases (of ``status``, a status or an outcome), oldest
    first."""
    with sessions() as session:
        return [
            case_summary(case, reveal=reveal)
            for case in list_cases(session=session, status=status, limit=limit)
        ]


def detail_of(
    *,
    sessions: sessionmaker[Session],
    key: str,
    reveal: bool = False,
    prefect_api_url: str | None = None,
) -> dict[str, Any]:
    """One case and its whole timeline; ``UnknownCase`` when no case has this key. With
    ``prefect_api_url``, ``events_url`` is the Prefect UI's page of the case's events."""
    with sessions() as session:
        case = find_case(session=session, key=key)
        if case is None:
            raise UnknownCase(key)
        detail = case_detail(session, case, reveal=reveal)
    if prefect_api_url:
        detail["events_url"] = timeline_url(prefect_api_url, str(detail["key"]))
    return detail

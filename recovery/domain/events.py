"""The business events of a case, as values: one per transition, with the case as the resource.

What an automation matches on is a resource label (``recovery.gateway``, ``recovery.category``,
``recovery.disposition``, ``recovery.outcome``); the payload says the rest. No personal data
ever enters an event: no phone, no email, no name, no card data; the case key is the gateway
and the payment's business key (an invoice or payment id), and compliance holds are named by
rule and jurisdiction only.

Every event carries ``recovery.gateway``; most carry ``recovery.category``.

- ``recovery.case.opened``: a payment failure opens a case.
- ``recovery.case.waiting``: a decision parks the case until a later instant (``until``;
  ``why``: ``compliance`` with the ``rules`` that hold the call, or ``policy``).
- ``recovery.contact.created``: the contact centre holds the case's contact.
- ``recovery.disposition.recorded``: a call outcome is published (label
  ``recovery.disposition``).
- ``recovery.case.review-needed``: a person must look at the case.
- ``recovery.case.closed``: the case closes (label ``recovery.outcome``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

CASE_RESOURCE_PREFIX = "recovery.case."

OPENED = "recovery.case.opened"
WAITING = "recovery.case.waiting"
CONTACT_CREATED = "recovery.contact.created"
OUTCOME_RECORDED = "recovery.disposition.recorded"
REVIEW_NEEDED = "recovery.case.review-needed"
CLOSED = "recovery.case.closed"
CASE_EVENTS = (OPENED, WAITING, CONTACT_CREATED, OUTCOME_RECORDED, REVIEW_NEEDED, CLOSED)


def case_resource_id(key: str) -> str:
    """The Prefect resource id of a case (its event timeline in the UI filters on it)."""
    return f"{CASE_RESOURCE_PREFIX}{key}"


def ui_url(api_url: str) -> str:
    """The Prefect UI's address for an API address (Prefect serves both; the API under
    ``/api``)."""
    base = api_url.rstrip("/")
    return base.removesuffix("/api")


def timeline_url(api_url: str, key: str) -> str:
    """The Prefect UI's event feed filtered on one case (its timeline): the ``/events`` page,
    whose ``resource`` query parameter filters on a resource id."""
    return f"{ui_url(api_url)}/events?resource={quote(case_resource_id(key), safe='')}"


@dataclass(frozen=True)
class CaseEvent:
    """One transition of one case: the event's name, the case key, the resource labels and
    the payload (strings only)."""

    event: str
    key: str
    labels: Mapping[str, str] = field(default_factory=dict)
    payload: Mapping[str, str] = field(default_factory=dict)

    def resource(self) -> dict[str, str]:
        return {
            "prefect.resource.id": case_resource_id(self.key),
            "prefect.resource.name": self.key,
            **{f"recovery.{name}": value for name, value in self.labels.items() if value},
        }


def _gateway(key: str) -> str:
    return key.split(":", 1)[0]


def opened(key: str, *, category: str, status: str) -> CaseEvent:
    return CaseEvent(
        OPENED, key, {"gateway": _gateway(key), "category": category}, {"status": status}
    )


def waiting(
    key: str,
    *,
    category: str,
    status: str,
    until: datetime,
    holds: Iterable[Mapping[str, Any]] = (),
    waiting_for: str | None = None,
    retry_at: str | None = None,
) -> CaseEvent:
    """A wait: until when, and why: the compliance rules that hold the call (each as
    ``rule`` or ``rule:jurisdiction``), else the policy (and what a retry-aware wait waits
    for)."""
    rules = sorted({_rule(hold) for hold in holds})
    payload = {
        "status": status,
        "until": until.isoformat(),
        "why": "compliance" if rules else "policy",
    }
    if rules:
        payload["rules"] = ", ".join(rules)
    if waiting_for:
        payload["waiting_for"] = waiting_for
    if retry_at:
        payload["retry_at"] = retry_at
    return CaseEvent(WAITING, key, {"gateway": _gateway(key), "category": category}, payload)


def _rule(hold: Mapping[str, Any]) -> str:
    jurisdiction = hold.get("jurisdiction")
    return f"{hold['rule']}:{jurisdiction}" if jurisdiction else str(hold["rule"])


def contact_created(key: str, *, category: str, attempt: int, contact_id: str) -> CaseEvent:
    return CaseEvent(
        CONTACT_CREATED,
        key,
        {"gateway": _gateway(key), "category": category},
        {"attempt": str(attempt), "contact_id": contact_id},
    )


def outcome_recorded(
    key: str, *, category: str, disposition: str, wrapup_code: str, attempt: int, source: str
) -> CaseEvent:
    return CaseEvent(
        OUTCOME_RECORDED,
        key,
        {"gateway": _gateway(key), "category": category, "disposition": disposition},
        {
            "disposition": disposition,
            "wrapup_code": wrapup_code,
            "attempt": str(attempt),
            "source": source,
        },
    )


def review_needed(key: str, *, category: str, why: str) -> CaseEvent:
    return CaseEvent(
        REVIEW_NEEDED, key, {"gateway": _gateway(key), "category": category}, {"why": why}
    )


def closed(key: str, *, category: str, outcome: str) -> CaseEvent:
    return CaseEvent(
        CLOSED,
        key,
        {"gateway": _gateway(key), "category": category, "outcome": outcome},
        {"outcome": outcome},
    )

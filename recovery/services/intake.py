"""Draining the webhook inbox into cases: the work of the ingest flow, without Prefect.

Each row is applied in its own savepoint, so a bad row is marked and never blocks the rows
behind it. The unique constraints on cases and successes decide races between runners.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from recovery.domain.models import (
    CardUpdated,
    ContactPoint,
    Gateway,
    PaymentFailure,
    PaymentSucceeded,
)
from recovery.domain.taxonomy import FailureCodes, categorize
from recovery.log_scrubbing import scrub
from recovery.store import inbox
from recovery.store.cases import ApplyResult, apply_card_update, apply_failure, apply_success
from recovery.store.db import transaction
from recovery.store.tables import InboxRow

log = logging.getLogger("recovery.services.intake")

# customer id -> (contact, raw phone when invalid, problem) or None when the customer has no phone
CustomerLookup = Callable[[str], "tuple[ContactPoint, str | None, str | None] | None"]


@dataclass
class IngestSummary:
    rows: int = 0
    batches: int = 0
    results: Counter[str] = field(default_factory=Counter)
    case_ids: set[int] = field(default_factory=set)
    # (event name, case key, payload) for the business event feed; no personal data
    events: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def add(self, other: IngestSummary) -> None:
        self.rows += other.rows
        self.batches += other.batches
        self.results.update(other.results)
        self.case_ids |= other.case_ids
        self.events.extend(other.events)

    def as_dict(self) -> dict[str, object]:
        return {"rows": self.rows, "batches": self.batches, "results": dict(self.results)}


def ingest_batch(
    *,
    sessions: sessionmaker[Session],
    codes: FailureCodes,
    now: datetime,
    limit: int,
    lookup: CustomerLookup | None = None,
) -> IngestSummary:
    """Apply up to ``limit`` unprocessed inbox rows in one transaction."""
    summary = IngestSummary(batches=1)
    with transaction(sessions) as session:
        for row in inbox.next_unprocessed(session=session, limit=limit):
            summary.rows += 1
            try:
                with session.begin_nested():
                    result = _apply_row(session, row, codes, now, lookup)
            except Exception as exc:  # one bad row must not block the rest
                message = scrub(f"{type(exc).__name__}: {exc}")[:1000]
                log.warning("inbox row %s (%s) failed: %s", row.id, row.event_type, message)
                inbox.mark_processed(
                    session=session, row_id=row.id, result="error", now=now, error=message
                )
                summary.results["error"] += 1
                continue
            inbox.mark_processed(
                session=session,
                row_id=row.id,
                result=f"{result.action}",
                now=now,
                error=None if result.action != "ignored" else result.reason[:1000],
            )
            summary.results[result.action] += 1
            if result.case_id is not None:
                summary.case_ids.add(result.case_id)
            if result.key and result.action in ("opened", "closed"):
                name = "payment.failed" if result.action == "opened" else "payment.succeeded"
                summary.events.append(
                    (name, result.key, {"gateway": row.gateway, "event_type": row.event_type})
                )
    return summary


def drain(
    *,
    sessions: sessionmaker[Session],
    codes: FailureCodes,
    clock_now: Callable[[], datetime],
    batch_size: int,
    lookup: CustomerLookup | None = None,
    max_batches: int | None = None,
) -> IngestSummary:
    """Apply batches until the inbox is empty (or ``max_batches`` were applied)."""
    total = IngestSummary()
    while max_batches is None or total.batches < max_batches:
        batch = ingest_batch(
            sessions=sessions, codes=codes, now=clock_now(), limit=batch_size, lookup=lookup
        )
        if batch.rows == 0:
            break
        total.add(batch)
    return total


def _apply_row(
    session: Session,
    row: InboxRow,
    codes: FailureCodes,
    now: datetime,
    lookup: CustomerLookup | None,
) -> ApplyResult:
    try:
        if row.kind == "failure":
            failure = PaymentFailure.model_validate(row.payload)
        elif row.kind == "success":
            success = PaymentSucceeded.model_validate(row.payload)
            return apply_success(session=session, success=success, now=now)
        elif row.kind == "card_updated":
            updated = CardUpdated.model_validate(row.payload)
            return apply_card_update(session=session, update_=updated, now=now)
        else:
            return ApplyResult("ignored", None, f"inbox row kind {row.kind!r}")
    except ValidationError as exc:
        raise ValueError(f"stored payload no longer valid: {exc.error_count()} errors") from None
    if failure.invoice_unknown and failure.gateway is Gateway.stripe:
        failure = _with_invoice_key(failure, lookup)
    needs_lookup = failure.contact.phone_e164 is None and not failure.phone_problem
    # Only Stripe customers can be looked up (the lookup reads Stripe's Customer object).
    if needs_lookup and failure.customer_ref and failure.gateway is Gateway.stripe:
        failure = _with_customer_contact(failure, lookup)
    category, reason = categorize(
        gateway=failure.gateway,
        failure_code=failure.failure_code,
        decline_code=failure.decline_code,
        advice_code=failure.advice_code,
        codes=codes,
    )
    return apply_failure(
        session=session,
        failure=failure,
        category=category,
        category_reason=reason,
        now=now,
        soft_declines=codes.declines.soft,
    )


def _with_invoice_key(failure: PaymentFailure, lookup: CustomerLookup | None) -> PaymentFailure:
    """Key a Stripe payment intent's failure by the invoice it pays, when Stripe says it pays
    one, so that the renewal's intent, charge and invoice failures make one case."""
    find = getattr(lookup, "invoice_for_payment", None)  # recovery.gateways.stripe.StripeLookup
    if find is None:
        return failure
    try:
        invoice = find(failure.business_key)
    except Exception as exc:  # the case opens under the payment's own key
        log.warning(
            "invoice lookup for %s failed: %s; keyed by the payment",
            failure.business_key,
            type(exc).__name__,
        )
        return failure
    if not isinstance(invoice, str) or not invoice:
        return failure
    return failure.model_copy(update={"business_key": invoice, "invoice_unknown": False})


def _with_customer_contact(
    failure: PaymentFailure, lookup: CustomerLookup | None
) -> PaymentFailure:
    if lookup is None or failure.customer_ref is None:
        return failure
    try:
        found = lookup(failure.customer_ref)
    except Exception as exc:  # the case still opens, as needs_contact_info, with the reason
        log.warning("customer lookup for %s failed: %s", failure.customer_ref, type(exc).__name__)
        return failure
    if found is None:
        return failure
    contact, raw, problem = found
    merged = ContactPoint(
        phone_e164=contact.phone_e164,
        country=contact.country or failure.contact.country,
        state=failure.contact.state or contact.state,
        postal_code=failure.contact.postal_code or contact.postal_code,
        explicit_tz=failure.contact.explicit_tz or contact.explicit_tz,
    )
    return failure.model_copy(
        update={"contact": merged, "phone_raw": raw, "phone_problem": problem}
    )

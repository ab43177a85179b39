"""Draining the webhook inbox into cases: the work of the ingest flow, without Prefect.

Each row is applied in its own savepoint, so a row that can never be applied is parked
(result ``error``) and never blocks the rows behind it; ``recovery inbox retry`` replays it.
A store error that will pass (a lock wait cut short, a deadlock, a busy database, a lost
connection) is no fault of the row: the whole batch rolls back, every row of it stays
unprocessed, and the error goes to the caller, which retries. The unique constraints on cases
and successes decide races between runners.

Most rows of a batch open a case for a payment nothing else in the batch or the store knows
(or remember a success with no case to close): those are applied together, a few statements
for the whole batch, after one read of what the store already holds for their payments. Every
other row (a payment with a case or a success on record, several rows about one payment, a
PayPal success, a card update) takes the row-by-row path, in the batch's order. A bulk
statement that fails sends its rows down the row-by-row path too, so a bad row is still only
that row's problem.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from recovery.domain.events import CaseEvent
from recovery.domain.models import (
    CardUpdated,
    ContactPoint,
    FailureCategory,
    Gateway,
    PaymentFailure,
    PaymentSucceeded,
)
from recovery.domain.taxonomy import FailureCodes, categorize
from recovery.log_scrubbing import scrub
from recovery.services.watching import WATCH_POLL_SECONDS, watch_store
from recovery.store import inbox
from recovery.store.cases import (
    EPISODE_SEPARATOR,
    ApplyResult,
    NewFailure,
    apply_card_update,
    apply_failure,
    apply_success,
    open_cases,
    remember_successes,
    success_key,
)
from recovery.store.db import transaction
from recovery.store.errors import is_transient_store_error
from recovery.store.tables import CaseRow, PaymentSuccessRow

log = logging.getLogger("recovery.services.intake")

# customer id -> (contact, raw phone when invalid, problem) or None when the customer has no phone
CustomerLookup = Callable[[str], "tuple[ContactPoint, str | None, str | None] | None"]


@dataclass
class IngestSummary:
    rows: int = 0
    batches: int = 0
    results: Counter[str] = field(default_factory=Counter)
    case_ids: set[int] = field(default_factory=set)
    # the business events of the transitions applied (no personal data)
    events: list[CaseEvent] = field(default_factory=list)

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
    with transaction(sessions) as session:
        rows = inbox.next_unprocessed(session=session, limit=limit)
        return _apply_rows(session, [_prepare(row, codes, lookup) for row in rows], codes, now)


def apply_recorded(
    *,
    session: Session,
    recorded: Sequence[tuple[inbox.Pending, Event]],
    codes: FailureCodes,
    now: datetime,
    lookup: CustomerLookup | None = None,
) -> IngestSummary:
    """Apply inbox rows just recorded in this session's transaction, whose events the caller
    holds already (backfill): as ``ingest_batch`` applies rows, without reading them back."""
    prepared = [_prepare(row, codes, lookup, event) for row, event in recorded]
    return _apply_rows(session, prepared, codes, now)


def _apply_rows(
    session: Session, prepared: list[_Prepared], codes: FailureCodes, now: datetime
) -> IngestSummary:
    summary = IngestSummary(batches=1)
    done = _apply_together(session, prepared, codes, now)
    marks: list[tuple[int, str, str | None]] = []
    for item in prepared:
        row = item.row
        summary.rows += 1
        result = done.get(row.id)
        if result is None and item.error is None:
            try:
                with session.begin_nested():
                    result = _apply(session, item, codes, now)
            except Exception as exc:  # one bad row must not block the rest
                if is_transient_store_error(exc):
                    log.warning(
                        "inbox row %s (%s): the store failed (%s); the batch rolls back and "
                        "its rows wait for a retry",
                        row.id,
                        row.event_type,
                        type(exc).__name__,
                    )
                    raise
                item.error = exc
        if result is None:
            message = scrub(f"{type(item.error).__name__}: {item.error}")[:1000]
            log.warning("inbox row %s (%s) failed: %s", row.id, row.event_type, message)
            marks.append((row.id, "error", message))
            summary.results["error"] += 1
            continue
        marks.append(
            (row.id, result.action, None if result.action != "ignored" else result.reason[:1000])
        )
        summary.results[result.action] += 1
        if result.case_id is not None:
            summary.case_ids.add(result.case_id)
        summary.events.extend(result.events)
    inbox.mark_processed_many(session=session, marks=marks, now=now)
    return summary


Event = PaymentFailure | PaymentSucceeded | CardUpdated


@dataclass
class _Prepared:
    """An inbox row read back: its event, and for a failure its category (or why not)."""

    row: inbox.Pending
    event: Event | None = None
    category: FailureCategory | None = None
    reason: str = ""
    error: Exception | None = None


def _prepare(
    row: inbox.Pending,
    codes: FailureCodes,
    lookup: CustomerLookup | None,
    event: Event | None = None,
) -> _Prepared:
    item = _Prepared(row)
    try:
        item.event = event if event is not None else _event(row)
        if isinstance(item.event, PaymentFailure):
            failure = _complete(item.event, lookup)
            item.event = failure
            item.category, item.reason = categorize(
                gateway=failure.gateway,
                failure_code=failure.failure_code,
                decline_code=failure.decline_code,
                advice_code=failure.advice_code,
                codes=codes,
            )
    except Exception as exc:  # recorded on the row; the rest of the batch goes on
        item.error = exc
    return item


def _event(row: inbox.Pending) -> Event | None:
    """The row's event, or None for a kind that is not acted on."""
    try:
        if row.kind == "failure":
            return PaymentFailure.model_validate(row.payload)
        if row.kind == "success":
            return PaymentSucceeded.model_validate(row.payload)
        if row.kind == "card_updated":
            return CardUpdated.model_validate(row.payload)
    except ValidationError as exc:
        raise ValueError(f"stored payload no longer valid: {exc.error_count()} errors") from None
    return None


def _complete(failure: PaymentFailure, lookup: CustomerLookup | None) -> PaymentFailure:
    """The failure with what ingest reads from the gateway: the invoice a Stripe payment pays,
    the customer's phone when the event has none."""
    if failure.invoice_unknown and failure.gateway is Gateway.stripe:
        failure = _with_invoice_key(failure, lookup)
    needs_lookup = failure.contact.phone_e164 is None and not failure.phone_problem
    # Only Stripe customers can be looked up (the lookup reads Stripe's Customer object).
    if needs_lookup and failure.customer_ref and failure.gateway is Gateway.stripe:
        failure = _with_customer_contact(failure, lookup)
    return failure


def _apply(session: Session, item: _Prepared, codes: FailureCodes, now: datetime) -> ApplyResult:
    """One row, on its own (the row-by-row path)."""
    event = item.event
    if isinstance(event, PaymentFailure):
        assert item.category is not None
        return apply_failure(
            session=session,
            failure=event,
            category=item.category,
            category_reason=item.reason,
            now=now,
            soft_declines=codes.declines.soft,
        )
    if isinstance(event, PaymentSucceeded):
        return apply_success(session=session, success=event, now=now)
    if isinstance(event, CardUpdated):
        return apply_card_update(session=session, update_=event, now=now)
    return ApplyResult("ignored", None, f"inbox row kind {item.row.kind!r}")


def _payment(event: PaymentFailure | PaymentSucceeded) -> tuple[str, str]:
    """The payment a failure or success is about, as its success is recorded."""
    return event.gateway.value, success_key(event.gateway, event.business_key)


def _apply_together(
    session: Session, items: list[_Prepared], codes: FailureCodes, now: datetime
) -> dict[int, ApplyResult]:
    """Apply together the rows that cannot meet anything else (module docstring): results by
    inbox row id; the other rows are left to the row-by-row path."""
    events = [i.event for i in items if i.error is None]
    if any(isinstance(e, CardUpdated) for e in events):
        return {}  # a card update reaches cases by customer: keep the batch's order
    payments = Counter(
        _payment(e) for e in events if isinstance(e, PaymentFailure | PaymentSucceeded)
    )
    keys = sorted(
        {key for _, key in payments}
        | {e.business_key for e in events if isinstance(e, PaymentFailure)}
    )
    cases: set[tuple[str, str]] = set()
    successes: set[tuple[str, str]] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        cases.update(
            session.execute(
                select(CaseRow.gateway, CaseRow.business_key).where(CaseRow.business_key.in_(chunk))
            ).tuples()
        )
        successes.update(
            session.execute(
                select(PaymentSuccessRow.gateway, PaymentSuccessRow.business_key).where(
                    PaymentSuccessRow.business_key.in_(chunk)
                )
            ).tuples()
        )
    new_failures: list[tuple[int, NewFailure]] = []
    new_successes: list[tuple[int, PaymentSucceeded]] = []
    for item in items:
        event = item.event
        if item.error is not None or not isinstance(event, PaymentFailure | PaymentSucceeded):
            continue
        payment = _payment(event)
        own = (event.gateway.value, event.business_key)
        if payments[payment] != 1 or payment in successes or own in cases:
            continue
        if isinstance(event, PaymentFailure):
            assert item.category is not None
            new_failures.append((item.row.id, NewFailure(event, item.category, item.reason)))
        elif event.gateway.value not in EPISODE_SEPARATOR:
            new_successes.append((item.row.id, event))
    if not new_failures and not new_successes:
        return {}
    try:
        with session.begin_nested():
            opened = open_cases(
                session=session,
                items=[f for _, f in new_failures],
                now=now,
                soft_declines=codes.declines.soft,
            )
            remembered = remember_successes(
                session=session, successes=[s for _, s in new_successes]
            )
    except SQLAlchemyError as exc:
        if is_transient_store_error(exc):
            raise  # the batch rolls back; its rows wait for the retry
        log.warning("%d rows applied one by one: %s", len(items), type(exc).__name__)
        return {}
    done = {new_failures[index][0]: result for index, result in opened.items()}
    done.update({new_successes[index][0]: result for index, result in remembered.items()})
    return done


def wait_for_inbox(
    *,
    sessions: sessionmaker[Session],
    deadline: float,
    poll_seconds: float = WATCH_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    held: bool = False,
) -> bool:
    """Watch the inbox (one count a look) until a row waits to be applied, or until the
    ``monotonic`` instant ``deadline``: whether one does. ``held``: the rows waiting now are
    another run's (a batch just found none it could take, PostgreSQL skipping the rows that
    run holds), so they do not count until the inbox changes (a row arrives or is applied);
    the run does not apply batch after empty batch while the other works."""
    seen: list[tuple[int, int]] = []

    def look(session: Session) -> bool:
        mark = inbox.unprocessed_mark(session=session)
        if held and not seen:
            seen.append(mark)
            return False
        return mark[0] > 0 and (not held or mark != seen[0])

    return watch_store(
        look,
        sessions=sessions,
        deadline=deadline,
        poll_seconds=poll_seconds,
        sleep=sleep,
        monotonic=monotonic,
    )


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

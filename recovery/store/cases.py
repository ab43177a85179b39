"""Recovery cases and their append-only history."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from recovery.domain import events as case_events
from recovery.domain.compliance.holds import Hold, holds_data
from recovery.domain.events import CaseEvent
from recovery.domain.models import (
    CardUpdated,
    CaseStatus,
    CaseView,
    ContactPoint,
    Disposition,
    FailureCategory,
    Gateway,
    HistoryEntry,
    HistoryKind,
    Outcome,
    PaymentFailure,
    PaymentSucceeded,
)
from recovery.store.tables import CaseRow, HistoryRow, PaymentSuccessRow, table_of
from recovery.store.upsert import insert_ignore


@dataclass(frozen=True)
class ApplyResult:
    """What applying one event did: ``opened``, ``updated``, ``closed`` or ``ignored``."""

    action: str
    case_id: int | None
    reason: str
    key: str | None = None
    # The business events of the transitions it made (one each).
    events: tuple[CaseEvent, ...] = ()


NO_OPEN_CASE = "no open case for this payment (a success is remembered)"


def case_key(gateway: str, business_key: str) -> str:
    return f"{gateway}:{business_key}"


# A PayPal failure is keyed "<subscription>@<episode start>" (one case per unpaid period), while
# its success names only the subscription: a success closes every open episode before it.
EPISODE_SEPARATOR = {Gateway.paypal.value: "@"}


def success_key(gateway: str, business_key: str) -> str:
    """The key under which a success for this failure's payment is recorded."""
    separator = EPISODE_SEPARATOR.get(str(gateway))
    return business_key.split(separator, 1)[0] if separator else business_key


def append_history(
    *,
    session: Session,
    case_id: int,
    at: datetime,
    now: datetime,
    kind: HistoryKind,
    status: CaseStatus | None = None,
    disposition: Disposition | None = None,
    reasons: Iterable[str] = (),
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        HistoryRow(
            **history_values(
                case_id=case_id,
                at=at,
                now=now,
                kind=kind,
                status=status,
                disposition=disposition,
                reasons=reasons,
                data=data,
            )
        )
    )


def history_values(
    *,
    case_id: int,
    at: datetime,
    now: datetime,
    kind: HistoryKind,
    status: CaseStatus | None = None,
    disposition: Disposition | None = None,
    reasons: Iterable[str] = (),
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The row ``append_history`` adds, as values for ``append_histories``."""
    return {
        "case_id": case_id,
        "at": at,
        "recorded_at": now,
        "kind": kind.value,
        "status": status.value if status else None,
        "disposition": disposition.value if disposition else None,
        "reasons": list(reasons),
        "data": data or {},
    }


def append_histories(*, session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Append many history entries (``history_values``) in one multi-row insert, in order."""
    if rows:
        session.execute(insert(table_of(HistoryRow)), list(rows))


def _initial_status(failure: PaymentFailure) -> tuple[CaseStatus, Outcome | None, str]:
    if failure.phone_problem:
        return CaseStatus.closed, Outcome.unreachable, failure.phone_problem
    if not failure.contact.phone_e164:
        return CaseStatus.needs_contact_info, None, "no phone number on the event or customer"
    return CaseStatus.open, None, "payment failed; due for a decision"


def apply_failure(
    *,
    session: Session,
    failure: PaymentFailure,
    category: FailureCategory,
    category_reason: str,
    now: datetime,
    soft_declines: frozenset[FailureCategory] | None = None,
) -> ApplyResult:
    """Open the case for this payment, or update the one that exists (never a second one).

    ``soft_declines``: the taxonomy's soft-decline categories; the history then records
    whether the case's category is one (the state machine waits for a gateway's retry only
    for those)."""
    success = session.scalar(
        select(PaymentSuccessRow).where(
            PaymentSuccessRow.gateway == failure.gateway.value,
            PaymentSuccessRow.business_key == success_key(failure.gateway, failure.business_key),
        )
    )
    if success is not None and success.occurred_at >= failure.occurred_at:
        return ApplyResult(
            "ignored",
            None,
            f"payment already succeeded at {success.occurred_at.isoformat()} "
            f"({success.event_id}); this failure is older",
        )
    case_id = insert_ignore(
        session,
        CaseRow.__table__,  # type: ignore[arg-type]
        _case_values(failure, category, now),
        conflict=("gateway", "business_key"),
    )
    if case_id is not None:
        for entry in _opening_history(
            case_id, failure, category, category_reason, now, soft_declines
        ):
            session.add(HistoryRow(**entry))
        return _opened(failure, case_id, category)
    return _update_existing(session, failure, category, category_reason, now, soft_declines)


@dataclass(frozen=True)
class NewFailure:
    """A failure ``open_cases`` may open: its category, and why (see ``apply_failure``)."""

    failure: PaymentFailure
    category: FailureCategory
    category_reason: str


def open_cases(
    *,
    session: Session,
    items: Sequence[NewFailure],
    now: datetime,
    soft_declines: frozenset[FailureCategory] | None = None,
) -> dict[int, ApplyResult]:
    """Open the cases of failures known, in this transaction, to have no case and no recorded
    success, in two statements (``apply_failure`` takes four or more per failure): results by
    the index of the item. Items must name distinct payments.

    A plain INSERT, so that SQLAlchemy compiles it once: on SQLite the transaction holds the
    write lock from its first statement, so nothing can have opened one of these cases since
    the caller looked; on PostgreSQL a concurrent runner may have, and the unique constraint
    then fails the statement (``IntegrityError``): run it in a savepoint and apply the items
    one by one with ``apply_failure`` instead."""
    if not items:
        return {}
    # Core statements on the tables: executemany in a few multi-row INSERTs (the ORM's bulk
    # insert with RETURNING sends one statement a row).
    table = table_of(CaseRow)
    returned = session.execute(
        insert(table).returning(table.c.id, table.c.gateway, table.c.business_key),
        [_case_values(item.failure, item.category, now) for item in items],
    ).all()
    opened = {(gateway, key): int(case_id) for case_id, gateway, key in returned}
    results: dict[int, ApplyResult] = {}
    history: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        failure = item.failure
        case_id = opened[(failure.gateway.value, failure.business_key)]
        history.extend(
            _opening_history(
                case_id, failure, item.category, item.category_reason, now, soft_declines
            )
        )
        results[index] = _opened(failure, case_id, item.category)
    session.execute(insert(table_of(HistoryRow)), history)
    return results


def remember_successes(
    *, session: Session, successes: Sequence[PaymentSucceeded]
) -> dict[int, ApplyResult]:
    """Record successes known, in this transaction, to have no earlier success on record and
    no case to close, in one statement: results by index (``ignored``: nothing to close; the
    success is remembered). Successes must name distinct payments. A plain INSERT, as in
    ``open_cases`` (and with the same ``IntegrityError`` on a PostgreSQL race)."""
    if not successes:
        return {}
    session.execute(
        insert(table_of(PaymentSuccessRow)),
        [
            {
                "gateway": success.gateway.value,
                "business_key": success.business_key,
                "event_id": success.event_id,
                "occurred_at": success.occurred_at,
                "amount": success.amount,
                "currency": success.currency,
            }
            for success in successes
        ],
    )
    return {index: ApplyResult("ignored", None, NO_OPEN_CASE) for index in range(len(successes))}


def _case_values(
    failure: PaymentFailure, category: FailureCategory, now: datetime
) -> dict[str, Any]:
    status, outcome, reason = _initial_status(failure)
    contact = failure.contact
    return {
        "gateway": failure.gateway.value,
        "business_key": failure.business_key,
        "customer_ref": failure.customer_ref,
        "customer_name": failure.customer_name,
        "phone_e164": contact.phone_e164,
        "country": contact.country,
        "state": contact.state,
        "postal_code": contact.postal_code,
        "explicit_tz": contact.explicit_tz,
        "category": category.value,
        "failure_code": failure.failure_code,
        "decline_code": failure.decline_code,
        "advice_code": failure.advice_code,
        "amount": failure.amount,
        "currency": failure.currency,
        "attempt_count": failure.attempt_count,
        "missing_fields": {"fields": list(failure.missing_fields)},
        "failed_at": failure.occurred_at,
        "opened_at": now,
        "updated_at": now,
        "last_event_id": failure.event_id,
        "status": status.value,
        "outcome": outcome.value if outcome else None,
        "status_reason": reason,
        "closed_at": now if status is CaseStatus.closed else None,
        "next_due_at": now if status is CaseStatus.open else None,
        "contacts_made": 0,
        "flagged_for_review": False,
    }


def _opening_history(
    case_id: int,
    failure: PaymentFailure,
    category: FailureCategory,
    category_reason: str,
    now: datetime,
    soft_declines: frozenset[FailureCategory] | None,
) -> list[dict[str, Any]]:
    """The history rows of a case just opened: the failure, and its close when the phone is
    unusable."""
    status, outcome, reason = _initial_status(failure)
    reasons = [reason, f"category {category.value}: {category_reason}"]
    if failure.missing_fields:
        reasons.append("missing fields: " + ", ".join(failure.missing_fields))
    rows = [
        _history_values(
            case_id,
            at=failure.occurred_at,
            now=now,
            kind=HistoryKind.failure_recorded,
            status=status,
            reasons=reasons,
            data=_failure_data(failure, category, soft_declines),
        )
    ]
    if outcome is not None:
        rows.append(
            _history_values(
                case_id,
                at=now,
                now=now,
                kind=HistoryKind.closed,
                status=status,
                reasons=[reason],
                data={"outcome": outcome.value},
            )
        )
    return rows


def _history_values(
    case_id: int,
    *,
    at: datetime,
    now: datetime,
    kind: HistoryKind,
    status: CaseStatus | None,
    reasons: list[str],
    data: dict[str, Any],
) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "at": at,
        "recorded_at": now,
        "kind": kind.value,
        "status": status.value if status else None,
        "disposition": None,
        "reasons": reasons,
        "data": data,
    }


def _opened(failure: PaymentFailure, case_id: int, category: FailureCategory) -> ApplyResult:
    status, outcome, reason = _initial_status(failure)
    key = case_key(failure.gateway, failure.business_key)
    events = [case_events.opened(key, category=category.value, status=status.value)]
    if outcome is not None:
        events.append(case_events.closed(key, category=category.value, outcome=outcome.value))
    return ApplyResult("opened", case_id, reason, key, tuple(events))


def _update_existing(
    session: Session,
    failure: PaymentFailure,
    category: FailureCategory,
    category_reason: str,
    now: datetime,
    soft_declines: frozenset[FailureCategory] | None,
) -> ApplyResult:
    stmt = select(CaseRow).where(
        CaseRow.gateway == failure.gateway.value, CaseRow.business_key == failure.business_key
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    case = session.scalars(stmt).one()
    reopen = (
        case.status == CaseStatus.closed.value
        and case.outcome == Outcome.unreachable.value
        and case.contacts_made == 0
        and failure.contact.phone_e164 is not None
    )
    if case.status == CaseStatus.closed.value and not reopen:
        return ApplyResult("ignored", case.id, f"case already closed ({case.outcome})")
    changed: list[str] = []
    more_specific = category is not FailureCategory.unknown and category.value != case.category
    if more_specific:
        case.category = category.value
        changed.append(f"category {category.value}: {category_reason}")
    for field in ("failure_code", "decline_code", "advice_code"):
        value = getattr(failure, field)
        if value and value != getattr(case, field):
            setattr(case, field, value)
            changed.append(f"{field} {value}")
    if failure.amount is not None and case.amount is None:
        case.amount, case.currency = failure.amount, failure.currency or case.currency
        changed.append("amount now known")
    changed.extend(_retry_changes(session, case.id, failure))
    if failure.attempt_count is not None:
        case.attempt_count = max(case.attempt_count or 0, failure.attempt_count)
    if failure.customer_ref and not case.customer_ref:
        case.customer_ref = failure.customer_ref
    if failure.contact.phone_e164 and (
        case.status == CaseStatus.needs_contact_info.value or reopen
    ):
        contact = failure.contact
        case.phone_e164, case.country = contact.phone_e164, contact.country
        case.state, case.postal_code = contact.state, contact.postal_code
        case.explicit_tz = contact.explicit_tz or case.explicit_tz
        case.status, case.outcome, case.closed_at = CaseStatus.open.value, None, None
        case.status_reason = "contact details now known; due for a decision"
        case.next_due_at = now
        changed.append("contact details now known")
    elif case.status != CaseStatus.needs_contact_info.value and changed:
        case.next_due_at = now if case.next_due_at is None else min(case.next_due_at, now)
    case.last_event_id = failure.event_id
    case.updated_at = now
    append_history(
        session=session,
        case_id=case.id,
        at=failure.occurred_at,
        now=now,
        kind=HistoryKind.failure_updated,
        status=CaseStatus(case.status),
        reasons=changed or [f"another event about the same payment ({failure.event_type})"],
        data=_failure_data(failure, FailureCategory(case.category), soft_declines),
    )
    return ApplyResult(
        "updated",
        case.id,
        "; ".join(changed) or "no new facts",
        case_key(case.gateway, case.business_key),
    )


_FAILURE_KINDS = (HistoryKind.failure_recorded.value, HistoryKind.failure_updated.value)


def _retry_changes(session: Session, case_id: int, failure: PaymentFailure) -> list[str]:
    """What a further failure event says about the gateway's own retries, compared with the
    latest failure on record: a failure after it (a retry that failed), or a different next
    retry. Either makes the case due, so the state machine decides again."""
    latest = session.execute(
        select(HistoryRow.at, HistoryRow.data)
        .where(HistoryRow.case_id == case_id, HistoryRow.kind.in_(_FAILURE_KINDS))
        .order_by(HistoryRow.at.desc(), HistoryRow.id.desc())
        .limit(1)
    ).first()
    if latest is None:
        return []
    at, data = latest
    changes: list[str] = []
    if failure.occurred_at > at:
        changes.append(f"failed again at {failure.occurred_at.isoformat()}")
    before = (data or {}).get("next_retry_at")
    after = failure.next_retry_at.isoformat() if failure.next_retry_at is not None else None
    # An older event delivered late says nothing new about the retries.
    if after != before and failure.occurred_at >= at:
        changes.append(
            f"the gateway's next retry at {after}" if after else "the gateway retries no more"
        )
    return changes


def _failure_data(
    failure: PaymentFailure,
    category: FailureCategory,
    soft_declines: frozenset[FailureCategory] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "event_id": failure.event_id,
        "event_type": failure.event_type,
        "category": category.value,
        "failure_code": failure.failure_code,
        "decline_code": failure.decline_code,
        "advice_code": failure.advice_code,
        "amount": str(failure.amount) if failure.amount is not None else None,
        "currency": failure.currency,
        # Read by the state machine (retry-aware first contact) and the dispatch (the link).
        "next_retry_at": (
            failure.next_retry_at.isoformat() if failure.next_retry_at is not None else None
        ),
        "payment_link": failure.payment_link,
    }
    if soft_declines is not None:
        data["decline"] = "soft" if category in soft_declines else "hard"
    return data


@dataclass(frozen=True)
class FailureFacts:
    """What the failure events on record say for the contact centre: when the gateway last
    tried to take the payment, and the payment link of the latest event that had one."""

    last_attempt_at: datetime | None
    payment_link: str | None


def failure_facts(entries: Iterable[HistoryEntry]) -> FailureFacts:
    """Read from a case's history (the ``_failure_data`` of each failure event)."""
    last_at: datetime | None = None
    link: tuple[datetime, str] | None = None
    for entry in entries:
        if entry.kind not in (HistoryKind.failure_recorded, HistoryKind.failure_updated):
            continue
        if last_at is None or entry.at > last_at:
            last_at = entry.at
        found = entry.data.get("payment_link")
        if isinstance(found, str) and found and (link is None or entry.at >= link[0]):
            link = (entry.at, found)
    return FailureFacts(last_at, link[1] if link else None)


def apply_card_update(*, session: Session, update_: CardUpdated, now: datetime) -> ApplyResult:
    """The card network updated a customer's card: a note on every open case of that customer
    at this gateway, each made due so the state machine pauses it until the gateway's next
    retry (which uses the new card)."""
    stmt = select(CaseRow).where(
        CaseRow.gateway == update_.gateway.value,
        CaseRow.customer_ref == update_.customer_ref,
        CaseRow.status != CaseStatus.closed.value,
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    cases = list(session.scalars(stmt.order_by(CaseRow.id)))
    if not cases:
        return ApplyResult("ignored", None, "no open case of this customer")
    for case in cases:
        if case.status != CaseStatus.needs_contact_info.value:
            case.next_due_at = now if case.next_due_at is None else min(case.next_due_at, now)
        case.updated_at = now
        append_history(
            session=session,
            case_id=case.id,
            at=update_.occurred_at,
            now=now,
            kind=HistoryKind.card_updated,
            status=CaseStatus(case.status),
            reasons=[f"the card network updated the customer's card ({update_.event_type})"],
            data={"event_id": update_.event_id, "event_type": update_.event_type},
        )
    last = cases[-1]
    return ApplyResult(
        "updated",
        last.id,
        f"card updated: {len(cases)} open case(s) of the customer",
        case_key(last.gateway, last.business_key),
    )


def apply_success(*, session: Session, success: PaymentSucceeded, now: datetime) -> ApplyResult:
    """Record the success; close the payment's case as recovered if one is open."""
    inserted = insert_ignore(
        session,
        PaymentSuccessRow.__table__,  # type: ignore[arg-type]
        {
            "gateway": success.gateway.value,
            "business_key": success.business_key,
            "event_id": success.event_id,
            "occurred_at": success.occurred_at,
            "amount": success.amount,
            "currency": success.currency,
        },
        conflict=("gateway", "business_key"),
    )
    if inserted is None:
        session.execute(
            update(PaymentSuccessRow)
            .where(
                PaymentSuccessRow.gateway == success.gateway.value,
                PaymentSuccessRow.business_key == success.business_key,
                PaymentSuccessRow.occurred_at < success.occurred_at,
            )
            .values(occurred_at=success.occurred_at, event_id=success.event_id)
        )
    matches = CaseRow.business_key == success.business_key
    separator = EPISODE_SEPARATOR.get(success.gateway.value)
    if separator:
        # A prefix compared as text, not a LIKE pattern: a key holding ``%`` or ``_`` is sent
        # by whoever signs the event, and SQLite's LIKE also ignores case.
        episodes = f"{success.business_key}{separator}"
        prefix = func.substr(CaseRow.business_key, 1, len(episodes))
        matches = or_(matches, and_(prefix == episodes, CaseRow.failed_at <= success.occurred_at))
    stmt = select(CaseRow).where(CaseRow.gateway == success.gateway.value, matches)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    cases = [
        c
        for c in session.scalars(stmt.order_by(CaseRow.id))
        if not (c.status == CaseStatus.closed.value and c.outcome == Outcome.recovered.value)
    ]
    if not cases:
        return ApplyResult("ignored", None, NO_OPEN_CASE)
    for case in cases:
        close_case(
            session=session,
            case=case,
            outcome=Outcome.recovered,
            at=success.occurred_at,
            now=now,
            reasons=[f"payment succeeded ({success.event_type}, {success.event_id})"],
            data={
                "event_id": success.event_id,
                "amount": str(success.amount) if success.amount is not None else None,
                "currency": success.currency,
            },
            kind=HistoryKind.payment_succeeded,
        )
    last = cases[-1]
    return ApplyResult(
        "closed",
        last.id,
        f"payment succeeded: {len(cases)} case(s) recovered",
        case_key(last.gateway, last.business_key),
        tuple(
            case_events.closed(
                case_key(c.gateway, c.business_key),
                category=c.category,
                outcome=Outcome.recovered.value,
            )
            for c in cases
        ),
    )


def close_case(
    *,
    session: Session,
    case: CaseRow,
    outcome: Outcome,
    at: datetime,
    now: datetime,
    reasons: Sequence[str],
    data: dict[str, Any] | None = None,
    kind: HistoryKind = HistoryKind.closed,
) -> CaseMoved:
    """Close a case with ``outcome``: released, never due again, the close in its history."""
    case.status = CaseStatus.closed.value
    case.outcome = outcome.value
    case.status_reason = "; ".join(reasons)
    case.closed_at = now
    case.next_due_at = None
    case.lease_owner = None
    case.lease_until = None
    case.updated_at = now
    append_history(
        session=session,
        case_id=case.id,
        at=at,
        now=now,
        kind=kind,
        status=CaseStatus.closed,
        reasons=reasons,
        data={"outcome": outcome.value, **(data or {})},
    )
    return _case_moved(
        case, case_events.closed(_key(case), category=case.category, outcome=outcome.value)
    )


@dataclass(frozen=True)
class CaseMoved:
    """What a case transition did: the case's status, outcome and next due time after it."""

    case_id: int
    status: str
    outcome: str | None
    next_due_at: datetime | None
    # The business events of the transition (one each; none when nothing changed).
    events: tuple[CaseEvent, ...] = ()


def _case_moved(case: CaseRow, *events: CaseEvent) -> CaseMoved:
    return CaseMoved(case.id, case.status, case.outcome, case.next_due_at, events)


def _key(case: CaseRow) -> str:
    return case_key(case.gateway, case.business_key)


def close_decided(
    *,
    session: Session,
    case: CaseRow,
    outcome: Outcome,
    reasons: Sequence[str],
    flag_review: bool,
    now: datetime,
) -> CaseMoved:
    """The state machine closed the case (``close_case``; a case already closed keeps its
    close), flagged for a person when the step says so, and released."""
    events: list[CaseEvent] = []
    if case.status != CaseStatus.closed.value:
        events.extend(
            close_case(
                session=session, case=case, outcome=outcome, at=now, now=now, reasons=reasons
            ).events
        )
    if flag_review and not case.flagged_for_review:
        case.flagged_for_review = True
        events.append(
            case_events.review_needed(_key(case), category=case.category, why=f"closed {outcome}")
        )
    case.lease_owner, case.lease_until = None, None
    return _case_moved(case, *events)


def record_decision(
    *,
    session: Session,
    case: CaseRow,
    action: str,
    status: CaseStatus,
    at: datetime,
    reasons: Sequence[str],
    now: datetime,
    holds: Sequence[Hold] = (),
    extra: dict[str, Any] | None = None,
) -> CaseMoved:
    """The state machine's wait or review: the case's status and reason, due again at ``at``,
    released (a review also flags it for a person), and the decision in its history, with the
    compliance ``holds`` behind it as ``data["holds"]`` and ``extra`` (a retry-aware wait's
    facts) beside them."""
    case.status = status.value
    case.status_reason = "; ".join(reasons)[:2000]
    case.next_due_at = at
    case.updated_at = now
    case.lease_owner, case.lease_until = None, None
    events: list[CaseEvent] = []
    if action == "review" and not case.flagged_for_review:
        case.flagged_for_review = True
        events.append(
            case_events.review_needed(_key(case), category=case.category, why=status.value)
        )
    elif action == "wait":
        events.append(
            case_events.waiting(
                _key(case),
                category=case.category,
                status=status.value,
                until=at,
                holds=holds_data(holds),
                waiting_for=(extra or {}).get("waiting_for"),
                retry_at=(extra or {}).get("retry_at"),
            )
        )
    append_history(
        session=session,
        case_id=case.id,
        at=now,
        now=now,
        kind=HistoryKind.decision,
        status=status,
        reasons=reasons,
        data={
            "action": action,
            "next_due_at": at.isoformat(),
            "holds": holds_data(holds),
            **(extra or {}),
        },
    )
    return _case_moved(case, *events)


def make_number_due(
    *, session: Session, phone_e164: str, except_case_id: int, now: datetime
) -> int:
    """Make every other open case on this number due now (its next decision finds the number
    suppressed and closes it; a worker holding one of them does the same); how many."""
    result = session.execute(
        update(CaseRow)
        .where(
            CaseRow.phone_e164 == phone_e164,
            CaseRow.id != except_case_id,
            CaseRow.status != CaseStatus.closed.value,
        )
        .values(next_due_at=now, updated_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def cases_by_id(*, session: Session, case_ids: Iterable[int]) -> dict[int, CaseRow]:
    return {
        case.id: case
        for case in session.scalars(select(CaseRow).where(CaseRow.id.in_(list(case_ids))))
    }


def case_values(*, session: Session, case_ids: Iterable[int]) -> dict[int, Any]:
    """Cases by id as rows of their columns (read-only, the attributes of a ``CaseRow``):
    cheaper than mapped rows for a check that reads many cases and changes few (load those
    with ``session.get``)."""
    table = table_of(CaseRow)
    return {
        row.id: row for row in session.execute(select(table).where(table.c.id.in_(list(case_ids))))
    }


def case_histories(
    *, session: Session, case_ids: Sequence[int]
) -> defaultdict[int, list[HistoryEntry]]:
    """Each case's history as plain entries, oldest first (an empty list for any other id).
    Read as columns, not mapped rows: every decision and every last check reads the histories
    of its whole chunk."""
    table = table_of(HistoryRow)
    found: defaultdict[int, list[HistoryEntry]] = defaultdict(list)
    for row in session.execute(
        select(
            table.c.case_id,
            table.c.at,
            table.c.kind,
            table.c.status,
            table.c.disposition,
            table.c.reasons,
            table.c.data,
        )
        .where(table.c.case_id.in_(list(case_ids)))
        .order_by(table.c.id)
    ):
        found[row.case_id].append(_entry(row))
    return found


def find_case(*, session: Session, key: str) -> CaseRow | None:
    """By ``gateway:business_key``, or by business key alone when it is unambiguous."""
    gateway, sep, business_key = key.partition(":")
    if sep and gateway in {g.value for g in Gateway}:
        return session.scalar(
            select(CaseRow).where(CaseRow.gateway == gateway, CaseRow.business_key == business_key)
        )
    rows = list(session.scalars(select(CaseRow).where(CaseRow.business_key == key).limit(2)))
    return rows[0] if len(rows) == 1 else None


def list_cases(
    *, session: Session, status: str | None = None, limit: int = 100, offset: int = 0
) -> list[CaseRow]:
    stmt = select(CaseRow).order_by(CaseRow.id).limit(limit).offset(offset)
    if status:
        if status in {o.value for o in Outcome}:
            stmt = stmt.where(CaseRow.outcome == status)
        else:
            stmt = stmt.where(CaseRow.status == status)
    return list(session.scalars(stmt))


def history_of(*, session: Session, case_id: int) -> list[HistoryRow]:
    return list(
        session.scalars(
            select(HistoryRow).where(HistoryRow.case_id == case_id).order_by(HistoryRow.id)
        )
    )


def to_view(case: CaseRow) -> CaseView:
    """What the state machine knows of a stored case. The store wrote it from valid values: it
    is built as it is, not validated again (every decision and every last check builds one)."""
    return CaseView.model_construct(
        key=case_key(case.gateway, case.business_key),
        gateway=Gateway(case.gateway),
        customer_ref=case.customer_ref,
        status=CaseStatus(case.status),
        outcome=Outcome(case.outcome) if case.outcome else None,
        category=FailureCategory(case.category),
        contact=ContactPoint.model_construct(
            phone_e164=case.phone_e164,
            country=case.country,
            state=case.state,
            postal_code=case.postal_code,
            explicit_tz=case.explicit_tz,
        ),
        failed_at=case.failed_at,
        opened_at=case.opened_at,
        amount=case.amount,
        currency=case.currency,
    )


def to_entries(rows: Iterable[HistoryRow]) -> list[HistoryEntry]:
    return [_entry(row) for row in rows]


def _entry(row: Any) -> HistoryEntry:
    """A stored history line (a ``HistoryRow`` or a row of its columns) as an entry. The store
    wrote it from a valid entry: it is built as it is, not validated again."""
    return HistoryEntry.model_construct(
        at=row.at,
        kind=HistoryKind(row.kind),
        status=CaseStatus(row.status) if row.status else None,
        disposition=Disposition(row.disposition) if row.disposition else None,
        reasons=tuple(row.reasons or ()),
        data=dict(row.data or {}),
    )

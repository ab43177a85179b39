"""The internal suppression list: numbers never to be called, shared by every worker.

A row suppresses a number for everyone (scope ``"*"``) or for one customer (scope = the
customer ref, e.g. a wrong number for that customer only). The unique constraint on
(phone, scope) decides concurrent adds; these functions flush but never commit, so they
join the caller's transaction.

Once a person's data is erased, the suppression of their number is kept under the number's
keyed fingerprint (``fp:...``) instead of the number, so the number stays blocked: lookups
match a number's fingerprint too (the store's sessions carry the fingerprint,
``recovery.store.db.fingerprint_of``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recovery.domain.fingerprint import Fingerprint
from recovery.domain.models import HistoryKind
from recovery.log_scrubbing import mask_phone
from recovery.store.cases import append_history
from recovery.store.db import fingerprint_of
from recovery.store.tables import SuppressionRow

ALL_CUSTOMERS = "*"
_E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")


def _check_phone(phone_e164: str) -> None:
    if not _E164_RE.match(phone_e164):
        raise ValueError("a suppression needs a phone number in E.164 form (+ and digits)")


def _check_aware(value: datetime | None, name: str) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")


def _active(now: datetime) -> ColumnElement[bool]:
    return or_(SuppressionRow.expires_at.is_(None), SuppressionRow.expires_at > now)


def add_suppression(
    *,
    session: Session,
    phone_e164: str,
    reason: str,
    source: str,
    now: datetime,
    scope: str = ALL_CUSTOMERS,
    expires_at: datetime | None = None,
) -> SuppressionRow:
    """Suppress a number (idempotent): afterwards an active row exists for (phone, scope).

    A second add of an active suppression changes nothing but its expiry, which only ever
    moves later (``None``, never expiring, is the latest). An add over an expired row
    revives it with the new reason and source.
    """
    _check_phone(phone_e164)
    _check_aware(now, "now")
    _check_aware(expires_at, "expires_at")
    values = {
        "phone_e164": phone_e164,
        "scope": scope,
        "reason": reason,
        "source": source,
        "created_at": now,
        "expires_at": expires_at,
    }
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        session.execute(
            insert(SuppressionRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["phone_e164", "scope"])
        )
    else:
        try:
            with session.begin_nested():
                session.add(SuppressionRow(**values))
        except IntegrityError:
            pass
    row = session.scalars(
        select(SuppressionRow)
        .where(SuppressionRow.phone_e164 == phone_e164, SuppressionRow.scope == scope)
        .execution_options(populate_existing=True)
    ).one()
    if row.expires_at is not None and row.expires_at <= now:
        row.reason, row.source, row.created_at, row.expires_at = reason, source, now, expires_at
    elif row.expires_at is not None and (expires_at is None or expires_at > row.expires_at):
        row.expires_at = expires_at
    session.flush()
    return row


def remove_suppression(*, session: Session, phone_e164: str, scope: str = ALL_CUSTOMERS) -> bool:
    """Lift a suppression; True when there was one to lift."""
    result = session.execute(
        delete(SuppressionRow).where(
            SuppressionRow.phone_e164 == phone_e164, SuppressionRow.scope == scope
        )
    )
    return bool(getattr(result, "rowcount", 0))


def list_suppressions(*, session: Session, now: datetime | None = None) -> list[SuppressionRow]:
    """Every suppression, oldest first; only the active ones when ``now`` is given."""
    query = select(SuppressionRow).order_by(SuppressionRow.created_at, SuppressionRow.id)
    if now is not None:
        _check_aware(now, "now")
        query = query.where(_active(now))
    return list(session.scalars(query))


def find_suppression(
    *,
    session: Session,
    phone_e164: str,
    customer_ref: str | None = None,
    now: datetime,
) -> SuppressionRow | None:
    """The active suppression that forbids calling this number (for this customer), if any,
    whether it names the number or, once erased, its fingerprint.

    A suppression for everyone is preferred over a per-customer one; expired rows never
    count.
    """
    _check_aware(now, "now")
    rows = active_suppressions(session=session, phones=[phone_e164], now=now)
    return preferred_suppression(rows.get(phone_e164, []), customer_ref)


def active_suppressions(
    *, session: Session, phones: Iterable[str], now: datetime
) -> defaultdict[str, list[SuppressionRow]]:
    """The active suppressions of each number, under the number itself or its fingerprint (a
    forgotten customer's number stays blocked), oldest first; one read per 500 numbers."""
    fingerprint = fingerprint_of(session)
    wanted: dict[str, str] = {}
    for phone in set(phones):
        wanted[phone] = phone
        if fingerprint is not None:
            wanted[fingerprint(phone)] = phone
    found: defaultdict[str, list[SuppressionRow]] = defaultdict(list)
    names = sorted(wanted)
    for start in range(0, len(names), 500):
        for row in session.scalars(
            select(SuppressionRow)
            .where(SuppressionRow.phone_e164.in_(names[start : start + 500]), _active(now))
            .order_by(SuppressionRow.created_at, SuppressionRow.id)
        ):
            found[wanted[row.phone_e164]].append(row)
    return found


def erase_suppressions(
    *, session: Session, phone_e164: str, customer_ref: str | None, fingerprint: Fingerprint
) -> int:
    """Keep the suppressions of an erased number under its fingerprint; how many. One that
    named the erased customer now blocks the number for everyone (the customer's reference is
    erased too, and blocking more is the safe side)."""
    changed = 0
    target = fingerprint(phone_e164)
    for row in list(
        session.scalars(select(SuppressionRow).where(SuppressionRow.phone_e164 == phone_e164))
    ):
        scope = (
            ALL_CUSTOMERS if customer_ref is not None and row.scope == customer_ref else row.scope
        )
        taken = session.scalars(
            select(SuppressionRow).where(
                SuppressionRow.phone_e164 == target, SuppressionRow.scope == scope
            )
        ).first()
        if taken is not None:
            # Already kept under the fingerprint: the later expiry wins (None never expires).
            if taken.expires_at is not None and (
                row.expires_at is None or row.expires_at > taken.expires_at
            ):
                taken.expires_at = row.expires_at
            session.delete(row)
        else:
            row.phone_e164, row.scope = target, scope
        session.flush()
        changed += 1
    return changed


def preferred_suppression(
    rows: Sequence[SuppressionRow], customer_ref: str | None
) -> SuppressionRow | None:
    """Of a number's active suppressions, the one that forbids calling this customer: one for
    everyone first, else the customer's own; None when neither is there."""
    for row in rows:
        if row.scope == ALL_CUSTOMERS:
            return row
    for row in rows:
        if customer_ref is not None and row.scope == customer_ref:
            return row
    return None


def suppression_reason(
    found: Mapping[str, Sequence[SuppressionRow]], phone: str | None, customer_ref: str | None
) -> str | None:
    """Why this number may not be called for this customer, from ``active_suppressions``."""
    if not phone:
        return None
    row = preferred_suppression(found.get(phone, []), customer_ref)
    return row.reason if row is not None else None


def suppress_for_case(
    *,
    session: Session,
    case_id: int,
    phone_e164: str,
    reason: str,
    scope: str,
    now: datetime,
) -> SuppressionRow:
    """A disposition asked never to call this number again (for everyone, or for this case's
    customer): the suppression (``add_suppression``) and a note in the case's history."""
    row = add_suppression(
        session=session,
        phone_e164=phone_e164,
        reason=reason,
        source="disposition",
        now=now,
        scope=scope,
    )
    append_history(
        session=session,
        case_id=case_id,
        at=now,
        now=now,
        kind=HistoryKind.suppressed,
        reasons=[
            f"{mask_phone(phone_e164)} suppressed ({reason})"
            f" for {'every customer' if scope == ALL_CUSTOMERS else 'this customer'}"
        ],
        data={"reason": reason, "scope": "all" if scope == ALL_CUSTOMERS else "customer"},
    )
    return row

"""The webhook inbox: every verified delivery, PAN-free, unique on gateway + event id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recovery.store.tables import InboxRow, TransmissionRow
from recovery.store.upsert import insert_ignore

# The widths of the inbox's event_id and event_type columns, and of the case's business key.
EVENT_ID_CHARS = 255
EVENT_TYPE_CHARS = 128
BUSINESS_KEY_CHARS = 255


def storable_problem(event_id: str, event_type: str, business_key: str | None) -> str | None:
    """Why an event's identity cannot be stored as it is (a NUL, an unpaired surrogate, longer
    than its column), or None. Identities are never cut or rewritten: two events must not
    become one."""
    fields = [("id", event_id, EVENT_ID_CHARS), ("type", event_type, EVENT_TYPE_CHARS)]
    if business_key is not None:
        fields.append(("payment reference", business_key, BUSINESS_KEY_CHARS))
    for name, value, limit in fields:
        if len(value) > limit:
            return f"event {name} longer than {limit} characters"
        if "\x00" in value or _has_surrogate(value):
            return f"event {name} holds a NUL or an unpaired surrogate"
    return None


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class TransmissionReplayed(ValueError):
    """A transmission id already recorded with another body: a replay (refused with 400)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One verified, PAN-free delivery, ready to be recorded. ``transmission``: (id, SHA-256
    of the body) when the gateway's signature covers only a checksum of the body (PayPal)."""

    gateway: str
    event_id: str
    event_type: str
    kind: str
    payload: dict[str, Any]
    pan_redacted: bool
    received_at: datetime
    transmission: tuple[str, str] | None = None


def _row(delivery: Delivery) -> dict[str, Any]:
    settled = delivery.kind in ("ignored", "invalid")
    return {
        "gateway": delivery.gateway,
        "event_id": delivery.event_id[:255],
        "event_type": delivery.event_type[:128],
        "kind": delivery.kind,
        "payload": delivery.payload,
        "pan_redacted": delivery.pan_redacted,
        "received_at": delivery.received_at,
        "processed_at": delivery.received_at if settled else None,
        "result": "ignored" if settled else None,
    }


def insert_delivery(*, session: Session | Connection, delivery: Delivery) -> bool:
    """Insert one delivery in the session's transaction; False when it was already recorded
    (a redelivery, or the same event earlier in the same transaction). Raises
    ``TransmissionReplayed`` when its transmission id was recorded with another body."""
    if delivery.transmission is not None:
        remember_transmission(session=session, delivery=delivery)
    inserted = insert_ignore(
        session,
        InboxRow.__table__,  # type: ignore[arg-type]
        _row(delivery),
        conflict=("gateway", "event_id"),
    )
    return inserted is not None


def remember_transmission(*, session: Session | Connection, delivery: Delivery) -> None:
    """Record the delivery's transmission; a second one with the same id must carry the same
    body (a network retry of the same request), else it is a replay."""
    assert delivery.transmission is not None
    transmission_id, digest = delivery.transmission
    inserted = insert_ignore(
        session,
        TransmissionRow.__table__,  # type: ignore[arg-type]
        {
            "gateway": delivery.gateway,
            "transmission_id": transmission_id,
            "body_sha256": digest,
            "seen_at": delivery.received_at,
        },
        conflict=("gateway", "transmission_id"),
    )
    if inserted is not None:
        return
    known = session.execute(
        select(TransmissionRow.body_sha256).where(
            TransmissionRow.gateway == delivery.gateway,
            TransmissionRow.transmission_id == transmission_id,
        )
    ).scalar_one_or_none()
    if known is not None and known != digest:
        raise TransmissionReplayed("this transmission id was already used for another body")


def forget_transmissions(*, session: Session, before: datetime) -> int:
    """Delete transmissions seen before ``before`` (older ones fail the time check anyway)."""
    result = session.execute(delete(TransmissionRow).where(TransmissionRow.seen_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def insert_deliveries(*, session: Session, deliveries: list[Delivery]) -> list[int | None]:
    """Insert many deliveries in the session's transaction; for each, the new row's id, or
    None when it was recorded before (or earlier in the list).

    One read of the ids already recorded, then one plain INSERT of the new rows, which
    SQLAlchemy compiles once. On SQLite the transaction holds the write lock from that read on;
    on PostgreSQL a concurrent writer may record one of them in between, and the unique
    constraint fails the INSERT: then every delivery is inserted on its own, which tells new
    from recorded exactly."""
    keys = [(d.gateway, d.event_id[:255]) for d in deliveries]
    wanted = sorted({event_id for _, event_id in keys})
    seen: set[tuple[str, str]] = set()
    for start in range(0, len(wanted), 500):
        seen.update(
            session.execute(
                select(InboxRow.gateway, InboxRow.event_id).where(
                    InboxRow.event_id.in_(wanted[start : start + 500])
                )
            ).tuples()
        )
    new: list[bool] = []
    rows: list[dict[str, Any]] = []
    for delivery, key in zip(deliveries, keys, strict=True):
        new.append(key not in seen)
        if key not in seen:
            rows.append(_row(delivery))
        seen.add(key)
    if not rows:
        return [None] * len(deliveries)
    table = cast(Table, InboxRow.__table__)
    try:
        with session.begin_nested():
            # Core executemany on the table: a few multi-row INSERTs.
            returned = session.execute(
                insert(table).returning(table.c.id, table.c.gateway, table.c.event_id), rows
            ).all()
    except IntegrityError:
        return [_insert_one(session, d) for d in deliveries]
    ids = {(gateway, event_id): int(row_id) for row_id, gateway, event_id in returned}
    return [ids[key] if is_new else None for key, is_new in zip(keys, new, strict=True)]


def _insert_one(session: Session, delivery: Delivery) -> int | None:
    inserted = insert_ignore(
        session,
        InboxRow.__table__,  # type: ignore[arg-type]
        _row(delivery),
        conflict=("gateway", "event_id"),
    )
    return int(inserted) if inserted is not None else None


def record_delivery(
    *,
    session: Session,
    gateway: str,
    event_id: str,
    event_type: str,
    kind: str,
    payload: dict[str, Any],
    pan_redacted: bool,
    now: datetime,
) -> bool:
    """Record a delivery; False when this event was already recorded (a redelivery)."""
    return insert_delivery(
        session=session,
        delivery=Delivery(
            gateway=gateway,
            event_id=event_id,
            event_type=event_type,
            kind=kind,
            payload=payload,
            pan_redacted=pan_redacted,
            received_at=now,
        ),
    )


def recorded_events(*, session: Session, event_ids: Iterable[str]) -> set[tuple[str, str]]:
    """(gateway, event id) of the events among ``event_ids`` already in the inbox (one read
    per 500 ids)."""
    wanted = sorted(set(event_ids))
    found: set[tuple[str, str]] = set()
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(InboxRow.gateway, InboxRow.event_id).where(
                InboxRow.event_id.in_(wanted[start : start + 500])
            )
        )
        found.update((gateway, event_id) for gateway, event_id in rows)
    return found


class Pending(NamedTuple):
    """An unprocessed inbox row, as ingest reads it."""

    id: int
    gateway: str
    event_type: str
    kind: str
    payload: dict[str, Any]


def next_unprocessed(*, session: Session, limit: int) -> list[Pending]:
    """The oldest unprocessed rows; rows another runner holds are skipped on PostgreSQL. Read
    as plain rows (the rows are only read, then marked by id)."""
    stmt = (
        select(InboxRow.id, InboxRow.gateway, InboxRow.event_type, InboxRow.kind, InboxRow.payload)
        .where(InboxRow.processed_at.is_(None))
        .order_by(InboxRow.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return [Pending(*row) for row in session.execute(stmt)]


def mark_processed(
    *, session: Session, row_id: int, result: str, now: datetime, error: str | None = None
) -> None:
    session.execute(
        update(InboxRow)
        .where(InboxRow.id == row_id)
        .values(processed_at=now, result=result[:64], error=error)
        # The rows are not reread in this session: skipping the in-session synchronisation
        # keeps a batch linear (it re-examined every loaded object for each row).
        .execution_options(synchronize_session=False)
    )


def mark_processed_many(
    *, session: Session, marks: list[tuple[int, str, str | None]], now: datetime
) -> None:
    """``mark_processed`` for many rows in one statement: (row id, result, error) each."""
    if not marks:
        return
    table = cast(Table, InboxRow.__table__)
    # A Core executemany: the ORM's bulk update would also re-examine the loaded rows.
    session.execute(
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(processed_at=bindparam("at"), result=bindparam("res"), error=bindparam("err")),
        [
            {"row_id": row_id, "at": now, "res": result[:64], "err": error}
            for row_id, result, error in marks
        ],
    )


def unprocessed_mark(*, session: Session) -> tuple[int, int]:
    """How many rows wait and the newest one's id: it changes when a row arrives or is
    applied (one indexed read)."""
    from sqlalchemy import func

    count, newest = session.execute(
        select(func.count(), func.max(InboxRow.id)).where(InboxRow.processed_at.is_(None))
    ).one()
    return int(count or 0), int(newest or 0)


# A row that could never be applied: ingest marked it processed with this result.
PARKED = "error"


def parked_rows(*, session: Session, event_ids: Sequence[str] | None = None) -> list[InboxRow]:
    """Parked rows, oldest first; only those with one of ``event_ids`` when given."""
    stmt = select(InboxRow).where(InboxRow.result == PARKED).order_by(InboxRow.id)
    if event_ids is not None:
        stmt = stmt.where(InboxRow.event_id.in_(list(event_ids)))
    return list(session.scalars(stmt))


def rows_with_event_ids(*, session: Session, event_ids: Sequence[str]) -> list[InboxRow]:
    return list(
        session.scalars(
            select(InboxRow).where(InboxRow.event_id.in_(list(event_ids))).order_by(InboxRow.id)
        )
    )


def requeue(*, session: Session, row_ids: Sequence[int]) -> int:
    """Parked rows made unprocessed again, for the next ingest to apply; how many."""
    if not row_ids:
        return 0
    result = session.execute(
        update(InboxRow)
        .where(InboxRow.id.in_(list(row_ids)), InboxRow.result == PARKED)
        .values(processed_at=None, result=None, error=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def rows_by_id(*, session: Session, row_ids: Sequence[int]) -> list[InboxRow]:
    if not row_ids:
        return []
    return list(
        session.scalars(
            select(InboxRow).where(InboxRow.id.in_(list(row_ids))).order_by(InboxRow.id)
        )
    )

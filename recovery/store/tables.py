"""SQLAlchemy 2.0 tables of the store. Unique constraints, not read-then-write, decide races."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; always returns aware UTC (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused by the store: pass an aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), Decimal: Numeric(18, 4)}


# SQLite autoincrements INTEGER PRIMARY KEY only; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class InboxRow(Base):
    """A verified, PAN-free webhook delivery, recorded before it is acknowledged."""

    __tablename__ = "webhook_inbox"
    __table_args__ = (
        UniqueConstraint("gateway", "event_id", name="uq_webhook_inbox_gateway_event"),
        Index("ix_webhook_inbox_unprocessed", "processed_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    gateway: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # failure | success | ignored | invalid
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    pan_redacted: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)


class TransmissionRow(Base):
    """A verified transmission of a gateway that signs only a checksum of the body (PayPal's
    CRC32): its id and a digest of the body, so that the same id with another body is refused
    as a replay. Kept a day (the retention run deletes older rows)."""

    __tablename__ = "webhook_transmissions"
    __table_args__ = (
        UniqueConstraint("gateway", "transmission_id", name="uq_webhook_transmissions_id"),
        Index("ix_webhook_transmissions_seen", "seen_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    gateway: Mapped[str] = mapped_column(String(32))
    transmission_id: Mapped[str] = mapped_column(String(64))
    body_sha256: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime]


class CaseRow(Base):
    """One recovery case per failed payment (gateway + business key)."""

    __tablename__ = "recovery_cases"
    __table_args__ = (
        UniqueConstraint("gateway", "business_key", name="uq_recovery_cases_gateway_key"),
        Index("ix_recovery_cases_due", "next_due_at"),
        Index("ix_recovery_cases_phone", "phone_e164"),
        Index("ix_recovery_cases_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    gateway: Mapped[str] = mapped_column(String(32))
    business_key: Mapped[str] = mapped_column(String(255))
    customer_ref: Mapped[str | None] = mapped_column(String(255))
    customer_name: Mapped[str | None] = mapped_column(String(255))
    phone_e164: Mapped[str | None] = mapped_column(String(32))
    country: Mapped[str] = mapped_column(String(2), default="US")
    state: Mapped[str | None] = mapped_column(String(8))
    postal_code: Mapped[str | None] = mapped_column(String(16))
    explicit_tz: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(40))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    decline_code: Mapped[str | None] = mapped_column(String(64))
    advice_code: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[Decimal | None]
    currency: Mapped[str | None] = mapped_column(String(8))
    attempt_count: Mapped[int | None] = mapped_column(Integer)
    missing_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    failed_at: Mapped[datetime]
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_event_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(32))
    status_reason: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None]
    next_due_at: Mapped[datetime | None]
    contacts_made: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    flagged_for_review: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the case's personal data was erased (a person's request, or retention): its
    # personal fields are empty or keyed fingerprints from then on.
    erased_at: Mapped[datetime | None]


class HistoryRow(Base):
    """Append-only: every state change and decision of a case, with time and reasons."""

    __tablename__ = "case_history"
    __table_args__ = (Index("ix_case_history_case", "case_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("recovery_cases.id", ondelete="RESTRICT"))
    at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(32))
    disposition: Mapped[str | None] = mapped_column(String(32))
    reasons: Mapped[dict[str, Any]] = mapped_column(JSON, default=list)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PaymentSuccessRow(Base):
    """Latest known success per payment, so a late failure cannot reopen a paid case."""

    __tablename__ = "payment_successes"
    __table_args__ = (
        UniqueConstraint("gateway", "business_key", name="uq_payment_successes_gateway_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    gateway: Mapped[str] = mapped_column(String(32))
    business_key: Mapped[str] = mapped_column(String(255))
    event_id: Mapped[str] = mapped_column(String(255))
    occurred_at: Mapped[datetime]
    amount: Mapped[Decimal | None]
    currency: Mapped[str | None] = mapped_column(String(8))


class SuppressionRow(Base):
    """Numbers never to be called: do-not-call, consent revoked, wrong number (per customer)."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("phone_e164", "scope", name="uq_suppressions_phone_scope"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    phone_e164: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(255), default="*")  # "*" or a customer ref
    reason: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]


class ContactRow(Base):
    """One dial attempt handed to the contact centre; its id is deterministic."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("contact_id", name="uq_contacts_contact_id"),
        UniqueConstraint("case_id", "attempt", name="uq_contacts_case_attempt"),
        Index("ix_contacts_state", "state", "disposition_due_at"),
        Index("ix_contacts_uncallable", "uncallable_at", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("recovery_cases.id", ondelete="RESTRICT"))
    attempt: Mapped[int] = mapped_column(Integer)
    contact_id: Mapped[str] = mapped_column(String(64))
    contact_list_id: Mapped[str] = mapped_column(String(128))
    phone_e164: Mapped[str] = mapped_column(String(32))
    time_zone: Mapped[str] = mapped_column(String(64))
    planned_at: Mapped[datetime]
    requested_at: Mapped[datetime]
    created_at: Mapped[datetime | None]
    # requested | created | rejected | removed | dispositioned
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    disposition_due_at: Mapped[datetime | None]
    # When the contact centre was told never to dial this contact again on its own (its
    # outcome recorded, its case closed or parked); None while it may still be dialled.
    uncallable_at: Mapped[datetime | None]


class DispositionRow(Base):
    """A call outcome as received (push or poll); unique per contact and attempt."""

    __tablename__ = "dispositions"
    __table_args__ = (
        UniqueConstraint("contact_id", "attempt", name="uq_dispositions_contact_attempt"),
        Index("ix_dispositions_unapplied", "applied_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    contact_id: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("recovery_cases.id"))
    wrapup_code: Mapped[str] = mapped_column(String(128))
    disposition: Mapped[str] = mapped_column(String(32))
    right_party: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(16))  # push | poll
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    applied_at: Mapped[datetime | None]


class PrivacyAuditRow(Base):
    """One erasure: a person's request (``forget``) or a retention run. Names no personal data:
    the subject is a keyed fingerprint (or ``retention``)."""

    __tablename__ = "privacy_audit"
    __table_args__ = (Index("ix_privacy_audit_at", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(32))  # forget | retention
    subject: Mapped[str] = mapped_column(String(80))
    cases: Mapped[int] = mapped_column(Integer, default=0)
    contacts_removed: Mapped[int] = mapped_column(Integer, default=0)
    suppressions: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, for Core statements (bulk inserts and updates)."""
    return cast(Table, model.__table__)

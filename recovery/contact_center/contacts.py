"""What one dial attempt looks like on the wire: a Genesys ``WritableDialerContact``.

Everything sent is sanitised here (control characters stripped, lengths capped) and refused
outright when it looks like a card number, so nothing upstream can leak card data into the
contact centre by mistake.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from decimal import Decimal
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recovery.contact_center.errors import CardDataRefused
from recovery.domain.pan import contains_pan
from recovery.log_scrubbing import mask_phone, scrub

__all__ = [
    "CONTACT_COLUMNS",
    "ContactRequest",
    "contact_columns",
    "clean_text",
    "contact_id_for",
    "contains_card_number",
    "mask_phone",
    "redact",
]

# Fixed forever: changing it would give every existing case new contact ids (and duplicates).
CONTACT_ID_NAMESPACE = uuid.UUID("6d1f0f5e-2b7a-5c1e-9a43-2f0c8a6b7e15")

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_BARE_PHONE = re.compile(r"(?<![\w+-])\d{10,15}(?![\w-])")

FIELD_CAPS = {
    "case_key": 255,
    "transaction_id": 128,
    "failure_reason": 200,
    "next_retry_window": 100,
    "time_zone": 64,
    "last_attempt_date": 10,
    "payment_link": 1000,
    "disposition_code": 64,
}

# Every column of the campaign's contact list, in one place: what ``ContactRequest.data`` sends
# (all of them, always), what a contact list must be created with, and what the emulator's
# default list and ``genesys check/setup`` use. ``phone`` stands for the configured phone column
# (``RECOVERY_GENESYS_PHONE_COLUMN``; see ``contact_columns``).
#   transactionId, failureReason, amountOwed, currency, lastAttemptDate, pciTokenized: the
#   failed payment; attemptCount, nextRetryWindow, dispositionCode: the attempt and, on the
#   update after it, its outcome; paymentLink: a page where the customer can pay (never a card
#   field); timeZone: the zone the dialer's callable-time check uses.
CONTACT_COLUMNS: tuple[str, ...] = (
    "phone",
    "transactionId",
    "failureReason",
    "amountOwed",
    "currency",
    "attemptCount",
    "nextRetryWindow",
    "lastAttemptDate",
    "dispositionCode",
    "paymentLink",
    "pciSensitive",
    "pciTokenized",
    "timeZone",
)


def contact_columns(phone_column: str = "phone") -> tuple[str, ...]:
    """``CONTACT_COLUMNS`` with the phone column under its configured name."""
    return tuple(phone_column if c == "phone" else c for c in CONTACT_COLUMNS)


def contact_id_for(case_key: str, attempt: int) -> str:
    """The contact's id at the contact centre: the same case and attempt always give the same id,
    so a retried batch updates the contact instead of creating a second one."""
    return str(uuid.uuid5(CONTACT_ID_NAMESPACE, f"{case_key}#{attempt}"))


def contains_card_number(text: str) -> bool:
    """True when ``text`` holds 13-19 digits (spaces or dashes allowed) passing the Luhn check."""
    return contains_pan(text)


def redact(text: str) -> str:
    """Text from anywhere (a service's error message, say) made safe to log or store: card
    numbers removed, phone numbers (E.164, or bare runs of 10-15 digits) masked."""
    return _BARE_PHONE.sub(lambda m: mask_phone(m.group()), scrub(text))


def clean_text(value: str, *, cap: int) -> str:
    """Control characters (CR and LF included) removed, whitespace trimmed, length capped."""
    # Control and format characters, and the Unicode line and paragraph separators.
    cleaned = "".join(
        ch for ch in value if not unicodedata.category(ch).startswith(("C", "Zl", "Zp"))
    )
    return cleaned.strip()[:cap]


class ContactRequest(BaseModel):
    """One dial attempt for one case, ready to be written to a contact list."""

    # The input may hold a card number by mistake: never echo it in a validation error.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    case_key: str = Field(min_length=1)
    attempt: int = Field(ge=1, le=10_000)
    phone_e164: str
    transaction_id: str = ""
    failure_reason: str = ""
    amount: Decimal | None = Field(default=None, ge=0, le=Decimal("1e12"))
    currency: str = ""
    next_retry_window: str = ""
    time_zone: str
    last_attempt_date: str = ""
    # A page where the customer can pay (Stripe's hosted invoice page); never card data.
    payment_link: str = ""
    # On the update after an outcome: the outcome (the project's disposition name).
    disposition_code: str = ""
    # False on the update after an outcome: the contact centre must not dial it again.
    dialable: bool = True

    @field_validator(
        "case_key",
        "transaction_id",
        "failure_reason",
        "next_retry_window",
        "time_zone",
        "last_attempt_date",
        "payment_link",
        "disposition_code",
        mode="before",
    )
    @classmethod
    def _sanitise(cls, value: Any, info: Any) -> Any:
        if not isinstance(value, str):
            return value
        cleaned = clean_text(value, cap=FIELD_CAPS[info.field_name])
        if contains_card_number(value) or contains_card_number(cleaned):
            raise CardDataRefused(info.field_name)
        return cleaned

    @field_validator("phone_e164", mode="before")
    @classmethod
    def _phone(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        cleaned = re.sub(r"[\s().-]", "", clean_text(value, cap=32))
        if not E164.match(cleaned):
            raise ValueError(f"phone {mask_phone(cleaned)} is not an E.164 number")
        return cleaned

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        cleaned = clean_text(value, cap=8).upper()
        if cleaned and not re.fullmatch(r"[A-Z]{3}", cleaned):
            raise ValueError("currency must be a three-letter ISO 4217 code")
        return cleaned

    @field_validator("last_attempt_date")
    @classmethod
    def _date(cls, value: str) -> str:
        if value and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError("last_attempt_date must be YYYY-MM-DD")
        return value

    @field_validator("payment_link")
    @classmethod
    def _link(cls, value: str) -> str:
        if value and not value.lower().startswith("https://"):
            raise ValueError("payment_link must be an https URL")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @cached_property
    def contact_id(self) -> str:
        return contact_id_for(self.case_key, self.attempt)

    def data(self) -> dict[str, str]:
        """The contact's columns; the contact centre accepts only string values."""
        columns = {
            "phone": self.phone_e164,
            "transactionId": self.transaction_id,
            "failureReason": self.failure_reason,
            "amountOwed": "" if self.amount is None else f"{self.amount:f}",
            "currency": self.currency,
            "attemptCount": str(self.attempt),
            "nextRetryWindow": self.next_retry_window,
            "lastAttemptDate": self.last_attempt_date,
            "dispositionCode": self.disposition_code,
            "paymentLink": self.payment_link,
            "pciSensitive": "true",
            # The card itself stays with the payment processor: only its token is on file.
            "pciTokenized": "true",
            "timeZone": self.time_zone,
        }
        assert tuple(columns) == CONTACT_COLUMNS  # one list of columns, kept in step
        # A last guard at the boundary, whatever path produced the values.
        for name, value in columns.items():
            if name != "phone" and contains_card_number(value):
                raise CardDataRefused(name)
        return columns

    def to_writable(self, contact_list_id: str, *, phone_column: str = "phone") -> dict[str, Any]:
        """The ``WritableDialerContact`` JSON for ``contact_list_id``."""
        data = self.data()
        if phone_column != "phone":
            data[phone_column] = data.pop("phone")
        writable: dict[str, Any] = {
            "id": self.contact_id,
            "contactListId": contact_list_id,
            "data": data,
            "callable": self.dialable,
        }
        if not self.dialable:
            # As ``GenesysClient.make_uncallable``: the number too, so no recycle dials it.
            writable["phoneNumberStatus"] = {phone_column: {"callable": False}}
        return writable

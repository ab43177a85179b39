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
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recovery.contact_center.errors import CardDataRefused
from recovery.domain.pan import contains_pan
from recovery.log_scrubbing import mask_phone, scrub

__all__ = [
    "DATA_COLUMNS",
    "ContactRequest",
    "data_columns",
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

# The columns of every contact this project sends (``ContactRequest.data``): the contact
# list must have each of them, or the contact centre refuses the contact.
DATA_COLUMNS = (
    "phone",
    "transactionId",
    "failureReason",
    "amountOwed",
    "currency",
    "attemptCount",
    "nextRetryWindow",
    "pciSensitive",
    "timeZone",
)


def data_columns(phone_column: str = "phone") -> tuple[str, ...]:
    """``DATA_COLUMNS`` with the phone column under the list's own name."""
    return tuple(phone_column if c == "phone" else c for c in DATA_COLUMNS)


FIELD_CAPS = {
    "case_key": 255,
    "transaction_id": 128,
    "failure_reason": 200,
    "next_retry_window": 100,
    "time_zone": 64,
}


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

    @field_validator(
        "case_key",
        "transaction_id",
        "failure_reason",
        "next_retry_window",
        "time_zone",
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

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
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
            "pciSensitive": "true",
            "timeZone": self.time_zone,
        }
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
        return {
            "id": self.contact_id,
            "contactListId": contact_list_id,
            "data": data,
            "callable": True,
        }

"""What every gateway adapter shares: errors, the "ignored" result, phones and amounts."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, TypeVar

import phonenumbers
from pydantic import BaseModel, ConfigDict

from recovery.domain.compliance.zones import US_TERRITORIES, normalise_state
from recovery.domain.models import Gateway
from recovery.domain.pan import REDACTED, Marker, redact_payload

# ISO 4217 currencies without minor units (Stripe's list of zero-decimal currencies).
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())


class PayloadError(ValueError):
    """The body is not a well-formed event of the gateway (answered 400, nothing stored)."""


class Ignored(BaseModel):
    """A verified event that is neither a payment failure nor a success: recorded, not acted on."""

    model_config = ConfigDict(frozen=True)

    gateway: Gateway
    event_id: str
    event_type: str
    reason: str


NormalisedT = TypeVar("NormalisedT", bound=BaseModel)


def guard_normalised(result: NormalisedT, marker: Marker) -> tuple[NormalisedT, int]:
    """The normalised event with every field checked for card numbers again, and how many
    were found. A normaliser builds fields from several of the event's (a name from a given
    name and a surname, a phone from a country code and a national number); each part was
    clean, the whole may not be."""
    data = result.model_dump(mode="python")
    cleaned, found = redact_payload(data, marker)
    if not found:
        return result, 0
    return type(result).model_validate(cleaned), found


def text_or_none(value: Any) -> str | None:
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return None


# The widths of the case's state and postal-code columns.
STATE_CHARS = 8
POSTAL_CODE_CHARS = 16


def address_state(value: Any, country: str | None) -> str | None:
    """A billing address's state or region as the case keeps it: a US state's two-letter code
    when the text names one ("California", "ca"), else the text itself when it fits the column,
    else None (the phone's area code still places the customer)."""
    text = text_or_none(value)
    if text is None:
        return None
    if (country or "US").upper()[:2] in ("US", *US_TERRITORIES):
        code = normalise_state(text)
        if code is not None:
            return code
    return text if len(text) <= STATE_CHARS else None


def address_postal_code(value: Any) -> str | None:
    """A postal code that fits the column, else None (no real postal code is longer)."""
    text = text_or_none(value)
    return text if text is not None and len(text) <= POSTAL_CODE_CHARS else None


def normalise_phone(value: Any, country: str | None) -> tuple[str | None, str | None]:
    """E.164 and no problem, or None and the reason (None, None when there is no phone)."""
    text = text_or_none(value)
    if text is None:
        return None, None
    return _normalise_phone(text, (country or "US").upper()[:2])


# One renewal's invoice, intent and charge events carry the same phone: parsed once.
@lru_cache(maxsize=4096)
def _normalise_phone(text: str, region: str) -> tuple[str | None, str | None]:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        return None, f"invalid phone number: {exc._msg}"
    if not phonenumbers.is_valid_number(number):
        return None, "invalid phone number: not a valid number for its region"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


# The store keeps amounts as Numeric(18, 4); the receiver takes at most 12 whole digits.
AMOUNT_LIMIT = Decimal(10) ** 12


def amount_in_range(value: Decimal | None) -> Decimal | None:
    """A major-unit amount the case can keep: finite, not negative, under 10^12, at most four
    decimals (more are rounded); else None, recorded on the case as a missing amount."""
    if value is None or not value.is_finite() or value < 0 or value >= AMOUNT_LIMIT:
        return None
    return value if value.as_tuple().exponent >= -4 else value.quantize(Decimal("0.0001"))  # type: ignore[operator]


def minor_to_decimal(amount: Any, currency: Any) -> tuple[Decimal | None, str | None, str | None]:
    """Whole minor units (cents) to a Decimal in major units; the currency lower-cased."""
    code = text_or_none(currency)
    code = code.lower() if code else None
    if amount is None or isinstance(amount, bool):
        return None, code, "amount missing"
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return None, code, "amount is not a number"
    if not value.is_finite():
        return None, code, "amount is not a number"
    if isinstance(amount, float) or value != value.to_integral_value():
        # Minor units are whole: 2000.5 cents is a malformed amount, not a rounding matter.
        return None, code, "amount is not a whole number of minor units"
    exponent = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    major = amount_in_range(value.scaleb(-exponent))
    if major is None:
        return None, code, "amount out of range"
    return major, code, None


# A payment link longer than this is dropped rather than cut (a cut link does not work).
PAYMENT_LINK_CHARS = 1000


def payment_link(value: Any) -> str | None:
    """A payment page the agent may send: an ``https`` URL with no space and no card-number
    marker (a URL the card-number guard had to rewrite is not the page any more), else None."""
    text = text_or_none(value)
    if text is None or len(text) > PAYMENT_LINK_CHARS:
        return None
    if not text.lower().startswith("https://") or any(ch.isspace() for ch in text):
        return None
    if REDACTED.rstrip("]") in text:  # the plain and the keyed marker alike
        return None
    return text

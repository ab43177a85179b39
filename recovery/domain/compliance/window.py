"""Turning operator input into engine input, and verdicts into documents (for the CLI)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from recovery.domain.compliance.engine import CallHistory
from recovery.domain.compliance.zones import is_zone, mask_phone, normalise_state
from recovery.domain.models import ContactPoint

_E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")


class WindowArgumentError(ValueError):
    """Input that cannot be used; the message says which and why."""


def parse_instant(text: str, option: str) -> datetime:
    """An aware datetime from ISO 8601 text; naive or unparseable text is refused."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise WindowArgumentError(f"{option}: {text!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise WindowArgumentError(
            f"{option}: {text!r} has no UTC offset; add one, e.g. 2026-03-08T09:30:00-05:00"
        )
    return parsed


def check_phone(phone: str) -> str:
    """The phone as given when it is E.164 syntax (+ and 7 to 15 digits)."""
    if not _E164_RE.match(phone):
        raise WindowArgumentError(
            f"phone {mask_phone(phone)} is not in E.164 form (+ country code and number, "
            "e.g. +13055550123)"
        )
    return phone


def window_contact(
    *,
    phone: str,
    state: str | None = None,
    postal_code: str | None = None,
    country: str = "US",
    tz: str | None = None,
) -> ContactPoint:
    """A contact point from operator input, refusing what can only be a typing mistake."""
    check_phone(phone)
    if tz is not None and not is_zone(tz):
        raise WindowArgumentError(f"--tz: {tz!r} is not an IANA time zone (e.g. America/Chicago)")
    if not re.fullmatch(r"[A-Za-z]{2}", country.strip()):
        raise WindowArgumentError(f"--country: {country!r} is not a two-letter country code")
    country = country.strip().upper()
    if state is not None and country == "US" and normalise_state(state) is None:
        raise WindowArgumentError(f"--state: {state!r} is not a US state or territory")
    return ContactPoint(
        phone_e164=phone,
        country=country,
        state=normalise_state(state) if state and country == "US" else state,
        postal_code=postal_code,
        explicit_tz=tz,
    )


def window_history(
    *,
    attempts: Sequence[str] = (),
    conversation: str | None = None,
    callback_at: str | None = None,
    suppression: str | None = None,
) -> CallHistory:
    """A call history from ISO 8601 texts."""
    return CallHistory(
        attempts=tuple(parse_instant(a, "--attempt") for a in attempts),
        last_conversation=parse_instant(conversation, "--conversation") if conversation else None,
        callback_at=parse_instant(callback_at, "--callback-at") if callback_at else None,
        suppression=suppression,
    )

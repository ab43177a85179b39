"""The PAN guard: finds card numbers (13-19 digits, optionally split by spaces or dashes,
Luhn-valid) in any string of a payload and replaces them before anything is stored or logged.

A digit run (separators allowed) is redacted whole when any 13-19 digit window inside it is
Luhn-valid, so a card number cannot survive glued to other digits ("5 4242 4242 4242 4242").
This errs on the side of redaction: some innocent long numbers are replaced too, and the
event is flagged, which is the right trade for cardholder data.

Where a redacted value may be an identity (an event id, an invoice number), the receiver
redacts with a ``keyed_marker``: the marker carries a keyed fingerprint of the digits it
replaces, so two distinct ids stay distinct and a redelivery still matches its first copy,
while the digits cannot be recovered without the key (trying every card number needs it).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

REDACTED = "[redacted-card-number]"

# The replacement for one digit run (separators removed) that holds a card number.
Marker = Callable[[str], str]


def plain_marker(_digits: str) -> str:
    return REDACTED


def keyed_marker(key: bytes) -> Marker:
    """Markers ``[redacted-card-number:<16 hex>]``: an HMAC-SHA256 of the digits, truncated.
    The same digits give the same marker under the same key."""
    if not key:
        raise ValueError("the redaction key is empty")

    def marker(digits: str) -> str:
        tag = hmac.new(key, digits.encode("ascii"), hashlib.sha256).hexdigest()[:16]
        return f"[redacted-card-number:{tag}]"

    return marker


# Digits with single optional separators; at least 13 digits in the run.
_CANDIDATE = re.compile(r"(?<![0-9])[0-9](?:[ \-]?[0-9]){12,}(?![0-9])")
_QUICK = re.compile(r"[0-9]{4}")
# Every match of _CANDIDATE is a stretch of 13 or more digits, spaces and dashes starting with a
# digit: a cheap necessary condition to test before the costlier pattern itself.
_STRETCH = re.compile(r"[0-9][0-9 \-]{12,}")


def luhn_valid(digits: str) -> bool:
    total = 0
    parity = len(digits) % 2
    for index, char in enumerate(digits):
        value = ord(char) - 48
        if index % 2 == parity:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _has_pan(digits: str) -> bool:
    length = len(digits)
    for size in range(13, min(19, length) + 1):
        for start in range(0, length - size + 1):
            if luhn_valid(digits[start : start + size]):
                return True
    return False


def redact_text(text: str, marker: Marker = plain_marker) -> tuple[str, int]:
    """The text with card numbers replaced, and how many were replaced."""
    if len(text) < 13 or not _QUICK.search(text):
        return text, 0
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        digits = match.group(0).replace(" ", "").replace("-", "")
        if not _has_pan(digits):
            return match.group(0)
        count += 1
        return marker(digits)

    return _CANDIDATE.sub(replace, text), count


def contains_pan(text: str) -> bool:
    return redact_text(text)[1] > 0


# A JSON number (after a colon, a comma or a bracket) with an exponent, or with a fraction:
# parsed as a float, its digits can join across the decimal point or gain zeros from the
# exponent, so the raw text does not show them as one run.
_EXPONENT_NUMBER = re.compile(r"(?:^|[:\[,])\s*-?[0-9]+(?:\.[0-9]+)?[eE]")
_FRACTION_NUMBER = re.compile(r"(?:^|[:\[,])\s*-?([0-9]+\.[0-9]+)")


def _may_be_float_pan(raw: str) -> bool:
    if _EXPONENT_NUMBER.search(raw) is not None:
        return True
    # 13 digits or more around the point (the point itself is the 14th character).
    return any(len(m.group(1)) >= 14 for m in _FRACTION_NUMBER.finditer(raw))


def json_may_hold_pan(raw: str) -> bool:
    """False when nothing parsed from the JSON text ``raw`` can hold a card number.

    JSON escapes other than ``\\u`` decode to a quote, a slash, a backslash or a control
    character, never to a digit, a space or a dash, so without ``\\u`` every digit run of every
    parsed key, string and integer appears verbatim in the raw text, bounded by characters that
    are not digits either. When the raw text has no candidate run, no parsed value has one.
    Floats are the exception: ``41589062.76223013e8`` parses to 4158906276223013.0, so any
    exponent, or any fraction with 13 digits or more around its point, means a walk."""
    if "\\u" in raw:
        return True
    if _STRETCH.search(raw) is not None and _CANDIDATE.search(raw) is not None:
        return True
    return _may_be_float_pan(raw)


def redact_parsed_json(raw: str, value: Any, marker: Marker = plain_marker) -> tuple[Any, int]:
    """``redact_payload`` for ``value`` parsed from the JSON text ``raw``, skipping the walk (and
    returning ``value`` itself) when the raw text rules out any card number."""
    if not json_may_hold_pan(raw):
        return value, 0
    return redact_payload(value, marker)


def redact_payload(value: Any, marker: Marker = plain_marker) -> tuple[Any, int]:
    """A deep copy of a JSON-like value with every card number replaced; keys are scanned too.

    Integers of 13 or more digits are scanned as well (a PAN sent as a JSON number)."""
    found = 0

    def walk(node: Any) -> Any:
        nonlocal found
        if isinstance(node, str):
            cleaned, count = redact_text(node, marker)
            found += count
            return cleaned
        if isinstance(node, bool) or node is None:
            return node
        if isinstance(node, float):
            # A card number sent as a JSON number with a fraction or an exponent: the digits of
            # its full decimal expansion, point dropped, must not hold one either (it would be
            # stored as an amount).
            if node != node or node in (float("inf"), float("-inf")):
                return node
            expansion = format(Decimal(repr(node)).normalize(), "f")
            digits = "".join(ch for ch in expansion if ch.isdigit())
            if len(digits) >= 13 and redact_text(digits)[1]:
                found += 1
                return marker(digits)
            return node
        if isinstance(node, int):
            if abs(node) >= 10**12:
                cleaned, count = redact_text(str(node), marker)
                if count:
                    found += count
                    return cleaned
            return node
        if isinstance(node, dict):
            return {walk(key): walk(item) for key, item in node.items()}
        if isinstance(node, list | tuple):
            return [walk(item) for item in node]
        return node

    return walk(value), found

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


# Where a JSON float may start: a digit followed by an exponent or a decimal point. Parsed as
# a float, such a number's digits can join across the point or gain zeros from the exponent,
# so the raw text does not show them as one run. One cheap scan finds the candidates; each is
# then read as the number token around it.
_FLOATISH = re.compile(r"[0-9](?:[eE][+-]?[0-9]|\.[0-9])")
_NUMBER_CHARS = frozenset("0123456789.")
_TOKEN_CHARS = frozenset("0123456789.eE+-")
# What may precede a JSON number: a colon, a comma, a bracket, whitespace, a minus sign.
_BEFORE_NUMBER = frozenset(":,[ \t\r\n-")


def _may_be_float_pan(raw: str) -> bool:
    """Whether the JSON text holds a number with an exponent, or with a fraction and 13 digits
    or more in all (a digit run inside a string or an id is not a number, and is covered by
    the candidate scan)."""
    for match in _FLOATISH.finditer(raw):
        start = match.start()
        while start > 0 and raw[start - 1] in _NUMBER_CHARS:
            start -= 1
        if start > 0 and raw[start - 1] not in _BEFORE_NUMBER:
            continue  # part of a word or a string's text: not a JSON number
        end = match.end()
        while end < len(raw) and raw[end] in _TOKEN_CHARS:
            end += 1
        if float_may_hide_pan(raw[start:end]):
            return True
    return False


def float_may_hide_pan(literal: str) -> bool:
    """Whether a JSON number's text, parsed as a float, may hold a card number that its text
    does not show as one digit run: it has an exponent, or 13 digits or more around a point."""
    return "e" in literal or "E" in literal or sum(ch.isdigit() for ch in literal) >= 13


class FloatWatch:
    """A ``parse_float`` hook for ``json.loads`` that notes whether any float literal may hide
    a card number, so that the raw text need not be scanned for floats (the parser calls it
    for float literals only)."""

    def __init__(self) -> None:
        self.risky = False

    def __call__(self, literal: str) -> float:
        if not self.risky and float_may_hide_pan(literal):
            self.risky = True
        return float(literal)


def json_may_hold_pan(raw: str, *, risky_floats: bool | None = None) -> bool:
    """False when nothing parsed from the JSON text ``raw`` can hold a card number.

    JSON escapes other than ``\\u`` decode to a quote, a slash, a backslash or a control
    character, never to a digit, a space or a dash, so without ``\\u`` every digit run of every
    parsed key, string and integer appears verbatim in the raw text, bounded by characters that
    are not digits either. When the raw text has no candidate run, no parsed value has one.
    Floats are the exception: ``41589062.76223013e8`` parses to 4158906276223013.0, so any
    number with an exponent, or with a fraction and 13 digits or more, means a walk.
    ``risky_floats``: what a ``FloatWatch`` saw while parsing ``raw`` (None: scan the text)."""
    if "\\u" in raw:
        return True
    if _STRETCH.search(raw) is not None and _CANDIDATE.search(raw) is not None:
        return True
    return _may_be_float_pan(raw) if risky_floats is None else risky_floats


def redact_parsed_json(
    raw: str, value: Any, marker: Marker = plain_marker, *, risky_floats: bool | None = None
) -> tuple[Any, int]:
    """``redact_payload`` for ``value`` parsed from the JSON text ``raw``, skipping the walk (and
    returning ``value`` itself) when the raw text rules out any card number."""
    if not json_may_hold_pan(raw, risky_floats=risky_floats):
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

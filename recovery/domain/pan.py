"""The PAN guard: finds card numbers in any string of a payload and replaces them before
anything is stored, logged or sent.

A card number is 13 to 19 digits passing the Luhn check, however it is spelled:

- any script's decimal digits count (full-width ``４``, Arabic-Indic ``٤``...): they are read as
  ASCII digits first, one character for one, so positions do not move;
- digits are joined across a run of up to ``MAX_SEPARATOR`` characters that are neither letters
  nor digits (spaces of every kind, ``-``, ``.``, ``/``, `` - ``...), so every grouping (``41 11
  11 ...``, ``411 111 ...``, ``4 1 1 1 ...``) is one *chain* of digits; a letter, or a longer run,
  ends the chain;
- a chain is redacted whole when any 13-19 digit window inside it is Luhn-valid, so a card
  number cannot survive glued to other digits ("5 4242 4242 4242 4242").

The one exception is an ISO 8601 date and time of the years 1900-2199 written with a colon
(``2026-12-01 13:00:00+00:00``): its digits would otherwise make a chain of 14 to 23 digits,
Luhn-valid about half the time, and times must stay readable. It is read as a boundary: digits
before and after it are chains of their own. No card number is issued in the ranges such a
time spells (its digits start 19, 20 or 21).

The work is linear in the text: chains are found by one regular-expression pass with
possessive quantifiers (no backtracking), and each chain's windows are checked with prefix sums
(a rolling Luhn check), in chunks, by C-level iteration; a chain stops at its first Luhn-valid
window. This errs on the side of redaction: some innocent long numbers are replaced too, and the
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
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

REDACTED = "[redacted-card-number]"

# The replacement for one chain of digits (separators removed) that holds a card number.
Marker = Callable[[str], str]

# The longest run of characters that are neither letters nor digits still read as a separator
# between two digits of one number (" - ", ". ", a double space with a no-break space...).
MAX_SEPARATOR = 3
SHORTEST, LONGEST = 13, 19


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


@dataclass
class ScanWork:
    """What a scan examined: characters read and Luhn windows checked (for tests of the
    guard's cost, which count rather than time)."""

    chars: int = 0
    windows: int = 0


# One chain: a digit, then (separator run, digit) as often as they come. Possessive: a failed
# extension never backtracks, and each chain is matched once from its first digit (a minimum
# length in the pattern would retry from every digit of a short chain), so the pass is linear.
_SEPARATOR = rf"[\W_]{{0,{MAX_SEPARATOR}}}+"
_CHAIN = re.compile(rf"[0-9](?:{_SEPARATOR}[0-9])*+")
_NOT_DIGIT = re.compile(r"[^0-9]")
_DATETIME = re.compile(
    r"(?<![0-9])(?:19|20|21)[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt ]"
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]{1,9})?)?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])?(?![0-9])"
)
_ASCII_DIGITS = "0123456789"
# ASCII digits to their values (bytes 0-9), and values to their doubled Luhn value.
_TO_VALUES = bytes.maketrans(b"0123456789", bytes(range(10)))
_TO_DOUBLED = bytes.maketrans(
    bytes(range(10)), bytes(d * 2 - 9 if d > 4 else d * 2 for d in range(10))
)
# A window sum (a byte) to 0 when divisible by 10, else to 1.
_LUHN_ZERO = bytes(0 if n % 10 == 0 else 1 for n in range(256))
_CHUNK = 65536


class _DigitTable(dict[int, int]):
    """``str.translate`` table: a decimal digit of any script to its ASCII digit, any other
    character to itself. Filled as characters are first seen, so every later lookup is a plain
    dictionary hit (there are some 650 digits among a million code points)."""

    def __missing__(self, code: int) -> int:
        value = unicodedata.decimal(chr(code), None)
        self[code] = mapped = code if value is None else 48 + value
        return mapped


_DIGIT_TABLE = _DigitTable()


def normalise_digits(text: str) -> str:
    """``text`` with every decimal digit of any script as its ASCII digit (same length)."""
    return text if text.isascii() else text.translate(_DIGIT_TABLE)


# Whether a text holds 13 ASCII digits: one pass, stopping at the 13th (possessive, so a
# text with fewer fails without backtracking).
_THIRTEEN = re.compile(rf"(?:[^0-9]*+[0-9]){{{SHORTEST}}}")


def _has_thirteen_digits(text: str) -> bool:
    return _THIRTEEN.match(text) is not None


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


def _has_pan(digits: str, work: ScanWork | None = None) -> bool:
    """Whether any 13-19 digit window of ``digits`` (ASCII) is Luhn-valid: linear time.

    For a window ending at ``e`` the digits doubled are those at an odd distance from ``e``, so
    two value sequences serve every window: one doubling the digits at even index (for windows
    ending at an odd index), one doubling those at odd index. A sequence is read as a big
    integer, one byte per digit; adding it to itself shifted by one byte, L times, leaves in
    byte ``e`` the sum of the L values ending at ``e`` (at most 19 x 9, no carry). A byte
    table then marks the sums divisible by 10 (Luhn-valid), and a zero byte at a position of
    the right parity is a valid window. Every step is one C-level operation over a chunk; the
    first hit ends the scan."""
    length = len(digits)
    if length < SHORTEST:
        return False
    values = digits.encode("ascii").translate(_TO_VALUES)
    start = 0
    while start < length:
        stop = min(length, start + _CHUNK + LONGEST - 1)
        plain = values[start:stop]
        doubled = plain.translate(_TO_DOUBLED)
        size = len(plain)
        at_even, at_odd = bytearray(plain), bytearray(plain)
        at_even[0::2] = doubled[0::2]
        at_odd[1::2] = doubled[1::2]
        for sequence, end_parity in ((at_even, 1), (at_odd, 0)):
            whole = int.from_bytes(sequence, "little")
            sums = 0
            for taken in range(min(LONGEST, size)):
                sums += whole << (8 * taken)
                window = taken + 1
                if window < SHORTEST:
                    continue
                # Bytes window-1 .. size-1: the complete windows, ending at e = window-1+i.
                ends = sums.to_bytes(size + LONGEST, "little")[window - 1 : size]
                if work is not None:
                    work.windows += len(ends)
                first = (end_parity - (window - 1)) % 2
                if 0 in ends[first::2].translate(_LUHN_ZERO):
                    return True
        if stop == length:
            return False
        start = stop - (LONGEST - 1)
    return False


def _chains(text: str, work: ScanWork | None) -> list[re.Match[str]]:
    """The chains of 13 digits or more in ``text`` (digits already ASCII)."""
    if ":" in text and "-" in text:
        # Times are boundaries: blanked in a copy of the same length, positions unchanged.
        text = _DATETIME.sub(lambda m: "x" * len(m.group()), text)
    if work is not None:
        work.chars += len(text)
    return [chain for chain in _CHAIN.finditer(text) if chain.end() - chain.start() >= SHORTEST]


def redact_text(
    text: str, marker: Marker = plain_marker, *, work: ScanWork | None = None
) -> tuple[str, int]:
    """The text with card numbers replaced, and how many were replaced."""
    if len(text) < SHORTEST:
        return text, 0
    normal = normalise_digits(text)
    if not _has_thirteen_digits(normal):
        return text, 0
    count = 0
    parts: list[str] = []
    last = 0
    for chain in _chains(normal, work):
        digits = _NOT_DIGIT.sub("", chain.group())
        if work is not None:
            work.chars += len(digits)
        if not _has_pan(digits, work):
            continue
        count += 1
        parts.append(text[last : chain.start()])
        parts.append(marker(digits))
        last = chain.end()
    if not count:
        return text, 0
    parts.append(text[last:])
    return "".join(parts), count


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


# A JSON escape that decodes to a control character: in the raw text a backslash and a letter,
# once parsed a separator. Read as two separator characters in the raw text.
_CONTROL_ESCAPE = re.compile(r"\\[bfnrt]")
# In the raw text one parsed separator may take two characters (an escape), so chains there
# are joined across twice the separator run: every chain of a parsed value is one here too.
_RAW_CHAIN = re.compile(rf"[0-9](?:[\W_]{{0,{2 * MAX_SEPARATOR}}}+[0-9])*+")


def json_may_hold_pan(raw: str, *, risky_floats: bool | None = None) -> bool:
    """False when nothing parsed from the JSON text ``raw`` can hold a card number.

    Any other script's digits are read as ASCII digits, as the guard reads them. JSON escapes
    other than ``\\u`` decode to a quote, a slash, a backslash (separators, as they are in
    the raw text) or a control character (a separator once parsed, a backslash and a letter
    in the raw text, read here as two separators); one parsed separator is at most two raw
    characters, so the raw text is read with chains joined across twice the usual run: a chain
    in any parsed key, string or integer is a chain here too. Without one, no parsed value has
    a card number. ``\\u`` escapes mean a walk. Floats are the exception: ``41589062.76223013e8``
    parses to 4158906276223013.0, so any number with an exponent, or with a fraction and 13
    digits or more, means a walk. ``risky_floats``: what a ``FloatWatch`` saw while parsing
    ``raw`` (None: scan the text)."""
    if "\\u" in raw:
        return True
    text = normalise_digits(raw)
    if _has_thirteen_digits(text):
        if "\\" in text:
            text = _CONTROL_ESCAPE.sub("  ", text)
        for chain in _RAW_CHAIN.finditer(text):
            if chain.end() - chain.start() >= SHORTEST and _has_thirteen_digits(chain.group()):
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

"""The card-number guard finds a card number however it is spelled: any grouping of 1 to 5
digits, any run of up to three non-alphanumeric characters between digits (spaces, NBSP,
double spaces, " - ", dots, slashes...), any script's decimal digits. Redaction, log scrubbing
and the contact-centre boundary all use it; its work grows linearly with the text.

The checks here read card numbers back with a scanner of their own (``readable``), written
independently of the guard, so the guard is never tested with itself.
"""

from __future__ import annotations

import logging
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.contact_center.contacts import ContactRequest
from recovery.contact_center.errors import CardDataRefused
from recovery.domain.pan import (
    REDACTED,
    ScanWork,
    contains_pan,
    json_may_hold_pan,
    keyed_marker,
    redact_payload,
    redact_text,
)
from recovery.log_scrubbing import install_log_scrubbing, scrub

PANS = (
    "4111111111111111",
    "4000056655665556",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "4222222222222",
    "6200000000000005",
    "4000000000000000006",
)
# Separators a careless or evasive sender puts between groups (three characters at most).
SEPARATORS = (
    " ",
    "\u00a0",  # no-break space
    "  ",
    " - ",
    "-",
    ".",
    ". ",
    "/",
    " / ",
    "\t",
    "\u2009",  # thin space
    "\u3000",  # ideographic space
    "_",
    "*",
    ",",
    ", ",
    "|",
    "\u2013",  # en dash
    "'",
    ":",
    "\u200b",  # zero-width space
)
# Decimal digits of other scripts: full-width, Arabic-Indic, Devanagari, Bengali, Thai,
# mathematical bold.
ZEROS = (0x30, 0xFF10, 0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0x1D7CE)


def in_script(digits: str, zero: int) -> str:
    return "".join(chr(zero + int(d)) for d in digits)


def readable(text: str, max_gap: int = 3) -> list[str]:
    """Every digit string a person could read out of ``text``: any script's decimal digits
    read as digits, and digits joined across up to ``max_gap`` characters that are neither
    letters nor digits."""
    chains: list[str] = []
    current: list[str] = []
    gap = 0
    for char in text:
        if char.isdecimal():
            current.append(str(unicodedata.decimal(char)))
            gap = 0
        elif not char.isalnum() and current and gap < max_gap:
            gap += 1
        else:
            if current:
                chains.append("".join(current))
            current, gap = [], 0
            if char.isdecimal():  # pragma: no cover - handled above
                current.append(char)
    if current:
        chains.append("".join(current))
    return chains


def holds(text: str, pan: str) -> bool:
    return any(pan in chain for chain in readable(text))


def test_the_reader_reads_what_a_person_would() -> None:
    assert holds("4111 1111 1111 1111", PANS[0])
    assert holds("４１１１-１１１１-１１１１-１１１１", PANS[0])
    assert not holds("4111 1111 x 1111 1111", PANS[0])
    assert not holds("4111    1111 1111 1111", PANS[0])  # four spaces: no longer one number


# --- the spellings the first guard let through -----------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "41 11 11 11 11 11 11 11",
        "411 111 111 111 111 1",
        "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
        "4111.1111.1111.1111",
        "4111/1111/1111/1111",
        "4111\u00a01111\u00a01111\u00a01111",
        "4111  1111  1111  1111",
        "4111 - 1111 - 1111 - 1111",
        "４１１１ １１１１ １１１１ １１１１",
        "٤١١١ ١١١١ ١١١١ ١١١١",
        "۴۱۱۱۱۱۱۱۱۱۱۱۱۱۱۱",
        "card: 4111 1111.1111-1111, thanks",
        "41111-11111-11111-1",
    ],
)
def test_spellings_that_once_passed_are_found(spelling: str) -> None:
    assert contains_pan(spelling)
    cleaned, found = redact_text(spelling)
    assert found == 1 and REDACTED in cleaned
    assert not holds(cleaned, PANS[0])


def test_ids_and_times_are_kept() -> None:
    for text in (
        "in_1Pgc6tB7WZ01zgkWu9fdqL6I",
        "+14155552671",
        "1721948530",
        "amount 2000",
        "order 123456789012",
        "2026-12-01T13:00:00Z",
        "2026-12-01 13:00:00+00:00",
        "2026-12-01 13:00:00.123456+05:30",
        "between 2026-12-01 13:00:00 and 2026-12-02 14:30:00",
        "2026-12-01 13:00:00 - 2026-12-02 14:30:00",
        "WH-9ES33478E1234567K-0Y391538X12345678",
        "6d1f0f5e-2b7a-5c1e-9a43-2f0c8a6b7e15",
        "amount 1,234,567.89",
    ):
        assert redact_text(text) == (text, 0), text


def test_a_card_number_glued_to_a_time_is_still_found() -> None:
    for text in (
        "2026-12-01 13:00:00 4111 1111 1111 1111",
        "4111 1111 1111 1111 2026-12-01 13:00:00",
        "2026-12-01 13:00:00.4111111111111111",
    ):
        assert not holds(redact_text(text)[0], PANS[0]), text


def test_keyed_markers_fingerprint_the_digits_whatever_their_script() -> None:
    marker = keyed_marker(b"a key of the receiver")
    ascii_form, _ = redact_text("4111 1111 1111 1111", marker)
    wide_form, _ = redact_text("４１１１ １１１１ １１１１ １１１１", marker)
    assert ascii_form == wide_form == marker("4111111111111111")


# --- generated spellings -----------------------------------------------------------------------


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, str]:
    """A planted card number in a generated spelling: groups of 1 to 5 digits, a separator
    drawn per gap (or one for the whole number), the digits in one script or mixed."""
    pan = draw(st.sampled_from(PANS))
    groups: list[str] = []
    rest = pan
    while rest:
        size = draw(st.integers(1, 5))
        groups.append(rest[:size])
        rest = rest[size:]
    if draw(st.booleans()):
        one = draw(st.sampled_from(SEPARATORS))
        gaps = [one] * (len(groups) - 1)
    else:
        gaps = [draw(st.sampled_from(SEPARATORS)) for _ in groups[1:]]
    mixed = draw(st.booleans())
    script = draw(st.sampled_from(ZEROS))
    text = ""
    for index, group in enumerate(groups):
        zero = draw(st.sampled_from(ZEROS)) if mixed else script
        text += in_script(group, zero)
        if index < len(gaps):
            text += gaps[index]
    return pan, text


surroundings = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12
)


@settings(max_examples=600, deadline=None)
@given(spellings(), surroundings, surroundings)
def test_no_generated_spelling_survives_redaction(
    planted: tuple[str, str], before: str, after: str
) -> None:
    pan, spelling = planted
    text = before + spelling + after
    assert holds(text, pan)
    assert contains_pan(text)
    cleaned, found = redact_text(text)
    assert found >= 1
    assert not holds(cleaned, pan), cleaned


@settings(max_examples=300, deadline=None)
@given(spellings(), surroundings)
def test_no_generated_spelling_survives_a_payload_walk(
    planted: tuple[str, str], before: str
) -> None:
    pan, spelling = planted
    payload = {"a": [{"b": before + spelling}], before + spelling: 1}
    cleaned, found = redact_payload(payload)
    assert found == 2
    assert not holds(repr(cleaned), pan)


@settings(max_examples=300, deadline=None)
@given(spellings(), surroundings)
def test_the_json_fast_path_never_skips_a_generated_spelling(
    planted: tuple[str, str], before: str
) -> None:
    import json

    _pan, spelling = planted
    for raw in (
        json.dumps({"name": before + spelling}, ensure_ascii=False),
        json.dumps({"name": before + spelling}),
        json.dumps({"name": (before + spelling).replace(" ", "\n")}, ensure_ascii=False),
    ):
        assert json_may_hold_pan(raw), raw


@settings(max_examples=200, deadline=None)
@given(spellings(), surroundings)
def test_no_generated_spelling_reaches_a_log(planted: tuple[str, str], before: str) -> None:
    pan, spelling = planted
    assert not holds(scrub(f"customer wrote {before}{spelling}"), pan)


def test_log_records_from_any_logger_are_scrubbed_of_every_spelling(
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_log_scrubbing()
    logger = logging.getLogger("some.library")
    with caplog.at_level(logging.INFO, logger="some.library"):
        logger.warning("paid with %s", "４１１１ １１１１ １１１１ １１１１")
        logger.warning("paid with %s", "4111 - 1111 - 1111 - 1111")
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert not holds(text, PANS[0])


@settings(max_examples=200, deadline=None)
@given(spellings(), st.sampled_from(["transaction_id", "failure_reason", "next_retry_window"]))
def test_the_contact_centre_boundary_refuses_every_generated_spelling(
    planted: tuple[str, str], field: str
) -> None:
    _pan, spelling = planted
    values = {
        "case_key": "stripe:in_1",
        "attempt": 1,
        "phone_e164": "+14155552671",
        "time_zone": "America/New_York",
        field: f"ref {spelling}",
    }
    with pytest.raises((CardDataRefused, ValueError)):
        ContactRequest(**values)


# --- linear work ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "unit",
    [
        "1",  # one endless run with no Luhn-valid window at all
        "1 ",
        "1 - ",
        "12345678901 x ",
        "١",
        "1" * 12 + "\u00a0\u00a0\u00a0\u00a0",
        "2026-12-01 13:00:00 ",
    ],
)
def test_the_work_grows_linearly_with_the_text(unit: str) -> None:
    """Counted, not timed: the characters and Luhn windows the guard examines, per character
    of input, stay the same whether the text is 16 KiB or 256 KiB long."""
    per_char: list[float] = []
    for size in (16_384, 65_536, 262_144):
        text = (unit * (size // len(unit) + 1))[:size]
        work = ScanWork()
        redact_text(text, work=work)
        assert work.chars >= size // 2  # the text was really scanned
        per_char.append((work.chars + work.windows) / size)
    assert max(per_char) <= 40
    assert per_char[-1] <= per_char[0] * 1.05

"""The PAN guard finds card numbers in any string and nothing survives redaction."""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.domain.pan import (
    REDACTED,
    FloatWatch,
    contains_pan,
    json_may_hold_pan,
    keyed_marker,
    luhn_valid,
    redact_parsed_json,
    redact_payload,
    redact_text,
)

VALID = [
    "4242424242424242",
    "4000056655665556",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "3056930009020004",
    "4222222222222",
    "6200000000000005",
]
LUHN_RUN = re.compile(r"[0-9]{13,19}")


def luhn_complete(prefix: str) -> str:
    for check in "0123456789":
        if luhn_valid(prefix + check):
            return prefix + check
    raise AssertionError("unreachable")


def surviving_pans(text: str) -> list[str]:
    digits_only = re.sub(r"(?<=[0-9])[ \-](?=[0-9])", "", text)
    found = []
    for run in re.findall(r"[0-9]+", digits_only):
        for size in range(13, 20):
            for start in range(0, len(run) - size + 1):
                if luhn_valid(run[start : start + size]):
                    found.append(run[start : start + size])
    return found


def test_known_test_cards_are_luhn_valid_and_redacted() -> None:
    for pan in VALID:
        assert luhn_valid(pan)
        assert redact_text(f"card {pan} here") == (f"card {REDACTED} here", 1)
    assert not luhn_valid("4242424242424241")


def test_separators_spaces_and_dashes() -> None:
    assert redact_text("4242 4242 4242 4242")[0] == REDACTED
    assert redact_text("4242-4242-4242-4242")[0] == REDACTED
    assert redact_text("3782 822463 10005")[0] == REDACTED


def test_non_pans_are_kept() -> None:
    for text in (
        "in_1Pgc6tB7WZ01zgkWu9fdqL6I",
        "+14155552671",
        "1721948530",
        "amount 2000",
        "order 123456789012",
        "2026-12-01T13:00:00Z",
    ):
        assert redact_text(text) == (text, 0)


def test_payload_keys_values_and_numbers() -> None:
    payload = {
        "a": {"b": ["x 4242424242424242"]},
        "4000056655665556": 1,
        "n": 4242424242424242,
        "ok": 1721948530,
        "f": 1.5,
        "t": True,
        "z": None,
    }
    cleaned, count = redact_payload(payload)
    assert count == 3
    assert "4242424242424242" not in repr(cleaned) and "4000056655665556" not in repr(cleaned)
    assert cleaned["ok"] == 1721948530 and cleaned["t"] is True and cleaned["z"] is None


def test_longer_digit_runs_with_a_pan_inside_are_redacted() -> None:
    text = "ref 99" + "4242424242424242" + "77"
    cleaned, count = redact_text(text)
    assert count == 1 and not surviving_pans(cleaned)


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.text(max_size=20),
    suffix=st.text(max_size=20),
    body=st.text(alphabet="0123456789", min_size=12, max_size=18),
    sep=st.sampled_from(["", " ", "-"]),
)
def test_no_luhn_valid_sequence_survives(prefix: str, suffix: str, body: str, sep: str) -> None:
    pan = luhn_complete(body)
    spaced = sep.join(pan[i : i + 4] for i in range(0, len(pan), 4))
    cleaned, _ = redact_text(prefix + spaced + suffix)
    assert not surviving_pans(cleaned)
    assert not contains_pan(cleaned)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=40),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=10), children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_redacted_payload_has_no_pan_anywhere(value: object) -> None:
    cleaned, _ = redact_payload(value)
    assert not surviving_pans(repr(cleaned).replace("'", " "))


# -- keyed markers: redacted ids stay distinct --------------------------------------------


def test_keyed_markers_are_stable_distinct_and_hold_no_digits_of_the_card() -> None:
    marker = keyed_marker(b"a key of the receiver")
    first, second = "1798423145923002369", "1798423145923002370"
    one, _ = redact_text(f"id {first}", marker)
    again, _ = redact_text(f"id {first}", marker)
    other, _ = redact_text(f"id {second}", marker)
    assert one == again and one != other
    assert re.fullmatch(r"id \[redacted-card-number:[0-9a-f]{16}\]", one)
    assert surviving_pans(one) == [] and surviving_pans(other) == []
    # Separators do not make another card number; another key makes other markers.
    assert redact_text("4242 4242 4242 4242", marker)[0] == marker("4242424242424242")
    assert keyed_marker(b"another key")("4242424242424242") != marker("4242424242424242")


def test_the_plain_marker_is_the_default() -> None:
    assert redact_payload({"id": VALID[0]}) == ({"id": REDACTED}, 1)


# -- card numbers written as JSON floats ----------------------------------------------------


def float_spellings(pan: str) -> list[str]:
    """The same number as a JSON float: point at the end, inside, and shifted by exponents."""
    spellings = [f"{pan}.0", f"{pan}e0", f"{pan[0]}.{pan[1:]}e{len(pan) - 1}"]
    for point in range(1, len(pan)):
        spellings.append(f"{pan[:point]}.{pan[point:]}e{len(pan) - point}")
    # Trailing zeros of the card number written as an exponent.
    stripped = pan.rstrip("0")
    if stripped != pan:
        spellings.append(f"{stripped}e{len(pan) - len(stripped)}")
    return spellings


@given(st.sampled_from([p for p in VALID if len(p) <= 16]), st.data())
def test_a_card_number_spelled_as_a_float_is_found_in_the_raw_text(
    pan: str, data: st.DataObject
) -> None:
    spelling = data.draw(st.sampled_from(float_spellings(pan)))
    raw = f'{{"amount_due": {spelling}, "id": "in_1"}}'
    value = json.loads(raw)
    assert json_may_hold_pan(raw)
    cleaned, found = redact_parsed_json(raw, value)
    assert found == 1 and cleaned["amount_due"] == REDACTED


def test_ordinary_numbers_do_not_force_a_walk() -> None:
    raw = '{"amount": 19.99, "count": 3, "at": 1796144100, "id": "in_3e5Qa", "rate": 0.125}'
    assert not json_may_hold_pan(raw)
    assert json_may_hold_pan('{"amount": 1e3}')  # any exponent is walked


def test_zero_padded_card_numbers_behind_an_exponent_are_found() -> None:
    # A 16-digit card number ending in four zeros, written with 12 digits and an exponent:
    # no run of 13 digits appears in the raw text.
    pan = next(f"41589062762{d}0000" for d in "123456789" if luhn_valid(f"41589062762{d}0000"))
    spelling = f"{pan[:6]}.{pan[6:12]}e10"
    assert float(spelling) == int(pan) and not re.search(r"[0-9]{13}", spelling)
    raw = '{"a": ' + spelling + "}"
    cleaned, found = redact_parsed_json(raw, json.loads(raw))
    assert found == 1 and cleaned["a"] == REDACTED


def test_the_parser_hook_sees_the_floats_the_raw_scan_would() -> None:
    for raw, risky in [
        ('{"a": 41589062.76223013e8}', True),
        ('{"a": 19.99, "b": 3, "id": "in_3e5"}', False),
        ('{"a": [1.5, 4158906.276223013]}', True),
    ]:
        watch = FloatWatch()
        value = json.loads(raw, parse_float=watch)
        assert watch.risky is risky and json_may_hold_pan(raw) is risky
        cleaned, found = redact_parsed_json(raw, value, risky_floats=watch.risky)
        assert (found > 0) is risky

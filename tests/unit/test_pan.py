"""The PAN guard finds card numbers in any string and nothing survives redaction."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.domain.pan import REDACTED, contains_pan, luhn_valid, redact_payload, redact_text

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

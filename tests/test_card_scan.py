"""The independent card scanner used by the card-data sweep: what it sets aside in a database
file's raw bytes, and that a card number is still found wherever it stands."""

from __future__ import annotations

import pytest

from tests.support.card_scan import Scan

CARDS = [
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "5555555555554444",
    "378282246310005",
]


def findings(text: str, *, raw: bool) -> list[str]:
    scan = Scan()
    scan.text("sample", text, raw=raw)
    return [finding.masked for finding in scan.findings]


@pytest.mark.parametrize(
    "piece",
    [
        # A UUID whose last group was overwritten in free space; its decimal stretch
        # 22276-3019-4873 passes the Luhn check by chance.
        "prefect.flow-run.8af22276-3019-4873-be39-c58457620n\x05=wA",
        # A date run into a timestamp cut after its hour.
        "sub_camp_20267@2026-12-01 2026-12-07 14k\x055yA",
    ],
)
def test_pieces_of_uuids_and_timestamps_are_set_aside_in_raw_bytes(piece: str) -> None:
    assert findings(piece, raw=False), "the sample must hold a Luhn-valid run"
    assert findings(piece, raw=True) == []


def test_the_uuid_piece_is_a_finding_outside_raw_bytes() -> None:
    # Only raw bytes get the lenient reading: in a value, a broken UUID is scanned as it is.
    assert findings("8af22276-3019-4873-be39-c58457620", raw=False) == ["222763***4873"]


@pytest.mark.parametrize("card", CARDS)
@pytest.mark.parametrize(
    "surround",
    [
        "{}",
        "x{}y",
        "2026-12-07 14:00:00.000000{}",
        "{}2026-12-07",
        "8af22276-3019-4c\x05{}",
        "@{}k",
    ],
)
def test_a_card_number_is_found_in_raw_bytes_wherever_it_stands(card: str, surround: str) -> None:
    assert findings(surround.format(card), raw=True), surround.format(card)


@pytest.mark.parametrize("text", ["a4111-1111-1111-1111", "8af22276-3019-4111-1111-1111-1111"])
def test_the_planted_check_reads_what_was_set_aside(text: str) -> None:
    # A card spelled with dashes right after a hex letter or a UUID piece reads as part of the
    # piece in raw bytes; the planted-digits check, made on the untouched bytes, still finds it.
    scan = Scan(planted=frozenset({"4111111111111111"}))
    scan.text("sample", text, raw=True)
    assert len(scan.planted_hits) == 1

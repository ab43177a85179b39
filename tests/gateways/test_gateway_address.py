"""Billing-address fields are brought to what the case keeps, whatever the gateway sent."""

from __future__ import annotations

import pytest

from recovery.gateways.common import address_postal_code, address_state


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        ("CA", "US", "CA"),
        ("ca", "US", "CA"),
        (" California ", "US", "CA"),
        ("new york", None, "NY"),
        ("Puerto Rico", "PR", "PR"),
        ("Ontario", "CA", "Ontario"),  # fits the column: kept as sent
        ("Baden-Württemberg", "DE", None),  # too long for the column and not a US state
        ("Californiaa", "US", None),
        ("Calif", "US", "Calif"),  # kept, so the calling rules can say it is not a state
        ("", "US", None),
        (None, "US", None),
        (42, "US", None),
    ],
)
def test_address_state(value: object, country: str | None, expected: str | None) -> None:
    assert address_state(value, country) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("94107", "94107"),
        (" 94107-1234 ", "94107-1234"),
        ("SW1A 1AA", "SW1A 1AA"),
        ("1234567890123456", "1234567890123456"),
        ("12345678901234567", None),
        ("", None),
        (94107, None),
    ],
)
def test_address_postal_code(value: object, expected: str | None) -> None:
    assert address_postal_code(value) == expected

"""Candidate time zones and jurisdictions of a contact."""

from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import geocoder

from recovery.domain.compliance import resolve_contact
from recovery.domain.compliance.zones import _tables, is_zone, mask_phone, normalise_state
from recovery.domain.models import ContactPoint

NY, CHI, DEN, LA = "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"
BOISE, ANCHORAGE, ADAK = "America/Boise", "America/Anchorage", "America/Adak"


def zones(**kwargs: str) -> tuple[str, ...]:
    return resolve_contact(ContactPoint(**kwargs)).timezones


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+12085551234", (BOISE, LA)),  # Idaho: Mountain south, Pacific panhandle
        ("+19075551234", (ADAK, ANCHORAGE)),  # Alaska: Anchorage and the Aleutians
        ("+18505551234", (NY,)),  # Florida panhandle, an Eastern exchange
        ("+18504341234", (CHI,)),  # Pensacola: a Central exchange of the same area code
        ("+14155551234", (LA,)),
        ("+12125551234", (NY,)),
        ("+17875551234", ("America/Puerto_Rico",)),
    ],
)
def test_phone_zones(phone: str, expected: tuple[str, ...]) -> None:
    assert zones(phone_e164=phone) == expected


@pytest.mark.parametrize(
    ("state", "postal_code", "expected"),
    [
        ("FL", "32501", (CHI,)),  # Pensacola
        ("FL", "33101", (NY,)),  # Miami
        ("FL", "32401", (CHI, NY)),  # Panama City prefix straddles the line: both
        ("FL", None, (CHI, NY)),  # unknown postal code: every zone of the state
        ("FL", "not-a-zip", (CHI, NY)),
        ("ID", "83814", (LA,)),  # Coeur d'Alene
        ("ID", "83702", (BOISE,)),
        ("ID", None, (BOISE, LA)),
        ("KY", "40202", (NY,)),  # Louisville
        ("KY", "42001", (CHI,)),  # Paducah
        ("KY", None, (CHI, NY)),
        ("TX", "79901", (DEN,)),  # El Paso
        ("TX", "75201-1234", (CHI,)),  # ZIP+4
        ("AK", "99546", (ADAK,)),
        ("AK", "99501", (ANCHORAGE,)),
        ("Florida", "33101", (NY,)),  # full names are accepted
        ("ca", None, (LA,)),
    ],
)
def test_address_zones(state: str, postal_code: str | None, expected: tuple[str, ...]) -> None:
    kwargs = {"state": state} | ({"postal_code": postal_code} if postal_code else {})
    assert zones(**kwargs) == expected


def test_candidates_are_the_union_of_every_source() -> None:
    contact = ContactPoint(
        phone_e164="+12085551234", state="FL", postal_code="32501", explicit_tz="America/Denver"
    )
    resolution = resolve_contact(contact)
    assert resolution.timezones == (BOISE, CHI, DEN, LA)
    assert resolution.jurisdictions == ("US", "US-FL", "US-ID")
    assert resolution.reasons == ()


def test_jurisdictions_name_both_states_when_phone_and_address_differ() -> None:
    contact = ContactPoint(phone_e164="+13055551234", state="GA")
    assert resolve_contact(contact).jurisdictions == ("US", "US-FL", "US-GA")


def test_territories_are_us_jurisdictions() -> None:
    assert resolve_contact(ContactPoint(phone_e164="+17875551234")).jurisdictions == (
        "US",
        "US-PR",
    )


def test_a_foreign_number_names_its_country() -> None:
    resolution = resolve_contact(ContactPoint(phone_e164="+14165551234"))  # Toronto
    assert resolution.timezones == ("America/Toronto",)
    assert resolution.jurisdictions == ("US", "CA")


@pytest.mark.parametrize(
    ("contact", "fragment"),
    [
        (ContactPoint(phone_e164="+15555555555"), "not a valid number"),
        (ContactPoint(phone_e164="+1 305 555 1234"), "not in E.164 form"),
        (ContactPoint(phone_e164="3055551234"), "not in E.164 form"),
        (ContactPoint(phone_e164="+18005551234"), "non-geographic"),  # toll-free, no address
        (ContactPoint(phone_e164="+14155551234", explicit_tz="Mars/Olympus"), "IANA"),
        (ContactPoint(phone_e164="+14155551234", explicit_tz="Etc/Unknown"), "IANA"),
        (ContactPoint(phone_e164="+14155551234", state="XX"), "not a US state"),
        (ContactPoint(), "no phone number"),
        # A valid number with an address still cannot be dialled when the number is bad.
        (ContactPoint(phone_e164="+15555555555", state="FL"), "not a valid number"),
    ],
)
def test_unknown_zone_is_never_dialable(contact: ContactPoint, fragment: str) -> None:
    resolution = resolve_contact(contact)
    assert resolution.timezones == ()
    assert resolution.unknown
    assert all(r.startswith("timezone_unknown: ") for r in resolution.reasons)
    assert fragment in " ".join(resolution.reasons)


def test_toll_free_number_uses_the_address() -> None:
    resolution = resolve_contact(
        ContactPoint(phone_e164="+18005551234", state="TX", postal_code="79901")
    )
    assert resolution.timezones == (DEN,)
    assert resolution.jurisdictions == ("US", "US-TX")


def test_reasons_mask_the_phone_number() -> None:
    reasons = " ".join(resolve_contact(ContactPoint(phone_e164="+15555550123")).reasons)
    assert "0123" in reasons
    assert "555555" not in reasons


def test_mask_phone_keeps_the_last_four_digits() -> None:
    assert mask_phone("+13055550123") == "+*******0123"
    assert mask_phone(None) == "<none>"


def test_resolution_is_cached() -> None:
    a = ContactPoint(phone_e164="+13055550123", state="FL")
    b = ContactPoint(phone_e164="+13055550123", state="FL")
    assert resolve_contact(a) is resolve_contact(b)


def test_zone_and_state_helpers() -> None:
    assert is_zone("America/Chicago")
    assert not is_zone("Etc/Unknown")
    assert not is_zone("../etc/passwd")
    assert normalise_state("new york") == "NY"
    assert normalise_state("Atlantis") is None


def test_state_zone_table_names_only_real_zones() -> None:
    tables = _tables()
    for code, entry in tables.states.items():
        named = set(entry.zones) | set(entry.default)
        named |= {z for _, zs in entry.postal for z in zs}
        assert all(is_zone(z) for z in named), code
        # Whatever the postal code, the zones are among the state's own.
        assert set(entry.default) <= set(entry.zones), code
        assert {z for _, zs in entry.postal for z in zs} <= set(entry.zones), code


def test_area_code_table_agrees_with_the_phonenumbers_geocoder() -> None:
    names = {name: code for name, code in _tables().names.items()}
    names["washington state"] = "WA"
    checked = 0
    for npa, state in _tables().area_codes.items():
        for exchange in ("555", "234", "456", "789", "321", "200", "900"):
            number = phonenumbers.parse(f"+1{npa}{exchange}0123")
            if phonenumbers.is_valid_number(number):
                break
        else:
            continue
        description = geocoder.description_for_number(number, "en")
        if not description:
            continue
        named = description.rsplit(", ", 1)[1] if ", " in description else description
        assert names.get(named.lower(), named) == state, (npa, description)
        checked += 1
    assert checked > 300

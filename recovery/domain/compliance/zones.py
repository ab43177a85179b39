"""Candidate time zones and jurisdictions of a contact.

The candidate zones are the union of the explicit zone, the phone number's zones and the
billing address's zones; a call must be permitted in each of them. The jurisdictions are the
country plus the billing-address state and the phone's area-code state. When no zone can be
determined the contact is never dialled: the resolution carries ``timezone_unknown``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import yaml
from phonenumbers import timezone as phone_timezone
from pydantic import BaseModel

from recovery.domain.models import ContactPoint

TIMEZONE_UNKNOWN = "timezone_unknown"
UNKNOWN_ZONE = "Etc/Unknown"
# North American regions that are US territories: their state-level rules apply.
US_TERRITORIES = frozenset({"PR", "VI", "GU", "AS", "MP"})

_DATA_DIR = Path(__file__).resolve().parents[2] / "data"
_E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")
_ZIP_RE = re.compile(r"^(\d{5})(?:-?\d{4})?$")


class Resolution(BaseModel, frozen=True):
    """Where a contact is: candidate zones, applicable jurisdictions, and any problem."""

    timezones: tuple[str, ...]
    jurisdictions: tuple[str, ...]
    reasons: tuple[str, ...] = ()

    @property
    def unknown(self) -> bool:
        return not self.timezones


def mask_phone(phone: str | None) -> str:
    """A phone number fit for logs and reasons: only the last four digits are kept."""
    if not phone:
        return "<none>"
    digits = [c for c in phone if c.isdigit()]
    keep = "".join(digits[-4:])
    return ("+" if phone.startswith("+") else "") + "*" * max(len(digits) - 4, 0) + keep


def is_zone(key: str) -> bool:
    """Whether ``key`` names an IANA zone this machine's tz database knows."""
    return _zone_ok(key)


@cache
def _zone_ok(key: str) -> bool:
    if not key or key == UNKNOWN_ZONE:
        return False
    try:
        ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class _StateZones:
    zones: tuple[str, ...]
    default: tuple[str, ...]
    postal: tuple[tuple[str, tuple[str, ...]], ...]  # longest prefix first


@dataclass(frozen=True, slots=True)
class _ZoneTables:
    states: dict[str, _StateZones]
    names: dict[str, str]
    area_codes: dict[str, str]


def _expand_prefixes(key: str) -> list[str]:
    first, sep, last = key.partition("-")
    if not sep:
        return [first]
    width = len(first)
    return [str(n).zfill(width) for n in range(int(first), int(last) + 1)]


@cache
def _tables() -> _ZoneTables:
    raw: dict[str, Any] = yaml.safe_load((_DATA_DIR / "calling_zones.yaml").read_text("utf-8"))
    states: dict[str, _StateZones] = {}
    for code, entry in raw["states"].items():
        zones = tuple(entry["zones"])
        postal: list[tuple[str, tuple[str, ...]]] = []
        for key, zs in (entry.get("postal") or {}).items():
            postal.extend((prefix, tuple(zs)) for prefix in _expand_prefixes(str(key)))
        postal.sort(key=lambda item: -len(item[0]))
        states[code] = _StateZones(zones, tuple(entry.get("default", zones)), tuple(postal))
    area = json.loads((_DATA_DIR / "calling_area_codes.json").read_text("utf-8"))
    names = {str(k).lower(): str(v) for k, v in raw["names"].items()}
    return _ZoneTables(states=states, names=names, area_codes=dict(area["area_codes"]))


class _Masked:
    """Masks the number only if a message is actually written (most lookups write none)."""

    __slots__ = ("phone",)

    def __init__(self, phone: str) -> None:
        self.phone = phone

    def __format__(self, spec: str) -> str:
        return mask_phone(self.phone)


@dataclass(frozen=True, slots=True)
class _PhoneFacts:
    valid: bool
    zones: tuple[str, ...]  # empty: the number says nothing about where the customer is
    jurisdictions: tuple[str, ...]
    note: str | None  # why the number gives no zone


@lru_cache(maxsize=1 << 17)
def _phone_facts(phone: str) -> _PhoneFacts:
    masked = _Masked(phone)
    if not _E164_RE.match(phone):
        return _PhoneFacts(False, (), (), f"phone number {masked} is not in E.164 form")
    if len(phone) == 12 and phone.startswith("+1"):
        # A strict E.164 North American number parses to exactly this; building it directly
        # skips the general parser, a third of the cost of a first sight of a number.
        number = phonenumbers.PhoneNumber(country_code=1, national_number=int(phone[2:]))
    else:
        try:
            number = phonenumbers.parse(phone, None)
        except phonenumbers.NumberParseException:
            return _PhoneFacts(False, (), (), f"phone number {masked} cannot be parsed")
    kind = phonenumbers.number_type(number)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        return _PhoneFacts(False, (), (), f"phone number {masked} is not a valid number")
    us_state = None
    if number.country_code == 1:
        # Area codes of the table are US ones; a valid number there is a US number.
        us_state = _tables().area_codes.get(str(number.national_number)[:3])
    region = "US" if us_state else (phonenumbers.region_code_for_number(number) or "")
    jurisdictions: list[str] = []
    if region == "US":
        jurisdictions = ["US"] + ([f"US-{us_state}"] if us_state else [])
    elif region in US_TERRITORIES:
        jurisdictions = ["US", f"US-{region}"]
    elif region:
        jurisdictions = [region]
    if not phonenumbers.is_number_type_geographical(kind, number.country_code or 0):
        return _PhoneFacts(True, (), tuple(jurisdictions), f"{masked} is a non-geographic number")
    zones = tuple(
        z for z in phone_timezone.time_zones_for_geographical_number(number) if _zone_ok(z)
    )
    note = None if zones else f"the phone data has no time zone for {masked}"
    return _PhoneFacts(True, zones, tuple(jurisdictions), note)


def normalise_state(state: str | None) -> str | None:
    """A two-letter state code from a code or a full name; None when unknown."""
    if not state:
        return None
    tables = _tables()
    text = state.strip()
    if text.upper() in tables.states:
        return text.upper()
    return tables.names.get(text.lower())


@lru_cache(maxsize=1 << 14)
def _address_facts(
    country: str, state: str | None, postal_code: str | None
) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    """(zones, jurisdictions, problem) of a billing address."""
    country = (country or "").strip().upper()
    if country in US_TERRITORIES and not state:
        country, state = "US", country
    if country != "US":
        jurisdictions = (country,) if country else ()
        return (), jurisdictions, None
    if not state:
        return (), ("US",), None
    code = normalise_state(state)
    if code is None:
        return (), ("US",), f"billing state {state!r} is not a US state or territory"
    entry = _tables().states[code]
    match = _ZIP_RE.match((postal_code or "").strip())
    if not match:
        zones = entry.zones
    else:
        zip5 = match.group(1)
        zones = next((zs for prefix, zs in entry.postal if zip5.startswith(prefix)), entry.default)
    return zones, ("US", f"US-{code}"), None


def _order_jurisdictions(items: set[str]) -> tuple[str, ...]:
    countries = sorted(j for j in items if "-" not in j)
    if "US" in countries:
        countries.remove("US")
        countries.insert(0, "US")
    return (*countries, *sorted(j for j in items if "-" in j))


def resolve_contact(contact: ContactPoint) -> Resolution:
    """Candidate zones and jurisdictions of a contact (cached: phone parsing is slow)."""
    return _resolve(contact)


@lru_cache(maxsize=1 << 17)
def _resolve(contact: ContactPoint) -> Resolution:
    phone = _phone_facts(contact.phone_e164) if contact.phone_e164 is not None else None
    address = _address_facts(contact.country, contact.state, contact.postal_code)
    return _combine(phone, address, contact.explicit_tz)


# Many contacts share the same phone facts, address facts and explicit zone: the combined
# resolution is cached on those, so a new contact costs little beyond its phone lookup.
@lru_cache(maxsize=1 << 14)
def _combine(
    phone: _PhoneFacts | None,
    address: tuple[tuple[str, ...], tuple[str, ...], str | None],
    explicit_tz: str | None,
) -> Resolution:
    zones: set[str] = set()
    jurisdictions: set[str] = set()
    problems: list[str] = []
    notes: list[str] = []

    if explicit_tz is not None:
        if _zone_ok(explicit_tz):
            zones.add(explicit_tz)
        else:
            problems.append(f"the explicit time zone {explicit_tz!r} is not an IANA zone")

    if phone is not None:
        if not phone.valid:
            problems.append(phone.note or "the phone number is not valid")
        zones.update(phone.zones)
        jurisdictions.update(phone.jurisdictions)
        if phone.note and phone.valid:
            notes.append(phone.note)

    address_zones, address_jurisdictions, problem = address
    if problem:
        problems.append(problem)
    zones.update(address_zones)
    jurisdictions.update(address_jurisdictions)

    ordered = _order_jurisdictions(jurisdictions)
    if problems:
        return Resolution(
            timezones=(),
            jurisdictions=ordered,
            reasons=tuple(f"{TIMEZONE_UNKNOWN}: {p}" for p in problems),
        )
    if not zones:
        if notes:
            detail = "; ".join(notes) + ", and the billing address gives no zone"
        else:
            detail = "no phone number, explicit time zone or billing address places the customer"
        return Resolution(
            timezones=(), jurisdictions=ordered, reasons=(f"{TIMEZONE_UNKNOWN}: {detail}",)
        )
    return Resolution(timezones=tuple(sorted(zones)), jurisdictions=ordered, reasons=())


@cache
def us_zones() -> tuple[str, ...]:
    """Every zone a US contact can be given: the billing-address table's zones and the phone
    data's zones of every area code the table knows."""
    tables = _tables()
    zones: set[str] = set()
    for entry in tables.states.values():
        zones.update(entry.zones)
        zones.update(entry.default)
        for _prefix, listed in entry.postal:
            zones.update(listed)
    for area in tables.area_codes:
        zones.update(_phone_facts(f"+1{area}5550100").zones)
    return tuple(sorted(zones))

"""Candidate time zones and jurisdictions of a contact."""

from __future__ import annotations

from pydantic import BaseModel

from recovery.domain.models import ContactPoint


class Resolution(BaseModel, frozen=True):
    timezones: tuple[str, ...]
    jurisdictions: tuple[str, ...]
    reasons: tuple[str, ...] = ()


def resolve_contact(contact: ContactPoint) -> Resolution:
    raise NotImplementedError

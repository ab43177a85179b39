"""Keyed fingerprints of personal data (a phone number, a customer reference): what the store
keeps once a person's data is erased, so that a suppressed number stays blocked and the
erasure can be audited, while the value cannot be read back without the key (a phone number
has too few possibilities for an unkeyed hash)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

PREFIX = "fp:"
# 28 hex digits (112 bits): the fingerprint fits the 32 characters of a phone column.
DIGITS = 28

Fingerprint = Callable[[str], str]


def keyed_fingerprint(key: bytes) -> Fingerprint:
    """``fp:`` and an HMAC-SHA256 of the value under ``key``, truncated. Idempotent: a
    fingerprint is its own fingerprint, so erasing twice changes nothing."""
    if not key:
        raise ValueError("the fingerprint key is empty")

    def fingerprint(value: str) -> str:
        if is_fingerprint(value):
            return value
        digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
        return PREFIX + digest[:DIGITS]

    return fingerprint


def is_fingerprint(value: str | None) -> bool:
    return (
        value is not None
        and len(value) == len(PREFIX) + DIGITS
        and value.startswith(PREFIX)
        and all(c in "0123456789abcdef" for c in value[len(PREFIX) :])
    )

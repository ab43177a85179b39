"""The ``t=<unix>,v1=<hex>`` HMAC-SHA256 scheme (Stripe's), used for the generic source and
for contact-centre disposition callbacks. The signed message is ``"{t}.{raw body}"``."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence


class SignatureError(ValueError):
    """The signature is missing, malformed, stale or matches none of the secrets."""


def sign(body: bytes, secret: str, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    now: float,
    tolerance_seconds: int = 300,
) -> int:
    """Check ``header`` against every secret (rotation); returns the signed timestamp."""
    if not header:
        raise SignatureError("missing signature header")
    timestamp: int | None = None
    candidates: list[bytes] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            # ASCII digits only: int() would also take "+1", "1_0" and other scripts' digits.
            if not (value.isascii() and value.isdigit() and len(value) <= 12):
                raise SignatureError("signature timestamp is not an integer")
            timestamp = int(value)
        elif key == "v1" and value:
            # Compared as bytes: a non-ASCII value simply matches nothing.
            candidates.append(value.encode("utf-8", "surrogatepass"))
    if timestamp is None or not candidates:
        raise SignatureError("signature header must carry t=<unix seconds> and v1=<hex>")
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureError(f"signature timestamp outside the {tolerance_seconds} s tolerance")
    message = f"{timestamp}.".encode() + body
    for secret in secrets:
        expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest().encode()
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            return timestamp
    raise SignatureError("no signature matches any configured secret")

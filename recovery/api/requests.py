"""What every route does with a request before its own work: read the body within a limit,
check its content type, decode and parse it, and refuse with a status and a reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from recovery.domain.models import CardUpdated, PaymentFailure, PaymentSucceeded
from recovery.domain.pan import FloatWatch, Marker, plain_marker, redact_parsed_json
from recovery.gateways.common import Ignored, PayloadError, guard_normalised
from recovery.store.inbox import storable_problem

# Bodies up to this size are checked in the event loop (tens of microseconds for a typical
# event, less than a thread hand-off costs); a larger one goes to a worker thread so that it
# does not hold up every other request while it is parsed and scanned.
INLINE_BODY_BYTES = 64 * 1024

Normalised = PaymentFailure | PaymentSucceeded | CardUpdated | Ignored


class Rejected(Exception):
    """A request answered with an error status; nothing was stored."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def rejected_response(exc: Rejected) -> JSONResponse:
    """The answer to a refused request (a 503 asks the sender to come back)."""
    headers = {"Retry-After": "5"} if exc.status == 503 else {}
    return error(exc.status, exc.message, **headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing anything over ``limit`` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise Rejected(413, f"body larger than {limit} bytes")
        except ValueError:
            raise Rejected(400, "invalid Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def require_content_type(request: Request, expected: str) -> None:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != expected:
        raise Rejected(415, f"Content-Type must be {expected}")


def require_json(request: Request) -> None:
    require_content_type(request, "application/json")


def require_form(request: Request) -> None:
    require_content_type(request, "application/x-www-form-urlencoded")


def decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(400, "body is not valid UTF-8") from None


def parse_json(text: str, parse_float: Callable[[str], Any] | None = None) -> Any:
    try:
        return json.loads(text, parse_float=parse_float)
    except RecursionError:
        raise Rejected(400, "JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise Rejected(400, f"malformed JSON at line {exc.lineno} column {exc.colno}") from None
    except ValueError:
        # Python refuses to convert an integer of more than 4300 digits.
        raise Rejected(400, "JSON number too long") from None


def parse_redacted(text: str, marker: Marker = plain_marker) -> tuple[Any, int]:
    """The parsed JSON with card numbers replaced, and how many were replaced."""
    floats = FloatWatch()
    value = parse_json(text, floats)
    try:
        return redact_parsed_json(text, value, marker, risky_floats=floats.risky)
    except RecursionError:
        # The card-number walk needs more stack than the parser: what cannot be scanned is
        # refused, never stored unscanned.
        raise Rejected(400, "JSON nested too deeply") from None


def normalise_text(
    text: str,
    normalise: Callable[[Any], Normalised],
    marker: Marker,
    *,
    label: str,
    object_only: bool,
) -> tuple[Normalised, int]:
    """Parse, redact card numbers, normalise, and check what the normaliser built once more:
    a 400 with ``label`` for what is not an event of the source. The count is of every card
    number found, in the body and in the fields built from it."""
    event, found = parse_redacted(text, marker)
    if object_only and not isinstance(event, dict):
        raise Rejected(400, "body must be a JSON object")
    try:
        result = normalise(event)
    except PayloadError as exc:
        raise Rejected(400, f"{label}: {exc}") from None
    result, again = guard_normalised(result, marker)
    return result, found + again


def check_storable(result: Normalised) -> None:
    """Refuse an event whose identity the store cannot hold as it is: a 4xx, not a store
    failure answered with 5xx."""
    key = result.business_key if isinstance(result, PaymentFailure | PaymentSucceeded) else None
    problem = storable_problem(result.event_id, result.event_type, key)
    if problem is not None:
        raise Rejected(400, problem)

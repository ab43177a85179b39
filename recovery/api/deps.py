"""FastAPI dependencies shared by the routes: the bearer token of the operators' endpoints."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Header, HTTPException

from recovery.settings import Settings


def bearer_token(settings: Settings) -> Callable[[str | None], None]:
    """A dependency that refuses a request without the admin bearer token (401).

    An empty (or blank) configured token opens nothing: every request is refused, since an
    empty bearer would otherwise match it."""
    token = settings.admin_token.get_secret_value().strip()

    def authorised(authorization: str | None = Header(default=None)) -> None:
        scheme, _, presented = (authorization or "").partition(" ")
        presented = presented.strip()
        if (
            not token
            or not presented
            or scheme.lower() != "bearer"
            or not hmac.compare_digest(presented.encode(), token.encode())
        ):
            raise HTTPException(
                status_code=401,
                detail="a valid bearer token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return authorised

"""The emulator's refusals, turned into Genesys Cloud's error body by the HTTP layer."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error the HTTP layer answers with an ``ErrorBody`` (SDK ``models/error_body.py``:
    message, code, status, messageParams, contextId, details, errors)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        params: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
        details: list[dict[str, Any]] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.params = params or {}
        self.errors = errors or []
        self.details = details or []

"""Which failures a task retries: transient ones only (connection, timeouts, 429, 5xx, a
locked or unreachable database). Business outcomes have their own exceptions and never retry."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.exc import DBAPIError, OperationalError

from recovery.contact_center.errors import TransientContactCenterError


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TransientContactCenterError | httpx.TransportError | OperationalError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code == 429 or exc.response.status_code >= 500
    return False


def retry_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """``retry_condition_fn`` for tasks: retry only when the failure was transient."""
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False

"""Which failures a task retries, so that each class of error is retried in exactly one layer.

| error                                                          | retried by                  |
|----------------------------------------------------------------|-----------------------------|
| contact centre 429 (with or without Retry-After)               | the client (waits as told)  |
| contact centre 502, 503, 504; connection refused, timeout      | the client (3 s, 9 s, 27 s) |
| contact centre other 5xx (500, 501, 505, ...)                  | the task                    |
| contact centre 2xx that leaves out contacts it was sent        | the task                    |
| store: locked, unreachable, connection dropped                 | the task                    |
| raw HTTP 429, 5xx, connection errors (a client with no retries) | the task                   |
| anything else: 4xx, refused credentials, bad data, outcomes    | nobody                      |

The Genesys client (``recovery.contact_center.client``) retries rate limits and gateway errors
in place, where it knows the ``Retry-After`` header and the rate-limit budget. Once it gives up
(``TransientContactCenterError`` with the status it gave up on, or raised from the transport
error of a connection that never answered), a task retry would only repeat the same waits
nested in its own (up to 4 x 6 requests for one 503 outage), so the task fails: its contacts
stay planned and leased, and the next run sends them again under the same ids (an upsert).
The client does not retry a 500 (the contact centre may have applied the request before
failing), so the task does, once the contact centre has had a moment. The store has no
retries of its own: the task retries its transient failures, and every task is idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import httpx
from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff
from sqlalchemy.exc import DBAPIError, OperationalError

from recovery.contact_center.client import RETRIABLE_STATUSES
from recovery.contact_center.errors import TransientContactCenterError

P = ParamSpec("P")
R = TypeVar("R")

# Task-level retries (for the classes above that the task retries).
STORE_RETRIES = 4
CONTACT_CENTRE_RETRIES = 5
STORE_BACKOFF = exponential_backoff(backoff_factor=2)
CONTACT_CENTRE_BACKOFF = exponential_backoff(backoff_factor=3)
JITTER = 0.5


def retried_by_client(exc: TransientContactCenterError) -> bool:
    """Whether the contact-centre client already retried this error in place: a rate limit,
    a gateway error, or a connection that never answered (raised from the transport error)."""
    if exc.status == 429 or exc.status in RETRIABLE_STATUSES:
        return True
    return exc.status is None and isinstance(exc.__cause__, httpx.TransportError)


def is_transient(exc: BaseException) -> bool:
    """Whether a task should run again after ``exc`` (see the table above)."""
    if isinstance(exc, TransientContactCenterError):
        return not retried_by_client(exc)
    if isinstance(exc, httpx.TransportError | OperationalError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code == 429 or exc.response.status_code >= 500
    return False


def retry_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """``retry_condition_fn`` for tasks: retry only what ``is_transient`` says."""
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


def store_task(name: str, run_name: str | None = None) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task whose one effect is on the store: it retries the store's transient failures."""
    return task(
        name=name,
        task_run_name=run_name,
        retries=STORE_RETRIES,
        retry_delay_seconds=STORE_BACKOFF,
        retry_jitter_factor=JITTER,
        retry_condition_fn=retry_transient,
        cache_policy=NO_CACHE,
    )


def contact_centre_task(
    name: str, run_name: str | None = None
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task whose one effect is at the contact centre: it retries what the client does not
    (the table above). A retried task sends the same contact ids again, which the contact
    centre treats as an update."""
    return task(
        name=name,
        task_run_name=run_name,
        retries=CONTACT_CENTRE_RETRIES,
        retry_delay_seconds=CONTACT_CENTRE_BACKOFF,
        retry_jitter_factor=JITTER,
        retry_condition_fn=retry_transient,
        cache_policy=NO_CACHE,
    )

"""Acquisitions from the shared Prefect rate limit over real HTTP: a busy server's answer (503,
as Prefect's server on SQLite gives when two writes meet) is tried again within a fraction of
a second, not after Prefect's client's seconds-long back-off; a refusal (423) after the
server's Retry-After; a missing limit is an error that names the command to run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prefect.settings import PREFECT_API_URL, temporary_settings

from recovery.contact_center.budget import (
    BUSY_RETRIES,
    BUSY_RETRY_FIRST,
    PrefectRateLimit,
    RateLimitMissing,
)
from recovery.contact_center.emulator.server import serve_in_thread


class Script:
    """What the fake server answers, in order (the last answer repeats), and what it got."""

    def __init__(self, *answers: Response) -> None:
        self.answers = list(answers)
        self.bodies: list[dict] = []
        self.lock = threading.Lock()

    def next(self, body: dict) -> Response:
        with self.lock:
            self.bodies.append(body)
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def ok() -> Response:
    return JSONResponse([{"id": "5e1b6c5c-0000-4000-8000-000000000000", "name": "genesys"}])


@contextmanager
def prefect_api(script: Script) -> Iterator[str]:
    app = FastAPI()

    @app.post("/api/v2/concurrency_limits/increment")
    async def increment(request: Request) -> Response:
        return script.next(await request.json())

    with serve_in_thread(app) as url, temporary_settings({PREFECT_API_URL: f"{url}/api"}):
        yield f"{url}/api"


def acquire(
    api_url: str, slots: int, least: int | None = None
) -> tuple[PrefectRateLimit, list[float], int]:
    """Take ``slots`` (``least`` at the least, when given); the limit, its sleeps and the
    slots taken."""
    waits: list[float] = []
    limit = PrefectRateLimit(api_url, "genesys", sleep=waits.append)
    try:
        if least is None:
            limit(slots)
            taken = slots
        else:
            taken = limit.between(slots, least)
    finally:
        limit.close()
    return limit, waits, taken


def test_a_busy_answer_is_tried_again_within_a_fraction_of_a_second() -> None:
    script = Script(
        JSONResponse({"exception_message": "Service Unavailable"}, status_code=503),
        JSONResponse({"exception_message": "Service Unavailable"}, status_code=503),
        ok(),
    )
    with prefect_api(script) as api_url:
        limit, waits, _ = acquire(api_url, 20)
    assert waits == [BUSY_RETRY_FIRST, 2 * BUSY_RETRY_FIRST]
    assert limit.busy == 2 and limit.refused == 0
    assert script.bodies == [{"names": ["genesys"], "slots": 20, "mode": "rate_limit"}] * 3


def test_a_refusal_waits_for_the_servers_retry_after() -> None:
    script = Script(Response(status_code=423, headers={"Retry-After": "0.75"}), ok())
    with prefect_api(script) as api_url:
        limit, waits, _ = acquire(api_url, 5)
    assert waits == [0.75] and limit.refused == 1 and limit.busy == 0


def test_a_server_that_stays_busy_fails_the_acquisition_in_the_end() -> None:
    script = Script(JSONResponse({"exception_message": "Service Unavailable"}, status_code=503))
    with prefect_api(script) as api_url, pytest.raises(Exception, match="503"):
        acquire(api_url, 1)
    assert len(script.bodies) == BUSY_RETRIES + 1


def test_a_missing_limit_names_the_command_that_creates_it() -> None:
    script = Script(JSONResponse([]))
    with prefect_api(script) as api_url, pytest.raises(RateLimitMissing, match="prefect setup"):
        acquire(api_url, 1)


def test_a_refused_block_is_asked_for_again_at_once_a_quarter_the_size() -> None:
    # The Retry-After of a refused block of 20 is the time 20 slots take to free up; a request
    # that needs one slot does not wait for that.
    refused = Response(status_code=423, headers={"Retry-After": "4"})
    script = Script(refused, refused, ok())
    with prefect_api(script) as api_url:
        limit, waits, taken = acquire(api_url, 20, least=1)
    assert taken == 1 and waits == [] and limit.refused == 2
    assert [body["slots"] for body in script.bodies] == [20, 5, 1]


def test_a_refusal_of_the_least_waits_for_the_retry_after() -> None:
    refused = Response(status_code=423, headers={"Retry-After": "0.5"})
    script = Script(refused, refused, ok())
    with prefect_api(script) as api_url:
        limit, waits, taken = acquire(api_url, 20, least=8)
    assert taken == 8 and waits == [0.5]
    assert [body["slots"] for body in script.bodies] == [20, 8, 8]

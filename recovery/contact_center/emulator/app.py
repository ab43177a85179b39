"""The emulator's HTTP surface: Genesys Cloud's login and outbound API on one address, plus a
control API under ``/__emulator__/`` for tests and benchmarks.

One address serves ``/oauth/token`` and ``/api/v2/...``, so the official SDK works with its
host set to that address (without ``//api.`` in it the SDK sends its login there too).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from recovery.clock import Clock
from recovery.contact_center.emulator.dialer import deliver, dial, run_dialer
from recovery.contact_center.emulator.scenarios import SCENARIOS, get_scenario
from recovery.contact_center.emulator.state import (
    ApiError,
    ContactList,
    EmulatorConfig,
    EmulatorState,
    Fault,
)

API_PREFIX = "/api/v2/"
CONTROL_PREFIX = "/__emulator__"
DEFAULT_TIME_SET_ID = "default-callable-times"
# The zones the default time set lists; the dialer applies the same hours to any zone.
DEFAULT_TIME_SET_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    params: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error body shaped like Genesys Cloud's."""
    body = {
        "message": message,
        "code": code,
        "status": status,
        "messageParams": params or {},
        "contextId": str(uuid.uuid4()),
        "details": [],
        "errors": errors or [],
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _bool_param(request: Request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return False
    lowered = raw.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    raise ApiError(400, "bad.request", f"Query parameter {name} must be true or false.")


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw) if raw else None
    except ValueError as exc:
        raise ApiError(400, "bad.request", "The request body is not valid JSON.") from exc


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _time_set() -> dict[str, Any]:
    slots = [{"startTime": "08:00:00", "stopTime": "21:00:00", "day": d} for d in range(1, 8)]
    return {
        "id": DEFAULT_TIME_SET_ID,
        "name": "Default 08:00-21:00 local",
        "version": 1,
        "callableTimes": [{"timeZoneId": z, "timeSlots": slots} for z in DEFAULT_TIME_SET_ZONES],
        "selfUri": f"/api/v2/outbound/callabletimesets/{DEFAULT_TIME_SET_ID}",
    }


class _Control(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResetBody(_Control):
    keep_tokens: bool = True


class ScenarioBody(_Control):
    name: str
    seed: int | None = None
    drop_push_fraction: float | None = Field(default=None, ge=0.0, le=1.0)


class RateLimitBody(_Control):
    requests_per_minute: int | None = Field(ge=1)
    window: Literal["fixed", "sliding"] | None = None


class FaultBody(_Control):
    status: int = Field(ge=400, le=599)
    count: int = Field(default=1, ge=1)
    retry_after: int | None = Field(default=None, ge=0)
    apply: bool = False
    delay_seconds: float = Field(default=0.0, ge=0.0, le=60.0)


class PoisonBody(_Control):
    contact_id: str
    reason: str = "The contact failed validation."


class DialBody(_Control):
    at: AwareDatetime | None = None


class ListBody(_Control):
    id: str = Field(min_length=1)


class CallbackBody(_Control):
    url: str | None
    secret: str | None = None


class TokenLifetimeBody(_Control):
    seconds: int = Field(ge=1)


def create_emulator_app(
    config: EmulatorConfig,
    *,
    clock: Clock,
    monotonic: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The emulator as an ASGI app. Its state lives in ``app.state.emulator``.

    ``clock`` gives the time of tokens, contacts and dials (a virtual clock plays a campaign
    fast); ``monotonic`` measures the rate-limit windows, which are real time.
    """
    state = EmulatorState(config, clock=clock, monotonic=monotonic)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task: asyncio.Task[None] | None = None
        if state.config.dial_interval_seconds:
            task = asyncio.create_task(run_dialer(state, state.config.dial_interval_seconds, stop))
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task

    app = FastAPI(title="Genesys Cloud emulator", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.emulator = state

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(
            exc.status, exc.code, exc.message, params=exc.params, errors=exc.errors
        )

    @app.middleware("http")
    async def _api_gate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not request.url.path.startswith(API_PREFIX):
            return await call_next(request)
        with state.lock:
            state.counters.requests += 1
        token = _bearer(request)
        if token is None:
            return error_response(
                401,
                "authentication.required",
                "No authentication bearer token specified in authorization header.",
            )
        if not state.token_valid(token):
            return error_response(401, "bad.credentials", "Invalid login credentials.")
        decision = state.rate_check(token)
        headers: dict[str, str] = {}
        if decision is not None:
            headers = {
                "inin-ratelimit-count": str(decision.count),
                "inin-ratelimit-allowed": str(decision.limit),
                "inin-ratelimit-reset": str(decision.reset_seconds),
            }
            if not decision.allowed:
                seconds = decision.reset_seconds
                return error_response(
                    429,
                    "too.many.requests.retry.after",
                    f"Rate limit exceeded the maximum. Retry the request in [{seconds}] seconds",
                    params={"retryAfter": str(seconds)},
                    headers={**headers, "Retry-After": str(seconds)},
                )
        fault = state.take_fault()
        if fault is not None and not fault.apply:
            if fault.delay_seconds:
                await asyncio.sleep(fault.delay_seconds)
            return _fault_response(fault, headers)
        response = await call_next(request)
        if fault is not None:
            # Applied, then answered with an error (or too late): the client cannot tell.
            if fault.delay_seconds:
                await asyncio.sleep(fault.delay_seconds)
            return _fault_response(fault, headers)
        for name, value in headers.items():
            response.headers[name] = value
        return response

    # -- login -----------------------------------------------------------------------------

    @app.post("/oauth/token")
    async def oauth_token(request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("latin-1")).items()}
        if form.get("grant_type") != "client_credentials":
            return JSONResponse(
                {"error": "unsupported_grant_type", "description": "grant_type not supported"},
                status_code=400,
            )
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            client_id, _, client_secret = decoded.partition(":")
        issued = state.issue_token(client_id, client_secret)
        if issued is None:
            return JSONResponse(
                {"error": "invalid_client", "description": "client not found or bad secret"},
                status_code=401,
            )
        token, lifetime = issued
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": lifetime})

    # -- contact lists ---------------------------------------------------------------------

    base = "/api/v2/outbound/contactlists/{contact_list_id}/contacts"

    @app.post(base)
    async def add_contacts(contact_list_id: str, request: Request) -> JSONResponse:
        priority = _bool_param(request, "priority")
        clear = _bool_param(request, "clearSystemData")
        do_not_queue = _bool_param(request, "doNotQueue")
        body = await _json_body(request)
        answer = state.add_contacts(
            contact_list_id,
            body,
            priority=priority,
            clear_system_data=clear,
            do_not_queue=do_not_queue,
        )
        return JSONResponse(answer)

    @app.post(base + "/bulk")
    async def bulk_get(contact_list_id: str, request: Request) -> JSONResponse:
        return JSONResponse(state.bulk_get(contact_list_id, await _json_body(request)))

    @app.post(base + "/search")
    async def search(contact_list_id: str, request: Request) -> JSONResponse:
        return JSONResponse(state.search(contact_list_id, await _json_body(request)))

    @app.get(base + "/{contact_id}")
    async def get_contact(contact_list_id: str, contact_id: str) -> JSONResponse:
        return JSONResponse(state.get_contact(contact_list_id, contact_id))

    @app.put(base + "/{contact_id}")
    async def update_contact(
        contact_list_id: str, contact_id: str, request: Request
    ) -> JSONResponse:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "bad.request", "The request body must be a contact object.")
        with state.lock:
            state.get_contact(contact_list_id, contact_id)
            answer = state.add_contacts(
                contact_list_id,
                [{**body, "id": contact_id}],
                priority=False,
                clear_system_data=False,
                do_not_queue=True,
            )
        return JSONResponse(answer[0])

    @app.delete(base + "/{contact_id}")
    async def delete_contact(contact_list_id: str, contact_id: str) -> Response:
        state.delete_contact(contact_list_id, contact_id)
        return Response(status_code=204)

    @app.post("/api/v2/outbound/dnclists/{dnc_list_id}/phonenumbers")
    async def append_dnc(dnc_list_id: str, request: Request) -> Response:
        state.append_dnc(dnc_list_id, await _json_body(request))
        return Response(status_code=200)

    @app.get("/api/v2/outbound/callabletimesets")
    async def callable_time_sets() -> JSONResponse:
        return JSONResponse(
            {"entities": [_time_set()], "pageSize": 25, "pageNumber": 1, "total": 1, "pageCount": 1}
        )

    @app.get("/api/v2/outbound/callabletimesets/{time_set_id}")
    async def callable_time_set(time_set_id: str) -> JSONResponse:
        if time_set_id != DEFAULT_TIME_SET_ID:
            raise ApiError(404, "not.found", f"The callable time set {time_set_id} was not found.")
        return JSONResponse(_time_set())

    # -- control API -----------------------------------------------------------------------

    @app.post(CONTROL_PREFIX + "/reset")
    async def control_reset(body: ResetBody | None = None) -> dict[str, str]:
        state.reset(keep_tokens=(body or ResetBody()).keep_tokens)
        return {"status": "reset"}

    @app.post(CONTROL_PREFIX + "/scenario")
    async def control_scenario(body: ScenarioBody) -> dict[str, Any]:
        try:
            scenario = get_scenario(body.name, drop_push_fraction=body.drop_push_fraction)
        except ValueError as exc:
            raise ApiError(400, "bad.request", str(exc)) from exc
        with state.lock:
            state.scenario = scenario
            if body.seed is not None:
                state.seed = body.seed
            return {"scenario": scenario.name, "seed": state.seed}

    @app.get(CONTROL_PREFIX + "/scenarios")
    async def control_scenarios() -> list[str]:
        return sorted(SCENARIOS)

    @app.post(CONTROL_PREFIX + "/rate-limit")
    async def control_rate_limit(body: RateLimitBody) -> dict[str, Any]:
        state.set_rate_limit(body.requests_per_minute, body.window)
        return {"requests_per_minute": state.requests_per_minute, "window": state.rate_window}

    @app.post(CONTROL_PREFIX + "/revoke-tokens")
    async def control_revoke() -> dict[str, int]:
        return {"revoked": state.revoke_tokens()}

    @app.post(CONTROL_PREFIX + "/token-lifetime")
    async def control_token_lifetime(body: TokenLifetimeBody) -> dict[str, int]:
        with state.lock:
            state.config.token_lifetime_seconds = body.seconds
        return {"seconds": body.seconds}

    @app.post(CONTROL_PREFIX + "/faults")
    async def control_faults(body: FaultBody) -> dict[str, int]:
        with state.lock:
            state.faults.append(Fault(**body.model_dump()))
            return {"queued": len(state.faults)}

    @app.delete(CONTROL_PREFIX + "/faults")
    async def control_clear_faults() -> dict[str, str]:
        with state.lock:
            state.faults.clear()
            state.poisoned.clear()
        return {"status": "cleared"}

    @app.post(CONTROL_PREFIX + "/poison")
    async def control_poison(body: PoisonBody) -> dict[str, str]:
        with state.lock:
            state.poisoned[body.contact_id] = body.reason
        return {"poisoned": body.contact_id}

    @app.post(CONTROL_PREFIX + "/dial")
    async def control_dial(body: DialBody | None = None) -> dict[str, int]:
        at: datetime = (body.at if body and body.at else None) or state.clock.now()
        report = dial(state, at)
        sent, failed = await deliver(state, report.pushes)
        return {**report.summary(), "pushes_sent": sent, "pushes_failed": failed}

    @app.get(CONTROL_PREFIX + "/counters")
    async def control_counters() -> dict[str, int]:
        with state.lock:
            return state.counters.as_dict()

    @app.get(CONTROL_PREFIX + "/contact-lists/{contact_list_id}/contacts")
    async def control_contacts(contact_list_id: str) -> list[dict[str, Any]]:
        return state.snapshot(contact_list_id)

    @app.post(CONTROL_PREFIX + "/contact-lists")
    async def control_add_list(body: ListBody) -> dict[str, str]:
        with state.lock:
            state.lists.setdefault(body.id, ContactList(body.id))
        return {"id": body.id}

    @app.post(CONTROL_PREFIX + "/dnc-lists")
    async def control_add_dnc(body: ListBody) -> dict[str, str]:
        with state.lock:
            state.dnc.setdefault(body.id, set())
        return {"id": body.id}

    @app.get(CONTROL_PREFIX + "/dnc-lists/{dnc_list_id}")
    async def control_dnc(dnc_list_id: str) -> list[str]:
        with state.lock:
            if dnc_list_id not in state.dnc:
                raise ApiError(404, "not.found", f"The DNC list {dnc_list_id} does not exist.")
            return sorted(state.dnc[dnc_list_id])

    @app.post(CONTROL_PREFIX + "/callback")
    async def control_callback(body: CallbackBody) -> dict[str, str | None]:
        with state.lock:
            state.config.callback_url = body.url
            if body.secret is not None:
                state.config.callback_secret = body.secret
        return {"url": body.url}

    return app


def _fault_response(fault: Fault, headers: dict[str, str]) -> Response:
    if fault.status == 429:
        extra = dict(headers)
        if fault.retry_after is not None:
            extra["Retry-After"] = str(fault.retry_after)
            message = (
                "Rate limit exceeded the maximum. "
                f"Retry the request in [{fault.retry_after}] seconds"
            )
            return error_response(429, "too.many.requests.retry.after", message, headers=extra)
        return error_response(
            429, "too.many.requests", "Rate limit exceeded the maximum.", headers=extra
        )
    code = "internal.server.error" if fault.status == 500 else "service.unavailable"
    if fault.status < 500:
        code = "bad.request"
    return error_response(
        fault.status, code, f"Injected failure (HTTP {fault.status}).", headers=headers
    )

"""The emulator's HTTP surface: Genesys Cloud's login and the platform API it emulates on one
address, the notification WebSocket, and a control API under ``/__emulator__/`` for tests,
benchmarks and demos.

One address serves ``/oauth/token`` and ``/api/v2/...``, so the official SDK works with its
host set to that address (without ``//api.`` in it the SDK sends its login there too).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from recovery.clock import Clock
from recovery.contact_center.emulator import analytics, org
from recovery.contact_center.emulator.dialer import deliver, dial, pending, run_dialer
from recovery.contact_center.emulator.errors import ApiError
from recovery.contact_center.emulator.notifications import (
    HEARTBEAT,
    PONG,
    Connection,
    available_topics,
)
from recovery.contact_center.emulator.scenarios import SCENARIOS, get_scenario
from recovery.contact_center.emulator.state import (
    DEFAULT_COLUMNS,
    DEFAULT_TIME_SET_ID,
    DataActionTarget,
    EmulatorConfig,
    EmulatorState,
    Fault,
)

API_PREFIX = "/api/v2/"
CONTROL_PREFIX = "/__emulator__"
OUTBOUND = "/api/v2/outbound"

__all__ = ["DEFAULT_TIME_SET_ID", "create_emulator_app", "error_response"]


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    params: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An ``ErrorBody`` (SDK ``models/error_body.py``)."""
    body = {
        "message": message,
        "code": code,
        "status": status,
        "messageParams": params or {},
        "contextId": str(uuid.uuid4()),
        "details": details or [],
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


def _list_param(request: Request, name: str) -> list[str]:
    """A list query parameter: the SDK sends it comma-joined (``api_client.py``)."""
    values: list[str] = []
    for raw in request.query_params.getlist(name):
        values.extend(part for part in raw.split(",") if part)
    return values


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


class _Control(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResetBody(_Control):
    keep_tokens: bool = True


class ScenarioBody(_Control):
    name: str
    seed: int | None = None
    drop_event_fraction: float | None = Field(default=None, ge=0.0, le=1.0)


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


class TokenLifetimeBody(_Control):
    seconds: int = Field(ge=1)


def create_emulator_app(
    config: EmulatorConfig,
    *,
    clock: Clock,
    monotonic: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The emulator as an ASGI app. Its state lives in ``app.state.emulator``.

    ``clock`` gives the time of tokens, contacts, dials and conversations (a virtual clock
    plays a campaign fast); ``monotonic`` measures the rate-limit windows, which are real time.
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
            state.hub.close_all()
            if task is not None:
                await task

    app = FastAPI(title="Genesys Cloud emulator", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.emulator = state

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(
            exc.status,
            exc.code,
            exc.message,
            params=exc.params,
            errors=exc.errors,
            details=exc.details,
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
        request.state.token = token
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

    _outbound_routes(app, state)
    _platform_routes(app, state)
    _control_routes(app, state)
    return app


def _listing(request: Request, entities: list[dict[str, Any]], path: str) -> dict[str, Any]:
    size, number = org.paging(request.query_params)
    keep = org.name_filter(request.query_params)
    return org.listing(
        [e for e in entities if keep(e)], page_size=size, page_number=number, path=path
    )


def _outbound_routes(app: FastAPI, state: EmulatorState) -> None:
    """Contact lists, contacts, attempt limits, callable time sets, DNC lists, campaigns, rule
    sets and wrap-up code mappings (SDK ``apis/outbound_api.py``)."""

    @app.get(OUTBOUND + "/contactlists")
    async def contact_lists(request: Request) -> JSONResponse:
        with state.lock:
            entities = sorted(state.contact_lists.values(), key=lambda e: e["name"].lower())
            if _bool_param(request, "includeSize"):
                entities = [{**e, "size": len(state.lists[e["id"]].contacts)} for e in entities]
            wanted = _list_param(request, "id")
            if wanted:
                entities = [e for e in entities if e["id"] in wanted]
        return JSONResponse(_listing(request, entities, OUTBOUND + "/contactlists"))

    @app.post(OUTBOUND + "/contactlists")
    async def create_contact_list(request: Request) -> JSONResponse:
        return JSONResponse(state.create_contact_list(await _json_body(request)))

    @app.get(OUTBOUND + "/contactlists/{list_id}")
    async def get_contact_list(list_id: str, request: Request) -> JSONResponse:
        with state.lock:
            wire = dict(state.list_config(list_id))
            if _bool_param(request, "includeSize"):
                wire["size"] = len(state.lists[list_id].contacts)
        return JSONResponse(wire)

    @app.put(OUTBOUND + "/contactlists/{list_id}")
    async def update_contact_list(list_id: str, request: Request) -> JSONResponse:
        return JSONResponse(state.update_contact_list(list_id, await _json_body(request)))

    @app.delete(OUTBOUND + "/contactlists/{list_id}")
    async def delete_contact_list(list_id: str) -> Response:
        state.delete_contact_list(list_id)
        return Response(status_code=204)

    contacts = OUTBOUND + "/contactlists/{contact_list_id}/contacts"

    @app.post(contacts)
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

    @app.delete(contacts)
    async def delete_contacts(contact_list_id: str, request: Request) -> Response:
        """ "Only contacts that are not in use by any campaign will be deleted" (SDK
        ``delete_outbound_contactlist_contacts``): a contact still queued or awaiting a
        recall is in use and stays."""
        ids = _list_param(request, "contactIds")
        if not ids:
            raise ApiError(400, "bad.request", "contactIds is required.")
        with state.lock:
            contact_list = state.contact_list(contact_list_id)
            for contact_id in ids:
                contact = contact_list.contacts.get(contact_id)
                if contact is None or contact_id in contact_list.queue or contact.recall_at:
                    continue
                state.delete_contact(contact_list_id, contact_id)
        return Response(status_code=204)

    @app.post(contacts + "/bulk")
    async def bulk_get(contact_list_id: str, request: Request) -> JSONResponse:
        return JSONResponse(state.bulk_get(contact_list_id, await _json_body(request)))

    @app.post(contacts + "/search")
    async def search(contact_list_id: str, request: Request) -> JSONResponse:
        return JSONResponse(state.search(contact_list_id, await _json_body(request)))

    @app.get(contacts + "/{contact_id}")
    async def get_contact(contact_list_id: str, contact_id: str) -> JSONResponse:
        return JSONResponse(state.get_contact(contact_list_id, contact_id))

    @app.put(contacts + "/{contact_id}")
    async def update_contact(
        contact_list_id: str, contact_id: str, request: Request
    ) -> JSONResponse:
        body = await _json_body(request)
        return JSONResponse(state.replace_contact(contact_list_id, contact_id, body))

    @app.delete(contacts + "/{contact_id}")
    async def delete_contact(contact_list_id: str, contact_id: str) -> Response:
        state.delete_contact(contact_list_id, contact_id)
        return Response(status_code=204)

    @app.post(OUTBOUND + "/dnclists/{dnc_list_id}/phonenumbers")
    async def append_dnc(dnc_list_id: str, request: Request) -> Response:
        state.append_dnc(dnc_list_id, await _json_body(request))
        return Response(status_code=200)

    for kind in ("attemptlimits", "callabletimesets", "dnclists", "campaigns", "rulesets"):
        _crud(app, state, kind, f"{OUTBOUND}/{kind}")

    @app.get(OUTBOUND + "/wrapupcodemappings")
    async def get_mapping() -> JSONResponse:
        with state.lock:
            return JSONResponse(state.mapping)

    @app.put(OUTBOUND + "/wrapupcodemappings")
    async def put_mapping(request: Request) -> JSONResponse:
        return JSONResponse(state.put_mapping(await _json_body(request)))


def _crud(app: FastAPI, state: EmulatorState, kind: str, path: str) -> None:
    @app.get(path, name=f"list_{kind}")
    async def list_all(request: Request) -> JSONResponse:
        entities = state.list_objects(kind)
        if kind == "campaigns" and request.query_params.get("contactListId"):
            wanted = request.query_params["contactListId"]
            entities = [e for e in entities if e["contactList"]["id"] == wanted]
        if kind == "dnclists":
            types = _list_param(request, "dncSourceType")
            if types:
                entities = [e for e in entities if e["dncSourceType"] in types]
            if _bool_param(request, "includeSize"):
                entities = [{**e, "size": len(state.dnc.get(e["id"], ()))} for e in entities]
        return JSONResponse(_listing(request, entities, path))

    @app.post(path, name=f"create_{kind}")
    async def create(request: Request) -> JSONResponse:
        return JSONResponse(state.put_object(kind, None, await _json_body(request)))

    @app.get(path + "/{entity_id}", name=f"get_{kind}")
    async def get_one(entity_id: str) -> JSONResponse:
        return JSONResponse(state.get_object(kind, entity_id))

    @app.put(path + "/{entity_id}", name=f"update_{kind}")
    async def update(entity_id: str, request: Request) -> JSONResponse:
        return JSONResponse(state.put_object(kind, entity_id, await _json_body(request)))

    @app.delete(path + "/{entity_id}", name=f"delete_{kind}")
    async def delete(entity_id: str) -> Response:
        removed = state.delete_object(kind, entity_id)
        # DELETE of a campaign answers the campaign (SDK ``delete_outbound_campaign``).
        return JSONResponse(removed) if kind == "campaigns" else Response(status_code=204)


def _ws_base(request: Request) -> str:
    scheme = "wss" if request.url.scheme == "https" else "ws"
    return f"{scheme}://{request.url.netloc}"


def _platform_routes(app: FastAPI, state: EmulatorState) -> None:
    """Wrap-up codes (``apis/routing_api.py``), the conversation-details query
    (``apis/conversations_api.py``) and notifications (``apis/notifications_api.py``)."""

    @app.get("/api/v2/routing/wrapupcodes")
    async def wrapup_codes(request: Request) -> JSONResponse:
        entities = state.list_objects("wrapupcodes")
        wanted = _list_param(request, "id")
        if wanted:
            entities = [e for e in entities if e["id"] in wanted]
        name = request.query_params.get("name")
        if name:
            entities = [e for e in entities if name.lower() in e["name"].lower()]
        sort_by = request.query_params.get("sortBy", "name")
        if sort_by not in {"name", "id"}:
            raise ApiError(400, "bad.request", "sortBy must be name or id.")
        reverse = request.query_params.get("sortOrder", "ascending") == "descending"
        entities.sort(key=lambda e: str(e[sort_by]).lower(), reverse=reverse)
        size, number = org.paging(request.query_params, max_size=500)
        return JSONResponse(
            org.listing(
                entities, page_size=size, page_number=number, path="/api/v2/routing/wrapupcodes"
            )
        )

    @app.post("/api/v2/routing/wrapupcodes")
    async def create_wrapup_code(request: Request) -> JSONResponse:
        return JSONResponse(state.put_object("wrapupcodes", None, await _json_body(request)))

    @app.get("/api/v2/routing/wrapupcodes/{code_id}")
    async def get_wrapup_code(code_id: str) -> JSONResponse:
        return JSONResponse(state.get_object("wrapupcodes", code_id))

    @app.post("/api/v2/analytics/conversations/details/query")
    async def details_query(request: Request) -> JSONResponse:
        body = await _json_body(request)
        with state.lock:
            return JSONResponse(analytics.query(state.conversations, body))

    @app.get("/api/v2/analytics/conversations/{conversation_id}/details")
    async def conversation_details(conversation_id: str) -> JSONResponse:
        with state.lock:
            found = state.conversations.get(conversation_id)
            if found is None:
                raise ApiError(
                    404, "not.found", f"The conversation {conversation_id} could not be found."
                )
            return JSONResponse(found)

    notifications = "/api/v2/notifications"

    @app.post(notifications + "/channels")
    async def create_channel(request: Request) -> JSONResponse:
        owner = state.config.client_id
        return JSONResponse(
            state.hub.create(owner=owner, now=state.clock.now(), base=_ws_base(request))
        )

    @app.get(notifications + "/channels")
    async def channels(request: Request) -> JSONResponse:
        return JSONResponse(state.hub.listing(owner=state.config.client_id, base=_ws_base(request)))

    @app.head(notifications + "/channels/{channel_id}")
    async def channel_exists(channel_id: str) -> Response:
        return Response(status_code=200 if state.hub.exists(channel_id, state.clock.now()) else 404)

    subscriptions = notifications + "/channels/{channel_id}/subscriptions"

    @app.get(subscriptions)
    async def get_subscriptions(channel_id: str) -> JSONResponse:
        return JSONResponse(state.hub.subscriptions(channel_id, state.clock.now()))

    async def _subscribe(channel_id: str, request: Request, *, replace: bool) -> JSONResponse:
        body = await _json_body(request)
        with state.lock:
            queues = {c["queue"]["id"] for c in state.campaigns.values() if c.get("queue")}
        return JSONResponse(
            state.hub.subscribe(
                channel_id,
                body,
                now=state.clock.now(),
                replace=replace,
                ignore_errors=_bool_param(request, "ignoreErrors"),
                queues=queues,
            )
        )

    @app.put(subscriptions)
    async def put_subscriptions(channel_id: str, request: Request) -> JSONResponse:
        return await _subscribe(channel_id, request, replace=True)

    @app.post(subscriptions)
    async def post_subscriptions(channel_id: str, request: Request) -> JSONResponse:
        return await _subscribe(channel_id, request, replace=False)

    @app.delete(subscriptions)
    async def delete_subscriptions(channel_id: str) -> Response:
        state.hub.unsubscribe_all(channel_id, state.clock.now())
        return Response(status_code=204)

    @app.get(notifications + "/availabletopics")
    async def topics(request: Request) -> JSONResponse:
        expand = set(_list_param(request, "expand"))
        return JSONResponse({"entities": available_topics(expand)})

    @app.websocket("/channels/{channel_id}")
    async def channel_socket(websocket: WebSocket, channel_id: str) -> None:
        if not state.hub.exists(channel_id, state.clock.now()):
            await websocket.close(code=4004)
            return
        await websocket.accept()
        connection = Connection(loop=asyncio.get_running_loop(), queue=asyncio.Queue())
        try:
            state.hub.attach(channel_id, connection, state.clock.now())
        except ApiError:
            await websocket.close(code=4004)
            return

        async def receive() -> None:
            while True:
                text = await websocket.receive_text()
                with contextlib.suppress(ValueError):
                    if json.loads(text).get("message") == "ping":
                        connection.send(json.dumps(PONG))

        receiver = asyncio.create_task(receive())
        getter = asyncio.ensure_future(connection.queue.get())
        try:
            while True:
                # The client closing its socket ends the handler at once, not at the next
                # message or heartbeat (a server stopping waits for its open sockets).
                done, _ = await asyncio.wait(
                    {getter, receiver},
                    timeout=state.hub.heartbeat_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if receiver in done:
                    break
                if getter in done:
                    message = getter.result()
                    getter = asyncio.ensure_future(connection.queue.get())
                else:
                    message = json.dumps(HEARTBEAT)
                if message is None:
                    break
                await websocket.send_text(message)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            getter.cancel()
            receiver.cancel()
            with contextlib.suppress(BaseException):
                await receiver
            state.hub.detach(channel_id, connection)
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await websocket.close()


def _control_routes(app: FastAPI, state: EmulatorState) -> None:
    """What tests, benchmarks and demos drive; nothing Genesys Cloud itself offers."""

    @app.post(CONTROL_PREFIX + "/reset")
    async def control_reset(body: ResetBody | None = None) -> dict[str, str]:
        state.reset(keep_tokens=(body or ResetBody()).keep_tokens)
        return {"status": "reset"}

    @app.post(CONTROL_PREFIX + "/scenario")
    async def control_scenario(body: ScenarioBody) -> dict[str, Any]:
        try:
            scenario = get_scenario(body.name, drop_event_fraction=body.drop_event_fraction)
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
        sent, failed = await deliver(state, report.actions)
        return {**report.summary(), "actions_sent": sent, "actions_failed": failed}

    @app.get(CONTROL_PREFIX + "/counters")
    async def control_counters() -> dict[str, int]:
        with state.lock:
            return state.counters.as_dict()

    @app.get(CONTROL_PREFIX + "/pending")
    async def control_pending() -> dict[str, Any]:
        """What the dialer has left: ``ready`` (it would dial them now), ``waiting`` (for a
        callable time or a recall) and ``next_at``, the first instant one becomes dialable."""
        return pending(state, state.clock.now())

    @app.get(CONTROL_PREFIX + "/dial-log")
    async def control_dial_log(request: Request) -> list[dict[str, Any]]:
        """Every dial: contact, phone, instant, result, whether a call was placed, the pass;
        ``contactListId`` keeps one list's, ``since`` (an ISO 8601 instant with its offset)
        the dials at or after it."""
        wanted = request.query_params.get("contactListId")
        since_text = request.query_params.get("since")
        since = None if since_text is None else analytics.parse_instant(since_text, name="since")
        with state.lock:
            return [
                e
                for e in state.dial_log
                if (wanted is None or e["contactListId"] == wanted)
                and (since is None or analytics.parse_instant(str(e["at"])) >= since)
            ]

    @app.get(CONTROL_PREFIX + "/contact-lists/{contact_list_id}/contacts")
    async def control_contacts(contact_list_id: str) -> list[dict[str, Any]]:
        return state.snapshot(contact_list_id)

    @app.post(CONTROL_PREFIX + "/contact-lists")
    async def control_add_list(body: ListBody) -> dict[str, str]:
        """A ready-made list with the project's columns, as ``EmulatorConfig.contact_lists``."""
        with state.lock:
            if body.id not in state.contact_lists:
                state._put_contact_list(
                    body.id,
                    {
                        "name": body.id,
                        "columnNames": list(state.config.columns or DEFAULT_COLUMNS),
                        "phoneColumns": [
                            {
                                "columnName": state.config.phone_column,
                                "type": "cell",
                                "callableTimeColumn": state.config.time_zone_column,
                            }
                        ],
                    },
                    state.clock.now(),
                )
        return {"id": body.id}

    @app.post(CONTROL_PREFIX + "/dnc-lists")
    async def control_add_dnc(body: ListBody) -> dict[str, str]:
        with state.lock:
            if body.id not in state.dnc_lists:
                state.dnc_lists[body.id] = org.dnc_list(
                    {"name": body.id, "dncSourceType": "rds", "contactMethod": "Phone"},
                    entity_id=body.id,
                    now=state.clock.now(),
                    previous=None,
                )
                state.dnc[body.id] = set()
        return {"id": body.id}

    @app.get(CONTROL_PREFIX + "/dnc-lists/{dnc_list_id}")
    async def control_dnc(dnc_list_id: str) -> list[str]:
        with state.lock:
            if dnc_list_id not in state.dnc:
                raise ApiError(404, "not.found", f"The DNC list {dnc_list_id} does not exist.")
            return sorted(state.dnc[dnc_list_id])

    @app.put(CONTROL_PREFIX + "/data-actions/{action_id}")
    async def control_data_action(action_id: str, body: DataActionTarget) -> dict[str, str]:
        """Define a web-services data action (where it posts, with which credential)."""
        if body.id != action_id:
            raise ApiError(400, "bad.request", "The body's id must match the path.")
        with state.lock:
            state.data_actions[action_id] = body
        return {"id": action_id}

    @app.post(CONTROL_PREFIX + "/notifications/close")
    async def control_close_sockets() -> dict[str, int]:
        """Close every notification WebSocket, each warned by ``v2.system.socket_closing``."""
        return {"closed": state.hub.close_all()}


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

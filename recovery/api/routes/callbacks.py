"""The contact centre's outcome callback: the request a dialer wrap-up rule's web-services data
action makes after each call.

A ``DIALER_WRAPUP`` rule's ``dataActionBehavior`` action passes the data action the contact's
id, the call-analysis result and the agent's wrap-up in the input fields it names
(``contactIdField``, ``callAnalysisResultField``, ``agentWrapupField``, SDK
``models/dialer_action.py``); the data action's default request template
``${input.rawRequest}`` posts that input as the JSON body (Help, "Request configuration for data
actions"). ``recovery genesys setup`` names the fields ``contactId``, ``callAnalysisResult``
and ``agentWrapup``. The wrap-up rule runs "only after the first wrap-up" (Help, "Use wrap-up
codes with outbound dialing").

Authentication is the data action's static credential (Help, "Credential types for the web
services data actions integration": Basic Auth "sends the Basic authentication header with
every action request"; User Defined sends "the configured authentication properties with every
action request"): ``Authorization: Basic`` with ``RECOVERY_GENESYS_ACTION_USER`` and one of
``RECOVERY_GENESYS_ACTION_SECRETS``, or that secret alone in ``RECOVERY_GENESYS_ACTION_HEADER``.
Several secrets are accepted at once, so one can be rotated without a gap.

The data action carries no wrap-up notes: for an outcome whose next step depends on them (the
date a customer promised to pay, the time they asked to be called back) the conversation's
``wrapUpNote`` is read from the analytics details when ``note_for`` is given; if analytics does
not hold it yet, the policy's default delay applies.

Parse, map the wrap-up code, record once, acknowledge. A request that fails here changes
nothing; the reconcile flow finds the outcome in the analytics details.
"""

from __future__ import annotations

import base64
import hmac
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from recovery.api.requests import Rejected, error, read_body, rejected_response, require_json
from recovery.clock import Clock
from recovery.contact_center.errors import ContactCenterError
from recovery.domain.models import Disposition
from recovery.domain.pan import redact_text
from recovery.domain.policy import load_disposition_map, map_wrapup
from recovery.services.outcomes import record_outcome
from recovery.settings import Settings
from recovery.store.dispositions import RecordResult, UnknownContact

log = logging.getLogger("recovery.api.routes.callbacks")

OUTCOME_PATH = "/callbacks/genesys/outcome"
# The input field names the rule set of `recovery genesys setup` gives the data action.
CONTACT_ID_FIELD = "contactId"
CALL_ANALYSIS_FIELD = "callAnalysisResult"
AGENT_WRAPUP_FIELD = "agentWrapup"
# Outcomes whose next step reads the wrap-up note (a promised date, a callback time).
DETAILED = frozenset({Disposition.promise_to_pay, Disposition.callback_requested})


class ActionInput(BaseModel):
    """The data action's input, as its default request template posts it."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True, populate_by_name=True)

    contact_id: str = Field(alias=CONTACT_ID_FIELD, min_length=1, max_length=64)
    call_analysis_result: str = Field(default="", alias=CALL_ANALYSIS_FIELD, max_length=128)
    agent_wrapup: str = Field(default="", alias=AGENT_WRAPUP_FIELD, max_length=128)

    @field_validator("contact_id", "call_analysis_result", "agent_wrapup")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        # No id or wrap-up code holds one, and PostgreSQL text cannot store it.
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value.strip()

    @property
    def code(self) -> str:
        """The agent's wrap-up when there was one, else the dialler's own result."""
        return self.agent_wrapup or self.call_analysis_result


def credential_matches(headers: Any, *, user: str, header: str, secrets: list[str]) -> bool:
    """Basic auth (``user`` and any secret) or the header holding any secret; each comparison
    takes the same time whatever matches."""
    matched = False
    presented = headers.get(header)
    if presented is not None:
        for secret in secrets:
            matched |= hmac.compare_digest(presented.encode(), secret.encode())
    scheme, _, encoded = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except ValueError:  # not base64, not ASCII, not UTF-8: no credential
            decoded = ""
        given_user, _, given_secret = decoded.partition(":")
        user_ok = hmac.compare_digest(given_user.encode(), user.encode())
        for secret in secrets:
            matched |= user_ok & hmac.compare_digest(given_secret.encode(), secret.encode())
    return matched


def build_callbacks_router(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    wrapup_name: Callable[[str], str],
    note_for: Callable[[str], str] | None = None,
) -> APIRouter:
    """The router of ``POST /callbacks/genesys/outcome``. ``wrapup_name`` turns a wrap-up
    code's id into its name (``recovery.contact_center.wrapups.WrapupNames.name``);
    ``note_for`` reads the wrap-up note of a contact's latest call."""
    mapping = load_disposition_map(settings.disposition_map_file)
    secrets = [s.get_secret_value() for s in settings.genesys_action_secrets]
    router = APIRouter()

    def store(payload: ActionInput, now: datetime) -> RecordResult:
        name = wrapup_name(payload.code)
        note = ""
        if note_for is not None and map_wrapup(name, mapping) in DETAILED:
            try:
                note = note_for(payload.contact_id)
            except ContactCenterError as exc:
                log.warning("wrap-up note of contact %s not read: %s", payload.contact_id, exc)
        return record_outcome(
            sessions=sessions,
            contact_id=payload.contact_id,
            wrapup_name=name,
            note=note,
            mapping=mapping,
            source="push",
            channel="data_action",
            occurred_at=now,
            now=now,
        )

    @router.post(OUTCOME_PATH)
    async def outcome_callback(request: Request) -> JSONResponse:
        if not credential_matches(
            request.headers,
            user=settings.genesys_action_user,
            header=settings.genesys_action_header,
            secrets=secrets,
        ):
            log.warning("outcome callback refused: no valid credential")
            return JSONResponse(
                {"error": "a valid credential is required"},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="recovery"'},
            )
        try:
            require_json(request)
            body = await read_body(request, settings.max_body_bytes)
        except Rejected as exc:
            return rejected_response(exc)
        try:
            payload = ActionInput.model_validate_json(body)
        except ValidationError as exc:
            problems: list[dict[str, Any]] = [
                {"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()
            ]
            return JSONResponse({"error": "invalid outcome", "problems": problems}, 422)
        if not payload.code:
            return JSONResponse(
                {
                    "error": "invalid outcome",
                    "problems": [{"loc": [AGENT_WRAPUP_FIELD], "msg": "no wrap-up code"}],
                },
                422,
            )
        shown = redact_text(payload.contact_id)[0]
        try:
            result = await run_in_threadpool(store, payload, clock.now())
        except UnknownContact:
            log.warning("outcome for unknown contact %s", shown)
            return error(404, f"unknown contact {shown}")
        except ContactCenterError as exc:
            log.warning(
                "outcome for contact %s not stored: wrap-up code unresolved (%s)", shown, exc
            )
            return error(
                503, "wrap-up code could not be resolved; retry later", **{"Retry-After": "30"}
            )
        except SQLAlchemyError:
            log.exception("outcome for contact %s not stored", shown)
            return error(503, "store unavailable; retry later", **{"Retry-After": "5"})
        if result.duplicate:
            return JSONResponse({"status": "duplicate", "contactId": shown})
        log.info("outcome recorded for contact %s", shown)
        return JSONResponse({"status": "recorded", "contactId": shown})

    return router

"""The contact centre's disposition callback: one signed JSON push per call outcome.

Verify the raw bytes, parse, map the wrap-up code, record once, acknowledge. A push that
fails here changes nothing and is picked up again by the reconcile poll.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from recovery.api.requests import Rejected, error, read_body, rejected_response
from recovery.clock import Clock
from recovery.domain.models import Disposition
from recovery.domain.pan import redact_text
from recovery.domain.policy import load_disposition_map, map_wrapup
from recovery.gateways.signing import SignatureError, verify
from recovery.settings import Settings
from recovery.store.db import transaction
from recovery.store.dispositions import RecordResult, UnknownContact, record_disposition

log = logging.getLogger("recovery.api.routes.callbacks")

SIGNATURE_HEADER = "Recovery-Signature"
DISPOSITION_PATH = "/callbacks/genesys/disposition"


class DispositionPush(BaseModel):
    """What the contact centre's wrap-up rule sends (camelCase on the wire)."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    contact_id: str = Field(alias="contactId", min_length=1, max_length=64)
    contact_list_id: str | None = Field(default=None, alias="contactListId", max_length=128)
    wrapup_code: str = Field(alias="wrapupCode", min_length=1, max_length=128)
    is_right_party_contact: bool = Field(default=False, alias="isRightPartyContact")
    call_attempted_at: AwareDatetime = Field(alias="callAttemptedAt")
    phone_column: str | None = Field(default=None, alias="phoneColumn", max_length=64)
    data: dict[str, str] = Field(default_factory=dict)
    # What the agent captured in the wrap-up, when the organisation's data action sends it.
    promised_date: date | None = Field(default=None, alias="promisedDate")
    callback_at: AwareDatetime | None = Field(default=None, alias="callbackAt")

    @field_validator("contact_id", "contact_list_id", "wrapup_code", "phone_column")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # No id or wrap-up code holds one, and PostgreSQL text cannot store it.
        if value is not None and "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value


def _without_card_numbers(push: DispositionPush) -> DispositionPush:
    """The push with card numbers replaced in every text that is stored, logged or echoed.

    The contact id is left as sent: it must match one of our own ids (UUIDs, some of which
    hold a Luhn-valid run of digits by chance), and an unknown one is only echoed redacted."""
    updates: dict[str, str] = {}
    for name in ("contact_list_id", "wrapup_code", "phone_column"):
        value = getattr(push, name)
        if isinstance(value, str):
            cleaned, found = redact_text(value)
            if found:
                updates[name] = cleaned
    return push.model_copy(update=updates) if updates else push


def build_callbacks_router(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Clock,
    wall_time: Callable[[], float] = time.time,
) -> APIRouter:
    """The router of ``POST /callbacks/genesys/disposition``."""
    mapping = load_disposition_map(settings.disposition_map_file)
    secret = settings.callback_secret.get_secret_value()
    router = APIRouter()

    def store(push: DispositionPush, disposition: Disposition) -> RecordResult:
        with transaction(sessions) as session:
            return record_disposition(
                session=session,
                contact_id=push.contact_id,
                wrapup_code=push.wrapup_code,
                disposition=disposition,
                right_party=push.is_right_party_contact,
                source="push",
                occurred_at=push.call_attempted_at,
                now=clock.now(),
                detail={
                    "contact_list_id": push.contact_list_id,
                    "phone_column": push.phone_column,
                    "mapped": disposition is not Disposition.unknown,
                    **(
                        {"promised_date": push.promised_date.isoformat()}
                        if push.promised_date
                        else {}
                    ),
                    **({"callback_at": push.callback_at.isoformat()} if push.callback_at else {}),
                },
            )

    @router.post(DISPOSITION_PATH)
    async def disposition_callback(request: Request) -> JSONResponse:
        try:
            body = await read_body(request, settings.max_body_bytes)
        except Rejected as exc:
            return rejected_response(exc)
        try:
            verify(
                body,
                request.headers.get(SIGNATURE_HEADER),
                secrets=[secret],
                # Freshness of a signature is a transport matter between two real machines:
                # real time, even when the business clock is virtual.
                now=wall_time(),
            )
        except SignatureError as exc:
            log.warning("disposition push refused: %s", exc)
            return error(401, str(exc))
        try:
            push = DispositionPush.model_validate_json(body)
        except ValidationError as exc:
            problems: list[dict[str, Any]] = [
                {"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()
            ]
            return JSONResponse({"error": "invalid disposition push", "problems": problems}, 422)
        push = _without_card_numbers(push)
        disposition = map_wrapup(push.wrapup_code, mapping)
        try:
            result = await run_in_threadpool(store, push, disposition)
        except UnknownContact:
            shown = redact_text(push.contact_id)[0]
            log.warning("disposition push for unknown contact %s", shown)
            return error(404, f"unknown contact {shown}")
        except SQLAlchemyError:
            log.exception("disposition push for contact %s not stored", push.contact_id)
            return error(503, "store unavailable; retry later")
        if result.duplicate:
            return JSONResponse({"status": "duplicate", "contactId": push.contact_id})
        log.info(
            "disposition %s (wrap-up %r) recorded for contact %s",
            disposition.value,
            push.wrapup_code,
            push.contact_id,
        )
        return JSONResponse(
            {
                "status": "recorded",
                "contactId": push.contact_id,
                "disposition": disposition.value,
            }
        )

    return router

"""``GET /healthz``: the receiver is up and its store answers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool


def build_health_router(*, sessions: sessionmaker[Session]) -> APIRouter:
    router = APIRouter()

    def check_store() -> bool:
        try:
            with sessions() as session:
                session.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    @router.get("/healthz", summary="Liveness and store reachability")
    async def healthz() -> JSONResponse:
        store_ok = await run_in_threadpool(check_store)
        body = {"status": "ok" if store_ok else "degraded", "store": "ok" if store_ok else "down"}
        return JSONResponse(body, status_code=200 if store_ok else 503)

    return router

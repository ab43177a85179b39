"""Operators' read-only view of cases over HTTP, behind a bearer token.

Phones are masked (last four digits); nothing here changes state.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from recovery.api.deps import bearer_token
from recovery.services.cases import case_detail, case_summary
from recovery.settings import Settings
from recovery.store.cases import find_case, list_cases
from recovery.store.tables import CaseRow


def build_admin_router(*, sessions: sessionmaker[Session], settings: Settings) -> APIRouter:
    router = APIRouter(
        prefix="/admin", dependencies=[Depends(bearer_token(settings))], tags=["admin"]
    )

    @router.get("/cases", summary="Cases, oldest first (phones masked)")
    async def cases(
        # Statuses and outcomes are lower-case words; anything else matches no case anyway.
        status: str | None = Query(default=None, max_length=32, pattern=r"^[a-z_]*$"),
        limit: int = Query(default=100, ge=1, le=1000),
        # Past every row all the same, and within what every store takes as an OFFSET.
        offset: int = Query(default=0, ge=0, le=2**31 - 1),
    ) -> list[dict[str, object]]:
        def read() -> list[dict[str, object]]:
            with sessions() as session:
                rows = list_cases(session=session, status=status, limit=limit, offset=offset)
                return [case_summary(row) for row in rows]

        return await run_in_threadpool(read)

    @router.get("/cases/{key}", summary="One case and its whole timeline (phone masked)")
    async def case(key: str) -> dict[str, object]:
        def read() -> dict[str, object] | None:
            with sessions() as session:
                found = find_case(session=session, key=key)
                return case_detail(session, found) if found is not None else None

        # A NUL is no part of any key, and PostgreSQL refuses it in a query parameter.
        detail = None if "\x00" in key else await run_in_threadpool(read)
        if detail is None:
            raise HTTPException(status_code=404, detail="no such case")
        return detail

    @router.get("/stats", summary="Cases by status and outcome")
    async def stats() -> dict[str, dict[str, int]]:
        def read() -> dict[str, dict[str, int]]:
            with sessions() as session:
                by_status = session.execute(
                    select(CaseRow.status, func.count()).group_by(CaseRow.status)
                ).all()
                by_outcome = session.execute(
                    select(CaseRow.outcome, func.count())
                    .where(CaseRow.outcome.is_not(None))
                    .group_by(CaseRow.outcome)
                ).all()
            return {
                "status": {str(k): int(v) for k, v in by_status},
                "outcome": {str(k): int(v) for k, v in by_outcome},
            }

        return await run_in_threadpool(read)

    return router

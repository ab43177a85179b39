"""Claiming due cases: a lease, exclusive across workers, so no case is advanced twice at once.

On PostgreSQL the candidates are locked with ``FOR UPDATE SKIP LOCKED``; on SQLite the write
transaction itself is exclusive. Either way the UPDATE re-checks the lease, so a case is
claimed by exactly one owner until its lease ends or is released.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from recovery.domain.models import CaseStatus
from recovery.store.tables import CaseRow


def _claimable(now: datetime) -> object:
    return and_(
        CaseRow.next_due_at.is_not(None),
        CaseRow.next_due_at <= now,
        CaseRow.status != CaseStatus.closed.value,
        or_(CaseRow.lease_until.is_(None), CaseRow.lease_until <= now),
    )


def claim_due(
    *, session: Session, now: datetime, limit: int, owner: str, lease_seconds: int
) -> list[int]:
    """Lease up to ``limit`` due cases (earliest due first) to ``owner``; their ids."""
    candidates = (
        select(CaseRow.id)
        .where(_claimable(now))  # type: ignore[arg-type]
        .order_by(CaseRow.next_due_at, CaseRow.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(session.scalars(candidates))
    if not ids:
        return []
    claimed = session.scalars(
        update(CaseRow)
        .where(CaseRow.id.in_(ids), _claimable(now))  # type: ignore[arg-type]
        .values(lease_owner=owner, lease_until=now + timedelta(seconds=lease_seconds))
        .returning(CaseRow.id)
    )
    return sorted(claimed)


def leased_cases(*, session: Session, case_ids: Sequence[int], owner: str) -> list[CaseRow]:
    """The cases among ``case_ids`` that ``owner`` holds (claimed by ``claim_due``)."""
    return list(
        session.scalars(
            select(CaseRow).where(CaseRow.id.in_(list(case_ids)), CaseRow.lease_owner == owner)
        )
    )


def release(*, session: Session, case_ids: list[int], owner: str) -> int:
    """End ``owner``'s lease on these cases (a lease another owner took over is left alone)."""
    if not case_ids:
        return 0
    result = session.execute(
        update(CaseRow)
        .where(CaseRow.id.in_(case_ids), CaseRow.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def any_due(*, session: Session, now: datetime) -> bool:
    """Whether a case is due and free to claim (one indexed read)."""
    found = session.scalar(select(CaseRow.id).where(_claimable(now)).limit(1))  # type: ignore[arg-type]
    return found is not None


def count_due(*, session: Session, now: datetime) -> int:
    from sqlalchemy import func

    return int(
        session.scalar(select(func.count()).where(_claimable(now))) or 0  # type: ignore[arg-type]
    )

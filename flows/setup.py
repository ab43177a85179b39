"""Prefect-side operations behind ``recovery prefect setup`` and ``recovery serve``."""

from __future__ import annotations

from dataclasses import dataclass

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists

from recovery.settings import Settings

WORK_POOL = "recovery"


@dataclass(frozen=True)
class RateLimitSpec:
    name: str
    limit: int
    slot_decay_per_second: float


def rate_limit_spec(settings: Settings) -> RateLimitSpec:
    """The strict global rate limit for the contact-centre API: ``requests_per_minute`` slots
    decaying per minute, with room for one acquisition of ``rate_limit_occupy`` slots."""
    return RateLimitSpec(
        name=settings.genesys_rate_limit_name,
        # Room for a group that arrives a little early; the flow paces itself under the rate.
        limit=max(settings.rate_limit_occupy, 1) * 4,
        slot_decay_per_second=settings.genesys_requests_per_minute / 60.0,
    )


def setup(settings: Settings, *, work_pool: bool = True) -> list[str]:
    """Create (or update) the rate limit and the process work pool; what was done."""
    done: list[str] = []
    spec = rate_limit_spec(settings)
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(
            spec.name, spec.limit, slot_decay_per_second=spec.slot_decay_per_second
        )
        done.append(
            f"global rate limit {spec.name!r}: {settings.genesys_requests_per_minute} "
            f"requests/min (limit {spec.limit}, {spec.slot_decay_per_second:.2f} slots/s)"
        )
        if work_pool:
            try:
                client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process"))
                done.append(f"process work pool {WORK_POOL!r} created")
            except ObjectAlreadyExists:
                done.append(f"process work pool {WORK_POOL!r} exists")
    return done

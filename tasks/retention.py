"""Task of the retention flow: erase the personal data that has outlived its purpose."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from recovery.runtime import Runtime
from recovery.services.privacy import Erasure, purge_expired
from tasks.retry import retry_transient


@task(
    name="erase-expired-personal-data",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recovery", "store"],
)
def erase_expired(runtime: Runtime, retention_days: int | None) -> Erasure:
    """Erase the personal fields of cases closed longer than the retention period; forget
    transmission ids older than a day."""
    return purge_expired(
        sessions=runtime.sessions,
        fingerprint=runtime.settings.fingerprint(),
        now=runtime.clock.now(),
        retention_days=retention_days,
    )

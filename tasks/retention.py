"""Task of the retention flow: erase the personal data that has outlived its purpose."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from recovery.services.privacy import Erasure, purge_expired
from tasks.retry import JITTER, STORE_BACKOFF, STORE_RETRIES, retry_transient
from tasks.runtime import runtime


@task(
    name="erase-expired-personal-data",
    retries=STORE_RETRIES,
    retry_delay_seconds=STORE_BACKOFF,
    retry_jitter_factor=JITTER,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def erase_expired(retention_days: int | None) -> Erasure:
    """Erase the personal fields of cases closed longer than the retention period; forget
    transmission ids older than a day."""
    built = runtime()
    return purge_expired(
        sessions=built.sessions,
        fingerprint=built.settings.fingerprint(),
        now=built.clock.now(),
        retention_days=retention_days,
    )

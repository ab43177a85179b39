"""Task of the retention flow: erase the personal data that has outlived its purpose."""

from __future__ import annotations

from recovery.services.privacy import Erasure, purge_expired
from tasks.retry import store_task
from tasks.runtime import runtime


@store_task("erase-expired-personal-data")
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

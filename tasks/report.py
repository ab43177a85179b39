"""Tasks of the report flow: compute the figures (one read of the store); write the files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from recovery.reporting.figures import Report, compute_report
from recovery.reporting.files import write_report
from tasks.retry import JITTER, STORE_BACKOFF, STORE_RETRIES, retry_transient
from tasks.runtime import runtime


@task(
    name="compute-report",
    retries=STORE_RETRIES,
    retry_delay_seconds=STORE_BACKOFF,
    retry_jitter_factor=JITTER,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
)
def compute(since: datetime | None, until: datetime | None) -> Report:
    """Read the cases of the period and their histories; compute every figure."""
    built = runtime()
    with built.sessions() as session:
        return compute_report(
            session=session,
            now=built.clock.now(),
            since=since,
            until=until,
            attribution_days=built.settings.attribution_days,
        )


@task(name="write-report", cache_policy=NO_CACHE, tags=["recovery", "files"])
def write(report: Report, folder: Path) -> tuple[Path, Path]:
    """Write report.md and the recoveries chart (each replaced atomically)."""
    return write_report(report, folder)

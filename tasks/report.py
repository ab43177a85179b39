"""Tasks of the report flow: compute the figures (one read of the store); write the files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from recovery.reporting.figures import Report, compute_report
from recovery.reporting.files import write_report
from recovery.runtime import Runtime
from tasks.retry import retry_transient


@task(
    name="compute-report",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_transient,
    cache_policy=NO_CACHE,
    tags=["recovery", "store"],
)
def compute(runtime: Runtime, since: datetime | None, until: datetime | None) -> Report:
    """Read the cases of the period and their histories; compute every figure."""
    with runtime.sessions() as session:
        return compute_report(
            session=session,
            now=runtime.clock.now(),
            since=since,
            until=until,
            attribution_days=runtime.settings.attribution_days,
        )


@task(name="write-report", cache_policy=NO_CACHE, tags=["recovery", "files"])
def write(report: Report, folder: Path) -> tuple[Path, Path]:
    """Write report.md and the recoveries chart (each replaced atomically)."""
    return write_report(report, folder)

"""Tasks of the report flow: compute the figures (one read of the store); write the files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from recovery.reporting.figures import Report, compute_report
from recovery.reporting.files import write_report
from tasks.retry import store_task
from tasks.runtime import runtime


@store_task("compute-report")
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


@task(name="write-report", cache_policy=NO_CACHE)
def write(report: Report, folder: Path) -> tuple[Path, Path]:
    """Write report.md and the recoveries chart (each replaced atomically)."""
    return write_report(report, folder)

"""Flow: the recovery report, on a schedule: funnel, amounts recovered, rates by failure
category and last disposition, calls held back by compliance, closed cases by outcome, and what
brought each recovery (no call, a call, a promise; calls avoided by retry-aware waits).

Writes ``report.md`` and the recoveries chart into ``<data dir>/reports`` and publishes the
report as a markdown artifact (linking the chart's file) with table artifacts for the funnel,
the per-category figures and the attribution.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from recovery.reporting.figures import Report
from recovery.reporting.render import render_markdown, table_rows
from recovery.runtime import Runtime
from recovery.services.backfill import check_range, parse_bound
from recovery.settings import Settings
from tasks.report import compute, write


def _table(report: Report, title: str) -> list[dict[str, str]]:
    header, rows = table_rows(report)[title]
    return [dict(zip(header, row, strict=True)) for row in rows]


@flow(name="report")
def report(
    since: str | None = None,
    until: str | None = None,
    days: int | None = None,
    out: str | None = None,
) -> dict[str, object]:
    """Compute the recovery report for a period and publish it as artifacts.

    ``days``: the period is the last ``days`` days up to now (when ``since`` is not given)."""
    runtime = Runtime(Settings())
    try:
        runtime.require_schema()
        start = parse_bound(since, "since") if since else None
        end = parse_bound(until, "until") if until else None
        if start is None and days is not None:
            start = (end or runtime.clock.now()) - timedelta(days=days)
        check_range(start, end)
        figures = compute(runtime, start, end)
        folder = Path(out) if out else runtime.settings.data_dir / "reports"
        markdown_path, chart_path = write(figures, folder)
    finally:
        runtime.close()
    chart = chart_path.resolve()
    body = render_markdown(figures, chart_name=None)
    body += f"\nChart: [{chart.name}]({chart.as_uri()}) (`{chart}`)\n"
    create_markdown_artifact(
        markdown=body,
        key="recovery-report",
        description=f"Recovery report: {figures.cases} cases",
    )
    create_table_artifact(
        key="recovery-funnel",
        table=_table(figures, "Funnel"),
        description="Failed -> reachable -> contacted -> right party -> promised -> recovered",
    )
    create_table_artifact(
        key="recovery-by-category",
        table=_table(figures, "By failure category") or [{"group": "no cases"}],
        description="Recovery rate and median days to recover by failure category",
    )
    create_table_artifact(
        key="recovery-attribution",
        table=_table(figures, "Recoveries attributed"),
        description="Recovered with no call, after a call, after a promise; calls avoided by "
        "retry-aware waits",
    )
    return {
        "cases": figures.cases,
        "recovered": figures.funnel["recovered"],
        "report": str(markdown_path),
        "chart": str(chart_path),
    }

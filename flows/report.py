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

from recovery.reporting.render import render_markdown, table_dicts
from recovery.services.backfill import check_range, parse_bound
from tasks.artifacts import publish_summary
from tasks.report import compute, write
from tasks.runtime import flow_runtime


@flow(name="report")
def report(
    since: str | None = None,
    until: str | None = None,
    days: int | None = None,
    out: str | None = None,
) -> dict[str, object]:
    """Compute the recovery report for a period and publish it as artifacts.

    ``days``: the period is the last ``days`` days up to now (when ``since`` is not given)."""
    with flow_runtime() as built:
        start = parse_bound(since, "since") if since else None
        end = parse_bound(until, "until") if until else None
        if start is None and days is not None:
            start = (end or built.clock.now()) - timedelta(days=days)
        check_range(start, end)
        figures = compute(start, end)
        folder = Path(out) if out else built.settings.data_dir / "reports"
        markdown_path, chart_path = write(figures, folder)
    chart = chart_path.resolve()
    body = render_markdown(figures, chart_name=None)
    body += f"\nChart: [{chart.name}]({chart.as_uri()}) (`{chart}`)\n"
    publish_summary("recovery-report", f"Recovery report: {figures.cases} cases", markdown=body)
    publish_summary(
        "recovery-funnel",
        "Failed -> reachable -> contacted -> right party -> promised -> recovered",
        table=table_dicts(figures, "Funnel"),
    )
    publish_summary(
        "recovery-by-category",
        "Recovery rate and median days to recover by failure category",
        table=table_dicts(figures, "By failure category"),
        columns=("group", ""),
        empty="no cases",
    )
    publish_summary(
        "recovery-attribution",
        "Recovered with no call, after a call, after a promise; calls avoided by retry-aware waits",
        table=table_dicts(figures, "Recoveries attributed"),
    )
    return {
        "cases": figures.cases,
        "recovered": figures.funnel["recovered"],
        "report": str(markdown_path),
        "chart": str(chart_path),
    }

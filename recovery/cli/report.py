"""``recovery report``: the recovery figures, as tables, JSON, markdown and a chart."""

from __future__ import annotations

import typer

from recovery.cli.common import FAILED, app, fail
from recovery.cli.common import runtime as build_runtime


@app.command("report")
def report_command(
    since: str | None = typer.Option(None, help="Cases whose payment failed at or after this."),
    until: str | None = typer.Option(None, help="Cases whose payment failed before this."),
    json_output: bool = typer.Option(False, "--json", help="Print every figure as one object."),
    out: str | None = typer.Option(None, help="Folder for report.md and the chart."),
) -> None:
    """Recovery figures: funnel, amounts, rates by category and disposition, compliance blocks;
    writes report.md and recoveries.png (default folder: <data dir>/reports)."""
    import json
    from pathlib import Path

    from recovery.reporting.figures import compute_report
    from recovery.reporting.files import write_report
    from recovery.reporting.render import report_document, table_rows
    from recovery.services.backfill import BackfillError, check_range, parse_bound

    try:
        start = parse_bound(since, "--since") if since else None
        end = parse_bound(until, "--until") if until else None
        check_range(start, end)
    except BackfillError as exc:
        fail(str(exc))
    runtime = build_runtime()
    try:
        with runtime.sessions() as session:
            report = compute_report(
                session=session,
                now=runtime.clock.now(),
                since=start,
                until=end,
                attribution_days=runtime.settings.attribution_days,
            )
    finally:
        runtime.close()
    folder = Path(out) if out else runtime.settings.data_dir / "reports"
    try:
        markdown, chart = write_report(report, folder)
    except OSError as exc:
        fail(f"cannot write the report to {folder}: {exc.strerror or exc}", FAILED)
    if json_output:
        typer.echo(json.dumps(report_document(report, markdown=markdown, chart=chart)))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"{report.cases} cases whose payment failed in the period")
    for title, (header, rows) in table_rows(report).items():
        table = Table(*header, title=title, title_justify="left")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    console.print(f"report: {markdown}\nchart: {chart}")

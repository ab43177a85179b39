"""``recovery backfill``: replay an export through the webhook path into cases."""

from __future__ import annotations

import typer

from recovery.cli.common import FAILED, app, fail
from recovery.cli.common import runtime as build_runtime


@app.command("backfill")
def backfill_command(
    file: str = typer.Argument(..., help="JSON lines of Stripe events (or pages), or a CSV."),
    since: str | None = typer.Option(None, help="Only events at or after this ISO instant."),
    until: str | None = typer.Option(None, help="Only events before this ISO instant."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Parse and report; write nothing."),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Replay an export through the webhook path (card-number guard, dedupe, inbox) into
    cases; a second run changes nothing."""
    import json

    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
    from sqlalchemy.exc import SQLAlchemyError

    from recovery.services.backfill import BackfillError, check_range, open_export, parse_bound
    from recovery.services.backfill import run_backfill as run

    try:
        start = parse_bound(since, "--since") if since else None
        end = parse_bound(until, "--until") if until else None
        check_range(start, end)
        export = open_export(file)
    except BackfillError as exc:
        fail(str(exc))
    runtime = build_runtime()
    columns = ("{task.description}", BarColumn(), DownloadColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=Console(stderr=True)) as progress:
            task = progress.add_task(export.path.name, total=export.size or 1)
            summary = run(
                export=export,
                sessions=runtime.sessions,
                codes=runtime.failure_codes,
                clock_now=runtime.clock.now,
                since=start,
                until=end,
                dry_run=dry_run,
                lookup=runtime.customer_lookup(),
                on_progress=lambda done, _total, _summary: progress.update(task, completed=done),
                marker=runtime.settings.redaction_marker(),
            )
    except SQLAlchemyError as exc:
        fail(f"the store failed ({type(exc).__name__}); what was recorded stays, run again", FAILED)
    finally:
        runtime.close()
    if json_output:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        for line in summary.lines():
            typer.echo(line)

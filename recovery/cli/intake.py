"""``recovery ingest``: drain the inbox into cases now, in this process."""

from __future__ import annotations

import typer

from recovery.cli.common import FAILED, app, fail, print_json, runtime


@app.command("ingest")
def ingest_command(
    batch_size: int = typer.Option(
        None, min=1, help="Rows per batch (RECOVERY_INGEST_BATCH_SIZE)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Drain the inbox into cases now, in this process (the ingest deployment does the same)."""
    from sqlalchemy.exc import SQLAlchemyError

    from recovery.services.intake import drain

    built = runtime()
    try:
        summary = drain(
            sessions=built.sessions,
            codes=built.failure_codes,
            clock_now=built.clock.now,
            batch_size=batch_size or built.settings.ingest_batch_size,
            lookup=built.customer_lookup(),
        )
    except SQLAlchemyError as exc:
        # Rows of the failed batch stay unprocessed: nothing is lost, the next run applies them.
        fail(f"the store failed ({type(exc).__name__}); nothing was lost, run it again", FAILED)
    finally:
        built.close()
    if json_output:
        print_json(summary.as_dict())
    else:
        results = ", ".join(f"{k} {v}" for k, v in sorted(summary.results.items())) or "nothing"
        typer.echo(f"ingested {summary.rows} inbox rows in {summary.batches} batches: {results}")

"""``recovery inbox``: the rows ingest parked, and replaying them."""

from __future__ import annotations

import typer

from recovery.cli.common import FAILED, app, fail, print_json, runtime

inbox_app = typer.Typer(
    help="The webhook inbox: rows ingest parked because they could not be applied.",
    no_args_is_help=True,
)
app.add_typer(inbox_app, name="inbox")


@inbox_app.command("list")
def inbox_list(
    parked: bool = typer.Option(
        False, "--parked", help="The rows ingest parked (result error), with the reason."
    ),
    json_output: bool = typer.Option(False, "--json", help="One JSON array."),
) -> None:
    """List parked inbox rows, oldest first."""
    from recovery.services.parked import list_parked

    if not parked:
        fail("say which rows: --parked")
    built = runtime()
    try:
        rows = list_parked(sessions=built.sessions)
    finally:
        built.close()
    if json_output:
        print_json(rows)
        return
    if not rows:
        typer.echo("no parked inbox rows")
        return
    for row in rows:
        typer.echo(
            f"{row['gateway']}:{row['event_id']}  {row['event_type']}  parked "
            f"{row['parked_at']}  {row['error']}"
        )


@inbox_app.command("retry")
def inbox_retry(
    event_id: list[str] | None = typer.Option(  # noqa: B008
        None, "--event-id", help="A parked row's event id (repeatable)."
    ),
    all_rows: bool = typer.Option(False, "--all", help="Every parked row."),
    json_output: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Replay parked rows: make them unprocessed again and drain the inbox now. Exit 2 for an
    event id with no row or not parked (nothing changes), 1 when the store failed (the rows
    then wait for the next ingest run)."""
    from sqlalchemy.exc import SQLAlchemyError

    from recovery.services.parked import RetryRefused, retry_parked

    ids = list(event_id or ())
    if bool(ids) == all_rows:
        fail("say which parked rows to replay: --event-id ID (repeatable) or --all")
    built = runtime()
    try:
        retried = retry_parked(
            sessions=built.sessions,
            codes=built.failure_codes,
            clock_now=built.clock.now,
            batch_size=built.settings.ingest_batch_size,
            event_ids=None if all_rows else ids,
            lookup=built.customer_lookup(),
        )
    except RetryRefused as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"the store failed ({type(exc).__name__}); run it again", FAILED)
    finally:
        built.close()
    if json_output:
        print_json(retried.as_dict())
        return
    typer.echo(f"replayed {retried.requeued} parked row(s):")
    for key, result in retried.results.items():
        typer.echo(f"  {key}: {result or 'waiting'}")

"""The ``recovery`` command: operators' and scripts' entry point to every part of the system.

Exit codes: 0 when the command did what it was asked, 1 when it failed at run time,
2 for bad arguments or bad input (with a message on stderr saying which).
"""

from __future__ import annotations

from typing import NoReturn

import typer

from recovery.runtime import Runtime
from recovery.settings import Settings

app = typer.Typer(
    name="recovery",
    help="Payment recovery: failed payments to lawful, well-timed contact-centre calls.",
    no_args_is_help=True,
    add_completion=False,
)


def main() -> None:
    app()


# --- foundation commands ---

db_app = typer.Typer(help="The store's schema (Alembic migrations).", no_args_is_help=True)
cases_app = typer.Typer(help="Inspect recovery cases.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(cases_app, name="cases")


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        _fail("invalid settings: " + "; ".join(str(e["msg"]) for e in exc.errors()))


def _runtime(*, check_schema: bool = True) -> Runtime:
    from recovery.logging import install_log_scrubbing
    from recovery.store.migrate import SchemaNotReady

    install_log_scrubbing()
    runtime = Runtime(_settings())
    if check_schema:
        try:
            runtime.require_schema()
        except SchemaNotReady as exc:
            _fail(str(exc), 1)
    return runtime


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the store's tables to the latest revision (safe to run again)."""
    from recovery.store.migrate import current_revision, redact_url, upgrade

    settings = _settings()
    upgrade(settings.database_url, revision)
    typer.echo(
        f"store {redact_url(settings.database_url)} at revision "
        f"{current_revision(settings.database_url)}"
    )


@db_app.command("current")
def db_current() -> None:
    """Print the store's revision and the revision this code needs."""
    from recovery.store.migrate import current_revision, head_revision, redact_url

    settings = _settings()
    current, head = current_revision(settings.database_url), head_revision(settings.database_url)
    typer.echo(f"{redact_url(settings.database_url)}: {current or 'none'} (code needs {head})")
    if current != head:
        raise typer.Exit(1)


@app.command("api")
def api(
    host: str = typer.Option(None, help="Bind address (default RECOVERY_API_HOST)."),
    port: int = typer.Option(None, help="Port (default RECOVERY_API_PORT)."),
    trigger: bool = typer.Option(
        True, help="Start the ingest deployment after each delivery (needs PREFECT_API_URL)."
    ),
) -> None:
    """Run the receiver (gateway webhooks, disposition callbacks, health)."""
    import uvicorn

    from recovery.api.server import build_receiver

    runtime = _runtime()
    app_, stop = build_receiver(runtime, trigger=trigger)
    try:
        uvicorn.run(
            app_, host=host or runtime.settings.api_host, port=port or runtime.settings.api_port,
            log_level="info", access_log=False,
        )
    finally:
        stop()
        runtime.close()


@app.command("ingest")
def ingest_command(
    batch_size: int = typer.Option(None, min=1, help="Rows per batch (RECOVERY_INGEST_BATCH_SIZE)."),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Drain the inbox into cases now, in this process (the ingest deployment does the same)."""
    import json

    from recovery.ingest import drain

    runtime = _runtime()
    summary = drain(
        sessions=runtime.sessions,
        codes=runtime.failure_codes,
        clock_now=runtime.clock.now,
        batch_size=batch_size or runtime.settings.ingest_batch_size,
        lookup=runtime.customer_lookup(),
    )
    runtime.close()
    if json_output:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        results = ", ".join(f"{k} {v}" for k, v in sorted(summary.results.items())) or "nothing"
        typer.echo(f"ingested {summary.rows} inbox rows in {summary.batches} batches: {results}")


@cases_app.command("list")
def cases_list(
    status: str = typer.Option(None, help="A status (open, needs_contact_info, ...) or outcome."),
    limit: int = typer.Option(100, min=1, max=100_000),
    json_output: bool = typer.Option(False, "--json", help="One JSON array."),
    reveal: bool = typer.Option(False, help="Show phone numbers in full."),
) -> None:
    """List cases, oldest first."""
    from recovery.inspect import case_summary, print_case_table
    from recovery.store.cases import list_cases

    runtime = _runtime()
    with runtime.sessions() as session:
        rows = [case_summary(c, reveal=reveal) for c in
                list_cases(session=session, status=status, limit=limit)]
    runtime.close()
    if json_output:
        import json

        typer.echo(json.dumps(rows, default=str))
    else:
        print_case_table(rows)


@cases_app.command("show")
def cases_show(
    key: str = typer.Argument(..., help="gateway:business_key, or the business key alone."),
    json_output: bool = typer.Option(False, "--json", help="One JSON object."),
    reveal: bool = typer.Option(False, help="Show the phone number in full."),
) -> None:
    """One case and its whole history (every decision, with reasons)."""
    from recovery.inspect import case_detail, print_case_detail
    from recovery.store.cases import find_case

    runtime = _runtime()
    with runtime.sessions() as session:
        case = find_case(session=session, key=key)
        if case is None:
            runtime.close()
            _fail(f"no case {key!r} (use gateway:business_key when ambiguous)", 1)
        detail = case_detail(session, case, reveal=reveal)
    runtime.close()
    if json_output:
        import json

        typer.echo(json.dumps(detail, default=str))
    else:
        print_case_detail(detail)

# --- compliance commands (window, suppress) ---

# --- policy commands (plan) ---


@app.command("plan")
def plan_command(
    reason: str = typer.Option(
        ..., help="A failure category (insufficient_funds, ...) or a Stripe decline code."
    ),
    phone: str = typer.Option(..., help="The customer's phone, E.164 (+13055550123)."),
    state: str = typer.Option(None, help="Billing-address state (two letters)."),
    postal_code: str = typer.Option(None, help="Billing-address postal code."),
    tz: str = typer.Option(None, help="The customer's time zone (IANA name), if known."),
    failed_at: str = typer.Option(None, help="When the payment failed, ISO 8601 with offset."),
    dispositions: str = typer.Option(
        "",
        help="Call outcomes in order, e.g. no_answer,promise_to_pay:2026-12-12,"
        "callback_requested:2026-12-03T15:00:00-05:00 (then no_answer).",
    ),
    policy_file: str = typer.Option(None, "--policy", help="A policy file (default: shipped)."),
    rules_file: str = typer.Option(None, "--rules", help="A calling-rules file."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Simulate one case end to end on a virtual clock and print its timeline."""
    from recovery.domain.simulate import PlanArgumentError, print_plan, run_plan

    try:
        plan = run_plan(
            reason=reason,
            phone=phone,
            state=state,
            postal_code=postal_code,
            tz=tz,
            failed_at=failed_at,
            dispositions=dispositions,
            policy_file=policy_file,
            rules_file=rules_file,
        )
    except PlanArgumentError as exc:
        _fail(str(exc), 2)
    except RuntimeError as exc:
        _fail(str(exc), 1)
    print_plan(plan, json_output=json_output)


# --- contact centre commands (emulator) ---


if __name__ == "__main__":
    main()

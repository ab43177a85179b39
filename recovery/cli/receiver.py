"""``recovery api``: the receiver (gateway webhooks, contact-centre outcomes, health)."""

from __future__ import annotations

import typer

from recovery.cli.common import app, fail, runtime, settings


@app.command("api")
def api(
    host: str = typer.Option(None, help="Bind address (default RECOVERY_API_HOST)."),
    port: int = typer.Option(None, help="Port (default RECOVERY_API_PORT)."),
    trigger: bool = typer.Option(
        True,
        help="Announce deliveries to Prefect, whose automation starts the ingest deployment "
        "(needs PREFECT_API_URL).",
    ),
) -> None:
    """Run the receiver (gateway webhooks, disposition callbacks, health). In development mode
    it listens on loopback only (exit 2 otherwise)."""
    import uvicorn

    from recovery.api.receiver import build_receiver
    from recovery.settings import bind_problem

    config = settings()
    bind_host = host if host is not None else config.api_host
    problem = bind_problem(bind_host, config.mode)
    if problem is not None:
        fail(problem)
    built = runtime()
    app_, stop = build_receiver(built, trigger=trigger)
    try:
        uvicorn.run(
            app_,
            host=bind_host,
            port=port or built.settings.api_port,
            log_level="info",
            access_log=False,
        )
    finally:
        stop()
        built.close()

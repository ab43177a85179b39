"""``recovery emulator``: the Genesys Cloud emulator."""

from __future__ import annotations

import typer

from recovery.cli.common import app, fail, settings


@app.command("emulator")
def emulator_command(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8900, help="Port to listen on."),
    client_id: str | None = typer.Option(None, help="OAuth client id (default: settings)."),
    client_secret: str | None = typer.Option(None, help="OAuth client secret (default: settings)."),
    contact_list: list[str] | None = typer.Option(  # noqa: B008
        None, help="Contact list id (repeatable)."
    ),
    dnc_list: list[str] | None = typer.Option(  # noqa: B008
        None, help="Internal DNC list id (repeatable)."
    ),
    requests_per_minute: int | None = typer.Option(
        None, min=1, help="Budget per token (default: settings)."
    ),
    receiver_url: str | None = typer.Option(
        None, help="The receiver the data action posts outcomes to (default: settings)."
    ),
    drop_events: float | None = typer.Option(
        None, min=0.0, max=1.0, help="Share of notifications and data-action requests lost."
    ),
    scenario: str = typer.Option("mixed", help="Call-outcome scenario."),
    seed: int = typer.Option(0, help="Seed of the scenario's outcomes."),
    dial_interval: float = typer.Option(5.0, min=0, help="Seconds between dials; 0: never."),
) -> None:
    """Run the Genesys Cloud emulator (login, outbound configuration, contacts, a dialer,
    analytics, notification channels, a data action)."""
    from recovery.clock import parse_clock
    from recovery.contact_center.emulator.server import config_from_settings, serve

    app_settings = settings()
    try:
        config = config_from_settings(
            app_settings,
            client_id=client_id,
            client_secret=client_secret,
            contact_lists=contact_list,
            dnc_lists=dnc_list,
            requests_per_minute=requests_per_minute,
            receiver_url=receiver_url,
            drop_event_fraction=drop_events,
            scenario=scenario,
            seed=seed,
            dial_interval_seconds=dial_interval,
        )
        from recovery.contact_center.emulator.scenarios import get_scenario

        get_scenario(scenario)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(
        f"Genesys emulator on http://{host}:{port}: lists {', '.join(config.contact_lists)}, "
        f"DNC {', '.join(config.dnc_lists)}, {config.requests_per_minute} requests/min, "
        f"scenario {scenario} (seed {seed}), data actions "
        f"{', '.join(a.url for a in config.data_actions) or 'none'}"
    )
    serve(
        config, clock=parse_clock(app_settings.clock, app_settings.data_dir), host=host, port=port
    )

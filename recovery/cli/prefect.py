"""``recovery prefect setup`` and ``recovery serve``: Prefect for the flows, and everything on
one machine."""

from __future__ import annotations

import typer

from recovery.cli.common import FAILED, app, fail, settings

prefect_app = typer.Typer(help="Prefect set-up for the flows.", no_args_is_help=True)
app.add_typer(prefect_app, name="prefect")


@prefect_app.command("setup")
def prefect_setup(
    work_pool: bool = typer.Option(True, help="Also create the process work pool 'recovery'."),
) -> None:
    """Create the contact-centre rate limit (strict, from the settings) and the work pool."""
    from flows.setup import setup

    for line in setup(settings(), work_pool=work_pool):
        typer.echo(line)


@app.command("serve")
def serve_command(
    prefect_port: int = typer.Option(4200, help="Port of the local Prefect server."),
    emulator: bool = typer.Option(
        None, help="Run the Genesys emulator (default: when no real region is configured)."
    ),
    emulator_port: int = typer.Option(8900, help="Port of the emulator."),
    scenario: str = typer.Option("mixed", help="The emulator's call-outcome scenario."),
    dial_interval: float = typer.Option(5.0, min=0, help="Seconds between the emulator's dials."),
) -> None:
    """Run everything on this machine: Prefect (unless PREFECT_API_URL is set), the flows with
    their schedules, the emulator and the receiver. Ctrl-C stops it all."""
    import os

    from recovery.embedded.stack import run_embedded

    config = settings()
    with_emulator = emulator if emulator is not None else config.genesys_region == "emulator"
    try:
        run_embedded(
            config,
            env=dict(os.environ),
            prefect_port=prefect_port,
            with_emulator=with_emulator,
            emulator_port=emulator_port,
            scenario=scenario,
            dial_interval=dial_interval,
            say=typer.echo,
        )
    except RuntimeError as exc:
        fail(str(exc), FAILED)

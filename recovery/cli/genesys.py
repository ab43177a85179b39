"""``recovery genesys``: the contact centre's configuration (check, setup) and its outcome
listener."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

import typer

from recovery.cli.common import FAILED, app, fail, settings

if TYPE_CHECKING:
    from recovery.contact_center.client import GenesysClient
    from recovery.domain.policy import DispositionMap
    from recovery.services.configuration import Needs

genesys_app = typer.Typer(
    help="Genesys Cloud: check and set up the organisation, listen for call outcomes.",
    no_args_is_help=True,
)
app.add_typer(genesys_app, name="genesys")


def _needs_and_client() -> tuple[Needs, DispositionMap, GenesysClient]:
    from recovery.domain.compliance import load_rules
    from recovery.domain.policy import load_disposition_map
    from recovery.runtime import Runtime
    from recovery.services.configuration import Needs

    config = settings()
    try:
        rules = load_rules(config.calling_rules_file, config.calling_rules_profile)
        mapping = load_disposition_map(config.disposition_map_file)
    except ValueError as exc:
        fail(str(exc))
    runtime = Runtime(config)
    return Needs.of(config, rules), mapping, runtime.interactive_contact_center()


@genesys_app.command("check")
def genesys_check() -> None:
    """Read the organisation's configuration and print every way it differs from what the
    project needs, one line each; exit 1 when there is any (read only)."""
    from recovery.contact_center.errors import ContactCenterError
    from recovery.services.configuration import check

    needs, mapping, client = _needs_and_client()
    try:
        problems = check(client=client, needs=needs, mapping=mapping)
    except ContactCenterError as exc:
        fail(f"the contact centre could not be read: {exc}", FAILED)
    finally:
        client.close()
    for problem in problems:
        typer.echo(problem)
    if problems:
        raise typer.Exit(FAILED)
    typer.echo("the contact centre is set up as the project needs")


@genesys_app.command("setup")
def genesys_setup() -> None:
    """Create or correct what the project needs (attempt limits, contact list, DNC list,
    callable time set, the outcome rule set, the campaign's use of them); safe to repeat.
    Exit 1 when something is left for a person."""
    from recovery.contact_center.errors import ContactCenterError
    from recovery.services.configuration import set_up

    needs, mapping, client = _needs_and_client()
    try:
        result = set_up(client=client, needs=needs, mapping=mapping)
    except ContactCenterError as exc:
        fail(f"the contact centre refused a change: {exc}", FAILED)
    finally:
        client.close()
    for line in result.done:
        typer.echo(line)
    for name, value in result.settings.items():
        typer.echo(f"set {name}={value}")
    for line in result.left:
        typer.echo(f"not done: {line}")
    if not result.done and not result.left:
        typer.echo("nothing to do: the contact centre is set up")
    if result.left:
        raise typer.Exit(FAILED)


def _stop_on_term(listener_stop: threading.Event) -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        listener_stop.set()

    signal.signal(signal.SIGTERM, handler)


@genesys_app.command("listen")
def genesys_listen() -> None:
    """Record call outcomes from a notification channel as they happen (until Ctrl-C):
    reconnects on its own, records each conversation once."""
    from datetime import timedelta

    from recovery import event_feed
    from recovery.cli.common import runtime
    from recovery.contact_center.wrapups import WrapupNames
    from recovery.event_feed import EventSender
    from recovery.services.listen import OutcomeListener

    built = runtime()
    config = built.settings
    client = built.contact_center()
    listener = OutcomeListener(
        sessions=built.sessions,
        client=client,
        mapping=built.disposition_map,
        wrapups=WrapupNames(
            client, clock=built.clock, ttl=timedelta(seconds=config.genesys_wrapup_cache_seconds)
        ),
        clock=built.clock,
        campaign_id=config.genesys_campaign_id,
        silence=config.genesys_listener_silence_seconds,
        max_backoff=config.genesys_listener_max_backoff_seconds,
    )
    _stop_on_term(listener.stop)
    # Each outcome recorded is a case event in Prefect's feed (when PREFECT_API_URL is set).
    sender = EventSender(config.prefect_api_url) if config.prefect_api_url else None
    event_feed.install_sink(sender)
    typer.echo(f"listening for the outcomes of campaign {config.genesys_campaign_id}")
    try:
        listener.run()
    except KeyboardInterrupt:
        listener.stop.set()
    finally:
        event_feed.install_sink(None)
        if sender is not None:
            sender.stop()
        client.close()
        built.close()
    typer.echo(f"stopped: {dict(listener.stats)}")

"""``recovery db``: the store's schema (Alembic migrations)."""

from __future__ import annotations

import typer

from recovery.cli.common import FAILED, app, settings

db_app = typer.Typer(help="The store's schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the store's tables to the latest revision (safe to run again)."""
    from recovery.store.migrate import current_revision, redact_url, upgrade

    config = settings()
    upgrade(config.database_url, revision)
    typer.echo(
        f"store {redact_url(config.database_url)} at revision "
        f"{current_revision(config.database_url)}"
    )


@db_app.command("current")
def db_current() -> None:
    """Print the store's revision and the revision this code needs."""
    from recovery.store.migrate import current_revision, head_revision, redact_url

    config = settings()
    current, head = current_revision(config.database_url), head_revision(config.database_url)
    typer.echo(f"{redact_url(config.database_url)}: {current or 'none'} (code needs {head})")
    if current != head:
        raise typer.Exit(FAILED)

"""What every command shares: the root command, settings and runtime built once at the edge,
and the way a refusal becomes an exit code."""

from __future__ import annotations

from datetime import datetime
from typing import NoReturn

import typer
from sqlalchemy.orm import Session, sessionmaker

from recovery.runtime import Runtime
from recovery.settings import Settings

app = typer.Typer(
    name="recovery",
    help="Payment recovery: failed payments to lawful, well-timed contact-centre calls.",
    no_args_is_help=True,
    add_completion=False,
)

# Exit codes of every command.
FAILED = 1  # failed at run time (the store's schema behind, the contact centre unreachable...)
BAD_INPUT = 2  # bad arguments or input


def fail(message: str, code: int = BAD_INPUT) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        fail("invalid settings: " + "; ".join(str(e["msg"]) for e in exc.errors()))


def runtime(*, check_schema: bool = True) -> Runtime:
    from recovery.log_scrubbing import install_log_scrubbing
    from recovery.store.migrate import SchemaNotReady

    install_log_scrubbing()
    built = Runtime(settings())
    if check_schema:
        try:
            built.require_schema()
        except SchemaNotReady as exc:
            fail(str(exc), FAILED)
    return built


def existing_store(config: Settings, table: str) -> sessionmaker[Session] | None:
    """Sessions on the store, or None when it has no ``table`` (yet).

    Creates nothing, not even an empty SQLite file: the schema is the migrations' business.
    """
    from pathlib import Path

    from sqlalchemy import inspect

    from recovery.store.db import make_engine, make_sessionmaker

    url = config.database_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        return None
    engine = make_engine(url)
    if not inspect(engine).has_table(table):
        engine.dispose()
        return None
    return make_sessionmaker(engine, fingerprint=config.fingerprint())


def store_or_fail(config: Settings, table: str) -> sessionmaker[Session]:
    sessions = existing_store(config, table)
    if sessions is None:
        fail(f"the store has no {table} table yet: run `recovery db upgrade`", FAILED)
    return sessions


def now(config: Settings) -> datetime:
    from recovery.clock import parse_clock

    return parse_clock(config.clock, config.data_dir).now()


def print_json(value: object) -> None:
    import json

    typer.echo(json.dumps(value, default=str))

"""Schema migrations (Alembic), run from code so no ini file or working folder is assumed."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from recovery.store.db import make_engine

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaNotReady(RuntimeError):
    """The store's schema is missing or older than this code: run ``recovery db upgrade``."""


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def ensure_schema(url: str) -> None:
    """Raise ``SchemaNotReady`` with the fix when the store is not at the latest revision."""
    current, head = current_revision(url), head_revision(url)
    if current != head:
        raise SchemaNotReady(
            f"the store at {redact_url(url)} is at revision {current or 'none'}, this code needs "
            f"{head}: run `recovery db upgrade`"
        )


def redact_url(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"

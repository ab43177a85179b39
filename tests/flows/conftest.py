"""One Prefect server for the whole session (the real server and engine, on a temporary
SQLite), and the ``running_system`` fixture every end-to-end test starts its system with."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="prefect-home-"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.3")


@pytest.fixture(scope="session")
def prefect_api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real Prefect server as the embedded default starts it (``recovery.embedded.
    prefect_server``: its SQLite begun from the migrated template, busy timeout bounded, the
    embedded stack's service settings), in a folder of this test process's own (test
    processes may share ``PREFECT_HOME``: a parent that loads this file first sets it for its
    children); set as Prefect's API URL in this process for the session, and its database
    as the server database setting (the card sweep reads the file)."""
    import prefect.context
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_DATABASE_CONNECTION_URL,
        temporary_settings,
    )

    from tests.support.prefect_server import embedded_prefect_server

    with ExitStack() as stack:
        home = tmp_path_factory.mktemp("prefect-server")
        url = stack.enter_context(embedded_prefect_server(home))
        database = f"sqlite+aiosqlite:///{home / 'prefect.db'}"
        stack.enter_context(
            temporary_settings(
                updates={PREFECT_API_URL: url, PREFECT_SERVER_DATABASE_CONNECTION_URL: database}
            )
        )
        # Code that copied its context before the server started sees it too.
        stack.enter_context(
            prefect.context._temporary_global_settings_context(
                prefect.context.get_settings_context()
            )
        )
        yield url
        # Logs and events still queued go out before the server stops.
        APILogWorker.drain_all(timeout=10)
        EventsWorker.drain_all(timeout=10)


@pytest.fixture
def running_system(
    prefect_api_url: str, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Any]]:
    """A factory: ``running_system(start=..., scenario=..., extra_env=...)`` starts the whole
    system (``tests/support/running_system.py``) on this test's store and returns it; it stops
    when the test ends. End-to-end runs are on SQLite; PostgreSQL has its own store tests."""
    from tests.support.running_system import start_system

    if not store_url.startswith("sqlite"):
        pytest.skip("the end-to-end system runs on SQLite; PostgreSQL has its own tests")
    with ExitStack() as stack:

        def start(**options: Any) -> Any:
            return stack.enter_context(
                start_system(
                    store_url=store_url, tmp_path=tmp_path, monkeypatch=monkeypatch, **options
                )
            )

        yield start

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
def prefect_api_url() -> Iterator[str]:
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        url = PREFECT_API_URL.value()
        assert url
        yield str(url)


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

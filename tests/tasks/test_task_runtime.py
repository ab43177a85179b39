"""The runtime tasks obtain: one per process and settings, held by flow runs, closed after the
last one, so task inputs stay plain values."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks import runtime as task_runtime
from tasks.runtime import flow_runtime, runtime


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    task_runtime.close_all()
    monkeypatch.chdir(tmp_path)  # no .env file of the project's
    monkeypatch.setenv("RECOVERY_DATABASE_URL", f"sqlite:///{tmp_path / 'a.db'}")
    monkeypatch.setenv("RECOVERY_DATA_DIR", str(tmp_path / "data"))
    yield
    task_runtime.close_all()


def test_one_runtime_per_process_and_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = runtime()
    assert runtime() is first
    monkeypatch.setenv("RECOVERY_DATABASE_URL", f"sqlite:///{tmp_path / 'b.db'}")
    other = runtime()
    assert other is not first and other.settings.database_url.endswith("b.db")
    # A secret is part of the settings too, though it is never shown.
    monkeypatch.setenv("RECOVERY_GENESYS_CLIENT_SECRET", "another-secret-0123456789")
    assert runtime() is not other


def test_the_last_flow_run_out_closes_the_client_and_the_connections() -> None:
    with flow_runtime(check_schema=False) as outer:
        client = outer.shared_contact_center
        with flow_runtime(check_schema=False) as inner:
            assert inner is outer and runtime() is outer
        assert outer.shared_contact_center is client  # another run still holds it
    assert client._http.is_closed
    # Used again, it builds a new client and opens new connections.
    again = runtime()
    assert again is outer and again.shared_contact_center is not client
    with again.engine.connect():
        pass


def test_old_runtimes_are_closed_once_more_settings_arrive(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built = []
    for i in range(task_runtime.KEEP + 2):
        monkeypatch.setenv("RECOVERY_DATABASE_URL", f"sqlite:///{tmp_path / f'{i}.db'}")
        built.append(runtime())
        built[-1].shared_contact_center  # noqa: B018
    assert len(task_runtime._runtimes) == task_runtime.KEEP
    assert built[0]._shared_client is None and built[1]._shared_client is None
    assert built[-1]._shared_client is not None

"""``recovery cases show`` points at the case's event timeline in the Prefect UI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recovery.cli import app
from recovery.clock import FileClock
from recovery.store.db import make_engine, make_sessionmaker
from recovery.store.migrate import upgrade
from tests.services import test_retry_waits as waits


@pytest.fixture
def stored(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[waits.Store]:
    clock = FileClock(tmp_path / "clock")
    clock.set(waits.T)
    upgrade(store_url)
    monkeypatch.setenv("RECOVERY_DATABASE_URL", store_url)
    monkeypatch.setenv("RECOVERY_CLOCK", f"file:{tmp_path / 'clock'}")
    engine = make_engine(store_url)
    try:
        yield waits.Store(make_sessionmaker(engine), clock)
    finally:
        engine.dispose()


def test_cases_show_prints_the_address_of_the_case_events(
    stored: waits.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored.deliver(waits.failure("in_t", waits.T), "failure")
    assert stored.ingest() == {"opened": 1}
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    shown = CliRunner().invoke(app, ["cases", "show", "in_t"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    url = "http://127.0.0.1:4200/events?resource=recovery.case.stripe%3Ain_t"
    assert f"events in Prefect: {url}" in shown.stdout
    document = json.loads(CliRunner().invoke(app, ["cases", "show", "in_t", "--json"]).stdout)
    assert document["events_url"] == url

    monkeypatch.delenv("PREFECT_API_URL")
    monkeypatch.delenv("RECOVERY_PREFECT_API_URL", raising=False)
    plain = CliRunner().invoke(app, ["cases", "show", "in_t", "--json"])
    assert "events_url" not in json.loads(plain.stdout)

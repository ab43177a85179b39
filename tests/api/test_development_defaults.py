"""Development defaults cannot expose the receiver: an empty admin token opens nothing, and a
development-mode receiver listens on loopback only."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from recovery.api.receiver import build_receiver
from recovery.cli import app
from recovery.clock import FixedClock
from recovery.runtime import Runtime
from recovery.settings import bind_problem
from tests.factories import T0, settings_for


@pytest.mark.parametrize("token", ["", "   "])
def test_an_empty_admin_token_refuses_every_bearer(store_url: str, token: str) -> None:
    runtime = Runtime(settings_for(store_url, admin_token=token), clock_override=FixedClock(T0))
    app_, stop = build_receiver(runtime, trigger=False)
    client = TestClient(app_)
    try:
        for header in ("Bearer ", "Bearer", "bearer  ", f"Bearer {token}", "Bearer \t"):
            answer = client.get("/admin/stats", headers={"Authorization": header})
            assert answer.status_code == 401, header
        assert client.get("/admin/stats").status_code == 401
    finally:
        stop()
        runtime.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com", ""])
def test_a_development_receiver_refuses_a_public_bind(host: str) -> None:
    result = CliRunner().invoke(app, ["api", "--host", host, "--no-trigger"])
    assert result.exit_code == 2, result.output
    assert "loopback" in result.output and "RECOVERY_MODE=production" in result.output


def test_a_development_receiver_refuses_a_public_bind_from_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECOVERY_API_HOST", "0.0.0.0")
    result = CliRunner().invoke(app, ["api", "--no-trigger"])
    assert result.exit_code == 2 and "loopback" in result.output


@pytest.mark.parametrize(
    ("host", "mode", "refused"),
    [
        ("127.0.0.1", "development", False),
        ("127.0.0.2", "development", False),
        ("::1", "development", False),
        ("localhost", "development", False),
        ("0.0.0.0", "development", True),
        ("10.0.0.5", "development", True),
        ("0.0.0.0", "production", False),
        ("10.0.0.5", "production", False),
    ],
)
def test_bind_problem(host: str, mode: str, refused: bool) -> None:
    assert (bind_problem(host, mode) is not None) is refused

"""The Genesys emulator served over real HTTP on loopback, and driven through its control API.

``running_emulator(clock)`` serves one for a block of code; the module-scoped fixtures serve
one per test module (import them into the module: ``from tests.support.emulator import
emulator, emulator_server``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from recovery.clock import Clock, FixedClock
from recovery.contact_center.client import GenesysClient
from recovery.contact_center.emulator import EmulatorConfig, create_emulator_app
from recovery.contact_center.emulator.server import serve_in_thread
from recovery.contact_center.throttle import RetryPolicy

# 12:00 in New York, 09:00 in Los Angeles: inside the callable window across the US.
NOON_EASTERN = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
CLIENT_ID = "emulator-client"
CLIENT_SECRET = "emulator-secret-for-tests"
CONTACT_LIST = "recovery-contacts"
DNC_LIST = "recovery-dnc"


serve_app = serve_in_thread


class SleepRecorder:
    """An injected ``sleep`` that records the waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@dataclass
class Emulator:
    """A running emulator and its control API."""

    base_url: str
    clock: Clock
    state: Any
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def control(self, method: str, path: str, json: Any = None) -> Any:
        response = self.http.request(method, f"{self.base_url}/__emulator__{path}", json=json)
        response.raise_for_status()
        return response.json()

    @property
    def url(self) -> str:
        return self.base_url

    def counters(self) -> dict[str, int]:
        result: dict[str, int] = self.control("GET", "/counters")
        return result

    def contacts(self, contact_list: str = CONTACT_LIST) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.control(
            "GET", f"/contact-lists/{contact_list}/contacts"
        )
        return result

    def fault(self, status: int, **options: Any) -> None:
        self.control("POST", "/faults", {"status": status, **options})

    def clear_faults(self) -> None:
        self.control("DELETE", "/faults")

    def dial(self, at: datetime | None = None) -> dict[str, int]:
        result: dict[str, int] = self.control("POST", "/dial", {"at": at.isoformat()} if at else {})
        return result

    def dial_log(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.control("GET", "/dial-log")
        return result

    def placed(self) -> list[str]:
        """The contact id of every call placed, in order."""
        return [e["contactId"] for e in self.dial_log() if e["placed"]]

    def platform(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> Any:
        """A request to ``/api/v2{path}``."""
        headers = {"Authorization": f"Bearer {token or self.token()}"}
        return self.http.request(method, f"{self.base_url}/api/v2{path}", headers=headers, **kwargs)

    def token(self) -> str:
        response = self.http.post(
            f"{self.base_url}/oauth/token",
            auth=(CLIENT_ID, CLIENT_SECRET),
            data={"grant_type": "client_credentials"},
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def api(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token or self.token()}"}
        return self.http.request(
            method, f"{self.base_url}/api/v2/outbound{path}", headers=headers, **kwargs
        )

    def client(self, *, sleep: SleepRecorder | None = None, **options: Any) -> GenesysClient:
        options.setdefault("retry", RetryPolicy())
        return GenesysClient(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            base_url=self.base_url,
            sleep=sleep or SleepRecorder(),
            clock=self.clock,
            **options,
        )


def emulator_config(**overrides: Any) -> EmulatorConfig:
    values: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "contact_lists": [CONTACT_LIST],
        "dnc_lists": [DNC_LIST],
        "requests_per_minute": None,
        # As `recovery genesys setup` leaves an organisation: one attempt per contact.
        "attempt_limits": {"maxAttemptsPerContact": 1, "resetPeriod": "NEVER"},
    }
    values.update(overrides)
    return EmulatorConfig(**values)


@contextmanager
def running_emulator(clock: Clock, **overrides: Any) -> Iterator[Emulator]:
    """The emulator in a thread of this process on ``clock``, configured by
    ``emulator_config(**overrides)`` (no dialer unless asked: nothing is called back)."""
    app = create_emulator_app(emulator_config(**overrides), clock=clock)
    with serve_in_thread(app) as base_url:
        handle = Emulator(base_url=base_url, clock=clock, state=app.state.emulator)
        try:
            yield handle
        finally:
            handle.http.close()


@pytest.fixture(scope="module")
def emulator_server() -> Iterator[Emulator]:
    with running_emulator(FixedClock(NOON_EASTERN)) as handle:
        yield handle


@pytest.fixture
def emulator(emulator_server: Emulator) -> Emulator:
    """The module's emulator, reset to its configuration, its clock at noon Eastern."""
    emulator_server.control("POST", "/reset", {"keep_tokens": True})
    emulator_server.clock.set(NOON_EASTERN)
    return emulator_server

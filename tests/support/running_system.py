"""The whole system for end-to-end tests: the real receiver and emulator over HTTP on loopback,
the real flows on the real Prefect engine, one store, and a hand-moved clock they all share."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from recovery.api.receiver import build_receiver
from recovery.clock import FileClock
from recovery.contact_center.emulator.app import create_emulator_app
from recovery.contact_center.emulator.server import serve_in_thread
from recovery.contact_center.emulator.state import DataActionTarget, EmulatorConfig
from recovery.runtime import Runtime
from recovery.settings import Settings
from tests.factories import STRIPE_SECRET, stripe_headers

ACTION_SECRET = "action_test_secret_0123456789"
DATA_ACTION = "recovery-outcome"


def set_up_organisation(runtime: Runtime) -> list[str]:
    """The emulated organisation set up as ``recovery genesys setup`` sets one up (attempt
    limits of one dial per contact, the calling hours, the outcome rule set); what it did."""
    from recovery.services.configuration import Needs, set_up

    with runtime.contact_center() as client:
        result = set_up(
            client=client,
            needs=Needs.of(runtime.settings, runtime.rules),
            mapping=runtime.disposition_map,
        )
    assert not result.left, result.left
    return result.done


def action_target(receiver: str) -> DataActionTarget:
    """The data action of the emulated organisation: the receiver's outcome callback."""
    return DataActionTarget(
        id=DATA_ACTION,
        url=f"{receiver}/callbacks/genesys/outcome",
        basic_username="genesys",
        basic_password=ACTION_SECRET,
    )


@dataclass
class System:
    clock: FileClock
    receiver: str
    emulator: str
    runtime: Runtime
    http: httpx.Client

    def set_time(self, at: datetime) -> None:
        self.clock.set(at)

    def post(self, event: dict[str, Any]) -> httpx.Response:
        body = json.dumps(event).encode()
        return self.http.post(
            f"{self.receiver}/webhooks/stripe", content=body, headers=stripe_headers(body)
        )

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(f"{self.emulator}/__emulator__/{path}", json=body or {})
        response.raise_for_status()
        return response.json()

    def counters(self) -> dict[str, int]:
        return self.http.get(f"{self.emulator}/__emulator__/counters").json()  # type: ignore[no-any-return]

    def contacts(self) -> list[dict[str, Any]]:
        list_id = self.runtime.settings.genesys_contact_list_id
        return self.http.get(  # type: ignore[no-any-return]
            f"{self.emulator}/__emulator__/contact-lists/{list_id}/contacts"
        ).json()

    def dial(self) -> dict[str, int]:
        """The dialer calls what is queued, now (by the shared clock)."""
        return self.control("dial")  # type: ignore[no-any-return]


@contextmanager
def running_system(
    *,
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    start: datetime,
    scenario: str = "all-no-answer",
    extra_env: dict[str, str] | None = None,
) -> Iterator[System]:
    from flows.setup import setup

    clock_file = tmp_path / "clock"
    clock = FileClock(clock_file)
    clock.set(start)
    env = {
        "RECOVERY_DATABASE_URL": store_url,
        "RECOVERY_CLOCK": f"file:{clock_file}",
        "RECOVERY_STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
        "RECOVERY_GENESYS_ACTION_SECRETS": ACTION_SECRET,
        "RECOVERY_GENESYS_DATA_ACTION_ID": DATA_ACTION,
        "RECOVERY_GENESYS_RATE_LIMIT_NAME": f"genesys-test-{uuid.uuid4().hex[:8]}",
        "RECOVERY_GENESYS_REQUESTS_PER_MINUTE": "6000",
        "RECOVERY_RATE_LIMIT_OCCUPY": "5",
        **(extra_env or {}),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with ExitStack() as stack:
        # The emulator first: the receiver names wrap-up codes through it.
        emulator_app = create_emulator_app(
            EmulatorConfig(
                client_id=Settings().genesys_client_id,
                client_secret=Settings().genesys_client_secret.get_secret_value(),
                contact_lists=[Settings().genesys_contact_list_id],
                dnc_lists=[Settings().genesys_dnc_list_id],
                requests_per_minute=None,
                scenario=scenario,
                dial_interval_seconds=None,
            ),
            clock=clock,
        )
        emulator = stack.enter_context(serve_in_thread(emulator_app))
        monkeypatch.setenv("RECOVERY_GENESYS_BASE_URL", emulator)
        runtime = Runtime(Settings())
        stack.callback(runtime.close)
        app, stop = build_receiver(runtime, trigger=False)
        stack.callback(stop)
        receiver = stack.enter_context(serve_in_thread(app))
        emulator_app.state.emulator.data_actions[DATA_ACTION] = action_target(receiver)
        setup(Settings(), work_pool=False)
        set_up_organisation(runtime)
        http = stack.enter_context(httpx.Client(timeout=30))
        yield System(clock=clock, receiver=receiver, emulator=emulator, runtime=runtime, http=http)

"""The whole system for end-to-end tests: the real receiver and emulator over HTTP on loopback,
the real flows on the real Prefect engine, one store, and a file clock they all share.

``start_system`` starts it (the ``running_system`` fixture of ``tests/flows/conftest.py`` is
the way tests get one); its options say what differs between tests: the start instant, the
emulator's scenario and extra settings. Every request body the emulator received and every
response body the receiver sent are recorded (``emulator_log``, ``receiver_log``), and the
emulator's in-memory state is at hand for the proofs that look inside it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
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
from recovery.contact_center.emulator.state import DataActionTarget, EmulatorConfig, EmulatorState
from recovery.gateways.signing import sign
from recovery.runtime import Runtime
from recovery.settings import Settings
from tests.factories import GENERIC_SECRET, STRIPE_SECRET, stripe_headers
from tests.support.asgi import Recorder
from tests.support.store_probe import StoreProbe

ACTION_SECRET = "action_test_secret_0123456789"
DATA_ACTION = "recovery-outcome"
ADMIN_TOKEN = "admin_hardening_token_0123456789"


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
    emulator_state: EmulatorState
    emulator_log: Recorder
    receiver_log: Recorder
    store_url: str
    data_dir: Path

    @property
    def store(self) -> StoreProbe:
        """Reads of the system's store for assertions."""
        return StoreProbe(self.runtime.sessions)

    def set_time(self, at: datetime) -> None:
        self.clock.set(at)

    def post(self, event: dict[str, Any]) -> httpx.Response:
        """A Stripe event, signed, to the receiver."""
        return self.post_stripe_body(json.dumps(event).encode())

    def post_stripe_body(self, body: bytes) -> httpx.Response:
        return self.http.post(
            f"{self.receiver}/webhooks/stripe", content=body, headers=stripe_headers(body)
        )

    def post_generic_body(self, body: bytes) -> httpx.Response:
        headers = {
            "Content-Type": "application/json",
            "Recovery-Signature": sign(body, GENERIC_SECRET, int(time.time())),
        }
        return self.http.post(f"{self.receiver}/webhooks/generic", content=body, headers=headers)

    def admin(self, path: str) -> httpx.Response:
        return self.http.get(
            f"{self.receiver}/admin{path}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
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


def run_flows(*names: str) -> dict[str, Any]:
    """Run flows in this process on the session's Prefect server, in order; their return values."""
    from flows.advance import advance
    from flows.close_on_payment import close_on_payment
    from flows.dispositions import dispositions
    from flows.ingest import ingest
    from flows.reconcile import reconcile
    from flows.report import report
    from flows.review import review_queue
    from flows.uncallable import uncallable

    table: dict[str, Callable[[], Any]] = {
        "ingest": ingest,
        "advance": advance,
        "dispositions": dispositions,
        "reconcile": reconcile,
        "close_on_payment": close_on_payment,
        "review_queue": review_queue,
        "uncallable": uncallable,
        "report": lambda: report(days=60),
    }
    return {name: table[name]() for name in names}


@contextmanager
def start_system(
    *,
    store_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    start: datetime,
    scenario: str = "all-no-answer",
    extra_env: dict[str, str] | None = None,
) -> Iterator[System]:
    """The receiver and the emulator over HTTP on loopback, flows on the session's Prefect
    server, one clock set at ``start``; the emulator plays ``scenario``; ``extra_env`` adds or
    overrides settings (``RECOVERY_*``)."""
    from flows.setup import setup

    clock_file = tmp_path / "clock"
    clock = FileClock(clock_file)
    clock.set(start)
    data_dir = tmp_path / "data"
    env = {
        "RECOVERY_DATABASE_URL": store_url,
        "RECOVERY_DATA_DIR": str(data_dir),
        "RECOVERY_CLOCK": f"file:{clock_file}",
        "RECOVERY_STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
        "RECOVERY_GENERIC_SIGNING_SECRETS": GENERIC_SECRET,
        "RECOVERY_GENESYS_ACTION_SECRETS": ACTION_SECRET,
        "RECOVERY_GENESYS_DATA_ACTION_ID": DATA_ACTION,
        "RECOVERY_ADMIN_TOKEN": ADMIN_TOKEN,
        "RECOVERY_GENESYS_RATE_LIMIT_NAME": f"genesys-test-{uuid.uuid4().hex[:8]}",
        "RECOVERY_GENESYS_REQUESTS_PER_MINUTE": "6000",
        "RECOVERY_RATE_LIMIT_OCCUPY": "5",
        **(extra_env or {}),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    emulator_log, receiver_log = Recorder(), Recorder()
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
        state: EmulatorState = emulator_app.state.emulator
        emulator = stack.enter_context(serve_in_thread(emulator_log.wrap(emulator_app)))
        monkeypatch.setenv("RECOVERY_GENESYS_BASE_URL", emulator)
        runtime = Runtime(Settings())
        stack.callback(runtime.close)
        app, stop = build_receiver(runtime, trigger=False)
        stack.callback(stop)
        receiver = stack.enter_context(serve_in_thread(receiver_log.wrap(app)))
        state.data_actions[DATA_ACTION] = action_target(receiver)
        setup(Settings(), work_pool=False)
        set_up_organisation(runtime)
        http = stack.enter_context(httpx.Client(timeout=600))
        yield System(
            clock=clock,
            receiver=receiver,
            emulator=emulator,
            runtime=runtime,
            http=http,
            emulator_state=state,
            emulator_log=emulator_log,
            receiver_log=receiver_log,
            store_url=store_url,
            data_dir=data_dir,
        )

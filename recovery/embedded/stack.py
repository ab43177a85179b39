"""``recovery serve``: the embedded default, every part on this machine."""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType

from recovery.embedded.supervisor import Part, Supervisor, python
from recovery.settings import Settings

# The embedded Prefect server keeps its database in one SQLite file, where writers take turns.
# Its defaults write each task-run event in a transaction of its own and schedule an hour of
# runs ahead for every interval deployment; under the flows' load the writers then queue on
# the file's lock. These settings (the caller's own values win) batch the server's writes.
EMBEDDED_PREFECT_SERVER = {
    # Task runs recorded in batches of up to 100 events, at least once a second (default: one
    # transaction per event).
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    # Events stored in batches of up to 100, at least every 2 s (default: 20, every 5 s).
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "2",
    # At most five scheduled runs ahead per deployment (default: up to 100, an hour ahead):
    # the runner reads the scheduled runs at every poll.
    "PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS": "5",
    "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_RUNS": "2",
    "PREFECT_SERVER_SERVICES_SCHEDULER_MIN_SCHEDULED_TIME": "PT5M",
}


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_embedded(
    settings: Settings,
    *,
    env: dict[str, str],
    prefect_port: int,
    with_emulator: bool,
    emulator_port: int,
    scenario: str,
    dial_interval: float,
    say: Callable[[str], None],
    block: bool = True,
    emulator_seed: int = 0,
) -> Supervisor:
    """Start Prefect (unless PREFECT_API_URL is set), the flows, the emulator (set up as
    ``recovery genesys setup`` sets up an organisation), the receiver and the notification
    listener. Against a real region, ``recovery genesys check`` is run and its findings shown.

    ``emulator_seed`` seeds the emulator's outcomes (drawn per contact and dial).
    With ``block`` it waits for Ctrl-C and stops everything; without, the caller stops it."""
    data = settings.data_dir.resolve()
    env = {**env, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "RECOVERY_DATA_DIR": str(data)}
    env.setdefault("PREFECT_HOME", str(data / "prefect"))
    supervisor = Supervisor(env=env, log_dir=data / "logs", say=say)
    # A service manager stops us with SIGTERM: stop the parts as Ctrl-C would.
    signal.signal(signal.SIGTERM, _interrupt)
    api = f"http://{settings.api_host}:{settings.api_port}"
    try:
        # Prefect's server, the emulator and the store's migrations do not need each other:
        # they start side by side, and each is waited for before what needs it.
        starting: list[tuple[Part, float]] = []
        if not env.get("PREFECT_API_URL"):
            env["PREFECT_API_URL"] = f"http://127.0.0.1:{prefect_port}/api"
            for name, value in EMBEDDED_PREFECT_SERVER.items():
                env.setdefault(name, value)
            server = Part(
                "prefect-server",
                [
                    python(),
                    "-m",
                    # `prefect server start`, with SQLite's busy timeout bounded.
                    "recovery.embedded.prefect_server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(prefect_port),
                ],
                health_url=f"http://127.0.0.1:{prefect_port}/api/health",
                serves_others=True,
            )
            supervisor.start(server, wait=False)
            starting.append((server, 120))
        if with_emulator:
            env["RECOVERY_GENESYS_BASE_URL"] = f"http://127.0.0.1:{emulator_port}"
            # The emulated organisation sends each outcome to the receiver by a data action.
            env.setdefault("RECOVERY_GENESYS_DATA_ACTION_ID", "recovery-outcome")
            emulator = Part(
                "emulator",
                [
                    python(),
                    "-m",
                    "recovery.cli",
                    "emulator",
                    "--port",
                    str(emulator_port),
                    "--receiver-url",
                    api,
                    "--scenario",
                    scenario,
                    "--dial-interval",
                    str(dial_interval),
                    "--seed",
                    str(emulator_seed),
                ],
                health_url=f"http://127.0.0.1:{emulator_port}/__emulator__/counters",
                serves_others=True,
            )
            supervisor.start(emulator, wait=False)
            starting.append((emulator, 90))
        say(supervisor.run([python(), "-m", "recovery.cli", "db", "upgrade"]).strip())
        for part, timeout in starting:
            supervisor.wait_healthy(part, timeout)
        # The receiver needs only the store and Prefect's address: it starts while the rest is
        # set up; the flows once the rate limit exists, while the contact centre is set up.
        receiver = Part(
            "receiver", [python(), "-m", "recovery.cli", "api"], health_url=f"{api}/healthz"
        )
        supervisor.start(receiver, wait=False)
        for line in supervisor.run(
            [python(), "-m", "recovery.cli", "prefect", "setup", "--no-work-pool"]
        ).splitlines():
            say(f"  {line}")
        flows = Part("flows", [python(), "-m", "flows.deployments"])
        supervisor.start(flows, wait=False)
        if with_emulator:
            for line in supervisor.run(
                [python(), "-m", "recovery.cli", "genesys", "setup"]
            ).splitlines():
                say(f"  {line}")
        else:
            found = supervisor.run(
                [python(), "-m", "recovery.cli", "genesys", "check"], check=False
            ).splitlines()
            for line in found:
                say(f"  genesys: {line}")
        supervisor.wait_healthy(flows)
        supervisor.wait_healthy(receiver)
        supervisor.start(Part("listener", [python(), "-m", "recovery.cli", "genesys", "listen"]))
        say(f"receiver: {api}   Prefect UI: {env['PREFECT_API_URL'].removesuffix('/api')}")
        if not block:
            return supervisor
        say("running; Ctrl-C stops everything")
        supervisor.wait()
    except KeyboardInterrupt:
        say("stopping")
    except BaseException:
        supervisor.stop()
        raise
    supervisor.stop()
    return supervisor

"""How the embedded default is set up to play weeks in minutes: settings only."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DEMO_DIR = Path("data/demo")
# One virtual week per real minute: three weeks in three minutes.
DEFAULT_SPEED = 10_080.0
# Friday 4 December 2026, 00:00 in New York: the virtual clock's origin. Starting the parts
# takes half a minute or so, so the campaign itself begins two to four virtual days later and
# runs over Christmas (a public holiday where the rules say so).
VIRTUAL_ORIGIN = datetime(2026, 12, 4, 5, 0, tzinfo=UTC)

# Variables of the caller's shell that would point the demo at another store, server or contact
# centre (the rest, such as an operator's own calling rules, apply to the demo as well).
_FOREIGN_ENV = (
    "RECOVERY_MODE",
    "RECOVERY_DATA_DIR",
    "RECOVERY_DATABASE_URL",
    "RECOVERY_CLOCK",
    "RECOVERY_PREFECT_API_URL",
    "RECOVERY_INGEST_DEPLOYMENT",
    "RECOVERY_GENESYS_REGION",
    "RECOVERY_GENESYS_BASE_URL",
    "RECOVERY_GENESYS_LOGIN_URL",
    "PREFECT_API_URL",
    "PREFECT_HOME",
    "PREFECT_PROFILES_PATH",
    "PREFECT_API_DATABASE_CONNECTION_URL",
    "PREFECT_SERVER_DATABASE_CONNECTION_URL",
)


# --- time compression -----------------------------------------------------------------------


@dataclass(frozen=True)
class Tuning:
    """How the embedded default is set up to play weeks in minutes: settings only.

    ``speed`` is virtual seconds per real second. The advance flow plans a contact only when
    calling stays lawful for the dial margin after its decision, and checks once more (without
    the margin) right before sending it. The margin has to cover, in virtual time, the real
    delay from the decision to the emulator's dial: the rest of the advance run (the rate
    limit, the create-contacts task: 0.2 to 3 s on a busy two-core machine) and one dial
    interval; ``latency_budget`` is that delay in real seconds. Every flow run is a process of
    its own (3 to 6 s before its first line runs on such a machine), so the schedules are as
    short as the runner's four processes sustain, and the flows off the critical path
    (dispositions, reconcile) run seldom to leave them to advance and ingest."""

    speed: float
    advance_interval: int = 3
    dispositions_interval: int = 300
    reconcile_interval: int = 20
    close_on_payment_interval: int = 20
    # Rarely: the demo's organisation allows one attempt per contact, so nothing recycles
    # meanwhile, and every flow run started takes one of the runner's four slots (a run every
    # 20 s more leaves ingest no slot on a two-core machine).
    uncallable_interval: int = 300
    trigger_bucket: int = 5
    dial_interval: float = 0.05
    latency_budget: float = 2.5
    chunk_size: int = 25
    lease_seconds: int = 30
    # An advance run keeps watching for due cases this long (real seconds), and the runs the
    # schedule starts meanwhile are skipped: cases are taken up as they fall due, not only
    # when a new process has started (3 to 6 s, half a virtual day).
    advance_linger: float = 30.0

    @property
    def dial_margin_minutes(self) -> int:
        return min(600, math.ceil(self.speed * self.latency_budget / 60))

    def env(self) -> dict[str, str]:
        return {
            "RECOVERY_ADVANCE_INTERVAL_SECONDS": str(self.advance_interval),
            "RECOVERY_ADVANCE_LINGER_SECONDS": str(self.advance_linger),
            "RECOVERY_DISPOSITIONS_INTERVAL_SECONDS": str(self.dispositions_interval),
            "RECOVERY_RECONCILE_INTERVAL_SECONDS": str(self.reconcile_interval),
            "RECOVERY_CLOSE_ON_PAYMENT_INTERVAL_SECONDS": str(self.close_on_payment_interval),
            "RECOVERY_UNCALLABLE_INTERVAL_SECONDS": str(self.uncallable_interval),
            "RECOVERY_TRIGGER_BUCKET_SECONDS": str(self.trigger_bucket),
            "RECOVERY_DIAL_MARGIN_MINUTES": str(self.dial_margin_minutes),
            "RECOVERY_LEASE_SECONDS": str(self.lease_seconds),
            # Small chunks: the contacts of a chunk are sent right after it is decided.
            "RECOVERY_ADVANCE_CHUNK_SIZE": str(self.chunk_size),
            # The runner looks for due runs every 10 s by default: a virtual day.
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        }

    def describe(self) -> str:
        return (
            f"virtual clock x{self.speed:g} (1 virtual day = {86400 / self.speed:.1f} s); "
            f"advance every {self.advance_interval} s, reconcile every "
            f"{self.reconcile_interval} s, emulator dials every {self.dial_interval} s, dial "
            f"margin {self.dial_margin_minutes} virtual min ({self.latency_budget} s real)"
        )

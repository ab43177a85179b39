"""How the embedded default is set up to play weeks in minutes: settings only."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

DEMO_DIR = Path("data/demo")
# The clock skips the time in which nothing is due (see recovery.demo.skipping); while the
# parts work, virtual time runs at this speed: a virtual minute per real second, so that the
# few seconds a step takes on a busy machine are minutes, not hours, of virtual time.
DEFAULT_SPEED = 60.0
# Friday 4 December 2026, 00:00 in New York: the virtual clock's origin while the parts start.
VIRTUAL_ORIGIN = datetime(2026, 12, 4, 5, 0, tzinfo=UTC)
# The campaign begins at a fixed instant (the clock jumps there once everything runs), Monday
# 7 December 2026, 00:00 in New York, and three weeks run over Christmas (a public holiday where
# the rules say so): the same seed plays the same campaign on any machine.
CAMPAIGN_START = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)

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

    ``speed`` is virtual seconds per real second while the parts work; the time in which
    nothing is due is skipped. The advance flow plans a contact only when calling stays lawful
    for the dial margin after its decision; the margin covers, in virtual time, the real delay
    from the decision to the emulator's dial (``latency_budget`` real seconds).

    Every flow run is a process of its own (3 to 6 s before its first line runs on a busy
    two-core machine), so the two flows on the critical path keep watching for work: an
    advance run for ``advance_linger`` seconds from its start (two at once, so the next
    one starts while the previous still watches), an ingest run for ``ingest_linger`` seconds
    from its start (the receiver starts at most one a ``trigger_bucket``; with two at once and
    a linger longer than the bucket, the next one starts while the previous still watches).
    The flows off the critical path run seldom, to leave the two cores to those two."""

    speed: float
    # The clock's jumps land on a grid of this many virtual minutes from the campaign's start.
    resolution_minutes: int = 60
    advance_interval: int = 60
    advance_linger: float = 100.0
    # Two advance runs at once: the next one starts while the previous still watches.
    advance_concurrency: int = 2
    trigger_bucket: int = 120
    # Longer than the bucket by more than a flow run's start: the run the next bucket's first
    # delivery starts is watching before this one ends.
    ingest_linger: float = 135.0
    ingest_concurrency: int = 2
    # Flow runs at once: the two watching runs, and room for the others beside them.
    runner_limit: int = 8
    dispositions_interval: int = 120
    reconcile_interval: int = 60
    # A reconcile run watches for overdue outcomes (a lost data action) for most of its minute,
    # ending before the next is due even when it started late (a queued run costs the server).
    reconcile_linger: float = 40.0
    close_on_payment_interval: int = 120
    # Rarely: the demo's organisation allows one attempt per contact, so nothing recycles.
    uncallable_interval: int = 300
    dial_interval: float = 0.05
    latency_budget: float = 5.0
    chunk_size: int = 25
    lease_seconds: int = 30

    @property
    def dial_margin_minutes(self) -> int:
        return min(600, math.ceil(self.speed * self.latency_budget / 60))

    def env(self) -> dict[str, str]:
        return {
            "RECOVERY_ADVANCE_INTERVAL_SECONDS": str(self.advance_interval),
            "RECOVERY_ADVANCE_LINGER_SECONDS": str(self.advance_linger),
            "RECOVERY_ADVANCE_CONCURRENCY": str(self.advance_concurrency),
            "RECOVERY_INGEST_LINGER_SECONDS": str(self.ingest_linger),
            "RECOVERY_INGEST_CONCURRENCY": str(self.ingest_concurrency),
            "RECOVERY_RUNNER_LIMIT": str(self.runner_limit),
            "RECOVERY_DISPOSITIONS_INTERVAL_SECONDS": str(self.dispositions_interval),
            "RECOVERY_RECONCILE_INTERVAL_SECONDS": str(self.reconcile_interval),
            "RECOVERY_RECONCILE_LINGER_SECONDS": str(self.reconcile_linger),
            "RECOVERY_CLOSE_ON_PAYMENT_INTERVAL_SECONDS": str(self.close_on_payment_interval),
            "RECOVERY_UNCALLABLE_INTERVAL_SECONDS": str(self.uncallable_interval),
            "RECOVERY_TRIGGER_BUCKET_SECONDS": str(self.trigger_bucket),
            "RECOVERY_DIAL_MARGIN_MINUTES": str(self.dial_margin_minutes),
            "RECOVERY_LEASE_SECONDS": str(self.lease_seconds),
            # Small chunks: the contacts of a chunk are sent right after it is decided.
            "RECOVERY_ADVANCE_CHUNK_SIZE": str(self.chunk_size),
            # The runner looks for due runs every 10 s by default.
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            # A run that waits for its deployment's slot (one at a time) looks again after a
            # second, not thirty: the lingering run before it is about to end.
            "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "1",
            # Server loops the demo has no use for, each a writer on the server's SQLite file:
            # marking runs late (a run waits for its slot by design), work-pool health (no
            # workers: the flows are served) and pause expirations (no flow pauses).
            "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false",
        }

    def describe(self) -> str:
        return (
            f"virtual clock x{self.speed:g} while the parts work, skipping ahead (to a "
            f"{self.resolution_minutes}-minute grid) whenever nothing is due; advance every "
            f"{self.advance_interval} s (watching "
            f"{self.advance_linger:g} s), ingest watching {self.ingest_linger:g} s, emulator "
            f"dials every {self.dial_interval} s, dial margin {self.dial_margin_minutes} "
            f"virtual min ({self.latency_budget:g} s real)"
        )

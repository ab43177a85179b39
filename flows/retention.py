"""Flow: personal data that has outlived its purpose is erased, every day."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_table_artifact

from recovery.runtime import Runtime
from recovery.settings import Settings
from tasks.retention import erase_expired


@flow(name="retention")
def retention() -> dict[str, object]:
    """Erase the personal fields of cases closed longer than RECOVERY_RETENTION_DAYS (nothing
    when it is unset), and forget old PayPal transmission ids."""
    runtime = Runtime(Settings())
    try:
        runtime.require_schema()
        erased = erase_expired(runtime, runtime.settings.retention_days)
    finally:
        runtime.close()
    create_table_artifact(
        key="retention-summary",
        table=[{"erased": erased.subject, "cases": erased.cases, "events": erased.inbox_rows}],
        description=erased.line(),
    )
    return erased.as_dict()

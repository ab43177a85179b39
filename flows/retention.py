"""Flow: personal data that has outlived its purpose is erased, every day."""

from __future__ import annotations

from prefect import flow

from tasks.artifacts import publish_summary
from tasks.retention import erase_expired
from tasks.runtime import flow_runtime


@flow(name="retention")
def retention() -> dict[str, object]:
    """Erase the personal fields of cases closed longer than RECOVERY_RETENTION_DAYS (nothing
    when it is unset), and forget old PayPal transmission ids."""
    with flow_runtime() as built:
        erased = erase_expired(built.settings.retention_days)
    publish_summary(
        "retention-summary",
        erased.line(),
        table=[{"erased": erased.subject, "cases": erased.cases, "events": erased.inbox_rows}],
    )
    return erased.as_dict()

"""The retention flow on the real Prefect engine: cases closed longer than the retention period
lose their personal fields, the rest stay as they are; the flow is served and declared with a
daily schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
import yaml
from sqlalchemy import select

from recovery.domain.fingerprint import keyed_fingerprint
from recovery.domain.models import ContactPoint, FailureCategory, Gateway, Outcome, PaymentFailure
from recovery.runtime import Runtime
from recovery.store.cases import apply_failure, close_case
from recovery.store.db import transaction
from recovery.store.tables import CaseRow, PrivacyAuditRow
from tests.factories import settings_for

pytestmark = pytest.mark.prefect

KEY = "privacy-key-for-the-flow-test-0123"


def seed(runtime: Runtime, now: datetime) -> None:
    with transaction(runtime.sessions) as session:
        for key, closed_days_ago in (("in_old", 45), ("in_recent", 5), ("in_open", None)):
            at = now - timedelta(days=60)
            failure = PaymentFailure(
                gateway=Gateway.generic,
                event_id=f"evt_{key}",
                event_type="payment.failed",
                business_key=key,
                customer_ref=f"cus_{key}",
                customer_name="Katherine Johnson",
                contact=ContactPoint(phone_e164="+17575550123", postal_code="23666"),
                amount=Decimal("10.00"),
                currency="usd",
                occurred_at=at,
            )
            apply_failure(
                session=session,
                failure=failure,
                category=FailureCategory.unknown,
                category_reason="test",
                now=at,
            )
            if closed_days_ago is not None:
                case = session.scalars(select(CaseRow).where(CaseRow.business_key == key)).one()
                closed = now - timedelta(days=closed_days_ago)
                close_case(
                    session=session,
                    case=case,
                    outcome=Outcome.recovered,
                    at=closed,
                    now=closed,
                    reasons=["paid"],
                )


def test_the_retention_flow_erases_old_closed_cases(
    prefect_api_url: str, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.retention import retention

    if not store_url.startswith("sqlite"):
        pytest.skip("the flows are exercised on SQLite; the library has PostgreSQL tests")
    monkeypatch.setenv("RECOVERY_DATABASE_URL", store_url)
    monkeypatch.setenv("RECOVERY_RETENTION_DAYS", "30")
    monkeypatch.setenv("RECOVERY_PRIVACY_KEY", KEY)
    runtime = Runtime(settings_for(store_url, privacy_key=KEY))
    seed(runtime, datetime.now(UTC))

    summary = retention()
    assert summary["action"] == "retention" and summary["cases"] == 1
    with runtime.sessions() as session:
        cases = {c.business_key: c for c in session.scalars(select(CaseRow))}
        audits = list(session.scalars(select(PrivacyAuditRow)))
    old = cases["in_old"]
    assert old.erased_at is not None and old.customer_name is None and old.postal_code is None
    assert old.customer_ref == keyed_fingerprint(KEY.encode())("cus_in_old")
    assert old.phone_e164 == keyed_fingerprint(KEY.encode())("+17575550123")
    for key in ("in_recent", "in_open"):
        assert cases[key].erased_at is None and cases[key].customer_name == "Katherine Johnson"
    assert [(a.action, a.cases) for a in audits] == [("retention", 1)]
    # A second run has nothing left to erase.
    assert retention()["cases"] == 0
    runtime.close()

    async def artifact_keys() -> set[str]:
        from prefect.client.orchestration import get_client

        async with get_client() as prefect:
            return {a.key for a in await prefect.read_latest_artifacts() if a.key}

    assert "retention-summary" in anyio.run(artifact_keys)


def test_the_retention_flow_is_served_and_declared_daily() -> None:
    from flows.deployments import deployments

    served = {d.name: d for d in deployments(settings_for("sqlite:///unused.db"))}  # type: ignore[attr-defined]
    assert "retention" in served
    declared = yaml.safe_load((Path(__file__).parents[2] / "prefect.yaml").read_text())
    (entry,) = [d for d in declared["deployments"] if d["name"] == "retention"]
    assert entry["entrypoint"] == "flows/retention.py:retention"
    assert entry["schedules"] == [{"cron": "30 3 * * *", "timezone": "UTC"}]

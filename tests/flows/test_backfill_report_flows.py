"""The backfill and report flows on the real Prefect engine: a file replayed twice changes
nothing the second time; the report publishes its artifacts and writes its chart."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from recovery.runtime import Runtime
from recovery.store.tables import CaseRow
from tests.factories import STRIPE_SECRET, T0, intent_failed, invoice_failed, settings_for
from tests.support.store_probe import StoreProbe

pytestmark = pytest.mark.prefect


def latest_artifacts() -> dict[str, object]:
    from prefect.client.orchestration import get_client

    async def read() -> dict[str, object]:
        async with get_client() as prefect:
            return {a.key: a for a in await prefect.read_latest_artifacts() if a.key}

    return anyio.run(read)


def test_backfill_twice_then_report(
    prefect_api_url: str, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.backfill import backfill
    from flows.report import report

    if not store_url.startswith("sqlite"):
        pytest.skip("the flows are exercised on SQLite; the library has PostgreSQL tests")
    monkeypatch.setenv("RECOVERY_DATABASE_URL", store_url)
    monkeypatch.setenv("RECOVERY_STRIPE_WEBHOOK_SECRETS", STRIPE_SECRET)
    export = tmp_path / "events.jsonl"
    lines = []
    for i in range(30):
        lines.append(
            json.dumps(invoice_failed(event_id=f"evt_{i}", invoice_id=f"in_{i}", created=T0))
        )
        lines.append(
            json.dumps(
                intent_failed(
                    event_id=f"evt_pi_{i}", intent_id=f"pi_{i}", invoice_id=f"in_{i}", created=T0
                )
            )
        )
    lines.append(lines[0])
    lines.append('{"id": "evt_truncated", "type": "invoice.pay')
    export.write_text("\n".join(lines) + "\n")

    first = backfill(path=str(export))
    second = backfill(path=str(export))
    assert first["records"] == 62 and second["records"] == 62
    assert first["recorded"] == {"failure": 60, "success": 0, "card_updated": 0}
    assert first["skipped"]["duplicate event"] == 1
    assert len(first["malformed"]) == 1 and "line 62" in first["malformed"][0]
    assert first["cases"] == {"opened": 30, "updated": 30}
    assert second["recorded"] == {"failure": 0, "success": 0, "card_updated": 0}
    assert second["skipped"]["duplicate event"] == 61
    runtime = Runtime(settings_for(store_url))
    assert StoreProbe(runtime.sessions).count(CaseRow) == 30
    runtime.close()
    artifacts = latest_artifacts()
    assert "backfill-summary" in artifacts and "backfill-progress" in artifacts

    out = tmp_path / "reports"
    report(out=str(out))
    assert (out / "report.md").exists()
    assert (out / "recoveries.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    artifacts = latest_artifacts()
    assert {"recovery-report", "recovery-funnel", "recovery-by-category"} <= set(artifacts)

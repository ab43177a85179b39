"""``make demo``'s code path, shortened: the embedded default on the time-skipping clock (real
Prefect server, served flows, emulator, receiver), a small campaign of signed webhooks, the
funnel and ``funnel.json``. Plus the demo's pure parts: the campaign it plays and how it names
compliance holds. What makes the same seed give the same funnel (one shared clock that jumps,
outcomes drawn per contact, jumps only when idle) is tested in test_demo_skipping.py."""

from __future__ import annotations

import io
import json
import random
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from recovery import demo
from recovery.domain.compliance import CallHistory, Hold, load_rules, permitted
from recovery.domain.models import ContactPoint

START = datetime(2026, 12, 7, 17, 0, tzinfo=UTC)


def _digits(pan: str) -> bytes:
    return "".join(c for c in pan if c.isdigit()).encode()


def test_the_campaign_has_the_shapes_it_promises() -> None:
    plan = demo.build_campaign(
        payments=240, start=START, spread=timedelta(days=4), rng=random.Random(7)
    )
    again = demo.build_campaign(
        payments=240, start=START, spread=timedelta(days=4), rng=random.Random(7)
    )
    assert [d.event["id"] for d in plan.deliveries] == [d.event["id"] for d in again.deliveries]
    times = [d.at for d in plan.deliveries]
    assert times == sorted(times)
    kinds = Counter(d.kind for d in plan.deliveries)
    assert kinds["success"] == plan.paid_on_their_own + plan.paid_before_failure_arrived > 20
    # A re-delivery repeats an event delivered earlier, with the same id.
    first_seen: dict[str, datetime] = {}
    for d in plan.deliveries:
        if d.kind == "redelivery":
            assert first_seen[d.event["id"]] <= d.at
        first_seen.setdefault(d.event["id"], d.at)
    assert kinds["redelivery"] > 30

    failures = [d.event for d in plan.deliveries if d.kind == "failure"]
    objects = [e["data"]["object"] for e in failures]
    phones = {o.get("customer_phone") for o in objects} | {
        (o.get("billing_details") or {}).get("phone") for o in objects
    }
    phones |= {
        o["last_payment_error"]["payment_method"]["billing_details"]["phone"]
        for o in objects
        if o.get("object") == "payment_intent"
    }
    area_codes = {p[2:5] for p in phones if p and p.startswith("+1") and len(p) == 12}
    assert {"208", "850", "907", "401", "617"} <= area_codes
    assert "+1 555 0100" in phones and plan.invalid_phone == 3
    states = {(o.get("customer_address") or {}).get("state") for o in objects}
    assert {"TX", "RI", "FL", "MA", "ID", "AK"} <= states
    types = Counter(e["type"] for e in failures)
    assert set(types) == {
        "invoice.payment_failed",
        "payment_intent.payment_failed",
        "charge.failed",
    }
    codes = {o.get("last_payment_error", {}).get("decline_code") for o in objects} | {
        o.get("failure_code") for o in objects
    }
    assert {"insufficient_funds", "lost_card", "expired_card", "processing_error"} <= codes
    assert "authentication_required" in codes

    with_pan = [e for e in failures if any(pan in json.dumps(e) for pan in demo.TEST_PANS)]
    # Counted once per event id: a re-delivery carries the same card number again.
    assert len({e["id"] for e in with_pan}) == plan.with_card_number == 6

    # A success that overtakes its failure: delivered first, yet it happened later.
    early = [d for d in plan.deliveries if d.kind == "success" and d.event["id"].endswith("_paid")]
    overtaken = 0
    for success in early:
        key = success.event["id"].removesuffix("_paid")
        failed = [
            d for d in plan.deliveries if d.kind == "failure" and d.event["id"].startswith(key)
        ]
        if success.at < min(d.at for d in failed):
            overtaken += 1
            assert success.event["created"] > max(d.event["created"] for d in failed)
    assert overtaken == plan.paid_before_failure_arrived == 5


def test_compliance_holds_are_labelled_from_their_fields() -> None:
    rules = load_rules(None, "strict")
    pensacola = ContactPoint(phone_e164="+18505550101", state="FL", postal_code="32501")
    evening = datetime(2026, 12, 8, 2, 30, tzinfo=UTC)  # 20:30 in Pensacola, 21:30 in Miami
    found = {
        demo.compliance_label(h) for h in permitted(pensacola, CallHistory(), evening, rules).holds
    }
    assert found == {"outside calling hours (US-FL)", "outside calling hours (US)"}

    noon = datetime(2026, 12, 8, 18, 0, tzinfo=UTC)
    calls = CallHistory(attempts=tuple(noon - timedelta(hours=h) for h in (1, 2, 3)))
    found = {demo.compliance_label(h) for h in permitted(pensacola, calls, noon, rules).holds}
    assert found == {"cap of 3 calls per 24h (US-FL)"}

    providence = ContactPoint(phone_e164="+14015550101", state="RI", postal_code="02903")
    christmas = datetime(2026, 12, 25, 16, 0, tzinfo=UTC)
    found = {
        demo.compliance_label(h)
        for h in permitted(providence, CallHistory(), christmas, rules).holds
    }
    assert "public holiday (US-RI)" in found

    talked = CallHistory(last_conversation=noon - timedelta(days=2))
    found = {demo.compliance_label(h) for h in permitted(providence, talked, noon, rules).holds}
    assert found == {"7d after a conversation (US)"}

    sunday = datetime(2026, 12, 6, 18, 0, tzinfo=UTC)
    found = {
        demo.compliance_label(h) for h in permitted(providence, CallHistory(), sunday, rules).holds
    }
    assert found == {"no calls that weekday (US-RI)"}

    assert demo.compliance_label(Hold(rule="dial_margin", period="7h")) == (
        "window closes within the dial margin"
    )
    for other in ("suppressed", "timezone_unknown", "no_window"):
        assert demo.compliance_label(Hold(rule=other)) is None
    assert demo.compliance_label(Hold(rule="no_rules", jurisdiction="GB")) is None


FIGURES = (
    "cases",
    "contacted",
    "contacts_created",
    "recovered",
    "overdue_at_end",
    "dials_outside_window",
    "refused_outside_window",
)


# The whole embedded default plays a short campaign: minutes on a two-core machine, so a soak
# variant (``-m soak``); the time-skipping clock, the idle check and the seeded outcomes have
# their fast tests in test_demo_skipping.py.
@pytest.mark.soak
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_short_campaign_runs_end_to_end_and_stops_everything(tmp_path: Path) -> None:
    out = io.StringIO()
    data = tmp_path / "demo"
    result = demo.run(
        payments=30,
        days=3,
        failure_days=1,
        data_dir=data,
        console=Console(file=out, width=120),
    )
    text = out.getvalue()
    rows = {(section, measure.strip()): value for section, measure, value in result.funnel.rows}

    assert result.exit_code == 0, text
    assert result.funnel.refused_outside_window == 0
    assert result.funnel.dialled_outside_rules == 0
    assert rows[("contact centre", "emulator: refused outside the window")] == "0"
    # Every webhook was answered 200 (recorded or a re-delivery), none lost.
    posted = int(rows[("intake", "signed webhooks posted")].split()[0])
    answers = {m: int(v) for (s, m), v in rows.items() if s == "intake" and m.startswith("answ")}
    assert set(answers) == {"answered 200 recorded", "answered 200 duplicate"}
    assert sum(answers.values()) == posted > 30
    # 30 payments; one success overtakes its failure, so that failure opens no case.
    assert 1 <= result.funnel.cases <= 29
    assert rows[("intake", "events with a card number replaced")] == "1"
    # The invalid phone closes unreachable at once (others may after their attempts).
    assert int(rows[("closed", "unreachable")].split()[0]) >= 1
    assert result.artifact_id is not None
    assert "dials the emulator refused outside 08:00-21:00 local time: 0" in text

    # funnel.json: the headline figures, every case handled in time, none dialled outside.
    figures = json.loads((data / "funnel.json").read_text())
    assert set(FIGURES) | {"flow_runs", "seed", "clock_jumps"} <= set(figures)
    assert figures["cases"] == result.funnel.cases
    assert figures["overdue_at_end"] == 0 and figures["dials_outside_window"] == 0
    assert 0 < figures["contacted"] <= figures["contacts_created"]
    assert figures["clock_jumps"] > 0
    runs = figures["flow_runs"]
    assert runs.get("COMPLETED", 0) > 0
    assert runs.get("CANCELLED", 0) <= 0.05 * sum(runs.values())

    # The card number reached neither the store nor any part's log.
    stored = b"".join(p.read_bytes() for p in data.glob("recovery.db*"))
    logs = b"".join(p.read_bytes() for p in (data / "logs").iterdir())
    for pan in demo.TEST_PANS:
        assert _digits(pan) not in stored and _digits(pan) not in logs
    with sqlite3.connect(data / "recovery.db") as db:
        count = db.execute("select count(*) from recovery_cases").fetchone()[0]
    assert count == result.funnel.cases

    # Everything was stopped: the Prefect server no longer answers.
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{result.prefect_ui}/api/health", timeout=2)

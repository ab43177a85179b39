"""Case events as values: the resource and its labels, the wait's reason, the UI address."""

from __future__ import annotations

from datetime import UTC, datetime

from recovery.domain import events
from recovery.domain.compliance.holds import Hold, holds_data


def test_a_wait_held_by_calling_rules_names_each_rule_with_its_jurisdiction() -> None:
    holds = holds_data(
        [
            Hold(rule="hours", jurisdiction="US-FL", zone="America/New_York"),
            Hold(rule="attempt_cap", jurisdiction="US-FED", limit=7),
            Hold(rule="hours", jurisdiction="US-FL", zone="America/Chicago"),
        ]
    )
    until = datetime(2026, 12, 2, 13, 0, tzinfo=UTC)
    event = events.waiting(
        "stripe:in_1", category="expired_card", status="awaiting_window", until=until, holds=holds
    )
    assert event.event == "recovery.case.waiting"
    assert event.payload == {
        "status": "awaiting_window",
        "until": "2026-12-02T13:00:00+00:00",
        "why": "compliance",
        "rules": "attempt_cap:US-FED, hours:US-FL",
    }
    assert event.resource() == {
        "prefect.resource.id": "recovery.case.stripe:in_1",
        "prefect.resource.name": "stripe:in_1",
        "recovery.gateway": "stripe",
        "recovery.category": "expired_card",
    }


def test_a_wait_of_the_policy_says_so() -> None:
    until = datetime(2026, 12, 9, tzinfo=UTC)
    event = events.waiting(
        "paypal:I-1@2026-12-01", category="x", status="cooling_down", until=until
    )
    assert event.payload["why"] == "policy" and "rules" not in event.payload
    assert event.resource()["recovery.gateway"] == "paypal"


def test_the_labels_automations_match_on() -> None:
    closed = events.closed("stripe:in_2", category="insufficient_funds", outcome="disputed")
    assert closed.resource()["recovery.outcome"] == "disputed"
    recorded = events.outcome_recorded(
        "stripe:in_2",
        category="insufficient_funds",
        disposition="dispute",
        wrapup_code="Dispute",
        attempt=1,
        source="data_action",
    )
    assert recorded.event == "recovery.disposition.recorded"
    assert recorded.resource()["recovery.disposition"] == "dispute"
    assert {e for e in events.CASE_EVENTS} >= {closed.event, recorded.event}


def test_the_timeline_address_is_the_event_feed_filtered_on_the_case() -> None:
    url = events.timeline_url("http://127.0.0.1:4200/api", "stripe:in_1")
    assert url == "http://127.0.0.1:4200/events?resource=recovery.case.stripe%3Ain_1"
    assert events.timeline_url("https://prefect.example.com/api/", "a:b c").endswith(
        "resource=recovery.case.a%3Ab%20c"
    )

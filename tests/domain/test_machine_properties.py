"""Properties of whole simulated timelines: random failures, call outcomes and policies.

Every contact the state machine makes must be permitted by the compliance engine at its time,
the per-case caps must hold over the whole timeline, and every case must come to an end.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recovery.domain.compliance import (
    CallHistory,
    load_rules,
    permitted,
    resolve_contact,
)
from recovery.domain.models import ContactPoint, Disposition, FailureCategory, Outcome
from recovery.domain.policy import (
    DayOfMonth,
    NextWeekday,
    Policy,
    is_right_party,
    load_policy,
)
from recovery.domain.simulate import (
    CALL_DURATION,
    Plan,
    ScriptedDisposition,
    SimulationError,
    simulate,
)

RULES = load_rules()
SHIPPED = load_policy()

CONTACTS = [
    ContactPoint(phone_e164="+14155550123", state="CA"),
    ContactPoint(phone_e164="+13055550123", state="FL"),  # Eastern and Central; 3 per 24 h
    ContactPoint(phone_e164="+12145550123", state="TX"),  # Sunday from 12:00
    ContactPoint(phone_e164="+16175550123", state="MA"),  # 2 per 7 days
    ContactPoint(phone_e164="+14015550123", state="RI"),  # short hours, no Sundays, holidays
    ContactPoint(phone_e164="+12085550123"),  # Boise and Los Angeles
    ContactPoint(phone_e164="+19075550123", state="AK"),  # Anchorage and Adak
    ContactPoint(phone_e164="+14155550123", state="NY", explicit_tz="America/New_York"),
]
STATE_CAPS = {"US-FL": (3, timedelta(hours=24)), "US-MA": (2, timedelta(days=7))}

durations = st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=10))
aligned = st.one_of(
    st.builds(
        NextWeekday,
        next_weekday=st.sampled_from(["monday", "wednesday", "friday", "saturday", "sunday"]),
    ),
    st.builds(
        DayOfMonth,
        day_of_month=st.lists(st.integers(1, 28), min_size=1, max_size=3).map(tuple),
    ),
)
delays = st.one_of(durations, aligned)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    categories = {}
    for category in FailureCategory:
        categories[category.value] = {
            "first_contact": draw(
                st.one_of(
                    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=5)), aligned
                )
            ),
            "retry": draw(st.lists(delays, min_size=1, max_size=4)),
            "max_attempts": draw(st.integers(1, 12)),
            "expires_after": draw(
                st.timedeltas(min_value=timedelta(hours=1), max_value=timedelta(days=60))
            ),
            "disposition_timeout": draw(
                st.timedeltas(min_value=timedelta(minutes=10), max_value=timedelta(days=2))
            ),
        }
    dispositions: dict[str, Any] = {
        d.value: rule.model_dump(exclude_defaults=True) for d, rule in SHIPPED.dispositions.items()
    }
    dispositions["promise_to_pay"].update(
        grace=draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=5))),
        delay=draw(delays),
    )
    dispositions["callback_requested"]["delay"] = draw(delays)
    if draw(st.booleans()):
        dispositions["busy"]["delay"] = draw(durations)
    return Policy.model_validate({"categories": categories, "dispositions": dispositions})


failure_times = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@st.composite
def scripts(draw: st.DrawFn, failed_at: datetime) -> list[ScriptedDisposition]:
    out = []
    for disposition in draw(st.lists(st.sampled_from(list(Disposition)), max_size=10)):
        item = ScriptedDisposition(disposition=disposition)
        if disposition is Disposition.promise_to_pay and draw(st.booleans()):
            days = draw(st.integers(-2, 45))
            item = ScriptedDisposition(
                disposition=disposition, promised_date=failed_at.date() + timedelta(days=days)
            )
        elif disposition is Disposition.callback_requested and draw(st.booleans()):
            minutes = draw(st.integers(0, 40 * 24 * 60))
            zone = draw(st.sampled_from(["America/New_York", "America/Los_Angeles", "UTC"]))
            item = ScriptedDisposition(
                disposition=disposition,
                callback_at=(failed_at + timedelta(minutes=minutes)).astimezone(ZoneInfo(zone)),
            )
        out.append(item)
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    failed_at = draw(failure_times)
    return {
        "category": draw(st.sampled_from(list(FailureCategory))),
        "contact": draw(st.sampled_from(CONTACTS)),
        "failed_at": failed_at,
        "dispositions": draw(scripts(failed_at)),
        "policy": draw(policies()),
    }


def check_timeline(plan: Plan, scenario: dict[str, Any]) -> None:
    policy: Policy = scenario["policy"]
    contact: ContactPoint = scenario["contact"]
    cat = policy.for_category(scenario["category"])
    failed_at: datetime = scenario["failed_at"]
    expires_at = failed_at + cat.expires_after
    resolution = resolve_contact(contact)
    script = list(scenario["dispositions"])

    steps = plan.steps
    assert steps and steps[-1].action in ("close", "review")
    assert all(s.action in ("wait", "contact") for s in steps[:-1])
    assert all(a.at <= b.at for a, b in zip(steps, steps[1:], strict=False))

    contacts = [s for s in steps if s.action == "contact"]
    assert len(contacts) <= cat.max_attempts
    assert [s.attempt for s in contacts] == list(range(1, len(contacts) + 1))
    if isinstance(cat.first_contact, timedelta) and contacts:
        assert contacts[0].at >= failed_at + cat.first_contact

    attempts: list[datetime] = []
    last_conversation: datetime | None = None
    callback_at: datetime | None = None
    for index, step in enumerate(contacts):
        at = step.at
        assert at < expires_at
        # the engine's own check, with the history the case had at that moment
        history = CallHistory(
            attempts=tuple(attempts), last_conversation=last_conversation, callback_at=callback_at
        )
        verdict = permitted(contact, history, at, RULES)
        assert verdict.permitted, (at, verdict.reasons)
        # and the same rules checked independently of the engine
        for zone in resolution.timezones:
            assert 8 <= at.astimezone(ZoneInfo(zone)).hour < 21
        week = [a for a in attempts if at - a < timedelta(days=7)]
        assert len(week) + 1 <= 7
        for jurisdiction, (limit, window) in STATE_CAPS.items():
            if jurisdiction in resolution.jurisdictions:
                assert len([a for a in attempts if at - a < window]) + 1 <= limit
        if last_conversation is not None and (callback_at is None or at < callback_at):
            assert at - last_conversation >= timedelta(days=7)

        scripted = script[index] if index < len(script) else None
        disposition = scripted.disposition if scripted else Disposition.no_answer
        assert step.disposition == (scripted.label() if scripted else "no_answer")
        attempts.append(at)
        if is_right_party(disposition):
            last_conversation = at + CALL_DURATION
        callback_at = None
        if scripted is not None and scripted.callback_at is not None:
            callback_at = scripted.callback_at.astimezone(UTC)

    end = steps[-1]
    rule = policy.for_disposition(disposition) if contacts else None
    if rule is not None and rule.action == "close":
        assert end.action == "close" and end.outcome == rule.outcome
        assert end.at == contacts[-1].at + CALL_DURATION
    if end.action == "close" and end.outcome is Outcome.exhausted:
        assert len(contacts) == cat.max_attempts
    if end.action == "close" and end.outcome is Outcome.expired:
        # at the expiry, or when the outcome of a call made just before it arrives
        after_call = bool(contacts) and end.at == contacts[-1].at + CALL_DURATION
        assert end.at == expires_at or (after_call and end.at > expires_at)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenarios())
def test_every_timeline_is_lawful_capped_and_ends(scenario: dict[str, Any]) -> None:
    plan = simulate(rules=RULES, **scenario)  # raises SimulationError when it does not end
    check_timeline(plan, scenario)


@settings(max_examples=40, deadline=None)
@given(
    failed_at=failure_times,
    category=st.sampled_from(list(FailureCategory)),
    contact=st.sampled_from(CONTACTS),
)
def test_with_the_shipped_policy_and_nobody_answering(
    failed_at: datetime, category: FailureCategory, contact: ContactPoint
) -> None:
    scenario: dict[str, Any] = {
        "category": category,
        "contact": contact,
        "failed_at": failed_at,
        "dispositions": [],
        "policy": SHIPPED,
    }
    plan = simulate(rules=RULES, **scenario)
    check_timeline(plan, scenario)
    assert plan.steps[-1].outcome in (Outcome.exhausted, Outcome.expired)


def test_a_do_not_call_ends_the_timeline_at_once() -> None:
    scenario: dict[str, Any] = {
        "category": FailureCategory.card_expired,
        "contact": CONTACTS[0],
        "failed_at": datetime(2026, 11, 2, 18, tzinfo=UTC),
        "dispositions": [
            ScriptedDisposition(disposition=Disposition.no_answer),
            ScriptedDisposition(disposition=Disposition.do_not_call),
            ScriptedDisposition(disposition=Disposition.promise_to_pay, promised_date=date.today()),
        ],
        "policy": SHIPPED,
    }
    plan = simulate(rules=RULES, **scenario)
    check_timeline(plan, scenario)
    assert [s.action for s in plan.steps].count("contact") == 2
    assert plan.steps[-1].outcome is Outcome.suppressed


def test_a_timeline_that_does_not_end_is_reported() -> None:
    with pytest.raises(SimulationError, match="did not end within 3 steps"):
        simulate(
            category=FailureCategory.card_expired,
            contact=CONTACTS[0],
            failed_at=datetime(2026, 11, 2, 18, tzinfo=UTC),
            dispositions=[],
            policy=SHIPPED,
            rules=RULES,
            max_steps=3,
        )

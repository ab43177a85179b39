"""Every refusal the compliance engine writes carries its hold: the same refusal as fields.

Random contacts (US numbers across zones and state rules, toll-free numbers without a zone, a
London number), histories (attempts, conversations, callbacks, a suppression) and instants
(every DST change of the years tested), under the shipped rules, an operator profile that adds
rows for Great Britain (so the US baseline applies to a contact outside the US), and one that
never allows a call (so no window opens). Then ``decide()``: a step shaped by a verdict carries
that verdict's holds.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from recovery.domain.compliance import (
    CALLING_RULES,
    HOLD_RULES,
    CallHistory,
    CallingRules,
    Hold,
    Verdict,
    dial_margin_hold,
    holds_data,
    load_rules,
    next_permitted,
    permitted,
    read_holds,
)
from recovery.domain.compliance.rules import DAY_NAMES
from recovery.domain.machine import decide
from recovery.domain.models import (
    CaseStatus,
    CaseView,
    ContactPoint,
    FailureCategory,
    Gateway,
    HistoryEntry,
    HistoryKind,
)
from recovery.domain.policy import load_policy
from tests.domain.compliance.test_compliance_properties import contacts as us_contacts
from tests.domain.compliance.test_compliance_properties import histories, instants

STRICT = load_rules()
POLICY = load_policy()
# Refusals read at the start of the engine, before any rule: no next instant at all.
GATE_RULES = frozenset(("suppressed", "timezone_unknown", "no_rules"))
LONDON = ContactPoint(phone_e164="+442079460000", country="GB")
TOLL_FREE = ContactPoint(phone_e164="+18005550199")


def _profile(text: str, name: str) -> CallingRules:
    path = Path(tempfile.mkdtemp(prefix="hold-rules-")) / "rules.yaml"
    path.write_text(text)
    return load_rules(path, name)


@cache
def abroad_rules() -> CallingRules:
    """The shipped rules plus Great Britain's own rows: the US baseline still applies."""
    return _profile(
        """
version: 1
profiles:
  abroad:
    extends: strict
    rows:
      - jurisdiction: GB
        hours: {mon-fri: "09:00-20:00", sat: "10:00-16:00", sun: none}
        holidays: no_calls
        caps: [{max_attempts: 2, window: 3d}]
        conversation_cooldown: {period: 2d, callback_exempt: false}
        source: a test
""",
        "abroad",
    )


@cache
def closed_rules() -> CallingRules:
    """No call is ever permitted: every refusal ends with no window."""
    return _profile(
        """
version: 1
profiles:
  closed:
    horizon_days: 3
    rows:
      - jurisdiction: US
        hours: {daily: none}
        source: a test
""",
        "closed",
    )


@st.composite
def any_contacts(draw: st.DrawFn) -> ContactPoint:
    kind = draw(st.sampled_from(("us", "us", "us", "us", "toll_free", "london", "no_phone")))
    if kind == "us":
        return draw(us_contacts())
    if kind == "toll_free":
        return TOLL_FREE
    if kind == "london":
        return LONDON
    return ContactPoint(state=draw(st.sampled_from(("CA", "FL", "RI", "AL"))))


@st.composite
def cases(draw: st.DrawFn) -> tuple[ContactPoint, CallHistory, datetime, CallingRules]:
    at = draw(instants())
    history = draw(histories(at))
    if draw(st.integers(0, 9)) == 0:
        history = history.model_copy(update={"suppression": "do_not_call"})
    rules = draw(st.sampled_from(("strict", "strict", "abroad", "closed")))
    chosen = {"strict": STRICT, "abroad": abroad_rules(), "closed": closed_rules()}[rules]
    return draw(any_contacts()), history, at, chosen


def assert_holds_match(verdict: Verdict, rules: CallingRules, contact: ContactPoint) -> None:
    """The holds are the reasons as fields: one each, same order, and they say the same."""
    assert len(verdict.holds) == len(verdict.reasons)
    assert verdict.permitted == (not verdict.holds)
    applicable = set(verdict.jurisdictions) | set(rules.baseline)
    for reason, hold in zip(verdict.reasons, verdict.holds, strict=True):
        assert hold.rule in HOLD_RULES
        if hold.calling_rule:
            assert hold.jurisdiction is not None and hold.jurisdiction in applicable, hold
            assert reason.startswith(f"{hold.jurisdiction} "), (reason, hold)
        elif hold.rule == "no_rules":
            assert hold.jurisdiction in verdict.jurisdictions
            assert reason == f"no_rules: no calling rules for jurisdiction {hold.jurisdiction}"
        else:
            assert hold.jurisdiction is None
            assert reason.startswith(f"{hold.rule}: "), (reason, hold)
        if hold.rule in ("hours", "weekday", "holiday"):
            assert hold.zone in verdict.timezones and f" in {hold.zone}: " in reason
        else:
            assert hold.zone is None
        if hold.rule == "weekday":
            assert hold.weekday in DAY_NAMES and f" no calls on {hold.weekday} in " in reason
        else:
            assert hold.weekday is None
        if hold.rule == "attempt_cap":
            assert f" cap {hold.limit} attempts per rolling {hold.period}: " in reason
        elif hold.rule == "cooldown":
            assert f" no call within {hold.period} after a conversation: " in reason
        else:
            assert hold.limit is None and hold.period is None
    rules_held = {hold.rule for hold in verdict.holds}
    if rules_held & GATE_RULES:
        # Nothing else is looked at once the contact cannot be called at all.
        assert len(rules_held) == 1 and verdict.next_permitted_at is None
    elif verdict.holds:
        # A refusal by the rules names at least one rule, never only the missing window.
        assert rules_held & CALLING_RULES
    # Stored as JSON and read back unchanged, with nothing of the customer in it.
    stored = json.dumps({"holds": holds_data(verdict.holds)})
    assert read_holds(json.loads(stored)) == verdict.holds
    if contact.phone_e164:
        assert contact.phone_e164 not in stored and contact.phone_e164[-7:] not in stored


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(cases())
def test_every_refusal_of_permitted_carries_its_hold(
    case: tuple[ContactPoint, CallHistory, datetime, CallingRules],
) -> None:
    contact, history, at, rules = case
    verdict = permitted(contact, history, at, rules)
    assert_holds_match(verdict, rules, contact)


@PROPERTY
@given(cases())
def test_every_refusal_of_next_permitted_carries_its_hold(
    case: tuple[ContactPoint, CallHistory, datetime, CallingRules],
) -> None:
    contact, history, after, rules = case
    verdict = next_permitted(contact, history, after, rules)
    assert_holds_match(verdict, rules, contact)
    assert verdict.holds == permitted(contact, history, after, rules).holds


# --- each rule, by example --------------------------------------------------------------

PENSACOLA = ContactPoint(phone_e164="+18505550101", state="FL", postal_code="32501")
PROVIDENCE = ContactPoint(phone_e164="+14015550101", state="RI", postal_code="02903")
NOON = datetime(2026, 12, 8, 18, 0, tzinfo=UTC)  # a Tuesday: 12:00 in Pensacola


@pytest.mark.parametrize(
    ("contact", "history", "at", "rules", "expected"),
    [
        (
            PENSACOLA,
            CallHistory(),
            datetime(2026, 12, 8, 2, 30, tzinfo=UTC),  # 20:30 in Pensacola, 21:30 in Miami
            STRICT,
            {
                Hold(rule="hours", jurisdiction="US-FL", zone="America/Chicago"),
                Hold(rule="hours", jurisdiction="US", zone="America/New_York"),
                Hold(rule="hours", jurisdiction="US-FL", zone="America/New_York"),
            },
        ),
        (
            PROVIDENCE,
            CallHistory(),
            datetime(2026, 12, 6, 18, 0, tzinfo=UTC),  # Sunday
            STRICT,
            {
                Hold(
                    rule="weekday",
                    jurisdiction="US-RI",
                    zone="America/New_York",
                    weekday="Sunday",
                )
            },
        ),
        (
            PROVIDENCE,
            CallHistory(),
            datetime(2026, 12, 25, 16, 0, tzinfo=UTC),  # Christmas Day, a Friday
            STRICT,
            {Hold(rule="holiday", jurisdiction="US-RI", zone="America/New_York")},
        ),
        (
            PENSACOLA,
            CallHistory(attempts=tuple(NOON - timedelta(hours=h) for h in (1, 2, 3))),
            NOON,
            STRICT,
            {Hold(rule="attempt_cap", jurisdiction="US-FL", limit=3, period="24h")},
        ),
        (
            PENSACOLA,
            CallHistory(last_conversation=NOON - timedelta(days=2)),
            NOON,
            STRICT,
            {Hold(rule="cooldown", jurisdiction="US", period="7d")},
        ),
        (
            PENSACOLA,
            CallHistory(suppression="do_not_call"),
            NOON,
            STRICT,
            {Hold(rule="suppressed")},
        ),
        (TOLL_FREE, CallHistory(), NOON, STRICT, {Hold(rule="timezone_unknown")}),
        (LONDON, CallHistory(), NOON, STRICT, {Hold(rule="no_rules", jurisdiction="GB")}),
        (
            ContactPoint(phone_e164="+12125550123", state="NY"),
            CallHistory(),
            NOON,
            closed_rules(),
            {
                Hold(rule="weekday", jurisdiction="US", zone="America/New_York", weekday="Tuesday"),
                Hold(rule="no_window"),
            },
        ),
        (
            LONDON,
            CallHistory(),
            datetime(2026, 12, 8, 20, 30, tzinfo=UTC),  # 20:30 in London
            abroad_rules(),
            {Hold(rule="hours", jurisdiction="GB", zone="Europe/London")},
        ),
        (
            LONDON,
            CallHistory(),
            datetime(2026, 12, 8, 22, 0, tzinfo=UTC),  # 22:00 in London: the US baseline too
            abroad_rules(),
            {
                Hold(rule="hours", jurisdiction="US", zone="Europe/London"),
                Hold(rule="hours", jurisdiction="GB", zone="Europe/London"),
            },
        ),
    ],
)
def test_each_rule_has_its_hold(
    contact: ContactPoint,
    history: CallHistory,
    at: datetime,
    rules: CallingRules,
    expected: set[Hold],
) -> None:
    verdict = permitted(contact, history, at, rules)
    assert set(verdict.holds) == expected
    assert_holds_match(verdict, rules, contact)


def test_a_permitted_call_has_no_hold() -> None:
    verdict = permitted(PENSACOLA, CallHistory(), NOON, STRICT)
    assert verdict.permitted and verdict.holds == () and verdict.reasons == ()


def test_a_hold_is_stored_as_its_set_fields() -> None:
    cap = Hold(rule="attempt_cap", jurisdiction="US-FL", limit=3, period="24h")
    assert cap.as_data() == {
        "rule": "attempt_cap",
        "jurisdiction": "US-FL",
        "limit": 3,
        "period": "24h",
    }
    assert holds_data([Hold(rule="no_window")]) == [{"rule": "no_window"}]
    margin = dial_margin_hold(timedelta(minutes=420))
    assert margin.as_data() == {"rule": "dial_margin", "period": "7h"}


def test_reading_holds_back() -> None:
    assert read_holds(None) is None and read_holds({}) is None
    assert read_holds({"holds": "hours"}) is None
    assert read_holds({"holds": []}) == ()
    # A hold this version cannot read is skipped, not fatal to the reader.
    found = read_holds({"holds": [{"rule": "moon_phase"}, {"rule": "hours", "zone": "UTC"}]})
    assert found == (Hold(rule="hours", zone="UTC"),)
    with pytest.raises(ValidationError):
        Hold(rule="hours", name="Jane Doe")  # type: ignore[call-arg]


# --- decide(): a step carries the holds of the verdict that shaped it --------------------


def _case(contact: ContactPoint, failed_at: datetime) -> CaseView:
    return CaseView(
        key="stripe:in_1",
        gateway=Gateway.stripe,
        status=CaseStatus.open,
        category=FailureCategory.card_expired,  # first contact at the first lawful instant
        contact=contact,
        failed_at=failed_at,
        opened_at=failed_at,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_contacts(), instants())
def test_a_first_decision_carries_the_verdicts_holds(contact: ContactPoint, now: datetime) -> None:
    history = [HistoryEntry(at=now, kind=HistoryKind.failure_recorded)]
    step = decide(_case(contact, now), history, now, POLICY, STRICT)
    if not contact.phone_e164:
        assert step.action == "review" and step.holds == ()
        return
    verdict = next_permitted(contact, CallHistory(), now, STRICT)
    if step.action == "contact":
        assert verdict.permitted and step.holds == ()
    else:
        assert step.action in ("wait", "review")
        assert step.holds == verdict.holds and step.holds
        # The reasons the step records are the verdict's, hold for hold.
        assert set(verdict.reasons) <= set(step.reasons)


def test_the_steps_of_each_gate_carry_their_hold() -> None:
    now = datetime(2026, 11, 2, 18, 0, tzinfo=UTC)
    history = [HistoryEntry(at=now, kind=HistoryKind.failure_recorded)]
    unknown = decide(_case(TOLL_FREE, now), history, now, POLICY, STRICT)
    assert (unknown.action, unknown.status) == ("review", CaseStatus.needs_contact_info)
    assert {h.rule for h in unknown.holds} == {"timezone_unknown"}
    abroad = decide(_case(LONDON, now), history, now, POLICY, STRICT)
    assert (abroad.action, abroad.status) == ("review", CaseStatus.review)
    assert abroad.holds == (Hold(rule="no_rules", jurisdiction="GB"),)
    closed = decide(_case(PENSACOLA, now), history, now, POLICY, closed_rules())
    assert closed.action == "wait" and closed.holds[-1] == Hold(rule="no_window")

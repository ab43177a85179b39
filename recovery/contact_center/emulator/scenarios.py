"""Call-outcome scenarios of the emulated dialer: which wrap-up code each call ends with.

Outcomes are drawn from a seeded generator keyed by the contact id and the number of the call
to that contact, so the same seed gives the same outcome for the same contact whatever the
order or timing of dials. Codes starting ``ININ-`` are the dialer's system wrap-ups (Help,
"Wrap-up codes assigned by outbound dialing"); the others are agent wrap-up codes, which the
emulated organisation holds by id (``GET /api/v2/routing/wrapupcodes``).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

NO_ANSWER = "ININ-OUTBOUND-NO-ANSWER"
BUSY = "ININ-OUTBOUND-BUSY"
MACHINE = "ININ-OUTBOUND-MACHINE"
FAX = "ININ-OUTBOUND-FAX"
SIT_UNCALLABLE = "ININ-OUTBOUND-SIT-UNCALLABLE"
INVALID_PHONE = "ININ-OUTBOUND-INVALID-PHONE-NUMBER"
ON_DNC_LIST = "ININ-OUTBOUND-ON-DO-NOT-CALL-LIST"
LIVE_VOICE = "ININ-OUTBOUND-LIVE-VOICE"
WRAP_UP_TIMEOUT = "ININ-WRAP-UP-TIMEOUT"

# The recall type of each system wrap-up (``AttemptLimits.recallEntries`` keys).
RECALL_TYPES = {BUSY: "busy", NO_ANSWER: "noAnswer", MACHINE: "answeringMachine", FAX: "fax"}
# ``AnalyticsSession.dispositionName`` of each system wrap-up ("(Dialer) Result of the
# analysis (for example disposition.classification.callable.machine)").
DISPOSITION_NAMES = {
    NO_ANSWER: "disposition.classification.callable.noanswer",
    BUSY: "disposition.classification.callable.busy",
    MACHINE: "disposition.classification.callable.machine",
    FAX: "disposition.classification.callable.fax",
    SIT_UNCALLABLE: "disposition.classification.uncallable.sit",
}
LIVE_DISPOSITION = "disposition.classification.callable.live"


def is_system_code(code: str) -> bool:
    return code.startswith(("ININ-", "OUTBOUND-"))


@dataclass(frozen=True)
class WrapUp:
    code: str
    right_party: bool
    weight: float


@dataclass(frozen=True)
class Scenario:
    name: str
    outcomes: tuple[WrapUp, ...]
    drop_event_fraction: float = 0.0

    def draw(self, seed: int, contact_id: str, dial_number: int) -> WrapUp:
        rng = random.Random(_key(seed, "outcome", contact_id, dial_number))
        weights = [o.weight for o in self.outcomes]
        return rng.choices(self.outcomes, weights=weights, k=1)[0]

    def drops(self, seed: int, what: str, key: str) -> bool:
        """Whether this notification or data-action request is lost (fault injection)."""
        if self.drop_event_fraction <= 0:
            return False
        rng = random.Random(_key(seed, f"drop:{what}", key, 0))
        return rng.random() < self.drop_event_fraction


def _key(seed: int, purpose: str, contact_id: str, dial_number: int) -> int:
    digest = hashlib.sha256(f"{seed}|{purpose}|{contact_id}|{dial_number}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


# A collections campaign's rough shape: most calls reach nobody, a third reach the customer.
MIXED = (
    WrapUp(NO_ANSWER, False, 30),
    WrapUp(BUSY, False, 7),
    WrapUp(MACHINE, False, 15),
    WrapUp(SIT_UNCALLABLE, False, 1),
    WrapUp("Promise to Pay", True, 15),
    WrapUp("Paid", True, 8),
    WrapUp("Card Updated", True, 4),
    WrapUp("Callback Requested", True, 10),
    WrapUp("Dispute", True, 2),
    WrapUp("Never Call", True, 3),
    WrapUp("Wrong Number", False, 5),
)

SCENARIOS: dict[str, Scenario] = {
    "mixed": Scenario("mixed", MIXED),
    "all-no-answer": Scenario("all-no-answer", (WrapUp(NO_ANSWER, False, 1),)),
    "all-paid": Scenario("all-paid", (WrapUp("Paid", True, 1),)),
    "all-promise-to-pay": Scenario("all-promise-to-pay", (WrapUp("Promise to Pay", True, 1),)),
    "all-never-call": Scenario("all-never-call", (WrapUp("Never Call", True, 1),)),
    "all-wrong-number": Scenario("all-wrong-number", (WrapUp("Wrong Number", False, 1),)),
    "all-machine": Scenario("all-machine", (WrapUp(MACHINE, False, 1),)),
    "all-dispute": Scenario("all-dispute", (WrapUp("Dispute", True, 1),)),
}


def agent_codes() -> list[str]:
    """Every agent wrap-up code any scenario uses: the emulated organisation's own codes."""
    names = {o.code for s in SCENARIOS.values() for o in s.outcomes if not is_system_code(o.code)}
    return sorted(names)


def get_scenario(name: str, *, drop_event_fraction: float | None = None) -> Scenario:
    """A scenario by name; ``drop_event_fraction`` overrides its share of lost events."""
    try:
        scenario = SCENARIOS[name]
    except KeyError:
        known = ", ".join(sorted(SCENARIOS))
        raise ValueError(f"unknown scenario {name!r}; known: {known}") from None
    if drop_event_fraction is None:
        return scenario
    if not 0.0 <= drop_event_fraction <= 1.0:
        raise ValueError("drop_event_fraction must be between 0 and 1")
    return Scenario(scenario.name, scenario.outcomes, drop_event_fraction)


PROMISE_TO_PAY = "Promise to Pay"
CALLBACK_REQUESTED = "Callback Requested"


def wrapup_notes(
    seed: int, contact_id: str, dial_number: int, code: str, at: datetime, zone: str
) -> str:
    """What an agent types into the wrap-up notes, seeded: a promised date (3 to 10 days after
    the call) or a callback time (the next day, 11:00 to 18:00 in the contact's zone), in the
    ``key=value`` form the project's agents are asked to use."""
    rng = random.Random(_key(seed, "details", contact_id, dial_number))
    try:
        local = at.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        local = at
    if code == PROMISE_TO_PAY:
        promised = local.date() + timedelta(days=rng.randint(3, 10))
        return f"promisedDate={promised.isoformat()}"
    if code == CALLBACK_REQUESTED:
        day = local.date() + timedelta(days=1)
        when = datetime.combine(day, time(rng.randint(11, 17), 0), tzinfo=local.tzinfo)
        return f"callbackAt={when.isoformat()}"
    return ""


def call_seconds(seed: int, contact_id: str, dial_number: int, *, answered: bool) -> int:
    """How long the call lasted, seeded (a ring cycle when unanswered, minutes when answered)."""
    rng = random.Random(_key(seed, "duration", contact_id, dial_number))
    return rng.randint(120, 600) if answered else rng.randint(15, 35)

"""What the campaign came to: a snapshot of the store and the emulator while it plays, and
the funnel at the end (in the terminal and as a Prefect table artifact).

The funnel's stages, outcomes and compliance waits are the report's figures
(``recovery.reporting.figures``): the compliance refusals are read from the fields the
advance service records (``data["holds"]``), never from reason text."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from recovery.demo.feeder import Feeder
from recovery.demo.tuning import Tuning
from recovery.domain.compliance import CallHistory, CallingRules, Hold, permitted
from recovery.reporting.figures import compute_report, held_entries, tally_holds
from recovery.store.cases import to_view
from recovery.store.tables import CaseRow, ContactRow, DispositionRow, InboxRow

ARTIFACT_KEY = "demo-funnel"

# --- reading the store and the emulator -----------------------------------------------------


def read_only_engine(database_url: str) -> Engine:
    """The demo only reads the store: a read-only connection never takes SQLite's write lock
    away from the receiver and the flows."""
    path = Path(database_url.removeprefix("sqlite:///")).resolve()
    return create_engine(
        f"sqlite:///file:{path}?mode=ro&uri=true", connect_args={"check_same_thread": False}
    )


def emulator_counters(emulator: str) -> dict[str, int]:
    try:
        counters: dict[str, int] = httpx.get(f"{emulator}/__emulator__/counters", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return counters


def emulator_dial_log(emulator: str) -> list[dict[str, object]]:
    """Every dial the emulator made (``/__emulator__/dial-log``); empty when unreachable."""
    try:
        log: list[dict[str, object]] = httpx.get(
            f"{emulator}/__emulator__/dial-log", timeout=30
        ).json()
    except (httpx.HTTPError, ValueError):
        return []
    return log


@dataclass
class Snapshot:
    at: datetime
    statuses: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    contacts: int = 0
    dispositions: int = 0
    counters: dict[str, int] = field(default_factory=dict)


def take_snapshot(engine: Engine, emulator: str, at: datetime) -> Snapshot:
    snap = Snapshot(at=at)
    with Session(engine) as session:
        rows = session.execute(
            select(CaseRow.status, CaseRow.outcome, func.count()).group_by(
                CaseRow.status, CaseRow.outcome
            )
        )
        for status, outcome, count in rows:
            snap.statuses[status] += count
            if outcome:
                snap.outcomes[outcome] += count
        created = select(func.count()).where(ContactRow.created_at.is_not(None))
        snap.contacts = int(session.scalar(created) or 0)
        snap.dispositions = int(
            session.scalar(select(func.count()).select_from(DispositionRow)) or 0
        )
    snap.counters = emulator_counters(emulator)
    return snap


# --- the funnel -----------------------------------------------------------------------------


def compliance_label(hold: Hold) -> str | None:
    """A compliance hold as the funnel names it, '<rule> (<jurisdiction>)', or the dial
    margin; None for the holds the funnel does not show (suppression, unknown zone, ...)."""
    where = f"({hold.jurisdiction})"
    if hold.rule == "hours":
        return f"outside calling hours {where}"
    if hold.rule == "holiday":
        return f"public holiday {where}"
    if hold.rule == "weekday":
        return f"no calls that weekday {where}"
    if hold.rule == "attempt_cap":
        return f"cap of {hold.limit} calls per {hold.period} {where}"
    if hold.rule == "cooldown":
        return f"{hold.period} after a conversation {where}"
    if hold.rule == "dial_margin":
        return "window closes within the dial margin"
    return None


@dataclass
class Funnel:
    """What the campaign came to, as (section, measure, value) rows."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)
    cases: int = 0
    contacted: int = 0
    contacts_created: int = 0
    recovered: int = 0
    overdue_at_end: int = 0
    refused_outside_window: int = 0
    dialled_outside_rules: int = 0
    flow_runs: dict[str, int] = field(default_factory=dict)

    def figures(self) -> dict[str, object]:
        """The headline figures (``funnel.json``): the same seed gives the same values, except
        ``flow_runs`` (how many runs the schedules started depends on the machine's speed)."""
        return {
            "cases": self.cases,
            "contacted": self.contacted,
            "contacts_created": self.contacts_created,
            "recovered": self.recovered,
            "overdue_at_end": self.overdue_at_end,
            "dials_outside_window": self.dialled_outside_rules,
            "refused_outside_window": self.refused_outside_window,
            "flow_runs": dict(sorted(self.flow_runs.items())),
        }

    def add(self, section: str, measure: str, value: object) -> None:
        self.rows.append((section, measure, str(value)))


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _share(part: int, whole: int) -> str:
    return f"{part} ({100 * part / whole:.0f}%)" if whole else str(part)


def _quantiles(values: Sequence[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return f"{statistics.median(ordered):.2f} / {p95:.2f} / {ordered[-1]:.2f}"


def build_funnel(
    *,
    engine: Engine,
    counters: dict[str, int],
    feeder: Feeder,
    tuning: Tuning,
    rules: CallingRules,
    started: datetime,
    ended: datetime,
    dial_log: Sequence[dict[str, object]] = (),
) -> Funnel:
    """The funnel from the store (the report's figures, contacts, outcomes) and the emulator."""
    with Session(engine) as session:
        cases = list(session.scalars(select(CaseRow)))
        dispositions = list(session.scalars(select(DispositionRow)))
        contacts = list(session.scalars(select(ContactRow)))
        inbox_rows = int(session.scalar(select(func.count()).select_from(InboxRow)) or 0)
        redacted = int(session.scalar(select(func.count()).where(InboxRow.pan_redacted)) or 0)
    with Session(engine) as session:
        held = held_entries(session=session)
        report = compute_report(session=session, now=ended)
    funnel = Funnel(cases=len(cases))
    funnel.refused_outside_window = int(counters.get("refused_outside_window", 0))
    by_case: dict[int, list[DispositionRow]] = defaultdict(list)
    for outcome in dispositions:
        if outcome.case_id is not None:
            by_case[outcome.case_id].append(outcome)
    n = len(cases)

    days = (ended - started).total_seconds() / 86400
    section = "intake"
    funnel.add(
        section,
        "virtual period",
        f"{started:%a %d %b %H:%M} - {ended:%a %d %b %H:%M} UTC, {days:.1f} days",
    )
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(feeder.kinds.items()))
    funnel.add(section, "signed webhooks posted", f"{feeder.posted} ({kinds or '-'})")
    for answer, count in sorted(feeder.answers.items()):
        funnel.add(section, f"  answered {answer}", count)
    funnel.add(section, "inbox rows (one per event)", inbox_rows)
    funnel.add(section, "events with a card number replaced", redacted)

    section = "funnel"
    stages = report.funnel
    funnel.recovered = stages["recovered"]
    funnel.contacted = stages["contacted"]
    funnel.contacts_created = sum(c.created_at is not None for c in contacts)
    # Open cases whose due time lies more than a virtual hour before the end: work the
    # campaign left undone (a clock that outran the machine).
    overdue_before = ended - timedelta(hours=1)
    funnel.overdue_at_end = sum(
        c.status != "closed"
        and c.next_due_at is not None
        and _aware(c.next_due_at) < overdue_before
        for c in cases
    )
    funnel.add(section, "cases opened", stages["failed"])
    funnel.add(section, "reachable (a phone and a time zone)", _share(stages["reachable"], n))
    funnel.add(section, "contacted (queued for a call)", _share(stages["contacted"], n))
    funnel.add(section, "dialled (an outcome recorded)", _share(len(by_case), n))
    funnel.add(section, "right-party contact", _share(stages["right_party"], n))
    funnel.add(section, "promised to pay", _share(stages["promised"], n))
    funnel.add(section, "recovered", _share(stages["recovered"], n))
    after_contact = report.recovered_after_contact
    funnel.add(section, "  after a call was queued", after_contact)
    funnel.add(section, "  without a call (paid on their own)", stages["recovered"] - after_contact)

    section = "amounts"
    failed: dict[str, Decimal] = defaultdict(Decimal)
    won: dict[str, Decimal] = defaultdict(Decimal)
    for case in cases:
        if case.amount is None:
            continue
        currency = (case.currency or "?").upper()
        failed[currency] += case.amount
        if case.outcome == "recovered":
            won[currency] += case.amount
    for currency in sorted(failed):
        funnel.add(
            section,
            f"recovered {currency}",
            f"{won[currency]:,.2f} of {failed[currency]:,.2f}",
        )

    section = "compliance"
    waits = tally_holds((e for e in held if not e.withdrawal), compliance_label)
    withdrawn = tally_holds((e for e in held if e.withdrawal), compliance_label)
    for label, decisions, waited in waits:
        funnel.add(section, f"waited: {label}", f"{waited} cases, {decisions} decisions")
    for label, count, _ in withdrawn:
        funnel.add(section, f"withdrawn at dispatch: {label}", f"{count} contacts")
    if not waits and not withdrawn:
        funnel.add(section, "waited", "never")

    section = "closed"
    closed = sorted(report.closed_by_outcome.items(), key=lambda item: (-item[1], item[0]))
    for outcome_name, count in closed:
        funnel.add(section, outcome_name, _share(count, n))
    for status, count in Counter(c.status for c in cases if c.status != "closed").most_common():
        funnel.add("still open", status, count)
    funnel.add(
        "still open", "flagged for review (any status)", sum(c.flagged_for_review for c in cases)
    )

    section = "contact centre"
    created = {c.contact_id: c for c in contacts if c.created_at is not None}
    funnel.add(section, "contacts created", len(created))
    outcomes = Counter(d.disposition for d in dispositions)
    funnel.add(section, "outcomes", ", ".join(f"{k} {v}" for k, v in outcomes.most_common()) or "-")
    pushed = sum(d.source == "push" for d in dispositions)
    funnel.add(
        section, "outcomes by push / by reconcile", f"{pushed} / {len(dispositions) - pushed}"
    )
    channels = Counter(str(d.detail.get("channel", d.source)) for d in dispositions)
    funnel.add(
        section, "outcomes by channel", ", ".join(f"{k} {v}" for k, v in channels.most_common())
    )
    # From the decision to plan a contact to its dial, in real seconds: the dial margin
    # (virtual) has to cover it.
    lags = [
        (d.occurred_at - created[d.contact_id].requested_at).total_seconds() / tuning.speed
        for d in dispositions
        if d.contact_id in created
    ]
    if lags:
        funnel.add(
            section,
            "decision to dial, real s (median / p95 / max)",
            f"{_quantiles(lags)} (margin covers {tuning.latency_budget})",
        )
    for name in (
        "dials",
        "recycles",
        "on_dnc_list",
        "actions_sent",
        "actions_failed",
        "events_published",
        "rate_limited",
    ):
        funnel.add(section, f"emulator: {name.replace('_', ' ')}", counters.get(name, 0))
    funnel.add(section, "emulator: refused outside the window", funnel.refused_outside_window)
    # The emulator knows only the callable time set; the calling rules are stricter in some
    # states (Florida ends at 20:00, Rhode Island at 18:00, ...): check every dial against them,
    # at the instant the dial log gives (an outcome's time is when it was received).
    by_id = {c.id: c for c in cases}
    contact_case = {c.contact_id: c.case_id for c in contacts}
    dials = [
        (str(e["contactId"]), datetime.fromisoformat(str(e["at"]).replace("Z", "+00:00")))
        for e in dial_log
        if e.get("placed")
    ] or [(d.contact_id, d.occurred_at) for d in dispositions]
    funnel.dialled_outside_rules = sum(
        not permitted(
            to_view(by_id[contact_case[contact_id]]).contact, CallHistory(), at, rules
        ).permitted
        for contact_id, at in dials
        if contact_id in contact_case
    )
    funnel.add(section, "dialled outside the calling rules' hours", funnel.dialled_outside_rules)
    return funnel


# The final state types of a flow run, as Prefect's flow-run filter names them.
FINAL_STATE_TYPES = ("COMPLETED", "CANCELLED", "FAILED", "CRASHED")


def flow_run_states(api_url: str) -> dict[str, int]:
    """How many flow runs ended in each final state type (those with any): runs still
    scheduled (the schedules create them ahead) or running are not counted."""
    found: dict[str, int] = {}
    with httpx.Client(base_url=api_url, timeout=30) as client:
        for state_type in FINAL_STATE_TYPES:
            query = {"flow_runs": {"state": {"type": {"any_": [state_type]}}}}
            response = client.post("/flow_runs/count", json=query)
            response.raise_for_status()
            count = int(response.json())
            if count:
                found[state_type] = count
    return found


def write_funnel_json(path: Path, funnel: Funnel, extra: dict[str, object]) -> None:
    """``funnel.json``: the headline figures, then ``extra`` (the seed, the clock's jumps...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**funnel.figures(), **extra}, indent=2) + "\n")


def print_funnel(console: Console, funnel: Funnel) -> None:
    table = Table(title="The campaign's funnel", title_justify="left")
    table.add_column("", style="dim")
    table.add_column("measure")
    table.add_column("value", justify="right")
    previous = None
    for section, measure, value in funnel.rows:
        table.add_row(section if section != previous else "", measure, value)
        previous = section
    console.print(table)


def publish_funnel(api_url: str, funnel: Funnel) -> str:
    """The funnel as the table artifact ``demo-funnel`` on the demo's Prefect server, over
    Prefect's REST API (as the receiver starts runs: the library imports no Prefect); its id."""
    body = {
        "key": ARTIFACT_KEY,
        "type": "table",
        "description": (
            f"Payment-recovery demo: {funnel.cases} cases, {funnel.recovered} recovered, "
            f"{funnel.refused_outside_window} dials refused outside the calling window, "
            f"{funnel.dialled_outside_rules} outside the calling rules' hours"
        ),
        "data": json.dumps(
            [{"section": s, "measure": m.strip(), "value": v} for s, m, v in funnel.rows]
        ),
    }
    response = httpx.post(f"{api_url}/artifacts/", json=body, timeout=30)
    response.raise_for_status()
    return str(response.json()["id"])

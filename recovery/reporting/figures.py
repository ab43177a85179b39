"""Recovery reporting: how failed payments fared, computed from the store.

The report covers the cases whose payment failed in the period (``since`` inclusive, ``until``
exclusive; either may be open). Its figures:

* **funnel**: ``failed`` (every case) -> ``reachable`` (a dialable phone and a known time zone:
  never ``needs_contact_info`` nor ``unreachable``) -> ``contacted`` (at least one contact
  created at the contact centre) -> ``right_party`` (a disposition given after speaking with
  the customer) -> ``promised`` (a ``promise_to_pay``) -> ``recovered`` (outcome
  ``recovered``). Each stage counts the cases that meet its own definition; ``recovered``
  includes payments that came back without any call, so ``recovered_after_contact`` is given
  too.
* **recovered amount by currency**: the failed amount of each recovered case (the success's
  amount when the case's own is unknown).
* **by failure category** and **by last disposition** (``none`` when never dispositioned):
  cases, recovered, recovery rate and the median days to recover. A case is recovered at the
  instant its payment succeeded (the gateway's event time), or when it closed as recovered
  without a payment event (a ``paid`` disposition), so a backfilled history keeps its dates.
* **blocked by compliance**: decision entries (and contacts withdrawn at the last check, sent
  or not) that record a refusal by a calling rule, by jurisdiction and rule (``US-FL hours``,
  ``US-FL cap 3 attempts per rolling 24h``, ``US no call within 7d after a conversation``,
  ``US no calls on Sunday``, ``US no calls on public holidays``); an entry citing several rules
  counts once for each. Read from the entries' fields (``data["holds"]``, see
  ``recovery.domain.compliance.holds``), never from their text; only the calling rules proper
  count (hours, weekday, holiday, attempt cap, cool-down), not a suppression, an unknown zone
  or the dial margin. An entry recorded before holds were stored has no ``holds``: its
  refusals are read back from the engine's sentences by
  ``recovery.reporting.legacy.legacy_holds_from_prose``, the one place that parses them
  (see ``entry_holds``).
* **closed by outcome**, and **recoveries per day** (UTC dates: count and amount per currency),
  drawn as a PNG chart next to a markdown report that links it.
* **attribution** of each recovered case to one cause, in this order: **after a promise** (a
  ``promise_to_pay`` before the payment, which came no later than ``N`` days after the promised
  date, or after the promise when it named no date); **after a call** (a right-party contact
  before the payment, which came within ``N`` days of the latest one); **with no call** (no
  contact was ever created: the gateway's retry or the customer alone); the rest were
  recovered **after calls** without a right-party contact in the ``N`` days before.
  ``N`` is ``RECOVERY_ATTRIBUTION_DAYS``. **Calls avoided by retry-aware waits**: cases
  recovered with no call whose first call was held back for the gateway's retry (or a card
  update) past the instant the policy alone allowed, and whose payment came after that instant:
  without the wait, the call would have been made.

Nothing here reads a clock: ``now`` is passed in.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recovery.domain.compliance import Hold, read_holds, resolve_contact
from recovery.domain.models import (
    CaseStatus,
    ContactPoint,
    Disposition,
    FailureCategory,
    HistoryKind,
    Outcome,
)
from recovery.domain.policy import is_right_party
from recovery.gateways.common import THREE_DECIMAL, ZERO_DECIMAL
from recovery.reporting.legacy import legacy_holds_from_prose
from recovery.store.tables import CaseRow, ContactRow, HistoryRow

FUNNEL = ("failed", "reachable", "contacted", "right_party", "promised", "recovered")
NO_DISPOSITION = "none"
NO_CURRENCY = "unknown"
_CHUNK = 500
_K = TypeVar("_K", bound=Hashable)


@dataclass(frozen=True)
class GroupFigures:
    """Cases of one failure category or last disposition, and how many were recovered."""

    name: str
    cases: int
    recovered: int
    median_days_to_recover: float | None

    @property
    def recovery_rate(self) -> float:
        return rate(self.recovered, self.cases)


@dataclass(frozen=True)
class BlockFigures:
    """How often one compliance rule held back a call."""

    jurisdiction: str
    rule: str
    decisions: int
    cases: int

    @property
    def label(self) -> str:
        return f"{self.jurisdiction} {self.rule}"


@dataclass(frozen=True)
class DayFigures:
    """Recoveries of one UTC day."""

    day: date
    count: int
    amounts: dict[str, Decimal]


@dataclass
class Report:
    """Every figure of the report for one period."""

    since: datetime | None
    until: datetime | None
    generated_at: datetime
    funnel: dict[str, int]
    recovered_after_contact: int
    recovered_amount: dict[str, Decimal]
    recovered_without_amount: int
    by_category: list[GroupFigures]
    by_last_disposition: list[GroupFigures]
    compliance_blocks: list[BlockFigures]
    blocked_decisions: int
    closed_by_outcome: dict[str, int]
    recoveries_by_day: list[DayFigures]
    attribution: Attribution | None = None

    @property
    def cases(self) -> int:
        return self.funnel["failed"]


# --- one case -----------------------------------------------------------------------------


@dataclass
class CaseFacts:
    """What the report needs to know of one case, read from its row and history."""

    category: str
    reachable: bool
    contacted: bool
    right_party: bool
    promised: bool
    recovered: bool
    outcome: str | None
    last_disposition: str
    recovered_at: datetime | None
    days_to_recover: float | None
    amount: Decimal | None
    currency: str | None
    held: list[HeldEntry] = field(default_factory=list)


@dataclass(frozen=True)
class HeldEntry:
    """A history entry that records compliance refusals: a decision (not to call yet), or a
    contact withdrawn at the last check before sending (``withdrawal``)."""

    case_id: int
    withdrawal: bool
    holds: tuple[Hold, ...]


def case_facts(case: CaseRow, history: Sequence[HistoryRow], contacts_created: int) -> CaseFacts:
    """The report's view of one case (pure: the rows are passed in)."""
    contact = ContactPoint(
        phone_e164=case.phone_e164,
        country=case.country or "US",
        state=case.state,
        postal_code=case.postal_code,
        explicit_tz=case.explicit_tz,
    )
    reachable = (
        case.phone_e164 is not None
        and case.outcome != Outcome.unreachable.value
        and case.status != CaseStatus.needs_contact_info.value
        and not resolve_contact(contact).unknown
    )
    right_party = promised = False
    last: tuple[datetime, int, str] | None = None
    success_at: datetime | None = None
    success_amount: tuple[Decimal | None, str | None] = (None, None)
    held: list[HeldEntry] = []
    for row in history:
        if row.kind == HistoryKind.disposition.value and row.disposition:
            disposition = Disposition(row.disposition)
            spoke = (row.data or {}).get("right_party")
            if spoke is True or (not isinstance(spoke, bool) and is_right_party(disposition)):
                right_party = True
            promised = promised or disposition is Disposition.promise_to_pay
            if last is None or (row.at, row.id) >= last[:2]:
                last = (row.at, row.id, disposition.value)
        elif row.kind == HistoryKind.payment_succeeded.value and success_at is None:
            success_at = row.at
            data = row.data or {}
            success_amount = (_decimal(data.get("amount")), data.get("currency"))
        else:
            entry = entry_holds(row)
            if entry is not None:
                held.append(entry)
    recovered = case.outcome == Outcome.recovered.value
    recovered_at = (success_at or case.closed_at) if recovered else None
    days = (
        (recovered_at - case.failed_at).total_seconds() / 86400
        if recovered_at is not None
        else None
    )
    amount, currency = case.amount, case.currency
    if recovered and amount is None:
        amount, currency = success_amount[0], success_amount[1] or currency
    return CaseFacts(
        category=case.category,
        reachable=reachable,
        contacted=contacts_created > 0,
        right_party=right_party,
        promised=promised,
        recovered=recovered,
        outcome=case.outcome if case.status == CaseStatus.closed.value else None,
        last_disposition=last[2] if last else NO_DISPOSITION,
        recovered_at=recovered_at,
        days_to_recover=days,
        amount=amount,
        currency=currency.lower() if isinstance(currency, str) else None,
        held=held,
    )


def entry_holds(row: HistoryRow) -> HeldEntry | None:
    """The compliance refusals one history entry records; None when it is neither a decision
    nor a withdrawn contact's note, or records none.

    Read from ``data["holds"]``. An entry without that key was recorded before holds were
    stored: its refusals are read back from its reasons by ``legacy_holds_from_prose`` (for
    a note, only a contact withdrawn before it was sent, as such notes said then)."""
    if row.kind == HistoryKind.decision.value:
        withdrawal = False
    elif row.kind == HistoryKind.note.value:
        withdrawal = True
    else:
        return None
    data = row.data or {}
    holds = read_holds(data)
    if holds is None:
        holds = legacy_holds_from_prose(row.reasons or (), withdrawal=withdrawal)
    elif withdrawal and data.get("withdrawn") is not True:
        return None
    return HeldEntry(case_id=row.case_id, withdrawal=withdrawal, holds=holds) if holds else None


def rule_label(hold: Hold) -> str:
    """A calling rule as the report names it next to its jurisdiction (``hours``,
    ``no calls on Sunday``, ``no calls on public holidays``, ``cap 3 attempts per rolling
    24h``, ``no call within 7d after a conversation``); any other hold by its rule."""
    if hold.rule == "weekday":
        return f"no calls on {hold.weekday}"
    if hold.rule == "holiday":
        return "no calls on public holidays"
    if hold.rule == "attempt_cap":
        return f"cap {hold.limit} attempts per rolling {hold.period}"
    if hold.rule == "cooldown":
        return f"no call within {hold.period} after a conversation"
    return hold.rule


def compliance_rules(holds: Iterable[Hold]) -> set[tuple[str, str]]:
    """The (jurisdiction, rule label) pairs of the calling rules among these holds."""
    return {key for key in map(_calling_rule, holds) if key is not None}


def tally_holds(
    entries: Iterable[HeldEntry], key: Callable[[Hold], _K | None]
) -> list[tuple[_K, int, int]]:
    """(key, entries, cases) for each key the entries' holds map to (None: not counted),
    most entries first; an entry citing a key several times counts once for it."""
    counts: Counter[_K] = Counter()
    cases: dict[_K, set[int]] = defaultdict(set)
    for entry in entries:
        keys = {k for k in map(key, entry.holds) if k is not None}
        counts.update(keys)
        for k in keys:
            cases[k].add(entry.case_id)
    return [(k, n, len(cases[k])) for k, n in counts.most_common()]


def held_entries(
    *, session: Session, since: datetime | None = None, until: datetime | None = None
) -> list[HeldEntry]:
    """Every history entry recording compliance refusals, of the cases whose payment failed
    in ``[since, until)``, in the order they were recorded."""
    stmt = (
        select(HistoryRow)
        .join(CaseRow, CaseRow.id == HistoryRow.case_id)
        .where(HistoryRow.kind.in_((HistoryKind.decision.value, HistoryKind.note.value)))
        .order_by(HistoryRow.id)
    )
    if since is not None:
        stmt = stmt.where(CaseRow.failed_at >= since)
    if until is not None:
        stmt = stmt.where(CaseRow.failed_at < until)
    found: list[HeldEntry] = []
    for row in session.scalars(stmt.execution_options(yield_per=_CHUNK)):
        held = entry_holds(row)
        if held is not None:
            found.append(held)
    return found


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        return None
    return result if result.is_finite() else None


# --- the whole report ---------------------------------------------------------------------


def compute_report(
    *,
    session: Session,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
    attribution_days: int = 7,
) -> Report:
    """Every figure for the cases whose payment failed in ``[since, until)``;
    ``attribution_days``: the ``N`` of the attribution (module docstring)."""
    if now.tzinfo is None:
        raise ValueError("compute_report needs a timezone-aware now")
    facts: list[CaseFacts] = []
    attributed: list[AttributionFacts] = []
    last_id = 0
    while True:
        stmt = select(CaseRow).where(CaseRow.id > last_id).order_by(CaseRow.id).limit(_CHUNK)
        if since is not None:
            stmt = stmt.where(CaseRow.failed_at >= since)
        if until is not None:
            stmt = stmt.where(CaseRow.failed_at < until)
        cases = list(session.scalars(stmt))
        if not cases:
            break
        last_id = cases[-1].id
        ids = [c.id for c in cases]
        histories: dict[int, list[HistoryRow]] = defaultdict(list)
        for row in session.scalars(
            select(HistoryRow).where(HistoryRow.case_id.in_(ids)).order_by(HistoryRow.id)
        ):
            histories[row.case_id].append(row)
        created = {
            case_id: int(count)
            for case_id, count in session.execute(
                select(ContactRow.case_id, func.count())
                .where(ContactRow.case_id.in_(ids), ContactRow.created_at.is_not(None))
                .group_by(ContactRow.case_id)
            )
        }
        facts.extend(case_facts(c, histories[c.id], created.get(c.id, 0)) for c in cases)
        attributed.extend(
            attribution_facts(c, histories[c.id], created.get(c.id, 0), days=attribution_days)
            for c in cases
        )
        session.expunge_all()  # keeps memory flat on a large store
    report = summarise(facts, since=since, until=until, now=now)
    report.attribution = summarise_attribution(attributed, days=attribution_days)
    return report


def summarise(
    facts: Sequence[CaseFacts], *, since: datetime | None, until: datetime | None, now: datetime
) -> Report:
    """The report's figures from the facts of its cases (pure)."""
    funnel = {
        "failed": len(facts),
        "reachable": sum(f.reachable for f in facts),
        "contacted": sum(f.contacted for f in facts),
        "right_party": sum(f.right_party for f in facts),
        "promised": sum(f.promised for f in facts),
        "recovered": sum(f.recovered for f in facts),
    }
    recovered = [f for f in facts if f.recovered]
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    without_amount = 0
    days: dict[date, list[CaseFacts]] = defaultdict(list)
    for f in recovered:
        if f.amount is None:
            without_amount += 1
        else:
            amounts[f.currency or NO_CURRENCY] += f.amount
        if f.recovered_at is not None:
            days[f.recovered_at.date()].append(f)
    by_day = [
        DayFigures(day=day, count=len(items), amounts=_amounts(items))
        for day, items in sorted(days.items())
    ]
    categories = [c.value for c in FailureCategory]
    dispositions = [d.value for d in Disposition] + [NO_DISPOSITION]
    return Report(
        since=since,
        until=until,
        generated_at=now,
        funnel=funnel,
        recovered_after_contact=sum(f.recovered and f.contacted for f in facts),
        recovered_amount={c: _quantize(v, c) for c, v in sorted(amounts.items())},
        recovered_without_amount=without_amount,
        by_category=_groups(facts, lambda f: f.category, categories),
        by_last_disposition=_groups(facts, lambda f: f.last_disposition, dispositions),
        compliance_blocks=_blocks(facts),
        blocked_decisions=sum(bool(compliance_rules(e.holds)) for f in facts for e in f.held),
        closed_by_outcome=dict(
            sorted(Counter(f.outcome for f in facts if f.outcome is not None).items())
        ),
        recoveries_by_day=by_day,
    )


def _amounts(items: Iterable[CaseFacts]) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for f in items:
        if f.amount is not None:
            sums[f.currency or NO_CURRENCY] += f.amount
    return {c: _quantize(v, c) for c, v in sorted(sums.items())}


def _quantize(value: Decimal, currency: str) -> Decimal:
    places = 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
    return value.quantize(Decimal(1).scaleb(-places))


def rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _groups(facts: Sequence[CaseFacts], key: Any, order: Sequence[str]) -> list[GroupFigures]:
    grouped: dict[str, list[CaseFacts]] = defaultdict(list)
    for f in facts:
        grouped[key(f)].append(f)
    ranked = sorted(grouped, key=lambda n: (order.index(n) if n in order else len(order), n))
    out = []
    for name in ranked:
        items = grouped[name]
        spans = [f.days_to_recover for f in items if f.days_to_recover is not None]
        out.append(
            GroupFigures(
                name=name,
                cases=len(items),
                recovered=sum(f.recovered for f in items),
                median_days_to_recover=round(statistics.median(spans), 3) if spans else None,
            )
        )
    return out


def _blocks(facts: Sequence[CaseFacts]) -> list[BlockFigures]:
    tallies = tally_holds((e for f in facts for e in f.held), _calling_rule)
    return [
        BlockFigures(jurisdiction=j, rule=r, decisions=decisions, cases=cases)
        for (j, r), decisions, cases in sorted(tallies, key=lambda t: (-t[1], t[0]))
    ]


def _calling_rule(hold: Hold) -> tuple[str, str] | None:
    if not hold.calling_rule or hold.jurisdiction is None:
        return None
    return hold.jurisdiction, rule_label(hold)


# --- attribution: what brought each recovery, and the calls retry-aware waits saved ---------

ATTRIBUTION = ("after_promise", "after_call", "no_call", "after_calls")


@dataclass(frozen=True)
class AttributionFacts:
    """One case's attribution: its cause when recovered (one of ``ATTRIBUTION``), whether a
    retry-aware wait held its first call back, and whether that wait saved a call."""

    cause: str | None
    waited: bool
    call_avoided: bool
    amount: Decimal | None
    currency: str | None


@dataclass(frozen=True)
class Attribution:
    """Recovered cases by cause (counts and amounts per currency), and the calls saved by
    retry-aware waits; ``days`` is the ``N`` of the definitions."""

    days: int
    recovered: dict[str, int]
    amounts: dict[str, dict[str, Decimal]]
    retry_waits: int
    calls_avoided: int
    avoided_amounts: dict[str, Decimal]


def attribution_facts(
    case: CaseRow, history: Sequence[HistoryRow], contacts_created: int, *, days: int
) -> AttributionFacts:
    """The attribution of one case (pure: the rows are passed in)."""
    window = timedelta(days=days)
    success_at: datetime | None = None
    success_amount: tuple[Decimal | None, str | None] = (None, None)
    conversations: list[datetime] = []
    # (when the promise was made, the instant from which its N days count)
    promises: list[tuple[datetime, datetime]] = []
    unwaited: list[datetime] = []
    for row in history:
        data = row.data or {}
        if row.kind == HistoryKind.payment_succeeded.value and success_at is None:
            success_at = row.at
            success_amount = (_decimal(data.get("amount")), data.get("currency"))
        elif row.kind == HistoryKind.disposition.value and row.disposition:
            disposition = Disposition(row.disposition)
            spoke = data.get("right_party")
            if spoke is True or (not isinstance(spoke, bool) and is_right_party(disposition)):
                conversations.append(row.at)
            if disposition is Disposition.promise_to_pay:
                counts_from = max(row.at, _promised_day_end(data.get("promised_date")))
                promises.append((row.at, counts_from))
        elif row.kind == HistoryKind.decision.value and data.get("waiting_for"):
            at = _instant(data.get("unwaited_at"))
            if at is not None:
                unwaited.append(at)
    recovered = case.outcome == Outcome.recovered.value
    recovered_at = (success_at or case.closed_at) if recovered else None
    amount, currency = case.amount, case.currency
    if recovered and amount is None:
        amount, currency = success_amount[0], success_amount[1] or currency
    cause: str | None = None
    avoided = False
    if recovered_at is not None:
        spoken = [c for c in conversations if c <= recovered_at]
        if any(made <= recovered_at <= start + window for made, start in promises):
            cause = "after_promise"
        elif spoken and recovered_at - max(spoken) <= window:
            cause = "after_call"
        elif contacts_created == 0:
            cause = "no_call"
            avoided = any(at < recovered_at for at in unwaited)
        else:
            cause = "after_calls"
    return AttributionFacts(
        cause=cause,
        waited=bool(unwaited),
        call_avoided=avoided,
        amount=amount,
        currency=currency.lower() if isinstance(currency, str) else None,
    )


def _instant(raw: Any) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def _promised_day_end(raw: Any) -> datetime:
    """The end of a promised date (UTC; the earliest instant a promise can count from)."""
    if isinstance(raw, str):
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            return datetime.min.replace(tzinfo=UTC)
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
    return datetime.min.replace(tzinfo=UTC)


def summarise_attribution(facts: Sequence[AttributionFacts], *, days: int) -> Attribution:
    """The attribution figures of a report's cases (pure)."""
    counts = {cause: 0 for cause in ATTRIBUTION}
    sums: dict[str, dict[str, Decimal]] = {cause: defaultdict(Decimal) for cause in ATTRIBUTION}
    avoided: dict[str, Decimal] = defaultdict(Decimal)
    for f in facts:
        if f.cause is None:
            continue
        counts[f.cause] += 1
        if f.amount is not None:
            sums[f.cause][f.currency or NO_CURRENCY] += f.amount
            if f.call_avoided:
                avoided[f.currency or NO_CURRENCY] += f.amount
    return Attribution(
        days=days,
        recovered=counts,
        amounts={
            cause: {c: _quantize(v, c) for c, v in sorted(sums[cause].items())}
            for cause in ATTRIBUTION
        },
        retry_waits=sum(f.waited for f in facts),
        calls_avoided=sum(f.call_avoided for f in facts),
        avoided_amounts={c: _quantize(v, c) for c, v in sorted(avoided.items())},
    )

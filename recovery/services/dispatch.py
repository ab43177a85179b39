"""Handing planned contacts to the contact centre, without Prefect: the send step of the advance
flow, in three parts that each make at most one kind of external request.

1. ``last_check``: right before sending, check once more that the case is open, the number is
   not suppressed and calling is lawful now (and still ``dial_margin`` from now). A contact the
   check withdraws, or whose values the contact centre could never take, is recorded at once
   (withdrawn, or refused with its case parked for a person) unless the contact centre may
   already hold it (sent before and never confirmed): that one is ``held``, to be removed from
   its contact list first.
2. ``withdraw_held``: remove held contacts from their contact lists, outside any transaction,
   and record each as withdrawn (or refused) only once its removal succeeded. One the contact
   centre could not be asked to remove stays planned (and leased): a later run withdraws it
   again, so nothing stays queued there unrecorded.
3. ``send_batch``: send one batch (one request) and record what the contact centre created or
   refused. The attempt enters the case history (and so the frequency caps) only once the
   contact centre holds it. If the request fails, the batch is noted as possibly held.

``dispatch`` runs the three in order for one batch.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from recovery.contact_center.client import AddContactsResult, GenesysClient
from recovery.contact_center.contacts import ContactRequest, redact
from recovery.contact_center.errors import (
    CardDataRefused,
    ContactCenterError,
    TransientContactCenterError,
)
from recovery.domain.compliance import CallingRules, Hold, dial_margin_hold, permitted
from recovery.domain.events import CaseEvent
from recovery.domain.history import call_history, possibly_sent
from recovery.domain.models import CaseStatus, HistoryEntry
from recovery.services.contact_data import contact_request
from recovery.store.cases import case_histories, case_values, cases_by_id, to_view
from recovery.store.contacts import (
    REQUESTED,
    contacts_by_contact_id,
    contacts_by_id,
    note_possibly_held,
    planned_contacts,
    record_created,
    record_rejected,
    refuse_planned,
    withdraw_planned,
)
from recovery.store.db import transaction
from recovery.store.suppression import active_suppressions, suppression_reason
from recovery.store.tables import CaseRow, ContactRow, SuppressionRow

log = logging.getLogger("recovery.services.dispatch")

# ``Dispatched.reasons`` key of contacts refused before sending: a case value the contact
# centre's columns cannot take.
INVALID_FOR_CONTACT_CENTRE = "invalid for the contact centre"
# ``Dispatched.reasons`` key of withdrawn contacts left planned because the contact centre,
# which may hold them, could not be asked to remove them.
REMOVAL_FAILED = "not removed from the contact list: left planned"


@dataclass(frozen=True)
class Held:
    """A contact not to be sent that the contact centre may hold: removed from its list before
    it is recorded as withdrawn (``why``) or refused (``refusal``)."""

    row_id: int
    contact_list_id: str
    contact_id: str
    why: str | None
    refusal: str | None
    # The compliance refusals behind ``why``, recorded with the withdrawal.
    holds: tuple[Hold, ...] = ()


@dataclass
class Dispatched:
    """What handing contacts to the contact centre came to."""

    created: int = 0
    rejected: int = 0
    cancelled: int = 0
    requests: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    # Withdrawn by the last check, and possibly held by the contact centre: for
    # ``withdraw_held`` (``dispatch`` does it; a caller of ``check_and_send`` must).
    held: list[Held] = field(default_factory=list)
    # the business events of the transitions recorded (no personal data)
    events: list[CaseEvent] = field(default_factory=list)

    def add(self, other: Dispatched) -> None:
        self.created += other.created
        self.rejected += other.rejected
        self.cancelled += other.cancelled
        self.requests += other.requests
        self.reasons.update(other.reasons)
        self.held.extend(other.held)
        self.events.extend(other.events)


@dataclass
class Checked:
    """What the last check left to send (one request), and what it recorded or held back."""

    contact_list_id: str = ""
    requests: list[ContactRequest] = field(default_factory=list)
    outcome: Dispatched = field(default_factory=Dispatched)


def dispatch(
    *,
    sessions: sessionmaker[Session],
    client: GenesysClient,
    contact_row_ids: Sequence[int],
    rules: CallingRules,
    now: datetime,
    dial_margin: timedelta = timedelta(0),
) -> Dispatched:
    """Check, send and record one batch of planned contacts (one contact-centre request),
    withdrawing first the contacts not to be sent that the contact centre may hold."""
    checked = last_check(
        sessions=sessions,
        contact_row_ids=contact_row_ids,
        rules=rules,
        now=now,
        dial_margin=dial_margin,
    )
    outcome = checked.outcome
    held, outcome.held = outcome.held, []
    if held:
        outcome.add(withdraw_held(sessions=sessions, client=client, held=held, now=now))
    if checked.requests:
        outcome.add(
            send_batch(
                sessions=sessions,
                client=client,
                contact_list_id=checked.contact_list_id,
                requests=checked.requests,
                now=now,
            )
        )
    return outcome


def check_and_send(
    *,
    sessions: sessionmaker[Session],
    client: GenesysClient,
    contact_row_ids: Sequence[int],
    rules: CallingRules,
    now: datetime,
    dial_margin: timedelta = timedelta(0),
) -> Dispatched:
    """``last_check`` then ``send_batch``: the one request of a batch; the contacts the check
    held back are left in ``Dispatched.held`` for ``withdraw_held``."""
    checked = last_check(
        sessions=sessions,
        contact_row_ids=contact_row_ids,
        rules=rules,
        now=now,
        dial_margin=dial_margin,
    )
    outcome = checked.outcome
    if checked.requests:
        outcome.add(
            send_batch(
                sessions=sessions,
                client=client,
                contact_list_id=checked.contact_list_id,
                requests=checked.requests,
                now=now,
            )
        )
    return outcome


def last_check(
    *,
    sessions: sessionmaker[Session],
    contact_row_ids: Sequence[int],
    rules: CallingRules,
    now: datetime,
    dial_margin: timedelta = timedelta(0),
) -> Checked:
    """The last check before sending (see the module's docstring); no external request."""
    checked = Checked()
    outcome = checked.outcome
    with transaction(sessions) as session:
        rows = planned_contacts(session=session, row_ids=contact_row_ids)
        if not rows:
            return checked
        # Read as columns: the check changes few cases (loaded mapped when it does).
        cases = case_values(session=session, case_ids=[r.case_id for r in rows])
        histories = case_histories(session=session, case_ids=list(cases))
        suppressions = active_suppressions(
            session=session, phones=[r.phone_e164 for r in rows], now=now
        )
        for row in rows:
            case = cases[row.case_id]
            why, holds = _withdraw_reason(
                case, row, histories[case.id], suppressions, rules, now, dial_margin
            )
            refusal: str | None = None
            if why is None:
                try:
                    checked.requests.append(
                        contact_request(case=case, row=row, entries=histories[case.id])
                    )
                    checked.contact_list_id = row.contact_list_id
                    continue
                except (ValidationError, CardDataRefused) as exc:
                    # This contact alone is not sent; the rest of the batch is.
                    refusal = _invalid_reason(exc)
            if possibly_sent(histories[case.id], attempt=row.attempt):
                # Recorded only once the contact centre no longer holds it.
                outcome.held.append(
                    Held(row.id, row.contact_list_id, row.contact_id, why, refusal, holds)
                )
            elif why is not None:
                withdraw_planned(
                    session=session,
                    case=_mapped(session, case.id),
                    contact=row,
                    why=why,
                    now=now,
                    holds=holds,
                )
                _count_withdrawn(outcome, why)
            elif refusal is not None:
                moved = refuse_planned(
                    session=session,
                    case=_mapped(session, case.id),
                    contact=row,
                    why=refusal,
                    now=now,
                )
                if moved is not None:
                    outcome.events.extend(moved.events)
                _count_refused(outcome, row, refusal)
    return checked


def _mapped(session: Session, case_id: int) -> CaseRow:
    case = session.get(CaseRow, case_id)
    if case is None:  # pragma: no cover - the contact's foreign key keeps its case
        raise LookupError(f"case {case_id} not found")
    return case


def _count_withdrawn(outcome: Dispatched, why: str) -> None:
    outcome.cancelled += 1
    outcome.reasons[why.split(":", 1)[0]] += 1


def _count_refused(outcome: Dispatched, row: ContactRow, why: str) -> None:
    log.warning("contact %s not sent: %s", row.contact_id, why)
    outcome.rejected += 1
    outcome.reasons[INVALID_FOR_CONTACT_CENTRE] += 1


def _withdraw_reason(
    case: CaseRow,
    row: ContactRow,
    entries: Sequence[HistoryEntry],
    suppressions: dict[str, list[SuppressionRow]],
    rules: CallingRules,
    now: datetime,
    dial_margin: timedelta,
) -> tuple[str | None, tuple[Hold, ...]]:
    """Why the last check withdraws this contact (None: it is sent), with the compliance
    refusals behind it."""
    if case.status == CaseStatus.closed.value:
        return f"case closed: {case.outcome}", ()
    reason = suppression_reason(suppressions, row.phone_e164, case.customer_ref)
    if reason is not None:
        return f"suppressed: {reason}", ()
    contact = to_view(case).contact
    calls = call_history(entries, exclude_attempt=row.attempt)
    verdict = permitted(contact, calls, now, rules)
    if not verdict.permitted:
        return "not permitted now: " + "; ".join(verdict.reasons), verdict.holds
    if dial_margin > timedelta(0):
        later = permitted(contact, calls, now + dial_margin, rules)
        if not later.permitted:
            minutes = int(dial_margin.total_seconds() // 60)
            return (
                f"the window closes within the {minutes} min dial margin: "
                + "; ".join(later.reasons),
                (dial_margin_hold(dial_margin), *later.holds),
            )
    return None, ()


def _invalid_reason(exc: ValidationError | CardDataRefused) -> str:
    """Which value was refused and why, without the value itself."""
    if isinstance(exc, CardDataRefused):
        problems = [f"{exc.field}: looks like a card number"]
    else:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "contact"
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message}")
    return redact(f"{INVALID_FOR_CONTACT_CENTRE}: " + "; ".join(problems))


def withdraw_held(
    *,
    sessions: sessionmaker[Session],
    client: GenesysClient,
    held: Sequence[Held],
    now: datetime,
) -> Dispatched:
    """Remove held contacts from their lists, then record them as withdrawn (or refused)."""
    outcome = Dispatched()
    removed: dict[int, bool] = {}
    for index, item in enumerate(held):
        try:
            removed[item.row_id] = client.remove_contact(item.contact_list_id, item.contact_id)
        except TransientContactCenterError as exc:
            # Unreachable: the rest would wait as long and fail too.
            left = len(held) - index
            log.warning("%d withdrawn contacts not removed, left planned: %s", left, exc)
            outcome.reasons[REMOVAL_FAILED] += left
            break
        except ContactCenterError as exc:
            log.warning("contact %s not removed, left planned: %s", item.contact_id, exc)
            outcome.reasons[REMOVAL_FAILED] += 1
    if not removed:
        return outcome
    items = {item.row_id: item for item in held}
    with transaction(sessions) as session:
        rows = contacts_by_id(session=session, row_ids=removed)
        cases = cases_by_id(session=session, case_ids=[r.case_id for r in rows])
        for row in rows:
            item, case, found = items[row.id], cases[row.case_id], removed[row.id]
            if item.why is not None:
                if withdraw_planned(
                    session=session,
                    case=case,
                    contact=row,
                    why=item.why,
                    now=now,
                    removed=found,
                    holds=item.holds,
                ):
                    _count_withdrawn(outcome, item.why)
            elif item.refusal is not None:
                moved = refuse_planned(
                    session=session,
                    case=case,
                    contact=row,
                    why=item.refusal,
                    now=now,
                    removed=found,
                )
                if moved is not None:
                    outcome.events.extend(moved.events)
                    _count_refused(outcome, row, item.refusal)
    return outcome


def send_batch(
    *,
    sessions: sessionmaker[Session],
    client: GenesysClient,
    contact_list_id: str,
    requests: Sequence[ContactRequest],
    now: datetime,
) -> Dispatched:
    """Send one batch (one request) and record the contact centre's answer for each contact."""
    outcome = Dispatched()
    try:
        sent: AddContactsResult = client.add_contacts(contact_list_id, requests)
    except Exception:
        # The contact centre may have taken some or all of the batch before failing.
        _note_batch_unconfirmed(sessions, requests, now)
        raise
    outcome.requests = sent.requests
    created = set(sent.created)
    rejected = {r.contact_id: r for r in sent.rejected}
    with transaction(sessions) as session:
        for moved in record_created(
            session=session,
            contact_ids=[r.contact_id for r in requests if r.contact_id in created],
            now=now,
        ):
            outcome.created += 1
            outcome.events.extend(moved.events)
        refused = [r.contact_id for r in requests if r.contact_id not in created]
        rows = contacts_by_contact_id(session=session, contact_ids=refused) if refused else []
        cases = cases_by_id(session=session, case_ids=[r.case_id for r in rows])
        for row in rows:
            refusal = rejected.get(row.contact_id)
            why = refusal.reason if refusal else "not confirmed by the contact centre"
            if record_rejected(
                session=session, case=cases[row.case_id], contact=row, why=why, now=now
            ):
                outcome.rejected += 1
                outcome.reasons["rejected"] += 1
    return outcome


def _note_batch_unconfirmed(
    sessions: sessionmaker[Session], requests: Sequence[ContactRequest], now: datetime
) -> None:
    ids = {r.contact_id for r in requests}
    try:
        with transaction(sessions) as session:
            for row in contacts_by_contact_id(session=session, contact_ids=ids, state=REQUESTED):
                note_possibly_held(
                    session=session,
                    contact=row,
                    why="was sent and no answer was received",
                    now=now,
                )
    except Exception:
        log.exception("could not note %d contacts as possibly held", len(ids))

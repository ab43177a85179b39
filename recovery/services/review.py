"""Review: what a person does with a case the system cannot decide alone.

- ``resolve``: release a case parked for review (a note, the flag cleared, due now).
- ``close_by_hand``: close a case with a person's outcome; a contact still queued at the
  contact centre is removed from its list first, and if the contact centre cannot be
  reached nothing changes.
- ``queue``: the cases that need a person.

Refusals are typed (``UnknownCase``, ``CaseActionRefused``, ``ContactCenterUnavailable``,
``ValueError`` for bad input), so the command line maps each to its exit code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from recovery.contact_center.client import GenesysClient
from recovery.contact_center.errors import ContactCenterError
from recovery.domain.events import CaseEvent
from recovery.domain.models import Outcome
from recovery.services.cases import UnknownCase, case_summary
from recovery.services.closing import remove_closed
from recovery.store.db import transaction
from recovery.store.review import (
    CLEARABLE_FIELDS,
    MANUAL_OUTCOMES,
    CaseActionRefused,
    Resolved,
    find_case_for_update,
    hold_for_closing,
    person_note,
    release_hold,
    resolve_review,
    review_queue,
)
from recovery.store.review import close_by_hand as record_close_by_hand

__all__ = [
    "CLEARABLE_FIELDS",
    "MANUAL_OUTCOMES",
    "CaseActionRefused",
    "Closed",
    "ContactCenterUnavailable",
    "UnknownCase",
    "close_by_hand",
    "queue",
    "resolve",
]


class ContactCenterUnavailable(Exception):
    """The contact centre could not remove a queued contact: the case is not closed."""


@dataclass(frozen=True)
class Closed:
    key: str
    outcome: str
    removed_from_contact_list: int
    not_on_contact_list: int
    events: tuple[CaseEvent, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "action": "closed",
            "outcome": self.outcome,
            "removed_from_contact_list": self.removed_from_contact_list,
            "not_on_contact_list": self.not_on_contact_list,
        }


def check_clearable(fields: Sequence[str]) -> None:
    """Raises ``ValueError`` naming the fields a person may not clear."""
    unknown = [name for name in fields if name not in CLEARABLE_FIELDS]
    if unknown:
        raise ValueError(
            f"cannot clear {', '.join(repr(n) for n in unknown)}: --clear takes "
            + ", ".join(CLEARABLE_FIELDS)
        )


def resolve(
    *,
    sessions: sessionmaker[Session],
    key: str,
    note: str,
    clear: Sequence[str],
    now: datetime,
) -> Resolved:
    """Release the case ``key`` from review (see ``recovery.store.review.resolve_review``)."""
    with transaction(sessions) as session:
        case = find_case_for_update(session=session, key=key)
        if case is None:
            raise UnknownCase(key)
        return resolve_review(session=session, case=case, note=note, clear=clear, now=now)


def close_by_hand(
    *,
    sessions: sessionmaker[Session],
    contact_center: Callable[[], GenesysClient],
    key: str,
    outcome: Outcome,
    note: str,
    now: datetime,
    hold_until: datetime,
    owner: str,
) -> Closed:
    """Hold the case (as a worker's lease would), remove its queued contacts from the contact
    centre with the close-on-payment code, then close it; on a contact-centre failure the
    hold is given back and nothing is recorded."""
    with transaction(sessions) as session:
        case = find_case_for_update(session=session, key=key)
        if case is None:
            raise UnknownCase(key)
        hold = hold_for_closing(session=session, case=case, owner=owner, now=now, until=hold_until)
    counts: Counter[str] = Counter()
    withdrawn: dict[int, bool] = {}
    if hold.contacts:
        client = contact_center()
        try:
            for contact in hold.contacts:
                if contact.state == "created":
                    # Removed and recorded (contact_removed) as when a payment closes a case.
                    counts += remove_closed(
                        sessions=sessions,
                        client=client,
                        contacts=[(contact.row_id, contact.contact_list_id, contact.contact_id)],
                        now=now,
                    )
                else:
                    # Planned, perhaps sent before a crash: recorded as withdrawn on closing.
                    found = client.remove_contact(contact.contact_list_id, contact.contact_id)
                    withdrawn[contact.row_id] = found
                    counts["removed" if found else "already_gone"] += 1
        except ContactCenterError as exc:
            with transaction(sessions) as session:
                release_hold(session=session, hold=hold)
            done = sum(counts.values())
            what = (
                "nothing changed"
                if done == 0
                else f"{done} of its {len(hold.contacts)} queued contacts were removed"
            )
            raise ContactCenterUnavailable(
                f"the contact centre could not remove the queued contact of {hold.key} "
                f"({exc}): {what}, the case is not closed; try again"
            ) from exc
        except BaseException:
            with transaction(sessions) as session:
                release_hold(session=session, hold=hold)
            raise
        finally:
            client.close()
    try:
        with transaction(sessions) as session:
            moved = record_close_by_hand(
                session=session,
                hold=hold,
                outcome=outcome,
                note=note,
                now=now,
                withdrawn=withdrawn,
            )
    except CaseActionRefused:
        with transaction(sessions) as session:
            release_hold(session=session, hold=hold)
        raise
    return Closed(hold.key, outcome.value, counts["removed"], counts["already_gone"], moved.events)


def queue(*, sessions: sessionmaker[Session], limit: int) -> list[dict[str, Any]]:
    """The cases that need a person, as summaries (phones masked)."""
    with sessions() as session:
        return [case_summary(case) for case in review_queue(session=session, limit=limit)]


def note_or_refuse(note: str, what: str) -> str:
    """The note as it will be stored; ``ValueError`` when nothing of it is left."""
    text = person_note(note)
    if not text:
        raise ValueError(f"--note is empty: say who {what} and why")
    return text

"""Making done contacts uncallable at the contact centre, so Genesys never dials them again on
its own: not on a recycle ("The default behavior for contacts dispositioned with system
wrap-up codes is the contacts get retried in the next recycle", Help, "Wrap-up codes assigned
by outbound dialing"), not on a recall, not when an operator recycles a stopped campaign.

Each attempt is its own contact (its id derives from case and attempt), so a contact is done
with once its outcome is recorded, or once its case closes or is parked for a person.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from recovery.contact_center.client import GenesysClient
from recovery.store.db import transaction
from recovery.store.uncallable import DoneContact, contacts_to_make_uncallable, record_uncallable


def done_contacts(*, sessions: sessionmaker[Session], limit: int) -> list[DoneContact]:
    """Contacts to make uncallable, oldest first."""
    with sessions() as session:
        return contacts_to_make_uncallable(session=session, limit=limit)


def make_uncallable(
    *,
    sessions: sessionmaker[Session],
    client: GenesysClient,
    contacts: Sequence[DoneContact],
    now: datetime,
) -> Counter[str]:
    """Read these contacts back (bulk get) and post them again uncallable (``doNotQueue``),
    list by list; then stamp them. A contact the list no longer holds needs nothing."""
    counts: Counter[str] = Counter()
    by_list: dict[str, list[DoneContact]] = {}
    for item in contacts:
        by_list.setdefault(item.contact_list_id, []).append(item)
    for list_id, items in by_list.items():
        held = client.get_contacts(list_id, [i.contact_id for i in items])
        told: set[str] = set()
        if held:
            result = client.make_uncallable(list_id, held)
            told = set(result.created)
            # A contact the list refuses stays unstamped: the next run tries it again.
            counts["refused"] += len(result.rejected)
        held_ids = {c.id for c in held}
        settled = [i for i in items if i.contact_id in told or i.contact_id not in held_ids]
        with transaction(sessions) as session:
            record_uncallable(session=session, contacts=settled, held=told, now=now)
        counts["made_uncallable"] += len(told)
        counts["already_gone"] += len(items) - len(held_ids)
    return counts

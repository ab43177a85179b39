"""Questions the advance and dispatch steps ask of a case's history, answered from plain values
(``HistoryEntry`` sequences and attempt numbers), never from store rows.

The ``HistoryEntry.data`` conventions read here are the ones ``recovery.domain.machine`` lists,
plus two notes the advance step writes: ``{"attempt": n, "unconfirmed": true}`` (the contact
centre may hold attempt n although no answer was recorded) and ``{"attempt": n, "refused":
true}`` (attempt n was refused before it was sent: a value the contact centre cannot take).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from recovery.domain.compliance import CallHistory
from recovery.domain.models import Disposition, HistoryEntry, HistoryKind
from recovery.domain.policy import is_right_party

__all__ = ["call_history", "possibly_sent", "refusal_resolved"]


def call_history(entries: Sequence[HistoryEntry], *, exclude_attempt: int | None) -> CallHistory:
    """The compliance engine's view of a case's calls, from its history; ``exclude_attempt``:
    an attempt not to count (the one being checked before it is sent)."""
    attempts: list[datetime] = []
    last_conversation: datetime | None = None
    callback_at: datetime | None = None
    for entry in entries:
        if entry.kind is HistoryKind.contact_requested:
            if entry.data.get("attempt") != exclude_attempt:
                attempts.append(entry.at)
        elif entry.kind is HistoryKind.disposition and entry.disposition is not None:
            spoke = entry.data.get("right_party")
            if spoke is True or (spoke is None and is_right_party(entry.disposition)):
                if last_conversation is None or entry.at > last_conversation:
                    last_conversation = entry.at
            callback_at = None
            if entry.disposition is Disposition.callback_requested:
                raw = entry.data.get("callback_at")
                if isinstance(raw, str):
                    try:
                        parsed = datetime.fromisoformat(raw)
                    except ValueError:
                        parsed = None
                    if parsed is not None and parsed.tzinfo is not None:
                        callback_at = parsed
    return CallHistory(
        attempts=tuple(sorted(attempts)),
        last_conversation=last_conversation,
        callback_at=callback_at,
    )


def possibly_sent(entries: Sequence[HistoryEntry], *, attempt: int) -> bool:
    """Whether the contact centre may hold this planned attempt: a request for it may have
    reached the contact centre since it was last planned, with no answer recorded."""
    held = False
    for entry in entries:
        if entry.data.get("attempt") != attempt:
            continue
        if entry.kind is HistoryKind.decision and entry.data.get("action") == "contact":
            held = False
        elif entry.kind is HistoryKind.note and entry.data.get("unconfirmed") is True:
            held = True
    return held


def refusal_resolved(entries: Sequence[HistoryEntry], *, attempt: int) -> bool:
    """Whether a person released the case after this attempt was refused before sending."""
    resolved = False
    for entry in entries:
        if entry.kind is not HistoryKind.note:
            continue
        if entry.data.get("refused") is True and entry.data.get("attempt") == attempt:
            resolved = False
        elif entry.data.get("review_resolved") is True:
            resolved = True
    return resolved

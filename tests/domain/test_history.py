"""The history readers the advance and dispatch steps use, on plain history values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from recovery.domain.history import call_history, possibly_sent, refusal_resolved
from recovery.domain.models import Disposition, HistoryEntry, HistoryKind

T = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


def entry(minutes: int, kind: HistoryKind, **data: Any) -> HistoryEntry:
    return HistoryEntry(at=T + timedelta(minutes=minutes), kind=kind, data=data)


def test_call_history_counts_sent_attempts_but_the_one_being_checked() -> None:
    entries = [
        entry(0, HistoryKind.contact_requested, attempt=1),
        entry(10, HistoryKind.contact_requested, attempt=2),
    ]
    assert call_history(entries, exclude_attempt=None).attempts == (
        T,
        T + timedelta(minutes=10),
    )
    assert call_history(entries, exclude_attempt=2).attempts == (T,)


def test_call_history_keeps_the_last_conversation_and_a_pending_callback() -> None:
    callback = (T + timedelta(days=1)).isoformat()
    entries = [
        HistoryEntry(
            at=T, kind=HistoryKind.disposition, disposition=Disposition.promise_to_pay, data={}
        ),
        HistoryEntry(
            at=T + timedelta(hours=1),
            kind=HistoryKind.disposition,
            disposition=Disposition.callback_requested,
            data={"callback_at": callback, "right_party": False},
        ),
    ]
    calls = call_history(entries, exclude_attempt=None)
    assert calls.last_conversation == T
    assert calls.callback_at == T + timedelta(days=1)
    # A later outcome replaces the callback request.
    later = HistoryEntry(
        at=T + timedelta(hours=2), kind=HistoryKind.disposition, disposition=Disposition.no_answer
    )
    assert call_history([*entries, later], exclude_attempt=None).callback_at is None


def test_a_planned_attempt_is_possibly_sent_after_an_unconfirmed_note_until_planned_again() -> None:
    planned = entry(0, HistoryKind.decision, action="contact", attempt=1)
    unconfirmed = entry(1, HistoryKind.note, attempt=1, unconfirmed=True)
    assert not possibly_sent([planned], attempt=1)
    assert possibly_sent([planned, unconfirmed], attempt=1)
    assert not possibly_sent([planned, unconfirmed], attempt=2)
    replanned = entry(2, HistoryKind.decision, action="contact", attempt=1)
    assert not possibly_sent([planned, unconfirmed, replanned], attempt=1)


def test_a_refusal_is_resolved_by_a_later_review_note_only() -> None:
    refused = entry(0, HistoryKind.note, attempt=1, refused=True)
    resolved = entry(1, HistoryKind.note, review_resolved=True)
    assert not refusal_resolved([refused], attempt=1)
    assert refusal_resolved([refused, resolved], attempt=1)
    assert not refusal_resolved(
        [refused, resolved, entry(2, HistoryKind.note, attempt=1, refused=True)], attempt=1
    )
    # A refusal of another attempt does not reopen this one's release.
    assert refusal_resolved(
        [refused, resolved, entry(2, HistoryKind.note, attempt=2, refused=True)], attempt=1
    )

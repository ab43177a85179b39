"""Flow: advance every due case: decide its next step, and create the contacts that are due,
in batches, within the contact centre's rate limit."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from flows._advance import Tally
from flows._support import publish_summary
from tasks.advance import create_contacts, decide_due_cases, withdraw_contacts
from tasks.contact_center import append_dnc
from tasks.events import emit_case_events
from tasks.pacing import DueWatch, Pacer
from tasks.runtime import flow_runtime


@flow(name="advance")
def advance(max_chunks: int = 1000, linger_seconds: float | None = None) -> dict[str, object]:
    """Lease due cases chunk by chunk, decide each, and send the contacts that are due; then,
    for ``linger_seconds`` (default ``RECOVERY_ADVANCE_LINGER_SECONDS``), keep watching for
    cases that fall due, so that a case is taken up at once rather than at the next run."""
    with flow_runtime() as built:
        settings = built.settings
        owner = f"advance-{flow_run.id}"
        linger = settings.advance_linger_seconds if linger_seconds is None else linger_seconds
        watch, pacer, tally = DueWatch(linger), Pacer(settings), Tally()
        chunk_no = 0
        while chunk_no < max_chunks:
            decided = decide_due_cases(chunk_no + 1, settings.advance_chunk_size, owner)
            if decided.claimed == 0:
                if watch.until_due():
                    continue
                break
            chunk_no += 1
            tally.decided(decided)
            emit_case_events(decided.events)
            if decided.suppressed_numbers:
                # The contact centre's own DNC list is a second guard; ours is the first.
                numbers = decided.suppressed_numbers
                tally.later.append(append_dnc.submit(len(numbers), tuple(numbers)))
            held = tally.settle(
                [
                    create_contacts.submit(f"{chunk_no}.{group_no}.{batch_no}", len(batch), batch)
                    for group_no, group in pacer.groups(decided.to_dispatch)
                    for batch_no, batch in enumerate(group, 1)
                ]
            )
            if held:
                tally.settle([withdraw_contacts.submit(chunk_no, len(held), tuple(held))])
            tally.log_chunk(chunk_no, decided)
        tally.settle_later()
    publish_summary("advance-summary", tally.description(), tally.counts())
    return tally.summary()

"""Flow: advance every due case: decide its next step, and create the contacts that are due,
in groups of batches, within the contact centre's request budget."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from flows._advance import Tally
from tasks.advance import create_contacts, decide_due_cases
from tasks.artifacts import publish_summary, renamed_meanwhile
from tasks.contact_center import append_dnc
from tasks.events import emit_case_events
from tasks.pacing import DueWatch, first_chunk_size, groups
from tasks.runtime import flow_runtime


@flow(name="advance")
def advance(max_chunks: int = 1000, linger_seconds: float | None = None) -> dict[str, object]:
    """Lease due cases chunk by chunk, decide each, and send the contacts that are due, the
    next chunk decided while this one's contacts are sent; then, for ``linger_seconds``
    (default ``RECOVERY_ADVANCE_LINGER_SECONDS``) from its start, keep watching for cases
    that fall due. A run that finds nothing due ends at once (or when its watch ends), with
    no task run, named so."""
    with flow_runtime() as built:
        settings = built.settings
        owner, size = f"advance-{flow_run.id}", settings.advance_chunk_size
        linger = settings.advance_linger_seconds if linger_seconds is None else linger_seconds
        watch, tally, chunk_no = DueWatch(linger), Tally(), 0
        first_due = watch.any_due() or watch.until_due()
        # The first chunk is one batch: its request goes out while the next is decided.
        asked = first_chunk_size(settings)
        deciding = decide_due_cases.submit(1, asked, owner) if first_due else None
        while deciding is not None:
            decided, deciding = deciding.result(), None
            if decided.claimed == 0:
                tally.finish_sends()
                if watch.until_due():
                    asked, deciding = size, decide_due_cases.submit(chunk_no + 1, size, owner)
                continue
            chunk_no += 1
            tally.decided(decided)
            emit_case_events(decided.events)
            if decided.suppressed_numbers:
                # The contact centre's own DNC list is a second guard; ours is the first.
                numbers = tuple(decided.suppressed_numbers)
                tally.later.append(append_dnc.submit(len(numbers), numbers))
            sends = [
                create_contacts.submit(f"{chunk_no}.{no}", sum(map(len, group)), group)
                for no, group in groups(decided.to_dispatch, settings)
            ]
            # A full chunk leaves more due, decided while these contacts are sent; after a short
            # one, a look (one indexed read) comes first, so no chunk is decided empty.
            more = chunk_no < max_chunks and (decided.claimed >= asked or watch.any_due())
            asked = size
            if more:
                deciding = decide_due_cases.submit(chunk_no + 1, size, owner)
            tally.finish_sends(then=sends)
            tally.log_chunk(chunk_no, decided)
            if not more and chunk_no < max_chunks:
                tally.finish_sends()
                if watch.until_due():
                    deciding = decide_due_cases.submit(chunk_no + 1, size, owner)
        tally.finish_sends()
        tally.settle_later()
        # Named and summed up while the last events are still being posted.
        with renamed_meanwhile(tally.run_name()):
            publish_summary("advance-summary", tally.description(), tally.counts())
    return tally.summary()

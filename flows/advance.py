"""Flow: advance every due case: decide its next step, and create the contacts that are due,
in batches, within the contact centre's rate limit."""

from __future__ import annotations

import time
from collections import Counter

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.concurrency.sync import rate_limit
from prefect.context import get_run_context
from prefect.futures import PrefectFuture

from recovery.contact_center.throttle import RequestRateLimiter
from recovery.runtime import Runtime
from recovery.services.dispatch import Dispatched
from recovery.settings import Settings
from recovery.store.work import any_due
from tasks.advance import create_contacts, decide_due_cases
from tasks.contact_center import append_dnc
from tasks.events import emit_case_events


def _groups(ids: list[int], batch: int, per_task: int) -> list[list[list[int]]]:
    """Batches of at most ``batch`` contacts (one request each), ``per_task`` batches a task."""
    batches = [ids[i : i + batch] for i in range(0, len(ids), batch)]
    return [batches[i : i + per_task] for i in range(0, len(batches), per_task)]


# How often a lingering run looks for newly due cases (real seconds).
LINGER_POLL_SECONDS = 0.25


def _wait_for_due(runtime: Runtime, deadline: float) -> bool:
    """Watch the store (one read, no task run) until a case falls due, or until the monotonic
    ``deadline``: whether one did."""
    while True:
        with runtime.sessions() as session:
            if any_due(session=session, now=runtime.clock.now()):
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(LINGER_POLL_SECONDS)


@flow(name="advance")
def advance(max_chunks: int = 1000, linger_seconds: float | None = None) -> dict[str, object]:
    """Lease due cases chunk by chunk, decide each, and send the contacts that are due; then,
    for ``linger_seconds`` (default ``RECOVERY_ADVANCE_LINGER_SECONDS``), keep watching for
    cases that fall due, so that a case is taken up at once rather than at the next run."""
    runtime = Runtime(Settings())
    settings = runtime.settings
    linger = settings.advance_linger_seconds if linger_seconds is None else linger_seconds
    deadline = time.monotonic() + linger
    logger = get_run_logger()
    runtime.require_schema()
    owner = f"advance-{get_run_context().flow_run.id}"  # type: ignore[union-attr]
    client = runtime.contact_center()
    pace = RequestRateLimiter(
        settings.genesys_requests_per_minute * 0.97, burst=settings.rate_limit_occupy
    )
    actions: Counter[str] = Counter()
    sent = Dispatched()
    failed_tasks = 0
    dnc: list[PrefectFuture[int]] = []
    chunk_no = 0
    try:
        while chunk_no < max_chunks:
            decided = decide_due_cases(runtime, chunk_no + 1, settings.advance_chunk_size, owner)
            if decided.claimed == 0:
                if linger <= 0 or not _wait_for_due(runtime, deadline):
                    break
                continue
            chunk_no += 1
            actions.update(decided.actions)
            emit_case_events(decided.events)
            if decided.suppressed_numbers:
                # The contact centre's own DNC list is a second guard; ours is the first.
                numbers = decided.suppressed_numbers
                dnc.append(append_dnc.submit(runtime, client, len(numbers), numbers))
            groups = _groups(
                decided.to_dispatch, settings.genesys_batch_size, settings.rate_limit_occupy
            )
            futures = []
            for group_no, group in enumerate(groups, 1):
                # Paced locally first (just under the budget), then one strict acquisition
                # for the group's requests from the limit every worker shares: an early
                # arrival is refused by the server and pushed back by more than it was early,
                # and slot-by-slot acquisition leaves much of the budget unused.
                pace(len(group))
                rate_limit(settings.genesys_rate_limit_name, occupy=len(group), strict=True)
                for batch_no, batch in enumerate(group, 1):
                    futures.append(
                        create_contacts.submit(
                            runtime, client, f"{chunk_no}.{group_no}.{batch_no}", len(batch), batch
                        )
                    )
            for future in futures:
                state = future.wait() or future.state
                if state.is_completed():
                    result: Dispatched = future.result()
                    sent.created += result.created
                    sent.rejected += result.rejected
                    sent.cancelled += result.cancelled
                    sent.requests += result.requests
                    sent.reasons.update(result.reasons)
                else:
                    # The contacts stay planned and leased; once the lease ends they are
                    # sent again under the same ids (an upsert), so nothing is lost.
                    failed_tasks += 1
            logger.info(
                "chunk %d: %d cases %s; contacts created %d",
                chunk_no,
                decided.claimed,
                dict(decided.actions),
                sent.created,
            )
        for appended in dnc:
            if not (appended.wait() or appended.state).is_completed():
                failed_tasks += 1
    finally:
        client.close()
        runtime.close()
    summary = {
        "decisions": dict(actions),
        "contacts_created": sent.created,
        "contacts_rejected": sent.rejected,
        "contacts_withdrawn": sent.cancelled,
        "requests": sent.requests,
        "failed_batches": failed_tasks,
    }
    create_table_artifact(
        key="advance-summary",
        table=[{"what": k, "count": v} for k, v in sorted(actions.items())]
        + [
            {"what": f"contacts {k}", "count": v}
            for k, v in (
                ("created", sent.created),
                ("rejected", sent.rejected),
                ("withdrawn", sent.cancelled),
            )
        ]
        + [{"what": f"not sent: {k}", "count": v} for k, v in sorted(sent.reasons.items())],
        description=f"Advance: {sum(actions.values())} decisions, {sent.created} contacts",
    )
    return summary

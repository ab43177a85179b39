"""An advance worker as its own OS process: the advance library's decide and dispatch in a loop,
chunk by chunk and batch by batch as the advance flow runs them, until no case is due.

    python -m tests.support.advance_worker --name a [--go FILE]

Settings come from the environment (``RECOVERY_*``). Prints ``ready`` once everything is
imported and built, and one JSON summary line when it runs out of due cases. A failed batch is
left planned and leased, as the flow leaves it: once the lease ends it is sent again.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from recovery.contact_center.errors import ContactCenterError
from recovery.runtime import Runtime
from recovery.services.advance import decide_due
from recovery.services.dispatch import dispatch
from recovery.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--go", type=Path, help="start once this file exists")
    args = parser.parse_args(argv)

    runtime = Runtime(Settings())
    settings = runtime.settings
    policy, rules = runtime.policy, runtime.rules
    client = runtime.contact_center()
    owner = f"worker-{args.name}-{os.getpid()}"
    print("ready", flush=True)
    if args.go is not None:
        while not args.go.exists():
            time.sleep(0.005)

    claimed = chunks = created = cancelled = rejected = requests = failed = 0
    actions: Counter[str] = Counter()
    batch_size = settings.genesys_batch_size
    margin = timedelta(minutes=settings.dial_margin_minutes)
    while True:
        decided = decide_due(
            sessions=runtime.sessions,
            policy=policy,
            rules=rules,
            now=runtime.clock.now(),
            owner=owner,
            limit=settings.advance_chunk_size,
            lease=runtime.real_seconds(settings.lease_seconds),
            contact_list_id=settings.genesys_contact_list_id,
            dial_margin=margin,
        )
        if decided.claimed == 0:
            break
        chunks += 1
        claimed += decided.claimed
        actions.update(decided.actions)
        ids = decided.to_dispatch
        for start in range(0, len(ids), batch_size):
            try:
                sent = dispatch(
                    sessions=runtime.sessions,
                    client=client,
                    contact_row_ids=ids[start : start + batch_size],
                    rules=rules,
                    now=runtime.clock.now(),
                    dial_margin=margin,
                )
            except ContactCenterError:
                failed += 1
                continue
            created += sent.created
            cancelled += sent.cancelled
            rejected += sent.rejected
            requests += sent.requests
    client.close()
    runtime.close()
    summary = {
        "owner": owner,
        "chunks": chunks,
        "claimed": claimed,
        "actions": dict(actions),
        "created": created,
        "cancelled": cancelled,
        "rejected": rejected,
        "requests": requests,
        "failed_batches": failed,
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

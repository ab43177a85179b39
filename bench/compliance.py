"""How fast the compliance engine answers "when may we call?", against a naive stepper.

Generates seeded random contacts (phones across US area codes, including ones that span two
zones, some toll-free numbers with an address, some with a billing state and ZIP or an
explicit zone) and random histories (attempts, conversations, callbacks), at random instants
within ``--span-days`` (30 by default: a campaign's decisions are all about "now"; pass 1460
to spread them over four years, which defeats the per-day caches). Times ``next_permitted``
for all of them, first with cold caches (every phone number is new, every day calendar is
built) and then again warm, and times the naive minute-by-minute baseline on a sample,
checking on the way that both agree.

Rates are per CPU second of this process (``time.process_time``), so that other work on the
machine does not distort them; the engine is single-threaded, so that is one core.

    .venv/bin/python bench/compliance.py [--n 100000] [--seed 7] [--sample 1000]
        [--span-days 30]
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from datetime import UTC, datetime, timedelta

from recovery.domain.compliance import (
    CallHistory,
    load_rules,
    naive_next_permitted,
    next_permitted,
)
from recovery.domain.compliance.zones import _tables
from recovery.domain.models import ContactPoint

START = datetime(2025, 10, 15, tzinfo=UTC)


def make_cases(
    n: int, seed: int, span_days: int = 30
) -> list[tuple[ContactPoint, CallHistory, datetime]]:
    """Seeded random (contact, history, instant) triples; every phone number is distinct."""
    rng = random.Random(seed)
    tables = _tables()
    area_codes = sorted(tables.area_codes)
    split = ["208", "850", "907", "605", "701", "541", "915", "270", "931", "906"]
    states = sorted(tables.states)
    cases: list[tuple[ContactPoint, CallHistory, datetime]] = []
    seen: set[str] = set()
    while len(cases) < n:
        roll = rng.random()
        npa = rng.choice(split) if roll < 0.2 else rng.choice(area_codes)
        if roll > 0.97:
            npa = rng.choice(["800", "888", "877"])
        phone = f"+1{npa}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
        if phone in seen:
            continue
        seen.add(phone)
        state = postal = tz = None
        if rng.random() < 0.5 or npa in ("800", "888", "877"):
            state = rng.choice(states)
            postal = f"{rng.randint(0, 99999):05d}" if rng.random() < 0.7 else None
        if rng.random() < 0.05:
            tz = rng.choice(["America/New_York", "America/Chicago", "America/Denver"])
        contact = ContactPoint(phone_e164=phone, state=state, postal_code=postal, explicit_tz=tz)
        after = START + timedelta(seconds=rng.randrange(span_days * 86400))
        attempts = tuple(
            after - timedelta(seconds=rng.randrange(1, 8 * 86400))
            for _ in range(rng.choice([0, 0, 1, 2, 3, 4, 6, 8]))
        )
        conversation = callback = None
        if rng.random() < 0.2:
            conversation = after - timedelta(seconds=rng.randrange(1, 9 * 86400))
            if rng.random() < 0.5:
                callback = conversation + timedelta(seconds=rng.randrange(3600, 4 * 86400))
        history = CallHistory(
            attempts=attempts, last_conversation=conversation, callback_at=callback
        )
        cases.append((contact, history, after))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="decisions to time")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sample", type=int, default=1000, help="decisions for the baseline")
    parser.add_argument("--span-days", type=int, default=30, help="spread of the instants")
    args = parser.parse_args()

    rules = load_rules()
    cases = make_cases(args.n, args.seed, args.span_days)
    # The inputs are the harness's, not the engine's: keep the collector from rescanning them.
    gc.collect()
    gc.freeze()

    # Only the sample's verdicts are kept (for the comparison): holding all of them would
    # time the garbage collector walking them, not the engine.
    results = []
    now_ok = found = 0
    started = time.process_time()
    for i, (contact, history, after) in enumerate(cases):
        verdict = next_permitted(contact, history, after, rules)
        now_ok += verdict.permitted
        found += verdict.next_permitted_at is not None
        if i < args.sample:
            results.append(verdict)
    cold = time.process_time() - started

    started = time.process_time()
    for contact, history, after in cases:
        next_permitted(contact, history, after, rules)
    warm = time.process_time() - started

    sample = cases[: args.sample]
    mismatches = 0
    started = time.process_time()
    for i, (contact, history, after) in enumerate(sample):
        naive = naive_next_permitted(contact, history, after, rules)
        exact = results[i].next_permitted_at
        # The stepper only sees whole minutes after `after`: it may land up to a minute late.
        if (naive is None) != (exact is None) or (
            naive is not None
            and exact is not None
            and not timedelta(0) <= naive - exact < timedelta(minutes=1)
        ):
            mismatches += 1
    naive_elapsed = time.process_time() - started

    cold_rate = args.n / cold
    warm_rate = args.n / warm
    naive_rate = len(sample) / naive_elapsed
    print(
        f"contacts: {args.n} (seed {args.seed}, instants over {args.span_days} days); "
        f"permitted at once: {now_ok}, "
        f"with a window within the horizon: {found}"
    )
    print(f"next_permitted, cold caches: {cold_rate:,.0f} decisions/s ({cold:.2f} s)")
    print(f"next_permitted, warm caches: {warm_rate:,.0f} decisions/s ({warm:.2f} s)")
    print(
        f"naive minute stepper:        {naive_rate:,.0f} decisions/s "
        f"({len(sample)} decisions, {naive_elapsed:.2f} s)"
    )
    print(
        f"ratio cold/naive: {cold_rate / naive_rate:,.0f}x; warm/naive: "
        f"{warm_rate / naive_rate:,.0f}x"
    )
    print(f"disagreements with the stepper on the sample: {mismatches}")


if __name__ == "__main__":
    main()

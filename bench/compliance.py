"""How fast the compliance engine answers "when may we call?", against a naive stepper.

Generates seeded random contacts (phones across US area codes, including ones that span two
zones, some toll-free numbers with an address, some with a billing state and ZIP or an
explicit zone) and random histories (attempts, conversations, callbacks), at random instants
over several years. Times ``next_permitted`` for all of them, first with cold caches (every
phone number is new, every day calendar is built) and then again warm, and times the naive
minute-by-minute baseline on a sample, checking on the way that both agree.

    .venv/bin/python bench/compliance.py [--n 100000] [--seed 7] [--sample 1000]
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

START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_SECONDS = int(timedelta(days=4 * 365).total_seconds())


def make_cases(n: int, seed: int) -> list[tuple[ContactPoint, CallHistory, datetime]]:
    rng = random.Random(seed)
    tables = _tables()
    area_codes = sorted(tables.area_codes)
    split = ["208", "850", "907", "605", "701", "541", "915", "270", "931", "906"]
    states = sorted(tables.states)
    cases = []
    for _ in range(n):
        roll = rng.random()
        npa = rng.choice(split) if roll < 0.2 else rng.choice(area_codes)
        if roll > 0.97:
            npa = rng.choice(["800", "888", "877"])
        phone = f"+1{npa}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
        state = postal = tz = None
        if rng.random() < 0.5 or npa in ("800", "888", "877"):
            state = rng.choice(states)
            postal = f"{rng.randint(0, 99999):05d}" if rng.random() < 0.7 else None
        if rng.random() < 0.05:
            tz = rng.choice(["America/New_York", "America/Chicago", "America/Denver"])
        contact = ContactPoint(phone_e164=phone, state=state, postal_code=postal, explicit_tz=tz)
        after = START + timedelta(seconds=rng.randrange(SPAN_SECONDS))
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
    args = parser.parse_args()

    rules = load_rules()
    cases = make_cases(args.n, args.seed)
    # The inputs are the harness's, not the engine's: keep the collector from rescanning them.
    gc.collect()
    gc.freeze()

    results = []
    started = time.perf_counter()
    for contact, history, after in cases:
        results.append(next_permitted(contact, history, after, rules))
    cold = time.perf_counter() - started

    started = time.perf_counter()
    for contact, history, after in cases:
        next_permitted(contact, history, after, rules)
    warm = time.perf_counter() - started

    sample = cases[: args.sample]
    mismatches = 0
    started = time.perf_counter()
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
    naive_elapsed = time.perf_counter() - started

    found = sum(v.next_permitted_at is not None for v in results)
    now_ok = sum(v.permitted for v in results)
    cold_rate = args.n / cold
    warm_rate = args.n / warm
    naive_rate = len(sample) / naive_elapsed
    print(
        f"contacts: {args.n} (seed {args.seed}); permitted at once: {now_ok}, "
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

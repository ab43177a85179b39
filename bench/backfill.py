"""Backfill benchmark: lines per second for a generated export of Stripe events.

The export is JSON lines in the proportions of a real account: payment failures and successes
(the intake benchmark's mix), events of other types, re-deliveries and a few malformed lines.
It is backfilled three times into a fresh store, as ``recovery backfill`` does it (PAN guard,
normalisation, inbox, drain into cases): a dry run, the real run, and a second run that finds
every event already recorded. Each prints lines/s (wall clock) and the CPU seconds used.

Exit code 0 when the runs completed with the expected counts, 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

# The bench helpers, and the project itself when it is not installed in the interpreter.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

from ingest import build_events  # noqa: E402

from recovery.domain.taxonomy import load_failure_codes  # noqa: E402
from recovery.gateways import samples  # noqa: E402
from recovery.services.backfill import BackfillSummary, open_export, run_backfill  # noqa: E402
from recovery.store.db import make_engine, make_sessionmaker  # noqa: E402
from recovery.store.migrate import redact_url, upgrade  # noqa: E402

OTHER_TYPES = ("invoice.created", "invoice.finalized", "customer.updated", "charge.refunded")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=20_000, help="lines in the export")
    parser.add_argument("--other", type=float, default=0.3, help="share of other event types")
    parser.add_argument("--duplicates", type=float, default=0.1, help="share of re-deliveries")
    parser.add_argument("--malformed", type=float, default=0.01, help="share of broken lines")
    parser.add_argument(
        "--database-url", help="an empty store to use (default: a temporary SQLite file)"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.lines < 10 or not all(0 <= x < 0.5 for x in (args.duplicates, args.malformed)):
        parser.error("--lines must be at least 10; --duplicates and --malformed below 0.5")
    if not 0 <= args.other <= 1:
        parser.error("--other must be between 0 and 1")
    return args


def generate(args: argparse.Namespace, path: Path) -> dict[str, int]:
    """Write the export; returns how many lines of each kind it holds."""
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    malformed = round(args.lines * args.malformed)
    duplicates = round(args.lines * args.duplicates)
    distinct = args.lines - malformed - duplicates
    other = round(distinct * args.other)
    lines = [json.dumps(e, separators=(",", ":")) for e in build_events(distinct - other, rng, now)]
    for i in range(other):
        created = now - timedelta(seconds=rng.randint(0, 6 * 3600))
        obj = {"id": f"obj_{i}", "object": "x"}
        event = samples.envelope(f"evt_other_{i}", OTHER_TYPES[i % 4], obj, created)
        lines.append(json.dumps(event, separators=(",", ":")))
    rng.shuffle(lines)
    for _ in range(duplicates):
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(lines))
    for _ in range(malformed):
        line = rng.choice(lines)
        lines.insert(rng.randrange(len(lines) + 1), line[: len(line) // 2])
    path.write_text("\n".join(lines) + "\n")
    return {"distinct": distinct, "other": other, "duplicates": duplicates, "malformed": malformed}


def timed(label: str, lines: int, run: object) -> BackfillSummary:
    wall, cpu = time.perf_counter(), time.process_time()
    summary = run() if callable(run) else None
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert isinstance(summary, BackfillSummary)
    cases = ", ".join(f"{k} {v}" for k, v in sorted(summary.cases.items())) or "none"
    print(
        f"  {label:<11} {lines / wall:8.0f} lines/s  ({lines} lines in {wall:.2f} s, "
        f"CPU {cpu:.2f} s; recorded {sum(summary.recorded.values())}, "
        f"skipped {dict(summary.skipped)}; cases {cases})"
    )
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    export_path = folder / "events.jsonl"
    kinds = generate(args, export_path)
    url = args.database_url or f"sqlite:///{folder / 'store.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    codes = load_failure_codes(None)
    size = export_path.stat().st_size
    print(
        f"backfill benchmark: {args.lines} lines ({size / 1e6:.1f} MB): {kinds['distinct']} "
        f"distinct events ({kinds['other']} of other types), {kinds['duplicates']} "
        f"re-deliveries, {kinds['malformed']} malformed; store {redact_url(url)}"
    )

    def run(dry_run: bool) -> BackfillSummary:
        # No customer lookup: every generated failure carries its phone.
        return run_backfill(
            export=open_export(export_path),
            sessions=sessions,
            codes=codes,
            clock_now=lambda: datetime.now(UTC),
            dry_run=dry_run,
        )

    try:
        dry = timed("dry run", args.lines, lambda: run(True))
        first = timed("first run", args.lines, lambda: run(False))
        again = timed("second run", args.lines, lambda: run(False))
    finally:
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)
    failures = []
    if dry.skipped["malformed"] != kinds["malformed"]:
        failures.append(f"malformed: {dry.skipped['malformed']} != {kinds['malformed']}")
    if sum(first.recorded.values()) != sum(dry.recorded.values()):
        failures.append("the dry run and the first run disagree on what is new")
    if sum(again.recorded.values()) or again.cases:
        failures.append("the second run changed something")
    for failure in failures:
        print(f"  FAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

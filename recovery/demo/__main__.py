"""``python -m recovery.demo``: a three-week payment-recovery campaign in a few minutes."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from rich.console import Console

from recovery.demo.play import _interrupt, run
from recovery.demo.tuning import DEFAULT_SPEED


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recovery.demo",
        description="Play a three-week payment-recovery campaign in a few minutes.",
    )
    parser.add_argument("--payments", type=int, default=240, help="failed payments (240)")
    parser.add_argument("--days", type=float, default=21.0, help="virtual days to play (21)")
    parser.add_argument(
        "--failure-days", type=float, default=4.0, help="virtual days the failures span (4)"
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=DEFAULT_SPEED,
        help=(
            f"virtual seconds per real second while the parts work ({DEFAULT_SPEED:g}); the "
            "time in which nothing is due is skipped"
        ),
    )
    parser.add_argument(
        "--resolution",
        type=int,
        default=60,
        help="virtual minutes of the grid the clock's jumps land on (60; 0: exact instants)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the campaign (7)")
    parser.add_argument(
        "--keep", action="store_true", help="keep everything running after the funnel"
    )
    args = parser.parse_args(argv)
    if args.payments < 1 or args.days <= 0 or not 0 < args.failure_days <= args.days:
        parser.error("need --payments >= 1 and 0 < --failure-days <= --days")
    if args.speed <= 0:
        parser.error("--speed must be positive")
    if not 0 <= args.resolution <= 60:
        parser.error("--resolution must be 0 to 60 minutes")
    # A closed terminal stops everything, as Ctrl-C does (run_embedded does so for SIGTERM).
    signal.signal(signal.SIGHUP, _interrupt)
    # Piped output gets a width that fits the funnel rather than rich's 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=110)
    try:
        result = run(
            payments=args.payments,
            days=args.days,
            failure_days=args.failure_days,
            speed=args.speed,
            resolution=args.resolution,
            keep=args.keep,
            seed=args.seed,
            console=console,
        )
    except KeyboardInterrupt:
        console.print("interrupted: every part is stopped")
        return 130
    except RuntimeError as exc:
        console.print(f"[red]the demo failed: {exc}[/red]")
        return 1
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())

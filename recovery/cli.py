"""The ``recovery`` command: operators' and scripts' entry point to every part of the system.

Exit codes: 0 when the command did what it was asked, 1 when it failed at run time,
2 for bad arguments or bad input (with a message on stderr saying which).
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="recovery",
    help="Payment recovery: failed payments to lawful, well-timed contact-centre calls.",
    no_args_is_help=True,
    add_completion=False,
)


def main() -> None:
    app()


# --- foundation commands ---

# --- compliance commands (window, suppress) ---

# --- policy commands (plan) ---

# --- contact centre commands (emulator) ---


if __name__ == "__main__":
    main()

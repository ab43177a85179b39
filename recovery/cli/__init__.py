"""The ``recovery`` command: operators' and scripts' entry point to every part of the system.

One module per command group; each command parses its arguments, calls a service and maps the
service's typed refusals to exit codes: 0 when the command did what it was asked, 1 when it
failed at run time, 2 for bad arguments or bad input (with a message on stderr saying which).
"""

from __future__ import annotations

from recovery.cli import (  # noqa: F401  (each module registers its commands)
    backfill,
    cases,
    compliance,
    db,
    emulator,
    genesys,
    inbox,
    intake,
    plan,
    prefect,
    privacy,
    receiver,
    report,
)
from recovery.cli.common import app


def main() -> None:
    app()


__all__ = ["app", "main"]

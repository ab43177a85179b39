"""Advance workers as real OS processes (``tests/support/advance_worker.py``) sharing a store,
a file clock and the emulator, and the invariant a run must keep however often they die."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recovery.contact_center.contacts import contact_id_for
from tests.support.emulator import CLIENT_ID, CLIENT_SECRET, CONTACT_LIST, DNC_LIST
from tests.support.store_probe import StoreFacts

REPO = Path(__file__).resolve().parents[2]


def worker_env(
    *,
    store_url: str,
    clock_file: Path,
    emulator_url: str,
    data_dir: Path,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a worker process: this machine's, minus any project or Prefect
    settings, plus the shared store, clock and emulator."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("RECOVERY_", "PREFECT_"))
    }
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "RECOVERY_DATABASE_URL": store_url,
            "RECOVERY_DATA_DIR": str(data_dir),
            "RECOVERY_CLOCK": f"file:{clock_file}",
            "RECOVERY_GENESYS_REGION": "emulator",
            "RECOVERY_GENESYS_BASE_URL": emulator_url,
            "RECOVERY_GENESYS_CLIENT_ID": CLIENT_ID,
            "RECOVERY_GENESYS_CLIENT_SECRET": CLIENT_SECRET,
            "RECOVERY_GENESYS_CONTACT_LIST_ID": CONTACT_LIST,
            "RECOVERY_GENESYS_DNC_LIST_ID": DNC_LIST,
            **(extra or {}),
        }
    )
    return env


@dataclass
class Worker:
    """One advance worker process (``tests/support/advance_worker.py``)."""

    name: str
    process: subprocess.Popen[str]
    log_path: Path
    summary: dict[str, Any] | None = None

    @classmethod
    def start(
        cls, name: str, env: Mapping[str, str], *, cwd: Path, go_file: Path | None = None
    ) -> Worker:
        argv = [sys.executable, "-m", "tests.support.advance_worker", "--name", name]
        if go_file is not None:
            argv += ["--go", str(go_file)]
        log_path = cwd / f"worker-{name}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                argv, env=dict(env), cwd=cwd, stdout=subprocess.PIPE, stderr=log, text=True
            )
        return cls(name=name, process=process, log_path=log_path)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the worker has imported everything and built its runtime."""
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            line = self.process.stdout.readline() if selector.select(timeout) else ""
        if line.strip() != "ready":
            raise RuntimeError(f"worker {self.name} did not start: {line!r}\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> bool:
        """SIGKILL: no cleanup, no last commit. True when it was still running."""
        was_alive = self.alive()
        if was_alive:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return was_alive

    def finish(self, timeout: float = 120.0) -> dict[str, Any]:
        """Wait for a worker that runs out of due cases; its summary."""
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"worker {self.name} still running\n{self.log_tail()}") from None
        if self.process.returncode != 0:
            raise RuntimeError(
                f"worker {self.name} exited {self.process.returncode}\n{self.log_tail()}"
            )
        self.summary = json.loads(out.strip().splitlines()[-1])
        return self.summary

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def first_contact_problems(
    facts: StoreFacts,
    keys: Sequence[str],
    emulator_contacts: Sequence[dict[str, Any]],
    counters: Mapping[str, int],
) -> list[str]:
    """Every case advanced to exactly one first contact, held once by the contact centre and
    recorded in the store; an empty list when all is well (else what is wrong, per case)."""
    problems: list[str] = []
    expected = {contact_id_for(key, 1): key for key in keys}
    held = [c["id"] for c in emulator_contacts]
    if len(held) != len(set(held)):
        problems.append(f"the emulator lists {len(held) - len(set(held))} ids more than once")
    extra = set(held) - set(expected)
    missing = set(expected) - set(held)
    if extra:
        problems.append(f"{len(extra)} contacts at the emulator belong to no case and attempt 1")
    if missing:
        problems.append(f"{len(missing)} cases have no contact at the emulator")
    if counters.get("duplicates", 0):
        problems.append(f"emulator counted {counters['duplicates']} duplicate contacts")
    if counters.get("contacts_created", 0) != len(expected):
        problems.append(
            f"emulator created {counters.get('contacts_created')} contacts for {len(expected)} "
            "cases"
        )
    for key in keys:
        case = facts.cases.get(key)
        if case is None:
            problems.append(f"{key}: no case")
            continue
        rows = facts.contacts.get(key, [])
        states = [(r.attempt, r.state, r.contact_id == contact_id_for(key, 1)) for r in rows]
        if states != [(1, "created", True)]:
            problems.append(f"{key}: contacts rows {states}")
        if (case.status, case.contacts_made, case.lease_owner) != (
            "awaiting_disposition",
            1,
            None,
        ):
            problems.append(
                f"{key}: case {case.status}, {case.contacts_made} contacts, "
                f"lease {case.lease_owner}"
            )
        kinds = facts.history.get(key, Counter())
        decisions = {k: n for k, n in kinds.items() if k.startswith("decision")}
        if decisions != {"decision:contact": 1}:
            problems.append(f"{key}: decisions {decisions}")
        if kinds["contact_requested"] != 1 or kinds["contact_created"] != 1:
            problems.append(
                f"{key}: {kinds['contact_requested']} contact_requested and "
                f"{kinds['contact_created']} contact_created entries"
            )
    return problems

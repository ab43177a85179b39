"""The runtime (store engine and sessions, clock, policy, rules, contact-centre client) as tasks
and flows obtain it: built from the settings once per process and kept for the next task, so
that a task's inputs are plain values (ids, chunk numbers, settings) and never live objects.

- ``runtime()``: the process's runtime for the current settings (``RECOVERY_*``). A few are
  kept, one per distinct settings (tests change them between runs); the oldest is closed when
  more arrive, and every one is closed when the process exits.
- ``flow_runtime()``: a flow run's hold on that runtime. It checks the store's schema on entry;
  when the last flow run of this process that holds it ends, its pooled connections and its
  contact-centre client are closed (both are built again on next use), so a process that runs
  one flow after another keeps nothing open in between.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import SecretStr

from recovery import event_feed
from recovery.runtime import Runtime
from recovery.settings import Settings
from tasks.events import emit_case_events, flush_case_events

log = logging.getLogger("recovery.runtime")

# Distinct settings whose runtime a process keeps at once.
KEEP = 4

_lock = threading.Lock()
_runtimes: OrderedDict[str, Runtime] = OrderedDict()
_holders: Counter[str] = Counter()


def _plain(value: object) -> object:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def settings_key(settings: Settings) -> str:
    """A digest of every setting (secrets included, never shown): equal for equal settings."""
    values = sorted((name, repr(_plain(getattr(settings, name)))) for name in Settings.model_fields)
    return hashlib.sha256(repr(values).encode("utf-8")).hexdigest()


def _runtime_for(settings: Settings) -> tuple[str, Runtime]:
    key = settings_key(settings)
    with _lock:
        found = _runtimes.get(key)
        if found is None:
            found = _runtimes[key] = Runtime(settings)
            while len(_runtimes) > KEEP:
                oldest, stale = next(iter(_runtimes.items()))
                if _holders[oldest]:
                    break  # a flow run still holds it; kept until it ends
                del _runtimes[oldest]
                stale.close()
        else:
            _runtimes.move_to_end(key)
        return key, found


def runtime() -> Runtime:
    """The runtime for the current settings, built on first use in this process."""
    return _runtime_for(Settings())[1]


@contextmanager
def flow_runtime(*, check_schema: bool = True) -> Iterator[Runtime]:
    """Hold the process's runtime for one flow run (see the module's docstring)."""
    key, held = _runtime_for(Settings())
    with _lock:
        _holders[key] += 1
    # Transitions recorded deep in a service (an outcome) reach the event feed with this run.
    previous = event_feed.install_sink(emit_case_events)
    try:
        if check_schema:
            held.require_schema()
        yield held
    finally:
        event_feed.install_sink(previous)
        # The run's events are in the feed before the run ends.
        if not flush_case_events():
            log.warning("case events still queued as the run ends: they are sent later")
        with _lock:
            _holders[key] -= 1
            if _holders[key] <= 0:
                del _holders[key]
                held.close()


def close_all() -> None:
    """Close every runtime this process built (at exit)."""
    with _lock:
        runtimes = list(_runtimes.values())
        _runtimes.clear()
        _holders.clear()
    for built in runtimes:
        built.close()


atexit.register(close_all)

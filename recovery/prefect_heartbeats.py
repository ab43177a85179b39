"""A flow run's heartbeats stop the moment the run ends.

Prefect's flow engine sends a flow run's heartbeat events (``prefect.flow-run.heartbeat``, every
``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds, 180 by default) from a thread that sleeps between
them in steps of one second, and the engine joins that thread when the run ends: every flow run
ends up to a second after its work did (half a second on average), a tenth of a run that sends
ten thousand contacts, and the whole of a run that finds nothing due. Here the thread waits for
its next heartbeat on the event that stops it, so it stops at once; the heartbeats themselves
(the first as the run starts, then one per interval, none once the run's state is final) are
Prefect's, sent by Prefect's own engine methods.

Applied when the ``flows`` package is imported (every flow module is in it), before any run
starts. On a Prefect whose heartbeat function this module does not recognise, Prefect's own is
kept, with a warning.
"""

from __future__ import annotations

import contextvars
import hashlib
import inspect
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Prefect's ``prefect.flow_engine._send_heartbeats`` as this module reproduces it: the digest of
# its source (Prefect 3.9).
KNOWN_SOURCES = frozenset({"83e152cb73a04e977ca181188e99b3d583c894892b5456043b2eb51e45dbe996"})


def source_digest(function: Any) -> str | None:
    """The SHA-256 of a function's source, ``None`` when its source cannot be read."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return None
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


@contextmanager
def send_heartbeats(engine: Any, join_on_exit: bool = True) -> Iterator[None]:
    """Prefect's ``_send_heartbeats``, its thread waiting on its stop event between beats."""
    from prefect.flow_engine import MINIMUM_HEARTBEAT_INTERVAL

    heartbeat_seconds = engine.heartbeat_seconds
    if heartbeat_seconds is None:
        yield
        return
    heartbeat_seconds = max(heartbeat_seconds, MINIMUM_HEARTBEAT_INTERVAL)
    resource, related = engine._build_heartbeat_event_template()
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            run = engine.flow_run
            if run and run.state and run.state.is_final():
                engine.logger.debug("Flow run in terminal state, stopping heartbeat")
                return
            try:
                engine._emit_flow_run_heartbeat(resource, related)
            except Exception:
                engine.logger.debug("Failed to emit heartbeat", exc_info=True)
            if stop.wait(heartbeat_seconds):
                return

    # The thread sees the caller's settings (its API URL), as in Prefect's.
    thread = threading.Thread(
        target=contextvars.copy_context().run, args=(beat,), daemon=True, name="flow-heartbeat"
    )
    thread.start()
    engine.logger.debug("Started flow run heartbeat context")
    try:
        yield
    finally:
        stop.set()
        if join_on_exit:
            thread.join(timeout=2)
        engine.logger.debug("Stopped flow run heartbeat context")


_replaced: list[Any] = []


def prefects_own() -> Any:
    """Prefect's own heartbeat function, replaced or not."""
    import prefect.flow_engine as engine_module

    return _replaced[0] if _replaced else engine_module._send_heartbeats


def prompt_heartbeat_stop() -> bool:
    """Put ``send_heartbeats`` in place of Prefect's; whether it was (or already is)."""
    import prefect.flow_engine as engine_module

    current = getattr(engine_module, "_send_heartbeats", None)
    if current is send_heartbeats:
        return True
    if current is None or source_digest(current) not in KNOWN_SOURCES:
        warnings.warn(
            "this Prefect's flow-run heartbeats are not the ones recovery knows: they are left "
            "as they are (a flow run may end up to a second after its work)",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    _replaced.append(current)
    engine_module._send_heartbeats = send_heartbeats
    return True

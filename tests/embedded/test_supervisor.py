"""Stopping the embedded default: the parts that talk to others stop side by side, and only
then the parts they talk to (Prefect's server, the contact centre), so none is left retrying a
part already gone."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from recovery.embedded.supervisor import Part, Supervisor

# A part that writes when it got SIGTERM, and takes half a second to stop.
PART = """
import signal, sys, time
out = sys.argv[1]
def stop(*_):
    with open(out, "w") as f:
        f.write(repr(time.time()))
    time.sleep(0.5)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
open(out + ".up", "w").close()
while True:
    time.sleep(0.05)
"""


def test_clients_stop_together_before_the_parts_they_talk_to(tmp_path: Path) -> None:
    script = tmp_path / "part.py"
    script.write_text(PART)
    supervisor = Supervisor(env={}, log_dir=tmp_path / "logs", say=lambda _line: None)
    names = ["server", "receiver", "flows", "listener"]
    for name in names:
        supervisor.start(
            Part(
                name,
                [sys.executable, str(script), str(tmp_path / name)],
                serves_others=name == "server",
            )
        )
    deadline = time.monotonic() + 20
    while not all((tmp_path / f"{n}.up").exists() for n in names):
        assert time.monotonic() < deadline, "the parts did not start"
        time.sleep(0.05)
    started = time.monotonic()
    supervisor.stop()
    took = time.monotonic() - started
    stopped = {n: float((tmp_path / n).read_text()) for n in names}
    clients = [stopped[n] for n in ("receiver", "flows", "listener")]
    # The three clients were told at once (not one after another's half-second exit)...
    assert max(clients) - min(clients) < 0.4
    # ...and the server only after they had all exited.
    assert stopped["server"] >= max(clients) + 0.45
    assert took < 2.5
    assert supervisor.parts == []

"""The one clock: every "now" in the project is read from a ``Clock`` or passed in.

``SystemClock`` is real time. ``VirtualClock`` maps real elapsed time onto a virtual timeline
(``start + speed x elapsed``); every process given the same setting and data folder shares the
same real anchor (written once to a file), so the receiver, the flows and the emulator agree on
what time it is while a campaign of weeks plays out in minutes. ``FixedClock`` is for tests.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at

    def advance(self, delta: timedelta) -> None:
        self._at = self._at + delta


class VirtualClock:
    """Virtual time = start + speed x (real time since the shared anchor)."""

    def __init__(self, start: datetime, speed: float, anchor_real: float) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start")
        if speed <= 0:
            raise ValueError("VirtualClock speed must be positive")
        self.start = start
        self.speed = speed
        self.anchor_real = anchor_real

    def now(self) -> datetime:
        elapsed = time.time() - self.anchor_real
        return self.start + timedelta(seconds=elapsed * self.speed)

    def real_seconds_until(self, at: datetime) -> float:
        return max(0.0, (at - self.now()).total_seconds() / self.speed)


class FileClock:
    """The instant written in a file (ISO 8601 with offset): a clock an operator or a test
    moves by hand, shared by every process that reads the same file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cache: tuple[int, datetime] | None = None

    def now(self) -> datetime:
        stamp = self.path.stat().st_mtime_ns
        if self._cache is None or self._cache[0] != stamp:
            at = datetime.fromisoformat(self.path.read_text().strip())
            if at.tzinfo is None:
                raise ValueError(f"{self.path}: the instant needs a UTC offset")
            self._cache = (stamp, at)
        return self._cache[1]

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FileClock needs a timezone-aware datetime")
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(at.isoformat())
        os.replace(tmp, self.path)


def parse_clock(spec: str, data_dir: Path) -> Clock:
    """Build the clock a ``RECOVERY_CLOCK`` value names.

    ``system``; ``virtual:2026-12-01T13:00:00+00:00@10000`` (start and speed); or
    ``file:/path/to/clock`` (the instant written in that file).
    """
    if spec == "system":
        return SystemClock()
    if spec.startswith("file:"):
        return FileClock(Path(spec.removeprefix("file:")))
    if spec.startswith("virtual:"):
        body = spec.removeprefix("virtual:")
        start_text, _, speed_text = body.rpartition("@")
        if not start_text or not speed_text:
            raise ValueError(f"bad clock {spec!r}: expected virtual:<ISO start>@<speed>")
        start = datetime.fromisoformat(start_text)
        if start.tzinfo is None:
            raise ValueError(f"bad clock {spec!r}: the start needs a UTC offset")
        return VirtualClock(start, float(speed_text), _shared_anchor(spec, data_dir))
    raise ValueError(
        f"bad clock {spec!r}: expected 'system', 'virtual:<ISO start>@<speed>' or 'file:<path>'"
    )


def _shared_anchor(spec: str, data_dir: Path) -> float:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "clock-anchor"
    now = time.time()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        text = path.read_text().strip()
        stored_spec, _, anchor = text.rpartition(" ")
        if stored_spec == spec:
            return float(anchor)
        path.write_text(f"{spec} {now}")
        return now
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{spec} {now}")
    return now

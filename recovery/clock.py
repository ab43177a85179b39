"""The one clock: every "now" in the project is read from a ``Clock`` or passed in.

``SystemClock`` is real time. ``VirtualClock`` maps real elapsed time onto a virtual timeline
(``start + speed x elapsed``); every process given the same setting and data folder shares the
same anchor (a file), so the receiver, the flows and the emulator agree on what time it is while
a campaign of weeks plays out in minutes. The anchor is a pair (virtual instant, real instant):
one driver may move it forward (``VirtualClock.jump_to``, a time-skipping clock as in Temporal's
test server) and every process reads the new pair at its next ``now()``. ``FixedClock`` is for
tests.
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
    """Virtual time = anchor's virtual instant + speed x (real time since its real instant).

    With an ``anchor_file`` the anchor is shared: ``jump_to`` rewrites it (atomically) and every
    ``VirtualClock`` reading the same file sees the jump at its next ``now()`` (one ``stat`` a
    read). Time never runs backwards: a jump only moves forward."""

    def __init__(
        self,
        start: datetime,
        speed: float,
        anchor_real: float,
        anchor_file: Path | None = None,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start")
        if speed <= 0:
            raise ValueError("VirtualClock speed must be positive")
        self.start = start
        self.speed = speed
        self.anchor_real = anchor_real
        self.anchor_file = anchor_file
        self._anchor = (start, anchor_real)
        self._stamp: tuple[int, int, int] | None = None

    def _current_anchor(self) -> tuple[datetime, float]:
        if self.anchor_file is None:
            return self._anchor
        try:
            stamp = _stamp(self.anchor_file)
        except FileNotFoundError:
            return self._anchor
        if stamp != self._stamp:
            parsed = _read_anchor(self.anchor_file)
            if parsed is not None and parsed[0] == self._spec_key():
                self._anchor = (parsed[2], parsed[1])
            self._stamp = stamp
        return self._anchor

    def _spec_key(self) -> str:
        return f"virtual:{self.start.isoformat()}@{self.speed:g}"

    def now(self) -> datetime:
        virtual, real = self._current_anchor()
        return virtual + timedelta(seconds=(time.time() - real) * self.speed)

    def real_seconds_until(self, at: datetime) -> float:
        return max(0.0, (at - self.now()).total_seconds() / self.speed)

    def jump_to(self, at: datetime) -> datetime:
        """Move virtual time forward to ``at`` (no-op when it is already past): the new anchor
        is written for every process sharing the file. Returns the clock's instant after it."""
        if at.tzinfo is None:
            raise ValueError("VirtualClock.jump_to needs a timezone-aware instant")
        now = self.now()
        if at <= now:
            return now
        real = time.time()
        self._anchor = (at, real)
        if self.anchor_file is not None:
            _write_anchor(self.anchor_file, self._spec_key(), real, at)
            self._stamp = _stamp(self.anchor_file)
        return at


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
        speed = float(speed_text)
        if speed <= 0:
            raise ValueError(f"bad clock {spec!r}: the speed must be positive")
        spec = f"virtual:{start.isoformat()}@{speed:g}"
        real, virtual = _shared_anchor(spec, start, data_dir)
        clock = VirtualClock(start, speed, real, anchor_file=data_dir / ANCHOR_FILE)
        clock._anchor = (virtual, real)
        return clock
    raise ValueError(
        f"bad clock {spec!r}: expected 'system', 'virtual:<ISO start>@<speed>' or 'file:<path>'"
    )


ANCHOR_FILE = "clock-anchor"


def _stamp(path: Path) -> tuple[int, int, int]:
    # Each write replaces the file (a new inode): a second jump within one tick of the file
    # system's timestamps is still seen.
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, st.st_size


def _read_anchor(path: Path) -> tuple[str, float, datetime] | None:
    """(spec, real instant, virtual instant) of an anchor file, or None when unreadable.
    The format is one line: ``<spec> <real epoch seconds> [<virtual ISO instant>]``."""
    try:
        parts = path.read_text().split()
    except FileNotFoundError:
        return None
    if len(parts) not in (2, 3):
        return None
    try:
        real = float(parts[1])
        if len(parts) == 2:
            body = parts[0].removeprefix("virtual:")
            virtual = datetime.fromisoformat(body.rpartition("@")[0])
        else:
            virtual = datetime.fromisoformat(parts[2])
    except ValueError:
        return None
    return parts[0], real, virtual


def _write_anchor(path: Path, spec: str, real: float, virtual: datetime) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{spec} {real!r} {virtual.isoformat()}")
    os.replace(tmp, path)


def _shared_anchor(spec: str, start: datetime, data_dir: Path) -> tuple[float, datetime]:
    """The shared (real, virtual) anchor of ``spec`` in ``data_dir``: written by the first
    process (virtual ``start`` now), read by the others; a file for another spec is replaced."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / ANCHOR_FILE
    now = time.time()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        found = _read_anchor(path)
        if found is not None and found[0] == spec:
            return found[1], found[2]
        _write_anchor(path, spec, now, start)
        return now, start
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{spec} {now!r} {start.isoformat()}")
    return now, start

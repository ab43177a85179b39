"""A wall-clock stack sampler for every thread of this process (cProfile sees only the thread
that enabled it, and a flow's work is spread over the engine's threads).

Every ``interval`` seconds it records each thread's stack; the report says, per thread group,
in which functions the samples fell (inclusive: anywhere on the stack) and on which line the
thread actually was (self). Waiting shows as waiting (``sleep``, ``select``, ``wait``), which is
the point: it says where the time goes, not only where the CPU goes.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter, defaultdict
from pathlib import Path
from types import FrameType

ROOTS = (str(Path(__file__).resolve().parent.parent), "site-packages/")


def _where(frame: FrameType) -> str:
    path = frame.f_code.co_filename
    for root in ROOTS:
        if root in path:
            path = path.split(root, 1)[1].lstrip("/")
            break
    else:
        path = Path(path).name
    return f"{path}:{frame.f_code.co_firstlineno} {frame.f_code.co_name}"


class StackSampler:
    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.inclusive: dict[str, Counter[str]] = defaultdict(Counter)
        self.self_lines: dict[str, Counter[str]] = defaultdict(Counter)
        self.samples: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stack-sampler", daemon=True)
        self.main_ident = threading.get_ident()

    def _group(self, ident: int, names: dict[int, str]) -> str:
        if ident == self.main_ident:
            return "flow (main thread)"
        name = names.get(ident, "?")
        return name.rstrip("0123456789_-").strip() or name

    def _run(self) -> None:
        own = threading.get_ident()
        while not self._stop.wait(self.interval):
            names = {t.ident: t.name for t in threading.enumerate() if t.ident is not None}
            for ident, frame in sys._current_frames().items():
                if ident == own:
                    continue
                group = self._group(ident, names)
                self.samples[group] += 1
                top: FrameType | None = frame
                self.self_lines[group][f"{_where(frame)} (line {frame.f_lineno})"] += 1
                seen: set[str] = set()
                while top is not None:
                    seen.add(_where(top))
                    top = top.f_back
                for where in seen:
                    self.inclusive[group][where] += 1

    def __enter__(self) -> StackSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self, *, groups: int = 4, top: int = 25) -> str:
        lines: list[str] = []
        for group, count in self.samples.most_common(groups):
            seconds = count * self.interval
            lines.append(f"== {group}: {count} samples (~{seconds:.1f} s)")
            lines.append("   inclusive (share of this group's samples):")
            for where, n in self.inclusive[group].most_common(top):
                lines.append(f"   {n / count:6.1%}  {where}")
            lines.append("   self (where the thread was):")
            for where, n in self.self_lines[group].most_common(12):
                lines.append(f"   {n / count:6.1%}  {where}")
        return "\n".join(lines)

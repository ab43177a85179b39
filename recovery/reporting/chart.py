"""The recoveries chart (PNG) and the report's files, each replaced atomically."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from recovery.reporting.figures import Report

REPORT_FILE = "report.md"
CHART_FILE = "recoveries.png"

CHART_CURRENCIES = 4  # amount panels at most: the currencies recovered on the most days


def draw_chart(report: Report, path: Path) -> Path:
    """Recoveries per day as PNG: the count per day, then one panel per currency with the
    amount per day (currencies never share an axis: their scales differ too much)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    days = report.recoveries_by_day
    seen = Counter(currency for d in days for currency in d.amounts)
    currencies = sorted(seen, key=lambda c: (-seen[c], c))[:CHART_CURRENCIES]
    figure = Figure(figsize=(9, 3 + 1.8 * len(currencies)), dpi=100)
    FigureCanvasAgg(figure)  # Agg, without pyplot's global state
    axes = figure.subplots(1 + len(currencies), 1, sharex=True, squeeze=False)[:, 0]
    axes[0].set_title("Recoveries per day (UTC)")
    axes[0].set_ylabel("recoveries")
    if not days:
        axes[0].text(0.5, 0.5, "no recoveries in the period", ha="center", va="center")
        axes[0].set_xticks([])
        axes[0].set_yticks([])
    else:
        first = days[0].day
        xs = [(d.day - first).days for d in days]
        axes[0].bar(xs, [d.count for d in days], color="#4c72b0", width=0.8)
        axes[0].yaxis.set_major_locator(MaxNLocator(integer=True))
        for axis, currency in zip(axes[1:], currencies, strict=True):
            values = [float(d.amounts.get(currency, 0)) for d in days]
            axis.bar(xs, values, color="#55a868", width=0.8)
            axis.set_ylabel(f"{currency.upper()} recovered")
        ticks = xs[:: max(1, -(-len(xs) // 12))]  # at most 12 labels
        axes[-1].set_xticks(
            ticks,
            [(first + timedelta(days=t)).isoformat() for t in ticks],
            rotation=45,
            ha="right",
        )
    figure.tight_layout()
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png"))
    return path


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Write ``path`` through a temporary file beside it, so a reader never sees half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""The recoveries chart (PNG), and the atomic replacement every report file is written with."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from recovery.reporting.figures import ATTRIBUTION, Attribution, Report

REPORT_FILE = "report.md"
CHART_FILE = "recoveries.png"

CHART_CURRENCIES = 4  # amount panels at most: the currencies recovered on the most days


def draw_chart(report: Report, path: Path) -> Path:
    """Recoveries per day as PNG: the count per day, then one panel per currency with the
    amount per day (currencies never share an axis: their scales differ too much), then what
    brought the recoveries (a bar per attribution, and the calls retry-aware waits avoided)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    days = report.recoveries_by_day
    seen = Counter(currency for d in days for currency in d.amounts)
    currencies = sorted(seen, key=lambda c: (-seen[c], c))[:CHART_CURRENCIES]
    attributed = report.attribution
    extra = 1 if attributed is not None else 0
    figure = Figure(figsize=(9, 3 + 1.8 * len(currencies) + 2.4 * extra), dpi=100)
    FigureCanvasAgg(figure)  # Agg, without pyplot's global state
    grid = figure.subplots(1 + len(currencies) + extra, 1, squeeze=False)[:, 0]
    axes = grid[: 1 + len(currencies)]
    for axis in axes[1:]:
        axis.sharex(axes[0])
    for axis in axes[:-1]:
        axis.tick_params(labelbottom=False)  # the dates once, under the last day panel
    if attributed is not None:
        draw_attribution(grid[-1], attributed)
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


ATTRIBUTION_BARS = {
    "after_promise": "after a promise",
    "after_call": "after a call",
    "no_call": "with no call",
    "after_calls": "after calls, no right party",
}


def draw_attribution(axis: Any, attribution: Attribution) -> None:
    """Recovered cases per cause as horizontal bars, and the calls retry-aware waits avoided."""
    from matplotlib.ticker import MaxNLocator

    labels = [ATTRIBUTION_BARS[cause] for cause in ATTRIBUTION] + ["calls avoided by waits"]
    values = [attribution.recovered[cause] for cause in ATTRIBUTION]
    values.append(attribution.calls_avoided)
    colours = ["#4c72b0"] * len(ATTRIBUTION) + ["#dd8452"]
    positions = list(range(len(labels)))[::-1]
    axis.barh(positions, values, color=colours)
    axis.set_yticks(positions, labels)
    axis.set_title(f"What brought the recoveries (calls within {attribution.days} days)")
    axis.set_xlabel("cases")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    for y, value in zip(positions, values, strict=True):
        axis.text(value, y, f" {value}", va="center")


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

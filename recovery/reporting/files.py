"""Writing the report's files: ``report.md`` and the recoveries chart beside it, each replaced
atomically."""

from __future__ import annotations

from pathlib import Path

from recovery.reporting.chart import CHART_FILE, REPORT_FILE, atomic_write, draw_chart
from recovery.reporting.figures import Report
from recovery.reporting.render import render_markdown


def write_report(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """``report.md`` and ``recoveries.png`` in ``out_dir`` (created); replaced atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = draw_chart(report, out_dir / CHART_FILE)
    markdown = out_dir / REPORT_FILE
    text = render_markdown(report, chart_name=CHART_FILE)
    atomic_write(markdown, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return markdown, chart

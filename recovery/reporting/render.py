"""The recovery report rendered: a JSON document, tables (header and rows, for the terminal
and for artifacts) and markdown."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from recovery.reporting.chart import CHART_FILE
from recovery.reporting.figures import ATTRIBUTION, FUNNEL, Attribution, GroupFigures, Report, rate


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def report_document(
    report: Report, *, markdown: Path | None = None, chart: Path | None = None
) -> dict[str, Any]:
    """The JSON contract of ``recovery report --json`` (amounts are decimal strings)."""
    failed = report.cases
    return {
        "period": {"since": _iso(report.since), "until": _iso(report.until)},
        "generated_at": report.generated_at.isoformat(),
        "cases": failed,
        "funnel": [
            {
                "stage": stage,
                "cases": report.funnel[stage],
                "rate": rate(report.funnel[stage], failed),
            }
            for stage in FUNNEL
        ],
        "recovered_after_contact": report.recovered_after_contact,
        "recovered_amount": {c: str(v) for c, v in report.recovered_amount.items()},
        "recovered_without_amount": report.recovered_without_amount,
        "by_category": [_group_doc(g) for g in report.by_category],
        "by_last_disposition": [_group_doc(g) for g in report.by_last_disposition],
        "compliance_blocks": [
            {
                "jurisdiction": b.jurisdiction,
                "rule": b.rule,
                "label": b.label,
                "decisions": b.decisions,
                "cases": b.cases,
            }
            for b in report.compliance_blocks
        ],
        "blocked_decisions": report.blocked_decisions,
        "closed_by_outcome": dict(report.closed_by_outcome),
        "recoveries_by_day": [
            {
                "date": d.day.isoformat(),
                "count": d.count,
                "amount": {c: str(v) for c, v in d.amounts.items()},
            }
            for d in report.recoveries_by_day
        ],
        "attribution": attribution_document(report.attribution),
        "files": {
            "report": str(markdown) if markdown else None,
            "chart": str(chart) if chart else None,
        },
    }


def attribution_document(attribution: Attribution | None) -> dict[str, Any] | None:
    """The ``attribution`` part of the JSON contract."""
    if attribution is None:
        return None
    return {
        "days": attribution.days,
        "recovered": [
            {
                "cause": cause,
                "cases": attribution.recovered[cause],
                "amount": {c: str(v) for c, v in attribution.amounts[cause].items()},
            }
            for cause in ATTRIBUTION
        ],
        "retry_waits": attribution.retry_waits,
        "calls_avoided": attribution.calls_avoided,
        "calls_avoided_amount": {c: str(v) for c, v in attribution.avoided_amounts.items()},
    }


ATTRIBUTION_LABELS = {
    "after_promise": "recovered after a promise (within {n} days of the promised date)",
    "after_call": "recovered after a call (within {n} days of a right-party contact)",
    "no_call": "recovered with no call (the gateway's retry or the customer alone)",
    "after_calls": "recovered after calls, no right-party contact in the {n} days before",
}


def attribution_rows(attribution: Attribution) -> tuple[list[str], list[list[str]]]:
    """The attribution as a table: one row per cause, then the retry-aware waits."""
    n = attribution.days
    total = sum(attribution.recovered.values())
    rows = [
        [
            ATTRIBUTION_LABELS[cause].format(n=n),
            str(attribution.recovered[cause]),
            _pct(rate(attribution.recovered[cause], total)),
            _money(attribution.amounts[cause]),
        ]
        for cause in ATTRIBUTION
    ]
    rows.append(
        [
            "cases whose first call waited for a gateway retry",
            str(attribution.retry_waits),
            "-",
            "-",
        ]
    )
    rows.append(
        [
            "calls avoided by retry-aware waits (recovered with no call after the wait)",
            str(attribution.calls_avoided),
            _pct(rate(attribution.calls_avoided, total)),
            _money(attribution.avoided_amounts),
        ]
    )
    return ["attribution", "cases", "of recovered", "amount"], rows


def _money(amounts: dict[str, Any]) -> str:
    return ", ".join(f"{v} {c.upper()}" for c, v in amounts.items()) or "-"


def _group_doc(group: GroupFigures) -> dict[str, Any]:
    return {
        "name": group.name,
        "cases": group.cases,
        "recovered": group.recovered,
        "recovery_rate": group.recovery_rate,
        "median_days_to_recover": group.median_days_to_recover,
    }


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table_rows(report: Report) -> dict[str, tuple[list[str], list[list[str]]]]:
    """The report's tables as text (title -> header, rows), shared by the terminal, the
    markdown file and the Prefect artifacts."""
    failed = report.cases
    tables: dict[str, tuple[list[str], list[list[str]]]] = {
        "Funnel": (
            ["stage", "cases", "of failed"],
            [
                [stage, str(report.funnel[stage]), _pct(rate(report.funnel[stage], failed))]
                for stage in FUNNEL
            ]
            + [
                [
                    "recovered after contact",
                    str(report.recovered_after_contact),
                    _pct(rate(report.recovered_after_contact, failed)),
                ]
            ],
        ),
        "Recovered amount": (
            ["currency", "amount"],
            [[c.upper(), str(v)] for c, v in report.recovered_amount.items()]
            + (
                [["(amount unknown)", f"{report.recovered_without_amount} cases"]]
                if report.recovered_without_amount
                else []
            ),
        ),
    }
    for title, groups in (
        ("By failure category", report.by_category),
        ("By last disposition", report.by_last_disposition),
    ):
        tables[title] = (
            ["group", "cases", "recovered", "rate", "median days to recover"],
            [
                [
                    g.name,
                    str(g.cases),
                    str(g.recovered),
                    _pct(g.recovery_rate),
                    _days(g.median_days_to_recover),
                ]
                for g in groups
            ],
        )
    tables["Blocked by compliance"] = (
        ["jurisdiction", "rule", "decisions", "cases"],
        [
            [b.jurisdiction, b.rule, str(b.decisions), str(b.cases)]
            for b in report.compliance_blocks
        ],
    )
    tables["Closed by outcome"] = (
        ["outcome", "cases"],
        [[o, str(n)] for o, n in report.closed_by_outcome.items()],
    )
    if report.attribution is not None:
        tables["Recoveries attributed"] = attribution_rows(report.attribution)
    return tables


def table_dicts(report: Report, title: str) -> list[dict[str, str]]:
    """One of ``table_rows``' tables as rows keyed by its header (for a table artifact)."""
    header, rows = table_rows(report)[title]
    return [dict(zip(header, row, strict=True)) for row in rows]


def period_text(report: Report) -> str:
    since = report.since.isoformat() if report.since else "the beginning"
    until = report.until.isoformat() if report.until else "now"
    return f"payments failed from {since} until {until}"


def render_markdown(report: Report, *, chart_name: str | None = CHART_FILE) -> str:
    """The report as markdown; the chart is linked by its file name (it sits next to it)."""
    lines = [
        "# Payment recovery report",
        "",
        f"{report.cases} cases: {period_text(report)}. "
        f"Generated {report.generated_at.isoformat(timespec='seconds')}.",
        "",
    ]
    for title, (header, rows) in table_rows(report).items():
        lines += [f"## {title}", ""]
        if not rows:
            lines += ["None.", ""]
            continue
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
        lines.append("")
    lines += ["## Recoveries per day", ""]
    if chart_name:
        lines += [f"![Recoveries per day]({chart_name})", ""]
    if report.recoveries_by_day:
        lines += ["| date (UTC) | recoveries | amount |", "|---|---|---|"]
        for d in report.recoveries_by_day:
            amount = ", ".join(f"{v} {c.upper()}" for c, v in d.amounts.items()) or "-"
            lines.append(f"| {d.day.isoformat()} | {d.count} | {amount} |")
    else:
        lines.append("No recoveries in the period.")
    lines.append("")
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")

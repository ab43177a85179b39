"""Backfill: replay an export of payment events through the path live webhooks take.

Every record of the file goes through the PAN guard, the gateway's normalisation and the inbox
(unique on gateway + event id), exactly as a verified webhook does; then the inbox is drained
into cases by the ingest code. Running the same file twice changes nothing the second time.

Accepted files (detected by extension, else by the first character):

* **JSON lines** (``.jsonl``, ``.ndjson``, ``.json``): one JSON object per line, either

  - a Stripe event, the shape ``stripe events list`` gives per item (``id``, ``type``,
    ``created``, ``data.object``);
  - a page of them, ``{"object": "list", "data": [event, ...], ...}`` (what the API and
    ``stripe events list`` return); every event of the page is a record, named
    ``line N item K`` in messages;
  - a body of the signed generic source (``{"type": "payment.failed", "event_id", ...}``).

  A pretty-printed document spread over many lines is refused up front: convert it with
  ``jq -c '.data[]' events.json > events.jsonl``.
* **CSV** (``.csv``) of failures, a header line first. Required columns: ``event_id``,
  ``business_key``, ``occurred_at`` (ISO 8601 with a UTC offset). Optional: ``phone``,
  ``country``, ``state``, ``postal_code``, ``time_zone``, ``customer_ref``, ``customer_name``,
  ``failure_code``, ``decline_code``, ``advice_code``, ``failure_message``, ``amount`` (major
  units, e.g. ``19.99``), ``currency``, ``attempt_count``, ``type`` (``payment.failed``, the
  default, or ``payment.succeeded``) and ``gateway`` (``generic``, the default, or e.g.
  ``stripe`` when the rows are Stripe payments, so they join the cases of Stripe's webhooks).
  Empty cells are absent values; other columns are ignored.

Each record ends in exactly one of: recorded as a failure, recorded as a success, or skipped as
a ``duplicate event`` (already in the inbox, or earlier in the file), ``outside the time
range``, ``ignored event type`` (kept in the inbox as the receiver keeps it, no case), or
``malformed`` (``line N: reason``). Records are committed a chunk at a time, each chunk in one
transaction that also applies its new events to cases, as ingest applies inbox rows (the rows
are recorded processed): a crash leaves a processed prefix, and running the file again
completes it without duplicates. Before each chunk, every inbox row already waiting (live
deliveries included) is applied first, so the case counts include those too.

Order matters in one way, as for live deliveries: a failure older than a success already
recorded is ignored rather than opened and closed. Stripe lists events newest first, so such an
export leaves no case for a payment that was paid again later; sort it oldest first (e.g.
``jq -s -c 'sort_by(.created)[]'``) to keep those payments as recovered cases in the report.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from recovery.domain.models import CardUpdated, Gateway, PaymentFailure, PaymentSucceeded
from recovery.domain.pan import (
    FloatWatch,
    Marker,
    plain_marker,
    redact_parsed_json,
    redact_payload,
)
from recovery.domain.taxonomy import FailureCodes
from recovery.gateways import generic as generic_gateway
from recovery.gateways import stripe as stripe_gateway
from recovery.gateways.common import Ignored, PayloadError, guard_normalised
from recovery.services.intake import CustomerLookup, apply_recorded, drain
from recovery.store.db import transaction
from recovery.store.inbox import (
    Delivery,
    Pending,
    insert_deliveries,
    recorded_events,
    storable_problem,
)

log = logging.getLogger("recovery.services.backfill")

Format = Literal["jsonl", "csv"]
Normalised = PaymentFailure | PaymentSucceeded | CardUpdated | Ignored

CSV_REQUIRED = ("event_id", "business_key", "occurred_at")
CSV_OPTIONAL = (
    "phone",
    "country",
    "state",
    "postal_code",
    "time_zone",
    "customer_ref",
    "customer_name",
    "failure_code",
    "decline_code",
    "advice_code",
    "failure_message",
    "amount",
    "currency",
    "attempt_count",
    "type",
    "gateway",
)
CSV_COLUMNS = CSV_REQUIRED + CSV_OPTIONAL

DUPLICATE = "duplicate event"
OUTSIDE = "outside the time range"
IGNORED = "ignored event type"
MALFORMED = "malformed"
SKIP_REASONS = (DUPLICATE, OUTSIDE, IGNORED, MALFORMED)

# Messages kept for the report; the count is always exact.
MAX_PROBLEMS = 1000
DEFAULT_CHUNK = 500
# Inbox rows per drain transaction: short transactions keep the store's write lock brief for
# the live receiver, which shares the store while a backfill runs (200 new cases are opened in
# a few statements, some tens of milliseconds).
DRAIN_BATCH = 200

_JSON_SUFFIXES = {".jsonl", ".ndjson", ".json"}


class BackfillError(ValueError):
    """The arguments or the file cannot be used at all; nothing was written."""


def parse_bound(text: str, option: str) -> datetime:
    """An aware instant from ISO 8601; a bare date is midnight UTC; naive times are refused."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BackfillError(f"{option}: {text!r} is not an ISO 8601 date or date-time") from None
    if len(value) == 10:  # YYYY-MM-DD
        return parsed.replace(tzinfo=UTC)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise BackfillError(
            f"{option}: {text!r} has no UTC offset; add one, e.g. 2026-12-01T00:00:00+00:00"
        )
    return parsed


def check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise BackfillError("--since must be before --until")


@dataclass(frozen=True, slots=True)
class Position:
    """Where reading resumes: a byte offset at a record boundary and the lines before it."""

    offset: int
    line: int


@dataclass(frozen=True, slots=True)
class Export:
    """A checked export file: its format, size and (for CSV) header."""

    path: Path
    format: Format
    size: int
    start: Position
    columns: tuple[str, ...] = ()
    ignored_columns: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return "CSV of failures" if self.format == "csv" else "JSON lines of events"


def open_export(path: str | Path) -> Export:
    """Check that ``path`` is a readable export and detect its format; raises ``BackfillError``
    (the CLI's exit 2) before anything is written: unreadable file, bad CSV header, or a
    multi-line JSON document instead of JSON lines."""
    file = Path(path)
    try:
        size = file.stat().st_size
        with file.open("rb") as fh:
            head = fh.read(64 * 1024)
    except OSError as exc:
        raise BackfillError(f"cannot read {file}: {exc.strerror or exc}") from None
    suffix = file.suffix.lower()
    if suffix == ".csv":
        fmt: Format = "csv"
    elif suffix in _JSON_SUFFIXES:
        fmt = "jsonl"
    else:
        first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        fmt = "jsonl" if first in (b"{", b"[") else "csv"
    if fmt == "csv":
        return _open_csv(file, size)
    _refuse_document(file, head)
    return Export(path=file, format="jsonl", size=size, start=Position(0, 0))


def _refuse_document(file: Path, head: bytes) -> None:
    for raw in head.splitlines():
        line = raw.strip().lstrip(b"\xef\xbb\xbf")
        if not line:
            continue
        if line in (b"{", b"["):
            raise BackfillError(
                f"{file} is a JSON document spread over several lines, not JSON lines (one "
                f"event per line): convert it, e.g. jq -c '.data[]' {file.name} > events.jsonl"
            )
        return


def _open_csv(file: Path, size: int) -> Export:
    with file.open("rb") as fh:
        raw = fh.readline()
        offset = len(raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BackfillError(f"{file}: the CSV header is not valid UTF-8") from None
    if not text.strip():
        raise BackfillError(f"{file}: the CSV file has no header line")
    try:
        header = next(csv.reader([text]))
    except csv.Error as exc:
        raise BackfillError(f"{file}: unreadable CSV header: {exc}") from None
    columns = tuple(name.strip().lower() for name in header)
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise BackfillError(f"CSV header repeats column {', '.join(repeated)}")
    missing = [c for c in CSV_REQUIRED if c not in columns]
    if len(missing) == 1:
        raise BackfillError(f"CSV header lacks column {missing[0]}")
    if missing:
        raise BackfillError(f"CSV header lacks columns {', '.join(missing)}")
    ignored = tuple(c for c in columns if c not in CSV_COLUMNS)
    return Export(
        path=file,
        format="csv",
        size=size,
        start=Position(offset, 1),
        columns=columns,
        ignored_columns=ignored,
    )


# --- reading records ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One event of the file, parsed (not yet redacted or normalised)."""

    where: str  # "line 12" or "line 12 item 3"
    source: Literal["stripe", "generic", "csv"]
    value: dict[str, Any]
    raw: str | None = None  # the JSON text, when ``value`` was parsed from it alone
    # Whether the parser met a float literal that may hide a card number (``FloatWatch``), so
    # the raw text need not be scanned for floats again; None: scan it.
    risky_floats: bool | None = None


@dataclass(frozen=True, slots=True)
class Bad:
    """A record that cannot be read; ``reason`` names the line and never holds its content."""

    reason: str


def read_chunk(
    export: Export, start: Position, limit: int
) -> tuple[list[Record | Bad], Position, bool]:
    """Up to ``limit`` lines (JSON) or rows (CSV) from ``start``: the records, where the next
    chunk starts, and whether the file is exhausted."""
    if export.format == "csv":
        return _read_csv(export, start, limit)
    return _read_jsonl(export, start, limit)


def _read_jsonl(
    export: Export, start: Position, limit: int
) -> tuple[list[Record | Bad], Position, bool]:
    out: list[Record | Bad] = []
    offset, line_no, read = start.offset, start.line, 0
    with export.path.open("rb") as fh:
        fh.seek(offset)
        while read < limit:
            raw = fh.readline()
            if not raw:
                return out, Position(offset, line_no), True
            if offset == 0 and raw.startswith(b"\xef\xbb\xbf"):
                offset, raw = 3, raw[3:]
            offset += len(raw)
            line_no += 1
            read += 1
            out.extend(_parse_json_line(raw, line_no))
        done = fh.read(1) == b""
    return out, Position(offset, line_no), done


def _parse_json_line(raw: bytes, line_no: int) -> list[Record | Bad]:
    where = f"line {line_no}"
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return [Bad(f"{where}: not valid UTF-8")]
    if not text:
        return []
    floats = FloatWatch()
    try:
        value = json.loads(text, parse_float=floats)
    except (json.JSONDecodeError, RecursionError):
        return [Bad(f"{where}: malformed JSON")]
    except ValueError:
        # Python refuses to convert an integer of more than 4300 digits.
        return [Bad(f"{where}: malformed JSON (a number too long)")]
    if isinstance(value, list):
        items: Any = value
    elif not isinstance(value, dict):
        return [Bad(f"{where}: not a JSON object")]
    elif value.get("object") == "list" or isinstance(value.get("data"), list):
        items = value.get("data")
        if not isinstance(items, list):
            return [Bad(f"{where}: a list page without a 'data' array")]
    else:
        return [Record(where, _json_source(value), value, text, floats.risky)]
    records: list[Record | Bad] = []
    for index, item in enumerate(items, 1):
        at = f"{where} item {index}"
        if isinstance(item, dict):
            records.append(Record(at, _json_source(item), item))
        else:
            records.append(Bad(f"{at}: not a JSON object"))
    return records


def _json_source(value: Mapping[str, Any]) -> Literal["stripe", "generic"]:
    if "id" in value:
        return "stripe"
    generic = ("event_id", *generic_gateway.SEED_FIELDS)
    return "generic" if any(name in value for name in generic) else "stripe"


def _read_csv(
    export: Export, start: Position, limit: int
) -> tuple[list[Record | Bad], Position, bool]:
    out: list[Record | Bad] = []
    state = {"offset": start.offset, "line": start.line}
    undecodable: set[int] = set()

    def lines(fh: Any) -> Iterator[str]:
        while True:
            raw = fh.readline()
            if not raw:
                return
            state["offset"] += len(raw)
            state["line"] += 1
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                undecodable.add(state["line"])
                yield raw.decode("utf-8", errors="replace")

    width = len(export.columns)
    done = False
    with export.path.open("rb") as fh:
        fh.seek(start.offset)
        reader = csv.reader(lines(fh))
        rows = 0
        while rows < limit:
            first = state["line"] + 1
            try:
                row = next(reader)
            except StopIteration:
                done = True
                break
            except csv.Error as exc:
                rows += 1
                out.append(Bad(f"line {first}: unreadable CSV ({exc})"))
                continue
            if not any(cell.strip() for cell in row):
                continue  # a blank line is not a record
            rows += 1
            where = f"line {first}"
            if any(first <= n <= state["line"] for n in undecodable):
                out.append(Bad(f"{where}: not valid UTF-8"))
                continue
            if len(row) > width:
                out.append(Bad(f"{where}: {len(row)} fields, the header has {width}"))
                continue
            body = {
                name: cell.strip()
                for name, cell in zip(export.columns, row, strict=False)
                if cell.strip() and name in CSV_COLUMNS
            }
            out.append(Record(where, "csv", body))
        if not done:
            done = fh.read(1) == b""
    return out, Position(state["offset"], state["line"]), done


# --- from a record to a delivery ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Parsed:
    """A record normalised like a webhook: the gateway, the result and its event time."""

    where: str
    gateway: str
    result: Normalised
    occurred_at: datetime | None
    pan_found: int


def normalise_record(
    record: Record, marker: Marker = plain_marker, *, received_at: datetime | None = None
) -> Parsed | Bad:
    """PAN guard, then the gateway's normalisation, as the receiver does (give it the
    receiver's ``marker``, so an event redacted both ways is recognised as one).
    ``received_at``: the time of a middleware-shape body that carries none."""
    if record.raw is not None:
        value, found = redact_parsed_json(
            record.raw, record.value, marker, risky_floats=record.risky_floats
        )
    else:
        value, found = redact_payload(record.value, marker)
    try:
        if record.source == "stripe":
            result, again = guard_normalised(stripe_gateway.normalise(value), marker)
            found += again
            return _storable(
                Parsed(record.where, "stripe", result, _stripe_time(value, result), found)
            )
        gateway = "generic"
        if record.source == "csv":
            value = dict(value)
            value.setdefault("type", "payment.failed")
            named = value.pop("gateway", "generic").lower()
            if named not in Gateway.__members__:
                choices = ", ".join(g.value for g in Gateway)
                return Bad(f"{record.where}: field gateway: expected one of {choices}")
            gateway = named
        # A middleware-shape body without a time was received now (the run's time).
        result = generic_gateway.normalise(value, received_at=received_at)
    except PayloadError as exc:
        return Bad(f"{record.where}: {_field_problem(record, value, exc)}")
    if gateway != "generic":
        result = result.model_copy(update={"gateway": Gateway(gateway)})
    result, again = guard_normalised(result, marker)
    return _storable(
        Parsed(record.where, gateway, result, _generic_time(value, result), found + again)
    )


def _storable(parsed: Parsed) -> Parsed | Bad:
    """The record, or why its identity cannot be stored (as the receiver refuses it)."""
    result = parsed.result
    key = result.business_key if isinstance(result, PaymentFailure | PaymentSucceeded) else None
    problem = storable_problem(result.event_id, result.event_type, key)
    return parsed if problem is None else Bad(f"{parsed.where}: {problem}")


def _field_problem(record: Record, value: Any, exc: PayloadError) -> str:
    """The first invalid field as ``field X: reason`` (generic bodies and CSV rows)."""
    if record.source == "stripe" or not isinstance(value, dict):
        return str(exc)
    model: type[generic_gateway.GenericFailure] | type[generic_gateway.GenericSuccess]
    kind = value.get("type")
    if kind == "payment.failed":
        model = generic_gateway.GenericFailure
    elif kind == "payment.succeeded":
        model = generic_gateway.GenericSuccess
    else:
        return str(exc)
    try:
        model.model_validate(value)
    except ValidationError as err:
        first = err.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "row"
        return f"field {name}: {first['msg']}"
    return str(exc)


def _stripe_time(event: Mapping[str, Any], result: Normalised) -> datetime | None:
    if not isinstance(result, Ignored):
        return result.occurred_at
    created = event.get("created")
    if isinstance(created, int) and not isinstance(created, bool):
        try:
            return stripe_gateway.created_at(created)
        except PayloadError:
            return None
    return None


def _generic_time(body: Mapping[str, Any], result: Normalised) -> datetime | None:
    if not isinstance(result, Ignored):
        return result.occurred_at
    raw = body.get("occurred_at")
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.utcoffset() is not None else None
    return None


def _kind(result: Normalised) -> str:
    if isinstance(result, PaymentFailure):
        return "failure"
    if isinstance(result, PaymentSucceeded):
        return "success"
    if isinstance(result, CardUpdated):
        return "card_updated"
    return "ignored"


# --- the summary --------------------------------------------------------------------------


@dataclass
class BackfillSummary:
    """Exact counts of one run: every record is recorded or skipped for one reason."""

    path: str = ""
    format: str = ""
    dry_run: bool = False
    records: int = 0
    recorded: Counter[str] = field(default_factory=Counter)  # failure | success | card_updated
    skipped: Counter[str] = field(default_factory=Counter)  # SKIP_REASONS
    problems: list[str] = field(default_factory=list)  # "line N: reason", the first ones
    pan_redacted: int = 0
    cases: Counter[str] = field(default_factory=Counter)  # opened | updated | closed | ...
    inbox_rows_applied: int = 0
    ignored_columns: tuple[str, ...] = ()

    def add(self, other: BackfillSummary) -> None:
        self.records += other.records
        self.recorded.update(other.recorded)
        self.skipped.update(other.skipped)
        room = MAX_PROBLEMS - len(self.problems)
        if room > 0:
            self.problems.extend(other.problems[:room])
        self.pan_redacted += other.pan_redacted
        self.cases.update(other.cases)
        self.inbox_rows_applied += other.inbox_rows_applied

    def skip(self, reason: str, problem: str | None = None) -> None:
        self.skipped[reason] += 1
        if problem is not None and len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def as_dict(self) -> dict[str, Any]:
        """The JSON contract of ``recovery backfill --json``."""
        return {
            "file": self.path,
            "format": self.format,
            "dry_run": self.dry_run,
            "records": self.records,
            "recorded": {
                k: self.recorded.get(k, 0) for k in ("failure", "success", "card_updated")
            },
            "skipped": {k: self.skipped.get(k, 0) for k in SKIP_REASONS},
            "malformed": list(self.problems),
            "pan_redacted": self.pan_redacted,
            "cases": dict(sorted(self.cases.items())),
            "inbox_rows_applied": self.inbox_rows_applied,
            "ignored_columns": list(self.ignored_columns),
        }

    def counts(self) -> list[tuple[str, int]]:
        """The summary as (what, count) rows, for a table: every skip reason, the cases, and
        the first 200 problems (one each)."""
        rows = [
            ("records read", self.records),
            ("recorded failures", self.recorded.get("failure", 0)),
            ("recorded successes", self.recorded.get("success", 0)),
        ]
        rows += [(f"skipped: {r}", self.skipped.get(r, 0)) for r in SKIP_REASONS]
        rows += [(f"cases {k}", v) for k, v in sorted(self.cases.items())]
        if self.pan_redacted:
            rows.append(("records with a card number redacted", self.pan_redacted))
        rows += [(problem, 1) for problem in self.problems[:200]]
        return rows

    def describe(self) -> str:
        """One line: the file, and what was recorded and skipped."""
        return (
            f"Backfill of {Path(self.path).name}"
            + (" (dry run: nothing written)" if self.dry_run else "")
            + f": {self.records} records, {sum(self.recorded.values())} recorded, "
            f"{sum(self.skipped.values())} skipped"
        )

    def lines(self) -> list[str]:
        """The summary as text, one fact a line."""
        verb = "would record" if self.dry_run else "recorded"
        recorded = sum(self.recorded.values())
        out = [
            f"{self.path} ({self.format}): {self.records} records"
            + (" (dry run: nothing written)" if self.dry_run else ""),
            f"{verb} {recorded}: {self.recorded.get('failure', 0)} failures, "
            f"{self.recorded.get('success', 0)} successes"
            + (
                f", {self.recorded['card_updated']} card updates"
                if self.recorded.get("card_updated")
                else ""
            ),
            f"skipped {sum(self.skipped.values())}:",
        ]
        for reason in SKIP_REASONS:
            out.append(f"  {reason}: {self.skipped.get(reason, 0)}")
        shown = self.problems[:50]
        out.extend(f"    {problem}" for problem in shown)
        hidden = self.skipped.get(MALFORMED, 0) - len(shown)
        if hidden > 0:
            out.append(f"    ... and {hidden} more (all of them with --json)")
        if self.pan_redacted:
            out.append(f"card numbers redacted in {self.pan_redacted} records (events flagged)")
        if self.ignored_columns:
            out.append("CSV columns ignored: " + ", ".join(self.ignored_columns))
        if self.dry_run:
            out.append("cases: not changed (dry run)")
        else:
            results = ", ".join(f"{k} {v}" for k, v in sorted(self.cases.items())) or "none"
            out.append(f"cases: {results} ({self.inbox_rows_applied} inbox rows applied)")
        return out


# --- recording ----------------------------------------------------------------------------


def in_range(at: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    """``since`` inclusive, ``until`` exclusive; an event without a time is outside any range."""
    if since is None and until is None:
        return True
    if at is None:
        return False
    return (since is None or at >= since) and (until is None or at < until)


def record_chunk(
    *,
    sessions: sessionmaker[Session],
    items: Iterable[Record | Bad],
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
    dry_run: bool = False,
    seen: set[tuple[str, str]] | None = None,
    marker: Marker = plain_marker,
    codes: FailureCodes | None = None,
    lookup: CustomerLookup | None = None,
) -> BackfillSummary:
    """Record one chunk of records in the inbox, in one transaction (or, for a dry run, only
    find out what would be recorded; ``seen`` then carries the events met earlier in the file).

    With ``codes``, the new rows are also applied to cases in that transaction, as ingest
    applies them (without reading them back), and marked processed; without, they wait in the
    inbox for ingest."""
    summary = BackfillSummary(dry_run=dry_run)
    parsed: list[Parsed] = []
    for item in items:
        summary.records += 1
        if isinstance(item, Bad):
            summary.skip(MALFORMED, item.reason)
            continue
        result = normalise_record(item, marker, received_at=now)
        if isinstance(result, Bad):
            summary.skip(MALFORMED, result.reason)
            continue
        if result.pan_found:
            summary.pan_redacted += 1
            log.warning(
                "card number redacted from %s (%d found); the event is flagged",
                result.where,
                result.pan_found,
            )
        if not in_range(result.occurred_at, since, until):
            summary.skip(OUTSIDE)
            continue
        parsed.append(result)
    if not parsed:
        return summary
    if dry_run:
        _count_dry(sessions, parsed, summary, seen if seen is not None else set())
        return summary
    deliveries = [
        Delivery(
            gateway=event.gateway,
            event_id=event.result.event_id,
            event_type=event.result.event_type,
            kind=_kind(event.result),
            payload=event.result.model_dump(mode="json"),
            pan_redacted=event.pan_found > 0,
            received_at=now,
        )
        for event in parsed
    ]
    with transaction(sessions) as session:
        ids = insert_deliveries(session=session, deliveries=deliveries)
        if codes is not None:
            recorded = [
                (Pending(row_id, d.gateway, d.event_type, d.kind, d.payload), event.result)
                for d, row_id, event in zip(deliveries, ids, parsed, strict=True)
                if row_id is not None and not isinstance(event.result, Ignored)
            ]
            applied = apply_recorded(
                session=session, recorded=recorded, codes=codes, now=now, lookup=lookup
            )
            summary.cases.update(applied.results)
            summary.inbox_rows_applied += applied.rows
    for delivery, row_id in zip(deliveries, ids, strict=True):
        _count(summary, delivery.kind, row_id is not None)
    return summary


def _count(summary: BackfillSummary, kind: str, new: bool) -> None:
    if not new:
        summary.skip(DUPLICATE)
    elif kind == "ignored":
        summary.skip(IGNORED)
    else:
        summary.recorded[kind] += 1


def _count_dry(
    sessions: sessionmaker[Session],
    parsed: list[Parsed],
    summary: BackfillSummary,
    seen: set[tuple[str, str]],
) -> None:
    keys = [(p.gateway, p.result.event_id[:255]) for p in parsed]
    with sessions() as session:
        stored = recorded_events(session=session, event_ids=[event_id for _, event_id in keys])
    for item, key in zip(parsed, keys, strict=True):
        new = key not in stored and key not in seen
        seen.add(key)
        _count(summary, _kind(item.result), new)


ProgressHook = Callable[[int, int, BackfillSummary], None]


def run_backfill(
    *,
    export: Export,
    sessions: sessionmaker[Session],
    codes: FailureCodes,
    clock_now: Callable[[], datetime],
    since: datetime | None = None,
    until: datetime | None = None,
    dry_run: bool = False,
    chunk_lines: int = DEFAULT_CHUNK,
    ingest_batch_size: int = DRAIN_BATCH,
    lookup: CustomerLookup | None = None,
    on_progress: ProgressHook | None = None,
    marker: Marker = plain_marker,
) -> BackfillSummary:
    """Read the export chunk by chunk; apply what waits in the inbox, then record the chunk and
    apply its new events to cases in the same transaction.

    ``on_progress(bytes_done, bytes_total, summary_so_far)`` is called after each chunk."""
    check_range(since, until)
    total = BackfillSummary(
        path=str(export.path),
        format=export.description,
        dry_run=dry_run,
        ignored_columns=export.ignored_columns,
    )
    seen: set[tuple[str, str]] = set()
    position, done = export.start, False

    def drain_waiting() -> None:
        # Rows already waiting (live deliveries) are applied before the chunk's, as ingest
        # would have applied them: the order a success and a failure meet in matters.
        applied = drain(
            sessions=sessions,
            codes=codes,
            clock_now=clock_now,
            batch_size=ingest_batch_size,
            lookup=lookup,
        )
        total.cases.update(applied.results)
        total.inbox_rows_applied += applied.rows

    while not done:
        items, position, done = read_chunk(export, position, chunk_lines)
        if not dry_run:
            drain_waiting()
        total.add(
            record_chunk(
                sessions=sessions,
                items=items,
                now=clock_now(),
                since=since,
                until=until,
                dry_run=dry_run,
                seen=seen,
                marker=marker,
                codes=None if dry_run else codes,
                lookup=lookup,
            )
        )
        if on_progress is not None:
            on_progress(position.offset, export.size, total)
    if not dry_run:
        drain_waiting()
    return total

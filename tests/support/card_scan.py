"""An independent card-number scanner for the hardening proofs, and the places it reads.

The definition is the PAN guard's own (``recovery/domain/pan.py``): a run of ASCII digits in
which single spaces or dashes may separate digits, redacted whole when any 13-19 digit window
of it passes the Luhn check. The code below shares nothing with the guard, so a mistake in the
guard cannot hide itself from the check.

A second, stricter check needs no definition at all: the digits of every planted card number
are searched in the digits-only projection of each source, so a number that survived split by
any separator (a dot, a no-break space, a line break, a JSON escape) is found too.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Maximal digit runs with single space/dash separators between digits.
_RUN = re.compile(r"[0-9]+(?:[ \-][0-9]+)*")
_NOT_DIGIT = re.compile(r"[^0-9]+")
# A UUID in its canonical text form: random hex, not account data. Prefect names every object
# by one and contact ids are UUIDs; one in a few hundred holds a Luhn-valid 13-digit stretch
# of decimal digits by chance, so they are taken out before scanning (and counted).
_UUID = re.compile(
    r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"(?![0-9A-Za-z])"
)


# In a database file's raw bytes the columns of a record sit side by side with no separator,
# so a timestamp's last digits run on into the next column's digits ("...17:00:00.000000" then
# "2026-12-01 ..."), and a UUID into whatever follows it. There, before the Luhn scan, UUIDs are
# set aside wherever they stand and so are timestamps in the form SQLite stores them. The
# planted-digits check below is made on the untouched bytes.
_UUID_ANYWHERE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
# Hex digests (the Braintree adapter's event ids are 40 hex digits of a SHA-256): derived by
# hashing, not account data, and as likely as UUIDs to hold a Luhn-valid decimal stretch.
_DIGEST = re.compile(r"(?<![0-9A-Za-z])(?=[0-9a-f]*[a-f])[0-9a-f]{32,64}(?![0-9A-Za-z])")
_DIGEST_ANYWHERE = re.compile(r"(?=[0-9a-f]*[a-f])[0-9a-f]{32,}")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
)
# A file's free space and its write-ahead log keep pieces of records that were moved or
# rewritten, cut at any byte: "...8af22276-3b1c-4873-be39-c5845762" with the rest of the UUID
# overwritten, or "2026-12-07 14" with the rest of the timestamp gone. There, a run of hex
# groups joined by dashes that holds a hex letter is a piece of a UUID (a card number spelled
# with dashes holds none), and a calendar date with what is left of its time is a piece of a
# timestamp. Both are set aside in raw bytes only; the planted-digits check still reads them.
_UUID_PIECE = re.compile(
    r"(?=[0-9a-fA-F-]*[a-fA-F])(?:[0-9a-fA-F]{1,8}+(?:-[0-9a-fA-F]{4}+){1,3}"
    r"(?:-[0-9a-fA-F]{1,12}+)?|[0-9a-fA-F]{1,8}+-[0-9a-fA-F]{1,4}+)(?![0-9a-fA-F])"
)
_TIMESTAMP_PIECE = re.compile(
    r"(?:19|20)[0-9]{2}-[01][0-9]-[0-3][0-9]"
    r"(?:[ T][0-9]{1,2}(?::[0-9]{0,2}){0,2}(?:\.[0-9]{0,6})?)?"
)


def luhn_ok(digits: str) -> bool:
    """Luhn from the right: every second digit doubled, nines cast out."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_runs(text: str) -> list[str]:
    """Every run of ``text`` that the guard's definition calls a card number."""
    found: list[str] = []
    for match in _RUN.finditer(text):
        run = match.group(0)
        digits = run.replace(" ", "").replace("-", "")
        if len(digits) < 13:
            continue
        if any(
            luhn_ok(digits[start : start + size])
            for size in range(13, min(19, len(digits)) + 1)
            for start in range(len(digits) - size + 1)
        ):
            found.append(run)
    return found


def mask(run: str) -> str:
    """A finding as PCI allows it to be shown: the first six and last four digits."""
    digits = re.sub(r"[^0-9]", "", run)
    return f"{digits[:6]}{'*' * max(0, len(digits) - 10)}{digits[-4:]}"


@dataclass
class Finding:
    source: str
    masked: str
    context: str


@dataclass
class Scan:
    """Accumulates what was read and what was found, source by source."""

    planted: frozenset[str] = frozenset()
    findings: list[Finding] = field(default_factory=list)
    planted_hits: list[Finding] = field(default_factory=list)
    figures: Counter[str] = field(default_factory=Counter)
    uuids_skipped: int = 0
    digests_skipped: int = 0
    timestamps_skipped: int = 0

    def text(
        self,
        source: str,
        text: str,
        *,
        unit: str = "lines",
        count: int | None = None,
        raw: bool = False,
    ) -> None:
        """Scan ``text`` from ``source``; ``count`` of ``unit`` (rows, lines) for the figures;
        ``raw``: the bytes of a database file, whose columns run into each other."""
        self.figures[f"{source} {unit}"] += text.count("\n") + 1 if count is None else count
        self.figures[f"{source} bytes"] += len(text)
        cleaned, skipped = (_UUID_ANYWHERE if raw else _UUID).subn(" ", text)
        self.uuids_skipped += skipped
        cleaned, digests = (_DIGEST_ANYWHERE if raw else _DIGEST).subn(" ", cleaned)
        self.digests_skipped += digests
        if raw:
            cleaned, stamps = _TIMESTAMP.subn(" ", cleaned)
            self.timestamps_skipped += stamps
            cleaned, pieces = _UUID_PIECE.subn(" ", cleaned)
            self.uuids_skipped += pieces
            cleaned, pieces = _TIMESTAMP_PIECE.subn(" ", cleaned)
            self.timestamps_skipped += pieces
        for run in card_runs(cleaned):
            where = cleaned.find(run)
            context = cleaned[max(0, where - 60) : where + len(run) + 60]
            self.findings.append(Finding(source, mask(run), context.replace(run, f"<{mask(run)}>")))
        if self.planted:
            digits = _NOT_DIGIT.sub("", text)
            for pan in self.planted:
                if pan in digits:
                    self.planted_hits.append(Finding(source, mask(pan), "digits-only projection"))

    def blob(self, source: str, data: bytes) -> None:
        """Raw bytes (a database file): scanned as Latin-1 so every byte maps to a character."""
        self.text(source, data.decode("latin-1"), unit="files", count=1, raw=True)

    def rows(self, source: str, rows: Iterable[Any]) -> None:
        materialised = [repr(tuple(row)) for row in rows]
        self.text(source, "\n".join(materialised), unit="rows", count=len(materialised))

    @property
    def sequences_found(self) -> int:
        return len(self.findings) + len(self.planted_hits)

    def report(self) -> str:
        lines = [f"  {name}: {value}" for name, value in sorted(self.figures.items())]
        lines.append(f"  UUIDs set aside before the Luhn scan: {self.uuids_skipped}")
        lines.append(f"  hex digests set aside before the Luhn scan: {self.digests_skipped}")
        lines.append(f"  timestamps set aside in database files' bytes: {self.timestamps_skipped}")
        lines.append(f"  card-number sequences found (guard's definition): {len(self.findings)}")
        lines.append(f"  planted digit strings found (any separator): {len(self.planted_hits)}")
        for finding in (self.findings + self.planted_hits)[:20]:
            lines.append(f"    {finding.source}: {finding.masked} in {finding.context!r}")
        return "\n".join(lines)


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite[+driver]:///path`` URL."""
    if not url.startswith("sqlite"):
        raise ValueError(f"not a SQLite URL: {url}")
    return Path(url.split(":///", 1)[1])


def scan_sqlite(scan: Scan, source: str, path: Path) -> int:
    """Every row of every table of a SQLite database (read-only), then its files' bytes
    (main file, WAL and shared memory). Returns the number of tables read."""
    # Read a consistent copy (the backup API takes the read lock only briefly), so a long scan
    # never makes the live server's writers wait.
    source_connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    connection = sqlite3.connect(":memory:")
    try:
        source_connection.backup(connection)
    finally:
        source_connection.close()
    try:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        for name in names:
            rows = connection.execute(f'SELECT * FROM "{name}"').fetchall()
            scan.rows(f"{source} table rows", rows)
            scan.figures[f"{source} tables"] += 1
    finally:
        connection.close()
    for suffix in ("", "-wal", "-shm"):
        file = path.with_name(path.name + suffix)
        if file.exists():
            scan.blob(f"{source} file bytes", file.read_bytes())
    return len(names)


def scan_files(scan: Scan, source: str, root: Path, patterns: Iterable[str]) -> None:
    """Every file under ``root`` matching one of ``patterns`` (glob), as bytes."""
    if not root.exists():
        return
    seen: set[Path] = set()
    for pattern in patterns:
        for file in sorted(root.rglob(pattern)):
            if file.is_file() and file not in seen:
                seen.add(file)
                scan.blob(source, file.read_bytes())


def dumps(value: Any) -> str:
    """JSON of anything a test collects (models, datetimes, sets), for scanning."""
    return json.dumps(value, default=_default, sort_keys=True)


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return repr(value)

"""``recovery backfill``: an export goes through the webhook path into cases, exactly once.

A generated export of 10,000 lines (10% re-deliveries, 1% malformed) gives exact counts, and a
second run changes nothing; bad CSV headers refuse the file before anything is written; the
time range, the dry run, a crash half-way and a planted card number behave as documented.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from recovery.cli import app
from recovery.domain.models import CaseStatus, Gateway, Outcome
from recovery.domain.taxonomy import load_failure_codes
from recovery.gateways.stripe import normalise
from recovery.services.backfill import open_export, run_backfill
from recovery.store.db import make_engine, make_sessionmaker, transaction
from recovery.store.inbox import record_delivery
from recovery.store.tables import Base, CaseRow, HistoryRow, InboxRow, PaymentSuccessRow
from tests.factories import envelope, intent_failed, invoice_failed

T0 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
PAN = "4000056655665556"
IGNORED_TYPES = ("invoice.created", "invoice.finalized", "customer.updated", "charge.refunded")


def compact(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


def other_event(event_id: str, event_type: str, created: datetime) -> dict[str, Any]:
    """An event of a type the system does not act on (most of a real account's events)."""
    return envelope(event_id, event_type, {"id": f"obj_{event_id}", "object": "x"}, created)


@dataclass
class Planted:
    lines: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)  # expected messages, in line order


def big_export(seed: int = 7) -> Planted:
    """10,000 lines: 8,900 distinct events in time order (2,400 invoice failures, 400 payment
    intent failures of the first 400 invoices, 600 invoice.paid of invoices 1000-1599, and 5,500
    events of other types, as in a real account's export), 1,000 copies of earlier lines and 100
    malformed lines at random places."""
    rnd = random.Random(seed)
    timed: list[tuple[datetime, str]] = []
    for i in range(2400):
        at = T0 + timedelta(minutes=i)
        timed.append(
            (at, compact(invoice_failed(event_id=f"evt_f{i}", invoice_id=f"in_{i}", created=at)))
        )
    for i in range(400):
        at = T0 + timedelta(minutes=i, seconds=30)
        event = intent_failed(
            event_id=f"evt_pi{i}", intent_id=f"pi_{i}", invoice_id=f"in_{i}", created=at
        )
        timed.append((at, compact(event)))
    for i in range(1000, 1600):
        at = T0 + timedelta(days=3, minutes=i)
        event = invoice_failed(
            event_id=f"evt_p{i}", invoice_id=f"in_{i}", created=at, event_type="invoice.paid"
        )
        timed.append((at, compact(event)))
    for i in range(5500):
        at = T0 + timedelta(minutes=i, seconds=45)
        timed.append((at, compact(other_event(f"evt_o{i}", IGNORED_TYPES[i % 4], at))))
    timed.sort(key=lambda pair: pair[0])
    unique = [line for _, line in timed]
    assert len(unique) == 8900

    # Extra lines go after a given index of the unique sequence; a copy after its original.
    after: dict[int, list[tuple[str, str | None]]] = {}
    for _ in range(1000):
        source = rnd.randrange(len(unique))
        after.setdefault(rnd.randrange(source, len(unique)), []).append((unique[source], None))
    broken = T0 - timedelta(days=1)
    bad: list[tuple[str, str]] = []
    for k in range(50):
        full = compact(invoice_failed(event_id=f"evt_t{k}", invoice_id=f"in_t{k}", created=broken))
        bad.append((full[: rnd.randrange(10, len(full) - 1)], "malformed JSON"))
    for k in range(50):
        event = other_event(f"evt_w{k}", "invoice.payment_failed", broken)
        if k % 3 == 0:
            event["created"] = "2026-10-01T09:00:00Z"
            reason = "event has no integer 'created' timestamp"
        elif k % 3 == 1:
            event["id"] = 4200 + k
            reason = "event has no string 'id'"
        else:
            event["data"] = {"object": ["not", "an", "object"]}
            reason = "event has no 'data.object'"
        bad.append((compact(event), reason))
    for line, reason in bad:
        after.setdefault(rnd.randrange(len(unique)), []).append((line, reason))

    planted = Planted()
    for index, line in enumerate(unique):
        planted.lines.append(line)
        for extra, reason in after.get(index, []):
            planted.lines.append(extra)
            if reason is not None:
                planted.malformed.append(f"line {len(planted.lines)}: {reason}")
    assert len(planted.lines) == 10_000 and len(planted.malformed) == 100
    return planted


@pytest.fixture(scope="module")
def export_10k(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Planted]:
    planted = big_export()
    path = tmp_path_factory.mktemp("exports") / "events.jsonl"
    path.write_text("\n".join(planted.lines) + "\n")
    return path, planted


@pytest.fixture
def store(store_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI pointed at a migrated store; a customer lookup would fail at once (no network)."""
    monkeypatch.setenv("RECOVERY_DATABASE_URL", store_url)
    monkeypatch.setenv("RECOVERY_STRIPE_API_BASE", "http://127.0.0.1:9")
    return store_url


@pytest.fixture
def store_sessions(store: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(store)
    yield make_sessionmaker(engine)
    engine.dispose()


def store_url_is_sqlite(sessions: sessionmaker[Session]) -> bool:
    return bool(sessions.kw["bind"].dialect.name == "sqlite")


def backfill(*args: str) -> tuple[int, dict[str, Any] | None, str]:
    result = CliRunner().invoke(app, ["backfill", *args, "--json"])
    document = json.loads(result.stdout) if result.exit_code == 0 else None
    return result.exit_code, document, result.stderr


def snapshot(sessions: sessionmaker[Session]) -> dict[str, object]:
    with sessions() as s:
        return {
            "inbox": s.scalar(select(func.count()).select_from(InboxRow)),
            "cases": s.scalar(select(func.count()).select_from(CaseRow)),
            "history": s.scalar(select(func.count()).select_from(HistoryRow)),
            "successes": s.scalar(select(func.count()).select_from(PaymentSuccessRow)),
            "last_change": s.scalar(select(func.max(CaseRow.updated_at))),
        }


def test_ten_thousand_lines_exact_counts_and_a_second_run_changes_nothing(
    export_10k: tuple[Path, Planted], store_sessions: sessionmaker[Session]
) -> None:
    path, planted = export_10k
    code, first, err = backfill(str(path))
    assert code == 0, err
    assert first is not None
    assert first["records"] == 10_000
    assert first["recorded"] == {"failure": 2800, "success": 600, "card_updated": 0}
    assert first["skipped"] == {
        "duplicate event": 1000,
        "outside the time range": 0,
        "ignored event type": 5500,
        "malformed": 100,
    }
    assert first["malformed"] == planted.malformed
    assert first["cases"] == {"opened": 2400, "updated": 400, "closed": 600}
    assert first["inbox_rows_applied"] == 3400
    with store_sessions() as s:
        assert s.scalar(select(func.count()).select_from(InboxRow)) == 8900
        assert s.scalar(select(func.count()).where(InboxRow.processed_at.is_(None))) == 0
        assert s.scalar(select(func.count()).select_from(CaseRow)) == 2400
        recovered = select(func.count()).where(CaseRow.outcome == Outcome.recovered.value)
        assert s.scalar(recovered) == 600
        assert s.scalar(select(func.count()).where(CaseRow.status == CaseStatus.open.value)) == 1800
    before = snapshot(store_sessions)

    code, second, err = backfill(str(path))
    assert code == 0, err
    assert second is not None
    assert second["recorded"] == {"failure": 0, "success": 0, "card_updated": 0}
    assert second["skipped"] == {
        "duplicate event": 9900,
        "outside the time range": 0,
        "ignored event type": 0,
        "malformed": 100,
    }
    assert second["cases"] == {} and second["inbox_rows_applied"] == 0
    assert snapshot(store_sessions) == before


def test_text_summary_names_each_reason_with_exact_counts(
    tmp_path: Path, store_sessions: sessionmaker[Session]
) -> None:
    lines = [
        compact(invoice_failed(event_id="evt_1", invoice_id="in_1", created=T0)),
        compact(invoice_failed(event_id="evt_1", invoice_id="in_1", created=T0)),
        compact(other_event("evt_2", "customer.created", T0)),
        '{"id": "evt_3", "type": "invoice.payment_failed", "created": 17',
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["backfill", str(path)])
    assert result.exit_code == 0, result.stderr
    out = result.stdout.splitlines()
    assert "recorded 1: 1 failures, 0 successes" in out
    assert "skipped 3:" in out
    for expected in (
        "  duplicate event: 1",
        "  outside the time range: 0",
        "  ignored event type: 1",
        "  malformed: 1",
        "    line 4: malformed JSON",
    ):
        assert expected in out
    assert any(line.startswith("cases: opened 1") for line in out)


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


CSV_HEADER = (
    "event_id,business_key,occurred_at,phone,country,state,postal_code,time_zone,customer_ref,"
    "customer_name,failure_code,decline_code,advice_code,amount,currency,attempt_count"
)


def test_csv_without_a_required_column_is_refused_before_anything_is_written(
    tmp_path: Path, store_sessions: sessionmaker[Session]
) -> None:
    header = CSV_HEADER.replace("occurred_at,", "")
    path = write_csv(tmp_path / "failures.csv", header, ["ev_1,inv_1,+14155552671"])
    before = snapshot(store_sessions)
    code, document, err = backfill(str(path))
    assert code == 2
    assert "CSV header lacks column occurred_at" in err
    assert document is None
    assert (
        snapshot(store_sessions)
        == before
        == {
            "inbox": 0,
            "cases": 0,
            "history": 0,
            "successes": 0,
            "last_change": None,
        }
    )


def test_csv_rows_bad_values_skip_only_their_row(
    tmp_path: Path, store_sessions: sessionmaker[Session]
) -> None:
    rows = [
        "ev_1,inv_1,2026-10-01T09:00:00-04:00,+13055550123,US,FL,33101,,cus_1,Ana,"
        "card_declined,insufficient_funds,,19.99,USD,1",
        "ev_2,inv_2,2026-10-01T09:00:00-04:00,+13055550124,US,FL,,,,,,,,abc,USD,1",
        "ev_3,inv_3,2026-10-01T09:00:00,+13055550125,US,FL,,,,,,,,5,USD,1",
        "ev_4,inv_4,2026-10-01T10:00:00Z,,US,,,,,,expired_card,,,7.50,eur,",
        "ev_1,inv_1,2026-10-01T09:00:00-04:00,+13055550123,US,FL,33101,,cus_1,Ana,,,,19.99,USD,1",
        ",".join(["ev_5", "inv_5", "2026-10-01T10:00:00Z", *[""] * 13, "extra", "more"]),
    ]
    path = write_csv(tmp_path / "failures.csv", CSV_HEADER, rows)
    code, document, err = backfill(str(path))
    assert code == 0, err
    assert document is not None
    assert document["records"] == 6
    assert document["recorded"] == {"failure": 2, "success": 0, "card_updated": 0}
    assert document["skipped"]["duplicate event"] == 1
    assert document["skipped"]["malformed"] == 3
    assert document["malformed"] == [
        "line 3: field amount: Input should be a valid decimal",
        "line 4: field occurred_at: Input should have timezone info",
        "line 7: 18 fields, the header has 16",
    ]
    assert document["cases"] == {"opened": 2}
    with store_sessions() as s:
        cases = {c.business_key: c for c in s.scalars(select(CaseRow))}
    assert set(cases) == {"inv_1", "inv_4"}
    assert cases["inv_1"].gateway == "generic"
    assert str(cases["inv_1"].amount).startswith("19.99") and cases["inv_1"].currency == "usd"
    assert cases["inv_1"].category == "insufficient_funds"
    assert cases["inv_4"].status == CaseStatus.needs_contact_info.value


def test_csv_gateway_column_joins_the_gateways_cases(
    tmp_path: Path, store_sessions: sessionmaker[Session]
) -> None:
    live = invoice_failed(event_id="evt_live", invoice_id="in_77", created=T0)
    first = tmp_path / "live.jsonl"
    first.write_text(compact(live) + "\n")
    assert backfill(str(first))[0] == 0
    path = write_csv(
        tmp_path / "stripe.csv",
        "gateway,event_id,business_key,occurred_at,type,amount,currency",
        [
            "stripe,evt_live,in_77,2026-10-01T09:00:00Z,,20.00,usd",
            "stripe,evt_paid,in_77,2026-10-04T09:00:00Z,payment.succeeded,20.00,usd",
            "paypal2,evt_x,in_78,2026-10-04T09:00:00Z,,1,usd",
        ],
    )
    code, document, err = backfill(str(path))
    assert code == 0, err
    assert document is not None
    assert document["recorded"] == {"failure": 0, "success": 1, "card_updated": 0}
    assert document["skipped"]["duplicate event"] == 1
    choices = ", ".join(g.value for g in Gateway)
    assert document["malformed"] == [f"line 4: field gateway: expected one of {choices}"]
    assert document["cases"] == {"closed": 1}
    with store_sessions() as s:
        case = s.scalars(select(CaseRow)).one()
    assert (case.gateway, case.outcome) == ("stripe", Outcome.recovered.value)


def test_since_and_until_filter_on_the_event_time(
    tmp_path: Path, store_sessions: sessionmaker[Session]
) -> None:
    times = [T0 + timedelta(hours=h) for h in range(6)]  # 09:00 .. 14:00 UTC
    path = tmp_path / "events.jsonl"
    path.write_text(
        "\n".join(
            compact(invoice_failed(event_id=f"evt_{h}", invoice_id=f"in_{h}", created=at))
            for h, at in enumerate(times)
        )
        + "\n"
    )
    # 10:00 inclusive, 13:00 exclusive, written with another offset.
    code, document, err = backfill(
        str(path), "--since", "2026-10-01T06:00:00-04:00", "--until", "2026-10-01T13:00:00Z"
    )
    assert code == 0, err
    assert document is not None
    assert document["recorded"]["failure"] == 3
    assert document["skipped"]["outside the time range"] == 3
    with store_sessions() as s:
        keys = set(s.scalars(select(CaseRow.business_key)))
    assert keys == {"in_1", "in_2", "in_3"}
    # A later run for the rest completes the file; what was recorded is a duplicate.
    code, document, err = backfill(str(path), "--since", "2026-10-01")
    assert code == 0, err
    assert document is not None
    assert document["recorded"]["failure"] == 3
    assert document["skipped"]["duplicate event"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-10-01T09:00:00"], "has no UTC offset"),
        (["--since", "yesterday"], "is not an ISO 8601"),
        (["--since", "2026-10-02", "--until", "2026-10-01"], "--since must be before --until"),
    ],
)
def test_bad_time_arguments_exit_2(
    tmp_path: Path, store: str, args: list[str], message: str
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("")
    code, _, err = backfill(str(path), *args)
    assert code == 2 and message in err


def test_unreadable_file_and_multiline_document_exit_2(tmp_path: Path, store: str) -> None:
    code, _, err = backfill(str(tmp_path / "missing.jsonl"))
    assert code == 2 and "cannot read" in err
    pretty = tmp_path / "events.json"
    page = {"object": "list", "data": [other_event("evt_1", "customer.created", T0)]}
    pretty.write_text(json.dumps(page, indent=2))
    code, _, err = backfill(str(pretty))
    assert code == 2 and "jq -c '.data[]'" in err


def test_list_pages_one_per_line(tmp_path: Path, store_sessions: sessionmaker[Session]) -> None:
    page = {
        "object": "list",
        "has_more": False,
        "data": [
            invoice_failed(event_id="evt_a", invoice_id="in_a", created=T0),
            invoice_failed(event_id="evt_b", invoice_id="in_b", created=T0),
            "not an event",
        ],
    }
    path = tmp_path / "pages.jsonl"
    path.write_text("\n" + compact(page) + "\n")
    code, document, err = backfill(str(path))
    assert code == 0, err
    assert document is not None
    assert document["records"] == 3
    assert document["recorded"]["failure"] == 2
    assert document["malformed"] == ["line 2 item 3: not a JSON object"]


def test_dry_run_reports_and_writes_nothing(
    export_10k: tuple[Path, Planted], tmp_path: Path, store_sessions: sessionmaker[Session]
) -> None:
    path, planted = export_10k
    head = tmp_path / "head.jsonl"
    head.write_text("\n".join(planted.lines[:300]) + "\n")
    assert backfill(str(head))[0] == 0
    before = snapshot(store_sessions)
    code, document, err = backfill(str(path), "--dry-run")
    assert code == 0, err
    assert document is not None and document["dry_run"] is True
    # The head's events are already stored: they count as duplicates, the rest as new.
    stored = before["inbox"]
    assert isinstance(stored, int) and 0 < stored < 300
    new = sum(document["recorded"].values()) + document["skipped"]["ignored event type"]
    assert new == 8900 - stored
    assert document["skipped"]["duplicate event"] == 1000 + stored
    assert document["skipped"]["malformed"] == 100
    assert document["skipped"]["outside the time range"] == 0
    assert document["cases"] == {} and document["inbox_rows_applied"] == 0
    assert snapshot(store_sessions) == before


def test_a_crash_half_way_keeps_the_prefix_and_a_rerun_completes_it(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    lines = [
        compact(invoice_failed(event_id=f"evt_{i}", invoice_id=f"in_{i}", created=T0))
        for i in range(30)
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    codes = load_failure_codes(None)

    def crash(done: int, total: int, _summary: object) -> None:
        raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        run_backfill(
            export=open_export(path),
            sessions=sessions,
            codes=codes,
            clock_now=lambda: T0,
            chunk_lines=10,
            on_progress=crash,
        )
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(CaseRow)) == 10
    summary = run_backfill(
        export=open_export(path),
        sessions=sessions,
        codes=codes,
        clock_now=lambda: T0,
        chunk_lines=10,
    )
    assert summary.skipped["duplicate event"] == 10
    assert summary.recorded["failure"] == 20 and summary.cases == Counter(opened=20)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(CaseRow)) == 30
        assert s.scalar(select(func.count()).select_from(InboxRow)) == 30


def test_a_planted_card_number_never_reaches_the_store(
    tmp_path: Path,
    store_sessions: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    spaced = "4000 0566 5566 5556"
    event = invoice_failed(event_id="evt_pan", invoice_id="in_pan", created=T0, name=f"Jo {spaced}")
    event["data"]["object"]["metadata"] = {"note": f"card {PAN}"}
    event["data"]["object"]["description"] = PAN
    page = {
        "object": "list",
        "data": [
            invoice_failed(
                event_id="evt_pan2", invoice_id="in_pan2", created=T0, name=f"card-{PAN}"
            )
        ],
    }
    path = tmp_path / "events.jsonl"
    path.write_text(compact(event) + "\n" + compact(page) + "\n")
    csv_path = write_csv(
        tmp_path / "failures.csv",
        "event_id,business_key,occurred_at,customer_name,phone,amount,currency",
        [f"ev_c,inv_c,2026-10-01T09:00:00Z,Card {PAN},+14155552671,5.00,usd"],
    )
    with caplog.at_level(logging.DEBUG):
        code, document, err = backfill(str(path))
        assert code == 0, err
        assert document is not None and document["pan_redacted"] == 2
        code, csv_document, err = backfill(str(csv_path))
        assert code == 0, err
        assert csv_document is not None and csv_document["pan_redacted"] == 1
    assert document["cases"] == {"opened": 2} and csv_document["cases"] == {"opened": 1}
    with store_sessions() as s:
        flagged = s.scalars(select(InboxRow.event_id).where(InboxRow.pan_redacted.is_(True)))
        assert set(flagged) == {"evt_pan", "evt_pan2", "ev_c"}
        dump = []
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)):
                dump.append(json.dumps([str(v) for v in row]))
    blob = "\n".join(dump)
    assert "in_pan" in blob  # the dump holds the events, without the number
    for form in (PAN, spaced):
        assert form not in blob
    if store_url_is_sqlite(store_sessions):
        database = Path(str(store_sessions.kw["bind"].url.database))
        for file in (database, Path(f"{database}-wal")):
            if file.exists():
                assert PAN.encode() not in file.read_bytes()
    assert PAN not in caplog.text and spaced not in caplog.text
    assert PAN not in json.dumps(document) + json.dumps(csv_document)


def test_identities_the_store_cannot_hold_are_malformed_lines(
    tmp_path: Path, store_sessions: sessionmaker[Session]
) -> None:
    events = [
        invoice_failed(event_id="evt_ok", invoice_id="in_ok", created=T0),
        invoice_failed(event_id="evt_" + "x" * 300, invoice_id="in_long_id", created=T0),
        invoice_failed(event_id="evt_\x00nul", invoice_id="in_nul_id", created=T0),
        invoice_failed(event_id="evt_key", invoice_id="in_" + "k" * 300, created=T0),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(compact(e) for e in events) + "\n")
    code, document, err = backfill(str(path))
    assert code == 0, err
    assert document is not None
    assert document["malformed"] == [
        "line 2: event id longer than 255 characters",
        "line 3: event id holds a NUL or an unpaired surrogate",
        "line 4: event payment reference longer than 255 characters",
    ]
    assert document["cases"] == {"opened": 1}
    with store_sessions() as s:
        assert list(s.scalars(select(InboxRow.event_id))) == ["evt_ok"]


def test_long_numeric_ids_that_look_like_card_numbers_stay_distinct(
    tmp_path: Path, store_sessions: sessionmaker[Session]
) -> None:
    # Snowflake-style ids: each holds a Luhn-valid stretch, so each is redacted, to a marker
    # of its own (and the same marker the receiver would write: a redelivery is a duplicate).
    first, second = "1798423145923002369", "1798423145923002370"
    events = [
        invoice_failed(event_id=first, invoice_id=first, created=T0),
        invoice_failed(event_id=second, invoice_id=second, created=T0),
        invoice_failed(event_id=first, invoice_id=first, created=T0),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(compact(e) for e in events) + "\n")
    code, document, err = backfill(str(path))
    assert code == 0, err
    assert document is not None and document["cases"] == {"opened": 2}
    assert document["skipped"]["duplicate event"] == 1
    with store_sessions() as s:
        ids = list(s.scalars(select(InboxRow.event_id)))
    assert len(set(ids)) == 2
    assert all(i.startswith("[redacted-card-number:") for i in ids)


def test_a_success_waiting_in_the_inbox_meets_the_export_s_older_failure_first(
    tmp_path: Path, store_sessions: sessionmaker[Session]
) -> None:
    """A live success not yet ingested is applied before the export's failure of the same
    payment, as ingest would order them: the older failure then opens nothing."""
    paid = invoice_failed(
        event_id="evt_live_paid",
        invoice_id="in_order",
        created=T0 + timedelta(hours=1),
        event_type="invoice.paid",
    )
    success = normalise(paid)
    with transaction(store_sessions) as session:
        assert record_delivery(
            session=session,
            gateway="stripe",
            event_id="evt_live_paid",
            event_type="invoice.paid",
            kind="success",
            payload=success.model_dump(mode="json"),
            pan_redacted=False,
            now=T0 + timedelta(hours=1),
        )
    path = tmp_path / "older.jsonl"
    path.write_text(compact(invoice_failed(event_id="evt_old", invoice_id="in_order", created=T0)))
    code, document, err = backfill(str(path))
    assert code == 0, err
    assert document is not None
    assert document["cases"] == {"ignored": 2}  # the success: nothing to close; the failure
    with store_sessions() as s:
        assert s.scalar(select(func.count()).select_from(CaseRow)) == 0
        assert s.scalar(select(func.count()).where(InboxRow.processed_at.is_(None))) == 0


def test_the_middleware_shape_is_backfilled_once(
    tmp_path: Path, store_sessions: sessionmaker[Session]
) -> None:
    body = {
        "transaction_id": "txn_77",
        "customer_phone_number": "(305) 555-0143",
        "failure_reason": "Insufficient Funds",
        "original_amount": "12.50",
        "occurred_at": T0.isoformat(),
    }
    path = tmp_path / "middleware.jsonl"
    path.write_text(json.dumps(body) + "\n" + json.dumps(body) + "\n")
    code, document, err = backfill(str(path))
    assert code == 0, err
    assert document is not None
    assert document["recorded"]["failure"] == 1
    assert document["skipped"]["duplicate event"] == 1
    assert document["cases"] == {"opened": 1}
    with store_sessions() as s:
        case = s.scalars(select(CaseRow)).one()
        assert (case.gateway, case.business_key, case.category) == (
            "generic",
            "txn_77",
            "insufficient_funds",
        )

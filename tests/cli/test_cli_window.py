"""``recovery window`` and ``recovery suppress``: the JSON contract and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recovery.cli import app
from recovery.store.db import make_engine
from recovery.store.tables import Base

PHONE = "+14155550123"  # Los Angeles
KEYS = {"permitted", "next_permitted_at", "timezones", "jurisdictions", "reasons"}


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)  # no .env of the working folder
    url = f"sqlite:///{tmp_path / 'data' / 'store.db'}"
    monkeypatch.setenv("RECOVERY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RECOVERY_DATABASE_URL", url)
    monkeypatch.delenv("RECOVERY_CLOCK", raising=False)
    monkeypatch.delenv("RECOVERY_CALLING_RULES_FILE", raising=False)
    monkeypatch.delenv("RECOVERY_CALLING_RULES_PROFILE", raising=False)
    return url


@pytest.fixture
def with_tables(store_url: str) -> str:
    engine = make_engine(store_url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return store_url


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def window_json(*args: str) -> dict[str, object]:
    code, out, err = run("window", "--json", *args)
    assert code == 0, err
    document = json.loads(out)
    assert set(document) == KEYS
    return document


def test_refused_at_dawn_with_the_next_window(store_url: str) -> None:
    document = window_json("--phone", PHONE, "--at", "2025-06-11T09:00:00-04:00")
    assert document == {
        "permitted": False,
        "next_permitted_at": "2025-06-11T15:00:00+00:00",
        "timezones": ["America/Los_Angeles"],
        "jurisdictions": ["US", "US-CA"],
        "reasons": ["US hours 08:00-21:00 in America/Los_Angeles: 06:00 local is outside"],
    }


def test_permitted_answers_the_instant_itself_in_utc(store_url: str) -> None:
    document = window_json(
        "--phone", "+13055550123", "--state", "GA", "--at", "2025-06-11T12:00:00-04:00"
    )
    assert document["permitted"] is True
    assert document["next_permitted_at"] == "2025-06-11T16:00:00+00:00"
    assert document["jurisdictions"] == ["US", "US-FL", "US-GA"]
    assert document["reasons"] == []


def test_history_options(store_url: str) -> None:
    attempts = [a for h in (14, 16, 18) for a in ("--attempt", f"2025-06-11T{h}:00:00Z")]
    document = window_json("--phone", "+13055550123", "--at", "2025-06-11T19:00:00Z", *attempts)
    assert document["permitted"] is False
    assert document["next_permitted_at"] == "2025-06-12T14:00:00+00:00"
    conversation = window_json(
        "--phone",
        "+13055550123",
        "--at",
        "2025-06-11T19:00:00Z",
        "--conversation",
        "2025-06-11T18:00:00Z",
        "--callback-at",
        "2025-06-12T15:30:00Z",
    )
    assert conversation["next_permitted_at"] == "2025-06-12T15:30:00+00:00"


def test_at_defaults_to_the_settings_clock(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_CLOCK", "virtual:2025-06-11T13:00:00+00:00@1")
    document = window_json("--phone", PHONE)
    assert document["permitted"] is False
    assert document["next_permitted_at"] == "2025-06-11T15:00:00+00:00"


def test_unknown_zone_is_an_answer(store_url: str) -> None:
    document = window_json("--phone", "+18005550123", "--at", "2025-06-11T16:00:00Z")
    assert (document["permitted"], document["next_permitted_at"]) == (False, None)
    assert document["timezones"] == []
    assert str(document["reasons"][0]).startswith("timezone_unknown: ")  # type: ignore[index]


def test_a_missing_store_means_not_suppressed_and_creates_nothing(
    store_url: str, tmp_path: Path
) -> None:
    window_json("--phone", PHONE, "--at", "2025-06-11T16:00:00Z")
    assert not (tmp_path / "data" / "store.db").exists()


def test_a_suppressed_number(with_tables: str) -> None:
    code, out, err = run("suppress", "add", PHONE, "--reason", "do_not_call")
    assert code == 0, err
    assert "+*******0123" in out and "do_not_call" in out
    document = window_json("--phone", PHONE, "--at", "2025-06-11T16:00:00Z")
    assert document["permitted"] is False
    assert document["next_permitted_at"] is None
    assert document["reasons"] == ["suppressed: do_not_call"]
    code, out, _ = run("suppress", "remove", PHONE)
    assert code == 0 and "lifted" in out
    assert window_json("--phone", PHONE, "--at", "2025-06-11T16:00:00Z")["permitted"] is True


def test_suppress_list_masks_unless_revealed(with_tables: str) -> None:
    run("suppress", "add", PHONE, "--reason", "wrong_number", "--customer", "cus_1")
    run(
        "suppress",
        "add",
        "+13055550188",
        "--reason",
        "do_not_call",
        "--expires",
        "2099-01-01T00:00:00Z",
    )
    code, out, _ = run("suppress", "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["phone"], r["scope"], r["reason"]) for r in rows] == [
        ("+*******0123", "cus_1", "wrong_number"),
        ("+*******0188", "*", "do_not_call"),
    ]
    assert rows[1]["expires_at"] == "2099-01-01T00:00:00+00:00"
    _, out, _ = run("suppress", "list", "--json", "--reveal")
    assert [r["phone"] for r in json.loads(out)] == [PHONE, "+13055550188"]
    code, out, _ = run("suppress", "list")
    assert code == 0 and "wrong_number" in out and PHONE not in out


def test_suppress_needs_the_schema(store_url: str) -> None:
    code, _, err = run("suppress", "add", PHONE, "--reason", "do_not_call")
    assert code == 1
    assert "recovery db upgrade" in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--phone", "4155550123"], "E.164"),
        (["--phone", "+1 415 555 0123"], "E.164"),
        (["--phone", PHONE, "--at", "tomorrow"], "ISO 8601"),
        (["--phone", PHONE, "--at", "2025-06-11T09:00:00"], "no UTC offset"),
        (["--phone", PHONE, "--attempt", "2025-06-11T09:00:00"], "no UTC offset"),
        (["--phone", PHONE, "--tz", "Pacific/Atlantis"], "IANA"),
        (["--phone", PHONE, "--state", "Atlantis"], "not a US state"),
        (["--phone", PHONE, "--country", "USA"], "two-letter"),
    ],
)
def test_bad_arguments_exit_2(store_url: str, args: list[str], fragment: str) -> None:
    code, out, err = run("window", "--json", *args)
    assert code == 2
    assert out == ""
    assert fragment in err
    assert "4155550123" not in err  # the phone is masked even in errors


def test_suppress_bad_arguments_exit_2(with_tables: str) -> None:
    assert run("suppress", "add", "555", "--reason", "x")[0] == 2
    assert run("suppress", "add", PHONE, "--reason", "x", "--expires", "2030-01-01")[0] == 2
    assert run("suppress", "remove", "nope")[0] == 2


def test_readable_output(store_url: str) -> None:
    code, out, _ = run("window", "--phone", PHONE, "--at", "2025-06-11T13:00:00Z")
    assert code == 0
    assert "next permitted" in out
    assert "2025-06-11T15:00:00+00:00" in out
    assert "08:00:00 PDT" in out

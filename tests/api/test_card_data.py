"""A card number planted in any field of any Stripe event appears nowhere: not in the store
(the database file itself on SQLite), not in the logs, not in the receiver's responses."""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from recovery.api.app import create_app
from recovery.clock import FixedClock
from recovery.domain.pan import luhn_valid
from recovery.log_scrubbing import install_log_scrubbing
from recovery.runtime import Runtime
from recovery.services.intake import drain
from recovery.store.tables import Base
from tests.factories import (
    T0,
    charge_event,
    intent_failed,
    invoice_failed,
    settings_for,
    stripe_headers,
)

PAN = "4000056655665556"
PLANTS = [f"note {PAN}", "4000 0566 5566 5556", "4000-0566-5566-5556", PAN]


def string_paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from string_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from string_paths(value, (*path, index))
    elif isinstance(node, str):
        yield path


def planted(event: dict[str, Any], path: tuple[Any, ...], value: str) -> dict[str, Any]:
    clone = copy.deepcopy(event)
    node = clone
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return clone


def luhn_runs(blob: str) -> list[str]:
    joined = re.sub(r"(?<=[0-9])[ \-](?=[0-9])", "", blob)
    return [run for run in re.findall(r"[0-9]{13,19}", joined) if luhn_valid(run)]


def bases() -> list[dict[str, Any]]:
    return [
        invoice_failed(event_id="evt_base_inv", invoice_id="in_base", created=T0),
        intent_failed(event_id="evt_base_pi", intent_id="pi_base", created=T0),
        charge_event(event_id="evt_base_ch", charge_id="ch_base", created=T0),
        charge_event(event_id="evt_base_ok", charge_id="ch_ok", created=T0, succeeded=True),
        invoice_failed(
            event_id="evt_base_paid", invoice_id="in_paid", created=T0, event_type="invoice.paid"
        ),
    ]


def test_planted_card_numbers_never_reach_store_logs_or_responses(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    install_log_scrubbing()
    runtime = Runtime(settings_for(store_url), clock_override=FixedClock(T0))
    client = TestClient(
        create_app(settings=runtime.settings, sessions=runtime.sessions, clock=runtime.clock)
    )
    responses: list[str] = []
    sent = 0
    with caplog.at_level(logging.DEBUG):
        for base in bases():
            paths = [p for p in string_paths(base) if p not in (("id",), ("type",))]
            for number, path in enumerate(paths):
                event = planted(base, path, PLANTS[number % len(PLANTS)])
                event["id"] = f"{base['id']}_{number}"
                if path[:3] != ("data", "object", "id"):
                    event["data"]["object"]["id"] = f"{event['data']['object']['id']}_{number}"
                body = json.dumps(event).encode()
                response = client.post(
                    "/webhooks/stripe", content=body, headers=stripe_headers(body)
                )
                assert response.status_code in (200, 400), response.text
                responses.append(response.text)
                sent += 1
        # A card number as the event id itself: rejected or redacted, never echoed.
        event = invoice_failed(event_id=PAN, invoice_id="in_evt_pan", created=T0)
        body = json.dumps(event).encode()
        responses.append(
            client.post("/webhooks/stripe", content=body, headers=stripe_headers(body)).text
        )
        summary = drain(
            sessions=runtime.sessions,
            codes=runtime.failure_codes,
            clock_now=runtime.clock.now,
            batch_size=200,
        )
    assert sent > 150
    assert summary.rows > 150
    everything_logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "card number redacted" in everything_logged
    assert luhn_runs(everything_logged) == []
    assert luhn_runs("\n".join(responses)) == []

    dump: list[str] = []
    with runtime.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(text(f"SELECT * FROM {table.name}")):
                dump.append(repr(tuple(row)))
    assert len(dump) > 150
    assert luhn_runs("\n".join(dump)) == []
    runtime.close()
    if store_url.startswith("sqlite"):
        path = Path(store_url.split(":///", 1)[1])
        for file in [path, path.with_name(path.name + "-wal")]:
            if file.exists():
                raw = file.read_bytes().decode("latin-1")
                assert PAN not in raw and "4000 0566" not in raw and "4000-0566" not in raw

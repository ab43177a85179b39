"""The deployments ``recovery serve`` runs (flows/deployments.py) are the ones prefect.yaml
declares, field by field, and every flow of the project is declared there."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.deployments import deployments
from recovery.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def declared() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    return {spec["name"]: spec for spec in document["deployments"]}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(ROOT)  # entrypoints are paths from the project folder
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    return {d.name: d for d in deployments(settings)}


def schedule_of(schedule: Any) -> dict[str, Any]:
    if hasattr(schedule, "interval"):
        return {"interval": schedule.interval.total_seconds()}
    return {"cron": schedule.cron, "timezone": schedule.timezone}


def test_served_deployments_are_the_ones_prefect_yaml_declares(served: dict[str, Any]) -> None:
    specs = declared()
    assert set(served) == set(specs)
    for name, spec in specs.items():
        got = served[name]
        assert got.entrypoint == spec["entrypoint"], name
        assert got.tags == spec["tags"], name
        assert got.description == spec["description"], name
        assert got.parameters == spec.get("parameters", {}), name
        limit = spec["concurrency_limit"]
        assert got.concurrency_limit == limit["limit"], name
        assert got.concurrency_options.collision_strategy.value == limit["collision_strategy"]
        expected = [
            {"interval": float(s["interval"])}
            if "interval" in s
            else {"cron": s["cron"], "timezone": s.get("timezone")}
            for s in spec.get("schedules", [])
        ]
        assert [schedule_of(s.schedule) for s in got.schedules] == expected, name
        triggers = [
            {
                "name": t.name,
                "enabled": t.enabled,
                "match": t.match.model_dump(),
                "expect": sorted(t.expect),
                "posture": t.posture.value,
                "threshold": t.threshold,
            }
            for t in got.triggers
        ]
        assert triggers == [
            {
                "name": t["name"],
                "enabled": t["enabled"],
                "match": t["match"],
                "expect": sorted(t["expect"]),
                "posture": t["posture"],
                "threshold": t["threshold"],
            }
            for t in spec.get("triggers", [])
        ], name


def test_every_flow_of_the_project_is_declared() -> None:
    entrypoints = {spec["entrypoint"] for spec in declared().values()}
    modules = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "flows").glob("*.py")
        if "@flow(" in path.read_text(encoding="utf-8")
    }
    assert modules == {entry.split(":", 1)[0] for entry in entrypoints}


def test_the_settings_give_the_served_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        advance_interval_seconds=7,
        dispositions_interval_seconds=11,
        close_on_payment_interval_seconds=13,
        reconcile_interval_seconds=17,
    )
    served = {d.name: d for d in deployments(settings)}
    intervals = {
        name: [s.schedule.interval for s in d.schedules if hasattr(s.schedule, "interval")]
        for name, d in served.items()
    }
    assert intervals["advance"] == [timedelta(seconds=7)]
    assert intervals["dispositions"] == [timedelta(seconds=11)]
    assert intervals["close-on-payment"] == [timedelta(seconds=13)]
    assert intervals["reconcile"] == [timedelta(seconds=17)]
    assert intervals["ingest"] == [
        timedelta(seconds=declared()["ingest"]["schedules"][0]["interval"])
    ]


def test_the_settings_give_the_advance_and_ingest_concurrency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    limits = {
        name: spec["concurrency_limit"]["limit"]
        for name, spec in declared().items()
        if spec.get("concurrency_limit")
    }
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, advance_concurrency=2, ingest_concurrency=3
    )
    served = {d.name: d for d in deployments(settings)}
    got = {name: d.concurrency_limit for name, d in served.items()}
    assert got["advance"] == 2
    assert got["ingest"] == 3
    for name, limit in limits.items():
        if name not in ("advance", "ingest"):
            assert got[name] == limit, name
    # The collision strategy stays the declared one.
    for name in ("advance", "ingest"):
        options = served[name].concurrency_options
        assert options is not None
        strategy = declared()[name]["concurrency_limit"]["collision_strategy"]
        assert options.collision_strategy.value == strategy


def test_a_bad_concurrency_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_INGEST_CONCURRENCY", "0")
    with pytest.raises(ValueError, match="ingest_concurrency"):
        Settings(_env_file=None)  # type: ignore[call-arg]

"""Serving every flow from one process (``python -m flows.deployments``, which ``recovery
serve`` starts): the deployments as ``prefect.yaml`` declares them (entrypoints, schedules,
concurrency limits, triggers, tags, descriptions, parameters), with the intervals and limits
the settings give (``Settings.served_interval``, ``served_concurrency``). The work pool and
pull steps are for ``prefect deploy``."""

from __future__ import annotations

import importlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow, serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron, Interval, Schedule

from recovery.settings import Settings

PREFECT_YAML = Path(__file__).resolve().parent.parent / "prefect.yaml"


def load_flow(entrypoint: str) -> Flow[..., Any]:
    """The flow ``flows/name.py:function`` names, imported as a module of this project."""
    file, _, name = entrypoint.partition(":")
    found = getattr(importlib.import_module(file.removesuffix(".py").replace("/", ".")), name)
    if not isinstance(found, Flow):
        raise TypeError(f"{entrypoint} is not a flow")
    return found


def schedules(spec: dict[str, Any], settings: Settings) -> list[Schedule]:
    override = settings.served_interval(spec["name"])
    built: list[Schedule] = []
    for item in spec.get("schedules") or []:
        if "interval" in item:
            seconds = override or item["interval"]
            built.append(Interval(timedelta(seconds=seconds), timezone=item.get("timezone")))
        else:
            built.append(Cron(item["cron"], timezone=item.get("timezone")))
    return built


def deployment(spec: dict[str, Any], settings: Settings) -> RunnerDeployment:
    """One served deployment, as ``prefect.yaml`` declares it (its concurrency limit as the
    settings give it, when they do)."""
    limit = spec.get("concurrency_limit")
    override = settings.served_concurrency(spec["name"])
    if limit is not None and override:
        limit = {**limit, "limit": override}
    return RunnerDeployment.from_flow(
        load_flow(spec["entrypoint"]),
        spec["name"],
        schedules=schedules(spec, settings),
        concurrency_limit=None
        if limit is None
        else ConcurrencyLimitConfig(
            limit=limit["limit"],
            collision_strategy=ConcurrencyLimitStrategy(limit["collision_strategy"]),
        ),
        triggers=[DeploymentEventTrigger(**t) for t in spec.get("triggers") or []],
        tags=list(spec.get("tags") or []),
        description=spec.get("description"),
        parameters=dict(spec.get("parameters") or {}),
    )


def deployments(settings: Settings) -> list[RunnerDeployment]:
    document = yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))
    return [deployment(spec, settings) for spec in document["deployments"]]


if __name__ == "__main__":
    settings = Settings()
    serve(*deployments(settings), limit=settings.runner_limit)

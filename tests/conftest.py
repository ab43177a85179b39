"""Shared fixtures: a fresh store per test on SQLite, or on PostgreSQL when a URL is given."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from recovery.store.db import make_engine, make_sessionmaker
from recovery.store.tables import Base

POSTGRES_URL = os.environ.get("RECOVERY_TEST_POSTGRES_URL")


def _backends() -> list[object]:
    backends: list[object] = ["sqlite"]
    backends.append(
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(not POSTGRES_URL, reason="RECOVERY_TEST_POSTGRES_URL not set"),
            ],
        )
    )
    return backends


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Soak variants (minutes long, full size) run only when asked for by name (``-m soak``),
    whatever else the selection names (``make test-postgres`` selects by ``-m postgres``).
    Across several test processes, the long tests are spread so each process begins with its
    share of them (see ``_spread_long_tests``)."""
    wanted = (config.getoption("markexpr") or "").replace("not soak", "")
    if "soak" not in wanted:
        skip = pytest.mark.skip(reason="a soak variant: run it with -m soak")
        for item in items:
            if "soak" in item.keywords:
                item.add_marker(skip)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers > 1:
        items[:] = _spread_long_tests(items, workers)


def _weight(item: pytest.Item) -> int:
    """How long a test runs, roughly: 2 marked slow, 1 on the Prefect server, 0 otherwise (and
    0 for a variant that will be skipped)."""
    if "soak" in item.keywords or ("postgres" in item.keywords and not POSTGRES_URL):
        return 0
    if item.get_closest_marker("slow"):
        return 2
    return 1 if item.get_closest_marker("prefect") else 0


def _spread_long_tests(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """The order that gives each of ``workers`` processes an equal share of the long tests at
    the front of its block. pytest-xdist's work-stealing scheduler hands each process a
    contiguous block of the collection (the first ``n // workers``, then an equal share of the
    rest) and an idle process steals from the end of another's; so the long tests start at once,
    side by side, and the short ones fill in behind them. Every process computes the same order
    (xdist requires it)."""
    heavy = sorted((item for item in items if _weight(item)), key=_weight, reverse=True)
    light = [item for item in items if not _weight(item)]
    remaining, sizes = len(items), []
    for left in range(workers, 0, -1):
        sizes.append(remaining // left)
        remaining -= sizes[-1]
    blocks: list[list[pytest.Item]] = [[] for _ in range(workers)]
    for number, item in enumerate(heavy):
        blocks[number % workers].append(item)
    for block, size in zip(blocks, sizes, strict=True):
        take = max(0, size - len(block))
        block.extend(light[:take])
        del light[:take]
    blocks[-1].extend(light)
    return [item for block in blocks for item in block]


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """A store migrated once per test process and backend, copied for each test that asks for
    ``store_url`` (a SQLite file, or a PostgreSQL template database): the migrations run once,
    not once per test."""
    from recovery.store.migrate import upgrade

    made: dict[str, str] = {}

    def template(backend: str) -> str:
        if backend in made:
            return made[backend]
        if backend == "sqlite":
            path = tmp_path_factory.mktemp("migrated") / "store.db"
            upgrade(f"sqlite:///{path}")
            made[backend] = str(path)
            return made[backend]
        assert POSTGRES_URL
        name = f"tmpl_{uuid.uuid4().hex[:12]}"
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            upgrade(f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}")
            _disconnect(admin, name)
        finally:
            admin.dispose()
        made[backend] = name
        return name

    yield template
    if "postgresql" in made:
        admin = create_engine(POSTGRES_URL or "", isolation_level="AUTOCOMMIT")
        try:
            _disconnect(admin, made["postgresql"])
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{made["postgresql"]}"'))
        finally:
            admin.dispose()


def _disconnect(admin: Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )


@pytest.fixture(params=_backends())
def db_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    _migrated_template: Callable[[str], str],
) -> Iterator[str]:
    """A URL to an empty database (a SQLite file, or a fresh PostgreSQL database); already
    migrated to the latest revision when the test also asks for ``store_url``."""
    migrated = "store_url" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "store.db"
        if migrated:
            with (
                closing(sqlite3.connect(_migrated_template("sqlite"))) as source,
                closing(sqlite3.connect(path)) as target,
            ):
                source.backup(target)
        yield f"sqlite:///{path}"
        return
    assert POSTGRES_URL
    name = f"t_{uuid.uuid4().hex[:12]}"
    template = f' TEMPLATE "{_migrated_template("postgresql")}"' if migrated else ""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{template}'))
    base = POSTGRES_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        _disconnect(admin, name)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    Base.metadata.create_all(eng)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def store_url(db_url: str) -> str:
    """An empty store migrated to the latest revision with Alembic (as `recovery db upgrade`):
    a copy of the process's migrated template (see ``db_url``)."""
    return db_url


@pytest.fixture(autouse=True)
def _isolated_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[None]:
    """No test reads the developer's .env or environment settings by accident, and only a
    test that asks for the Prefect server sees it: the session's server (tests/flows) stays
    set in Prefect's settings for the rest of the test process, and a command run by a later
    test would otherwise take its request budget from that server."""
    for name in list(os.environ):
        if name.startswith("RECOVERY_") and name != "RECOVERY_TEST_POSTGRES_URL":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("RECOVERY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    if "prefect_api_url" in request.fixturenames:
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        yield

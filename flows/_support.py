"""What every flow shares: the one summary artifact of a run, a progress artifact, and
waiting for the task runs it submitted."""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.futures import PrefectFuture

T = TypeVar("T")
Counts = Mapping[str, int] | Iterable[tuple[str, int]]


def publish_summary(
    key: str,
    description: str,
    counts: Counts = (),
    *,
    columns: tuple[str, str] = ("what", "count"),
    empty: str = "nothing to do",
    table: Sequence[Mapping[str, object]] | None = None,
    markdown: str | None = None,
    run_name: str | None = None,
) -> None:
    """A run's summary as an artifact: ``counts`` as a two-column table (``columns``), else a
    ready ``table`` of rows, else ``markdown``; a table with no rows shows ``empty``. With a
    ``run_name``, the run is renamed too (``name_run``), the two requests sent at once."""
    if run_name is None:
        _publish(key, description, counts, columns, empty, table, markdown)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="name-run") as pool:
        # The thread sees this run's context (its flow run, its Prefect client).
        naming = pool.submit(contextvars.copy_context().run, name_run, run_name)
        _publish(key, description, counts, columns, empty, table, markdown)
        naming.result()


def _publish(
    key: str,
    description: str,
    counts: Counts,
    columns: tuple[str, str],
    empty: str,
    table: Sequence[Mapping[str, object]] | None,
    markdown: str | None,
) -> None:
    if markdown is not None:
        create_markdown_artifact(key=key, markdown=markdown, description=description)
        return
    if table is None:
        pairs = counts.items() if isinstance(counts, Mapping) else counts
        rows: list[dict[str, object]] = [{columns[0]: k, columns[1]: v} for k, v in pairs]
        rows = rows or [{columns[0]: empty, columns[1]: 0}]
    else:
        rows = [dict(row) for row in table] or [{columns[0]: empty}]
    create_table_artifact(key=key, table=rows, description=description)


def name_run(name: str) -> None:
    """Rename the current flow run after what it did (its generated name says nothing)."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run.id, name=name)


class Progress:
    """A progress artifact, from 0 to 100 %."""

    def __init__(self, key: str, description: str) -> None:
        made = create_progress_artifact(0.0, key=key, description=description)
        assert isinstance(made, UUID)  # a flow run is synchronous
        self.id = made

    def update(self, done: int, total: int) -> None:
        update_progress_artifact(self.id, 100.0 * done / max(total, 1))


def settle(futures: Iterable[PrefectFuture[T]]) -> tuple[list[T], int]:
    """Wait for submitted task runs: the results of those that completed, and how many did
    not (their work is left as it was, for a later run)."""
    results: list[T] = []
    failed = 0
    for future in futures:
        state = future.wait() or future.state
        if state.is_completed():
            results.append(future.result())
        else:
            failed += 1
    return results, failed

"""What a flow run leaves in the Prefect UI besides its task runs: its one summary artifact, a
progress artifact, and a name that says what it did."""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

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
) -> None:
    """A run's summary as an artifact: ``counts`` as a two-column table (``columns``), else a
    ready ``table`` of rows, else ``markdown``; a table with no rows shows ``empty``."""
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


@contextmanager
def renamed_meanwhile(name: str) -> Iterator[None]:
    """Rename the current flow run (``name_run``) in a thread of its own while the block runs:
    its request and the block's (a summary artifact) go to the server side by side."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="name-run") as pool:
        # The thread sees this run's context (its flow run, its Prefect client).
        naming = pool.submit(contextvars.copy_context().run, name_run, name)
        yield
        naming.result()


class Progress:
    """A progress artifact, from 0 to 100 %."""

    def __init__(self, key: str, description: str) -> None:
        made = create_progress_artifact(0.0, key=key, description=description)
        assert isinstance(made, UUID)  # a flow run is synchronous
        self.id = made

    def update(self, done: int, total: int) -> None:
        update_progress_artifact(self.id, 100.0 * done / max(total, 1))

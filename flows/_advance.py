"""The tally of an advance run: its decisions, its contacts, and the task runs that failed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from prefect import get_run_logger
from prefect.futures import PrefectFuture

from flows._support import settle
from recovery.services.advance import Decided
from recovery.services.dispatch import Dispatched, Held
from tasks.events import emit_case_events


@dataclass
class Tally:
    """What an advance run came to: decisions, contacts, task runs that failed."""

    actions: Counter[str] = field(default_factory=Counter)
    sent: Dispatched = field(default_factory=Dispatched)
    failed: int = 0
    later: list[PrefectFuture[int]] = field(default_factory=list)

    def decided(self, decided: Decided) -> None:
        self.actions.update(decided.actions)

    def settle(self, futures: list[PrefectFuture[Dispatched]]) -> list[Held]:
        """Wait for these sends (or withdrawals) and add them up; the contacts they held back
        for a withdrawal. A failed one leaves its contacts planned and leased: once the lease
        ends they are sent again under the same ids (an upsert), so nothing is lost."""
        results, failed = settle(futures)
        self.failed += failed
        held: list[Held] = []
        for result in results:
            held.extend(result.held)
            result.held = []
            emit_case_events(result.events)
            result.events = []
            self.sent.add(result)
        return held

    def settle_later(self) -> None:
        self.failed += settle(self.later)[1]

    def log_chunk(self, chunk_no: int, decided: Decided) -> None:
        get_run_logger().info(
            "chunk %d: %d cases %s; contacts created %d",
            chunk_no,
            decided.claimed,
            dict(decided.actions),
            self.sent.created,
        )

    def counts(self) -> list[tuple[str, int]]:
        sent = self.sent
        return [
            *sorted(self.actions.items()),
            ("contacts created", sent.created),
            ("contacts rejected", sent.rejected),
            ("contacts withdrawn", sent.cancelled),
            *((f"not sent: {k}", v) for k, v in sorted(sent.reasons.items())),
        ]

    def description(self) -> str:
        return f"Advance: {sum(self.actions.values())} decisions, {self.sent.created} contacts"

    def summary(self) -> dict[str, object]:
        return {
            "decisions": dict(self.actions),
            "contacts_created": self.sent.created,
            "contacts_rejected": self.sent.rejected,
            "contacts_withdrawn": self.sent.cancelled,
            "requests": self.sent.requests,
            "failed_batches": self.failed,
        }

"""The tally of an advance run: its decisions, its contacts, and the task runs that failed."""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect import get_run_logger
from prefect.futures import PrefectFuture

from flows._support import settle
from recovery.services.advance import AdvanceTotals, Decided
from recovery.services.dispatch import Dispatched, Held
from tasks.advance import withdraw_contacts
from tasks.events import emit_case_events


@dataclass
class Tally(AdvanceTotals):
    """What an advance run came to (``AdvanceTotals``: decisions, contacts, task runs that
    failed), and the task runs it still waits for."""

    later: list[PrefectFuture[int]] = field(default_factory=list)
    # The sends of the last chunk, still in flight while the next chunk is decided.
    sending: list[PrefectFuture[Dispatched]] = field(default_factory=list)
    withdrawals: int = 0

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

    def finish_sends(self, then: list[PrefectFuture[Dispatched]] | None = None) -> None:
        """Wait for the sends in flight, withdraw the contacts they held back, and keep
        ``then`` (the next chunk's sends) in flight."""
        held = self.settle(self.sending)
        self.sending = list(then or [])
        if held:
            self.withdrawals += 1
            self.settle([withdraw_contacts.submit(self.withdrawals, len(held), tuple(held))])

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

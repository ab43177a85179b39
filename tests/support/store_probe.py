"""The store as tests read it: cases, their history, contacts and decisions, each read in one
short session of its own, so an assertion never holds a transaction open against the system."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from recovery.store.cases import case_key
from recovery.store.tables import CaseRow, ContactRow, HistoryRow, InboxRow


@dataclass
class StoreFacts:
    """What the store says about a set of cases, read in one go (keyed by case key)."""

    cases: dict[str, CaseRow] = field(default_factory=dict)
    contacts: dict[str, list[ContactRow]] = field(default_factory=dict)
    history: dict[str, Counter[str]] = field(default_factory=dict)


@dataclass
class StoreProbe:
    """Reads of the store for assertions (never writes)."""

    sessions: sessionmaker[Session]

    def case(self, business_key: str) -> CaseRow:
        """The one case with this business key."""
        with self.sessions() as s:
            return s.scalars(select(CaseRow).where(CaseRow.business_key == business_key)).one()

    def cases(self) -> list[CaseRow]:
        with self.sessions() as s:
            return list(s.scalars(select(CaseRow).order_by(CaseRow.id)))

    def count(self, table: Any) -> int:
        """How many rows ``table`` (a mapped class) holds."""
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(table)) or 0)

    def unprocessed_inbox(self) -> int:
        """Inbox rows no ingest run has processed yet."""
        with self.sessions() as s:
            return int(s.scalar(select(func.count()).where(InboxRow.processed_at.is_(None))) or 0)

    def history(self, business_key: str) -> list[HistoryRow]:
        """The case's history entries, oldest first."""
        with self.sessions() as s:
            case = s.scalars(select(CaseRow).where(CaseRow.business_key == business_key)).one()
            return list(
                s.scalars(
                    select(HistoryRow).where(HistoryRow.case_id == case.id).order_by(HistoryRow.id)
                )
            )

    def decisions(self, business_key: str) -> list[HistoryRow]:
        """The case's decisions (history entries of kind ``decision``), oldest first."""
        return [entry for entry in self.history(business_key) if entry.kind == "decision"]

    def contacts(self, business_key: str | None = None) -> list[ContactRow]:
        """The contacts of one case (or of every case), in the order they were made."""
        with self.sessions() as s:
            query = select(ContactRow).order_by(ContactRow.id)
            if business_key is not None:
                query = query.join(CaseRow, CaseRow.id == ContactRow.case_id).where(
                    CaseRow.business_key == business_key
                )
            return list(s.scalars(query))

    def facts(self, keys: Sequence[str]) -> StoreFacts:
        """Every case with its contacts and a count of its history kinds (a decision counted
        by its action: ``decision:contact``), for the case keys given and any other."""
        facts = StoreFacts()
        with self.sessions() as session:
            by_id: dict[int, str] = {}
            for case in session.scalars(select(CaseRow)):
                key = case_key(case.gateway, case.business_key)
                facts.cases[key] = case
                by_id[case.id] = key
            facts.contacts = {key: [] for key in keys}
            for row in session.scalars(select(ContactRow).order_by(ContactRow.id)):
                facts.contacts.setdefault(by_id[row.case_id], []).append(row)
            facts.history = {key: Counter() for key in keys}
            for entry in session.scalars(select(HistoryRow).order_by(HistoryRow.id)):
                kind = entry.kind
                if kind == "decision":
                    kind = f"decision:{entry.data.get('action')}"
                facts.history.setdefault(by_id[entry.case_id], Counter())[kind] += 1
        return facts

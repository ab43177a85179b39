"""The emulator's configuration and in-memory state (contact lists, DNC lists, tokens, limits).

All of it is guarded by one lock: the HTTP layer, the dialer loop and the control API may touch
it from different threads.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from recovery.clock import Clock
from recovery.contact_center.emulator.scenarios import Scenario, get_scenario


class EmulatorConfig(BaseModel):
    """How the emulated Genesys Cloud organisation is set up."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = "emulator-client"
    client_secret: str = "emulator-secret-dev-local-only"
    token_lifetime_seconds: int = Field(default=86_400, ge=1)
    contact_lists: list[str] = Field(default_factory=lambda: ["recovery-contacts"])
    dnc_lists: list[str] = Field(default_factory=lambda: ["recovery-dnc"])
    requests_per_minute: int | None = Field(default=300, ge=1)
    rate_window: Literal["fixed", "sliding"] = "sliding"
    callback_url: str | None = None
    callback_secret: str | None = None
    scenario: str = "mixed"
    seed: int = 0
    drop_push_fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    phone_column: str = "phone"
    time_zone_column: str = "timeZone"
    callable_from: dtime = dtime(8, 0)
    callable_until: dtime = dtime(21, 0)
    dial_interval_seconds: float | None = Field(default=None, gt=0)
    max_contacts_per_request: int = Field(default=1000, ge=1)
    max_bulk_ids: int = Field(default=50, ge=1)
    push_timeout_seconds: float = Field(default=5.0, gt=0)
    push_concurrency: int = Field(default=8, ge=1)
    # Columns that identify "the same contact" when counting duplicates under different ids.
    duplicate_key_columns: tuple[str, ...] = ("phone", "transactionId", "attemptCount")


@dataclass
class Counters:
    requests: int = 0
    rate_limited: int = 0
    auth_failures: int = 0
    tokens_issued: int = 0
    faults_injected: int = 0
    contacts_created: int = 0
    upserts: int = 0
    duplicates: int = 0
    deleted: int = 0
    dnc_appended: int = 0
    dials: int = 0
    refused_outside_window: int = 0
    on_dnc_list: int = 0
    pushes_sent: int = 0
    pushes_failed: int = 0
    pushes_dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class StoredContact:
    id: str
    contact_list_id: str
    data: dict[str, str]
    callable: bool
    created_at: datetime
    call_records: dict[str, dict[str, str]] = field(default_factory=dict)
    dials: int = 0

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "id": self.id,
            "contactListId": self.contact_list_id,
            "data": dict(self.data),
            "callable": self.callable,
            "dateCreated": _iso(self.created_at),
            "selfUri": f"/api/v2/outbound/contactlists/{self.contact_list_id}/contacts/{self.id}",
        }
        if self.call_records:
            wire["callRecords"] = {k: dict(v) for k, v in self.call_records.items()}
        return wire


@dataclass
class ContactList:
    id: str
    contacts: dict[str, StoredContact] = field(default_factory=dict)
    queue: OrderedDict[str, None] = field(default_factory=OrderedDict)
    by_key: dict[tuple[str, ...], set[str]] = field(default_factory=dict)


@dataclass
class Fault:
    """The next ``count`` API requests answer ``status`` (after being applied when ``apply``)."""

    status: int
    count: int = 1
    retry_after: int | None = None
    apply: bool = False
    delay_seconds: float = 0.0


@dataclass
class RateDecision:
    allowed: bool
    count: int
    limit: int
    reset_seconds: int


@dataclass
class Push:
    """One outcome to deliver to the callback URL."""

    payload: dict[str, Any]


@dataclass
class DialReport:
    dialled: int = 0
    refused_outside_window: int = 0
    on_dnc_list: int = 0
    pushes: list[Push] = field(default_factory=list)
    dropped_pushes: int = 0

    def summary(self) -> dict[str, int]:
        return {
            "dialled": self.dialled,
            "refused_outside_window": self.refused_outside_window,
            "on_dnc_list": self.on_dnc_list,
            "pushes": len(self.pushes),
            "dropped_pushes": self.dropped_pushes,
        }


class ApiError(Exception):
    """An error the HTTP layer turns into a Genesys-style error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        params: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.params = params or {}
        self.errors = errors or []


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def phone_digits(value: str) -> str:
    return re.sub(r"\D", "", value)


class EmulatorState:
    """Everything the emulated organisation holds, in memory."""

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.clock = clock
        self.monotonic = monotonic
        self.lock = threading.RLock()
        self.tokens: dict[str, datetime] = {}
        self._initial_config = config.model_copy(deep=True)
        self._set_up(config)

    def _set_up(self, config: EmulatorConfig) -> None:
        self.config = config.model_copy(deep=True)
        self.lists: dict[str, ContactList] = {i: ContactList(i) for i in config.contact_lists}
        self.dnc: dict[str, set[str]] = {i: set() for i in config.dnc_lists}
        self.poisoned: dict[str, str] = {}
        self.faults: deque[Fault] = deque()
        self.scenario: Scenario = get_scenario(
            config.scenario, drop_push_fraction=config.drop_push_fraction
        )
        self.seed = config.seed
        self.requests_per_minute = config.requests_per_minute
        self.rate_window = config.rate_window
        self._sliding: dict[str, deque[float]] = {}
        self._fixed: dict[str, tuple[float, int]] = {}
        self.counters = Counters()

    def reset(self, *, keep_tokens: bool = True) -> None:
        with self.lock:
            self._set_up(self._initial_config)
            if not keep_tokens:
                self.tokens.clear()

    # -- tokens ----------------------------------------------------------------------------

    def issue_token(self, client_id: str, client_secret: str) -> tuple[str, int] | None:
        with self.lock:
            if not (
                secrets.compare_digest(client_id, self.config.client_id)
                and secrets.compare_digest(client_secret, self.config.client_secret)
            ):
                self.counters.auth_failures += 1
                return None
            token = secrets.token_urlsafe(32)
            lifetime = self.config.token_lifetime_seconds
            self.tokens[token] = self.clock.now() + timedelta(seconds=lifetime)
            self.counters.tokens_issued += 1
            return token, lifetime

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expires = self.tokens.get(token)
            if expires is None:
                return False
            if self.clock.now() >= expires:
                del self.tokens[token]
                return False
            return True

    def revoke_tokens(self) -> int:
        with self.lock:
            count = len(self.tokens)
            self.tokens.clear()
            return count

    # -- rate limit and faults -------------------------------------------------------------

    def rate_check(self, token: str) -> RateDecision | None:
        """Count one request against the token's budget; None when no limit is set."""
        with self.lock:
            limit = self.requests_per_minute
            if limit is None:
                return None
            now = self.monotonic()
            if self.rate_window == "sliding":
                stamps = self._sliding.setdefault(token, deque())
                while stamps and stamps[0] <= now - 60.0:
                    stamps.popleft()
                if len(stamps) >= limit:
                    reset = stamps[0] + 60.0 - now
                    self.counters.rate_limited += 1
                    return RateDecision(False, len(stamps), limit, _whole_seconds(reset, least=1))
                stamps.append(now)
                reset = stamps[0] + 60.0 - now
                return RateDecision(True, len(stamps), limit, _whole_seconds(reset, least=0))
            start, count = self._fixed.get(token, (now, 0))
            if now - start >= 60.0:
                start, count = now, 0
            reset = start + 60.0 - now
            if count >= limit:
                self.counters.rate_limited += 1
                return RateDecision(False, count, limit, _whole_seconds(reset, least=1))
            self._fixed[token] = (start, count + 1)
            return RateDecision(True, count + 1, limit, _whole_seconds(reset, least=0))

    def set_rate_limit(
        self, requests_per_minute: int | None, window: Literal["fixed", "sliding"] | None
    ) -> None:
        with self.lock:
            self.requests_per_minute = requests_per_minute
            if window is not None:
                self.rate_window = window
            self._sliding.clear()
            self._fixed.clear()

    def take_fault(self) -> Fault | None:
        with self.lock:
            if not self.faults:
                return None
            fault = self.faults[0]
            fault.count -= 1
            if fault.count <= 0:
                self.faults.popleft()
            self.counters.faults_injected += 1
            return fault

    # -- contact lists ---------------------------------------------------------------------

    def contact_list(self, list_id: str) -> ContactList:
        found = self.lists.get(list_id)
        if found is None:
            raise ApiError(
                404,
                "not.found",
                f"The contact list {list_id} could not be found.",
                params={"contactListId": list_id},
            )
        return found

    def _dedupe_key(self, data: dict[str, str]) -> tuple[str, ...] | None:
        values = tuple(data.get(column, "") for column in self.config.duplicate_key_columns)
        return values if any(values) else None

    def add_contacts(
        self,
        list_id: str,
        body: Any,
        *,
        priority: bool,
        clear_system_data: bool,
        do_not_queue: bool,
    ) -> list[dict[str, Any]]:
        """Validate a whole request first (the service refuses it as a whole), then apply."""
        with self.lock:
            contact_list = self.contact_list(list_id)
            contacts = self._validate_writable(list_id, body)
            now = self.clock.now()
            answer: list[dict[str, Any]] = []
            for item in contacts:
                contact_id = item["id"]
                data = item["data"]
                existing = contact_list.contacts.get(contact_id)
                if existing is not None:
                    self.counters.upserts += 1
                    self._unindex(contact_list, existing)
                    existing.data = data
                    existing.callable = item["callable"]
                    if clear_system_data:
                        existing.call_records.clear()
                    self._index(contact_list, existing)
                    # A contact already dialled for this id is not dialled again.
                    if not do_not_queue and existing.dials == 0:
                        self._enqueue(contact_list, contact_id, priority)
                    answer.append(existing.to_wire())
                    continue
                stored = StoredContact(
                    id=contact_id,
                    contact_list_id=list_id,
                    data=data,
                    callable=item["callable"],
                    created_at=now,
                )
                key = self._dedupe_key(data)
                if not do_not_queue and key is not None and contact_list.by_key.get(key):
                    self.counters.duplicates += 1
                contact_list.contacts[contact_id] = stored
                self._index(contact_list, stored)
                self.counters.contacts_created += 1
                if not do_not_queue:
                    self._enqueue(contact_list, contact_id, priority)
                answer.append(stored.to_wire())
            return answer

    def _index(self, contact_list: ContactList, contact: StoredContact) -> None:
        key = self._dedupe_key(contact.data)
        if key is not None:
            contact_list.by_key.setdefault(key, set()).add(contact.id)

    def _unindex(self, contact_list: ContactList, contact: StoredContact) -> None:
        key = self._dedupe_key(contact.data)
        if key is not None and key in contact_list.by_key:
            contact_list.by_key[key].discard(contact.id)
            if not contact_list.by_key[key]:
                del contact_list.by_key[key]

    @staticmethod
    def _enqueue(contact_list: ContactList, contact_id: str, priority: bool) -> None:
        if contact_id in contact_list.queue:
            if priority:
                contact_list.queue.move_to_end(contact_id, last=False)
            return
        contact_list.queue[contact_id] = None
        if priority:
            contact_list.queue.move_to_end(contact_id, last=False)

    def _validate_writable(self, list_id: str, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, list):
            raise ApiError(400, "bad.request", "The request body must be an array of contacts.")
        if not body:
            raise ApiError(400, "bad.request", "At least one contact is required.")
        if len(body) > self.config.max_contacts_per_request:
            raise ApiError(
                400,
                "bad.request",
                f"A maximum of {self.config.max_contacts_per_request} contacts may be added "
                "per request.",
            )
        errors: list[dict[str, Any]] = []
        valid: list[dict[str, Any]] = []
        for index, item in enumerate(body):
            problem = self._contact_problem(list_id, item)
            if problem is not None:
                errors.append({"index": index, "message": problem})
                continue
            contact_id = item.get("id")
            if contact_id in self.poisoned:
                errors.append({"index": index, "message": self.poisoned[contact_id]})
                continue
            valid.append(
                {
                    "id": contact_id or secrets.token_hex(16),
                    "data": dict(item["data"]),
                    "callable": bool(item.get("callable", True)),
                }
            )
        if errors:
            first = errors[0]
            raise ApiError(
                400,
                "invalid.property",
                f"Contact at index {first['index']}: {first['message']}",
                errors=[{"message": e["message"], "code": "invalid.property"} for e in errors],
            )
        return valid

    @staticmethod
    def _contact_problem(list_id: str, item: Any) -> str | None:
        if not isinstance(item, dict):
            return "A contact must be a JSON object."
        if "contactListId" not in item or not item["contactListId"]:
            return "contactListId is required."
        if item["contactListId"] != list_id:
            return "contactListId does not match the contact list of the request."
        if "id" in item and item["id"] is not None and not isinstance(item["id"], str):
            return "id must be a string."
        if isinstance(item.get("id"), str) and not 1 <= len(item["id"]) <= 64:
            return "id must be 1 to 64 characters."
        data = item.get("data")
        if not isinstance(data, dict):
            return "data is required and must be an object."
        for column, value in data.items():
            if not isinstance(value, str):
                return f"The value of column {column} must be a string."
        if "callable" in item and not isinstance(item["callable"], bool):
            return "callable must be a boolean."
        return None

    def get_contact(self, list_id: str, contact_id: str) -> dict[str, Any]:
        with self.lock:
            contact_list = self.contact_list(list_id)
            if contact_id in self.poisoned:
                raise ApiError(400, "invalid.property", self.poisoned[contact_id])
            contact = contact_list.contacts.get(contact_id)
            if contact is None:
                raise ApiError(
                    404,
                    "not.found",
                    f"The contact {contact_id} could not be found.",
                    params={"contactId": contact_id},
                )
            return contact.to_wire()

    def bulk_get(self, list_id: str, body: Any) -> list[dict[str, Any]]:
        with self.lock:
            contact_list = self.contact_list(list_id)
            if not isinstance(body, list) or not all(isinstance(i, str) for i in body):
                raise ApiError(400, "bad.request", "The request body must be an array of ids.")
            if len(body) > self.config.max_bulk_ids:
                raise ApiError(
                    400,
                    "bad.request",
                    f"A maximum of {self.config.max_bulk_ids} contact ids may be requested.",
                )
            return [contact_list.contacts[i].to_wire() for i in body if i in contact_list.contacts]

    def search(self, list_id: str, body: Any) -> dict[str, Any]:
        with self.lock:
            contact_list = self.contact_list(list_id)
            if not isinstance(body, dict):
                raise ApiError(400, "bad.request", "The request body must be an object.")
            page_number = body.get("pageNumber", 1)
            page_size = body.get("pageSize", 25)
            if not isinstance(page_number, int) or page_number < 1:
                raise ApiError(400, "bad.request", "pageNumber must be a positive integer.")
            if not isinstance(page_size, int) or not 1 <= page_size <= 100:
                raise ApiError(400, "bad.request", "pageSize must be between 1 and 100.")
            matches = list(contact_list.contacts.values())
            criteria = body.get("criteria")
            if isinstance(criteria, dict) and "column" in criteria:
                column, value = str(criteria["column"]), str(criteria.get("value", ""))
                matches = [c for c in matches if c.data.get(column) == value]
            total = len(matches)
            start = (page_number - 1) * page_size
            page = matches[start : start + page_size]
            return {
                "entities": [c.to_wire() for c in page],
                "pageSize": page_size,
                "pageNumber": page_number,
                "total": total,
                "pageCount": math.ceil(total / page_size) if total else 0,
            }

    def delete_contact(self, list_id: str, contact_id: str) -> None:
        with self.lock:
            contact_list = self.contact_list(list_id)
            contact = contact_list.contacts.pop(contact_id, None)
            if contact is None:
                raise ApiError(404, "not.found", f"The contact {contact_id} could not be found.")
            self._unindex(contact_list, contact)
            contact_list.queue.pop(contact_id, None)
            self.counters.deleted += 1

    def append_dnc(self, dnc_list_id: str, body: Any) -> None:
        with self.lock:
            numbers = self.dnc.get(dnc_list_id)
            if numbers is None:
                raise ApiError(404, "not.found", f"The DNC list {dnc_list_id} could not be found.")
            if not isinstance(body, list) or not all(isinstance(p, str) for p in body):
                raise ApiError(
                    400, "bad.request", "The request body must be an array of phone numbers."
                )
            for phone in body:
                digits = phone_digits(phone)
                if digits:
                    numbers.add(digits)
                    self.counters.dnc_appended += 1

    def on_dnc(self, phone: str) -> bool:
        digits = phone_digits(phone)
        return bool(digits) and any(digits in numbers for numbers in self.dnc.values())

    def snapshot(self, list_id: str) -> list[dict[str, Any]]:
        with self.lock:
            contact_list = self.contact_list(list_id)
            return [
                {**c.to_wire(), "queued": c.id in contact_list.queue, "dials": c.dials}
                for c in contact_list.contacts.values()
            ]


def _whole_seconds(reset: float, *, least: int) -> int:
    """Seconds until the window resets, as the service states them: whole, at most 60 (a
    stamp plus 60.0 minus the same stamp may come out a hair above 60 in floating point)."""
    return max(least, min(60, math.ceil(reset - 1e-6)))

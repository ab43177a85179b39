"""The emulator's configuration and in-memory state: the organisation's outbound configuration,
its contacts, tokens, rate limits, the dial log, conversations and notification channels.

All of it is guarded by one lock: the HTTP layer, the dialer loop and the control API may touch
it from different threads.

What Genesys Cloud does with contacts, and this emulator with it (sources in each docstring):
``doNotQueue`` decides whether an updated contact is queued again, dialled or not; a contact that
stays callable is dialled again on the campaign's next pass within its list's attempt limits;
a contact list refuses data keys outside its ``columnNames``.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from recovery.clock import Clock
from recovery.contact_center.contacts import CONTACT_COLUMNS
from recovery.contact_center.emulator import org
from recovery.contact_center.emulator.errors import ApiError
from recovery.contact_center.emulator.notifications import Hub
from recovery.contact_center.emulator.scenarios import Scenario, agent_codes, get_scenario

__all__ = ["ApiError", "EmulatorConfig", "EmulatorState"]

# The columns the project's contacts carry (``CONTACT_COLUMNS``): the emulator's ready-made
# lists take exactly these.
DEFAULT_COLUMNS = CONTACT_COLUMNS
DEFAULT_TIME_SET_ID = "default-callable-times"
# Every zone a US contact can be in (the ready-made time set lists them all).
DEFAULT_TIME_SET_ZONES = (
    "America/Adak",
    "America/Anchorage",
    "America/Boise",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/New_York",
    "America/North_Dakota/Center",
    "America/Phoenix",
    "America/Puerto_Rico",
    "America/St_Thomas",
    "Pacific/Guam",
    "Pacific/Honolulu",
    "Pacific/Pago_Pago",
    "Pacific/Saipan",
)
MAPPING_ID = "wrapupcodemappings"
# The platform's error code for a data key outside the list's columns is not documented; the
# request is refused as a whole (the stricter reading), with this code.
UNKNOWN_COLUMN_CODE = "contact.columns.invalid"


class DataActionTarget(BaseModel):
    """A web-services data action as the emulated organisation defines it: where it posts and
    with which static credential (Help, "Credential types for the web services data actions
    integration": Basic Auth sends the Basic header with every request; User Defined sends the
    fields you define)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    name: str = "Recovery outcome"
    url: str
    basic_username: str | None = None
    basic_password: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # ActionConfig.timeoutSeconds: 1..60 (SDK ``models/action_config.py``).
    timeout_seconds: float = Field(default=10.0, ge=1.0, le=60.0)


class EmulatorConfig(BaseModel):
    """How the emulated Genesys Cloud organisation is set up at start."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = "emulator-client"
    client_secret: str = "emulator-secret-dev-local-only"
    token_lifetime_seconds: int = Field(default=86_400, ge=1)
    # Ready-made contact lists (these ids), with ``columns``, the phone column and its callable
    # time column; ``attempt_limits`` (an AttemptLimits body) attached to each when given. Without
    # attempt limits Genesys recycles callable contacts without end.
    contact_lists: list[str] = Field(default_factory=lambda: ["recovery-contacts"])
    columns: list[str] = Field(default_factory=lambda: list(DEFAULT_COLUMNS))
    phone_column: str = "phone"
    time_zone_column: str = "timeZone"
    attempt_limits: dict[str, Any] | None = None
    dnc_lists: list[str] = Field(default_factory=lambda: ["recovery-dnc"])
    # A ready-made campaign on the first contact list (None: no campaign, nothing is dialled).
    campaign_id: str | None = "recovery-campaign"
    queue_id: str = "recovery-queue"
    campaign_dnc_lists: bool = True
    always_running: bool = True
    callable_from: dtime = dtime(8, 0)
    callable_until: dtime = dtime(21, 0)
    time_set_zones: list[str] = Field(default_factory=lambda: list(DEFAULT_TIME_SET_ZONES))
    requests_per_minute: int | None = Field(default=300, ge=1)
    rate_window: Literal["fixed", "sliding"] = "sliding"
    scenario: str = "mixed"
    seed: int = 0
    # Fault injection, not platform behaviour: this share of notifications and data-action
    # requests is lost (seeded per conversation).
    drop_event_fraction: float | None = Field(default=None, ge=0.0, le=1.0)
    dial_interval_seconds: float | None = Field(default=None, gt=0)
    max_contacts_per_request: int = Field(default=1000, ge=1)
    max_bulk_ids: int = Field(default=50, ge=1)
    data_actions: list[DataActionTarget] = Field(default_factory=list)
    action_concurrency: int = Field(default=8, ge=1)
    # The heartbeat interval of a notification WebSocket is not documented (real seconds).
    heartbeat_seconds: float = Field(default=30.0, gt=0)
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
    requeued: int = 0
    duplicates: int = 0
    deleted: int = 0
    dnc_appended: int = 0
    dials: int = 0
    recycles: int = 0
    recalls: int = 0
    refused_outside_window: int = 0
    on_dnc_list: int = 0
    skipped_uncallable: int = 0
    skipped_attempt_limit: int = 0
    events_published: int = 0
    events_dropped: int = 0
    actions_sent: int = 0
    actions_failed: int = 0
    actions_dropped: int = 0

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
    phone_status: dict[str, bool] = field(default_factory=dict)
    # Calls placed for this contact (the scenario's outcome is drawn per contact and dial).
    dials: int = 0
    # Attempts counted against the list's attempt limits since their last reset.
    attempts: int = 0
    number_attempts: dict[str, int] = field(default_factory=dict)
    window_start: datetime | None = None
    recalls_used: dict[str, int] = field(default_factory=dict)
    recall_at: datetime | None = None
    dialled_in_pass: int | None = None

    def to_wire(self) -> dict[str, Any]:
        """A ``DialerContact`` (``models/dialer_contact.py``)."""
        wire: dict[str, Any] = {
            "id": self.id,
            "contactListId": self.contact_list_id,
            "data": dict(self.data),
            "callable": self.callable,
            "dateCreated": org.iso(self.created_at),
            "selfUri": f"/api/v2/outbound/contactlists/{self.contact_list_id}/contacts/{self.id}",
        }
        if self.call_records:
            wire["callRecords"] = {k: dict(v) for k, v in self.call_records.items()}
        if self.phone_status:
            wire["phoneNumberStatus"] = {k: {"callable": v} for k, v in self.phone_status.items()}
        return wire

    def clear_system_data(self) -> None:
        """ "the system columns (attempts, callable status, etc) stored on the contact will be
        cleared" (SDK ``post_outbound_contactlist_contacts``, ``clearSystemData``)."""
        self.call_records.clear()
        self.phone_status.clear()
        self.attempts = 0
        self.number_attempts.clear()
        self.window_start = None
        self.recalls_used.clear()
        self.recall_at = None


@dataclass
class ContactList:
    id: str
    contacts: dict[str, StoredContact] = field(default_factory=dict)
    # Contacts waiting to be dialled, in order, with why they are queued.
    queue: OrderedDict[str, str] = field(default_factory=OrderedDict)
    by_key: dict[tuple[str, ...], set[str]] = field(default_factory=dict)


@dataclass
class CampaignRun:
    """What a running campaign remembers between dial rounds: its pass through the list."""

    passes: int = 1
    # When the current pass began: the first round of the campaign, then each recycle.
    pass_started_at: datetime | None = None


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
class ActionCall:
    """One request a wrap-up rule's data action makes."""

    target: DataActionTarget
    body: dict[str, Any]
    contact_id: str


@dataclass
class DialReport:
    dialled: int = 0
    refused_outside_window: int = 0
    on_dnc_list: int = 0
    recycled: int = 0
    recalled: int = 0
    actions: list[ActionCall] = field(default_factory=list)
    dropped_actions: int = 0

    def summary(self) -> dict[str, int]:
        return {
            "dialled": self.dialled,
            "refused_outside_window": self.refused_outside_window,
            "on_dnc_list": self.on_dnc_list,
            "recycled": self.recycled,
            "recalled": self.recalled,
            "actions": len(self.actions),
            "dropped_actions": self.dropped_actions,
        }


def phone_digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def wrapup_id(name: str) -> str:
    """The id the emulated organisation gives an agent wrap-up code: stable per name, so the
    same scenario gives the same ids run after run."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"genesys-emulator/wrapupcode/{name}"))


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
        # Data-action requests the dialer has made and not yet seen answered (or failed).
        self.actions_in_flight = 0
        self.tokens: dict[str, datetime] = {}
        self._initial_config = config.model_copy(deep=True)
        self.hub = Hub(heartbeat_seconds=config.heartbeat_seconds)
        self._set_up(config)

    # -- set-up ----------------------------------------------------------------------------

    def _set_up(self, config: EmulatorConfig) -> None:
        self.config = config.model_copy(deep=True)
        now = self.clock.now()
        self.contact_lists: dict[str, dict[str, Any]] = {}
        self.lists: dict[str, ContactList] = {}
        self.attempt_limits: dict[str, dict[str, Any]] = {}
        self.dnc_lists: dict[str, dict[str, Any]] = {}
        self.dnc: dict[str, set[str]] = {}
        self.time_sets: dict[str, dict[str, Any]] = {}
        self.campaigns: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, CampaignRun] = {}
        self.wrapup_codes: dict[str, dict[str, Any]] = {}
        self.rule_sets: dict[str, dict[str, Any]] = {}
        self.data_actions: dict[str, DataActionTarget] = {a.id: a for a in config.data_actions}
        self.mapping: dict[str, Any] = org.stamp(
            {"name": "Wrap-up code mappings", "defaultSet": [], "mapping": {}},
            entity_id=MAPPING_ID,
            now=now,
            path="/api/v2/outbound",
            previous=None,
        )
        self.mapping["selfUri"] = "/api/v2/outbound/wrapupcodemappings"
        self.poisoned: dict[str, str] = {}
        self.faults: deque[Fault] = deque()
        self.scenario: Scenario = get_scenario(
            config.scenario, drop_event_fraction=config.drop_event_fraction
        )
        self.seed = config.seed
        self.requests_per_minute = config.requests_per_minute
        self.rate_window = config.rate_window
        self._sliding: dict[str, deque[float]] = {}
        self._fixed: dict[str, tuple[float, int]] = {}
        self.counters = Counters()
        self.dial_log: list[dict[str, Any]] = []
        self.conversations: dict[str, dict[str, Any]] = {}
        self.hub.reset()
        for name in agent_codes():
            code_id = wrapup_id(name)
            self.wrapup_codes[code_id] = org.wrapup_code(
                {"name": name}, entity_id=code_id, now=now, previous=None
            )
        limits_ref = None
        if config.attempt_limits is not None:
            limits = org.attempt_limits(
                {"name": "Ready-made attempt limits", **config.attempt_limits},
                entity_id="recovery-attempt-limits",
                now=now,
                previous=None,
            )
            self.attempt_limits[limits["id"]] = limits
            limits_ref = {"id": limits["id"]}
        for list_id in config.contact_lists:
            body: dict[str, Any] = {
                "name": list_id,
                "columnNames": list(config.columns),
                "phoneColumns": [
                    {
                        "columnName": config.phone_column,
                        "type": "cell",
                        "callableTimeColumn": config.time_zone_column,
                    }
                ],
            }
            if limits_ref is not None:
                body["attemptLimits"] = limits_ref
            self._put_contact_list(list_id, body, now)
        for dnc_id in config.dnc_lists:
            self.dnc_lists[dnc_id] = org.dnc_list(
                {"name": dnc_id, "dncSourceType": "rds", "contactMethod": "Phone"},
                entity_id=dnc_id,
                now=now,
                previous=None,
            )
            self.dnc[dnc_id] = set()
        slots = [
            {
                "startTime": config.callable_from.strftime("%H:%M:%S"),
                "stopTime": config.callable_until.strftime("%H:%M:%S"),
                "day": day,
            }
            for day in range(1, 8)
        ]
        self.time_sets[DEFAULT_TIME_SET_ID] = org.callable_time_set(
            {
                "name": f"Default {config.callable_from:%H:%M}-{config.callable_until:%H:%M} local",
                "callableTimes": [
                    {"timeZoneId": z, "timeSlots": slots} for z in config.time_set_zones
                ],
            },
            entity_id=DEFAULT_TIME_SET_ID,
            now=now,
            previous=None,
        )
        if config.campaign_id is not None and config.contact_lists:
            self.campaigns[config.campaign_id] = org.campaign(
                {
                    "name": "Payment recovery",
                    "contactList": {"id": config.contact_lists[0]},
                    "dialingMode": "progressive",
                    "phoneColumns": [{"columnName": config.phone_column, "type": "cell"}],
                    "callerName": "Payment recovery",
                    "callerAddress": "+18005550100",
                    "queue": {"id": config.queue_id},
                    "script": {"id": "recovery-script"},
                    "edgeGroup": {"id": "recovery-edge-group"},
                    "callAnalysisResponseSet": {"id": "recovery-call-analysis"},
                    "dncLists": [{"id": d} for d in config.dnc_lists]
                    if config.campaign_dnc_lists
                    else [],
                    "callableTimeSet": {"id": DEFAULT_TIME_SET_ID},
                    "alwaysRunning": config.always_running,
                    "campaignStatus": "on",
                },
                entity_id=config.campaign_id,
                now=now,
                previous=None,
                contact_lists=self.contact_lists,
                dnc_lists=self.dnc_lists,
                time_sets=self.time_sets,
                rule_sets=self.rule_sets,
            )
            self.runs[config.campaign_id] = CampaignRun()

    def _put_contact_list(self, list_id: str, body: Any, now: datetime) -> dict[str, Any]:
        previous = self.contact_lists.get(list_id)
        wire = org.contact_list(
            body,
            entity_id=list_id,
            now=now,
            previous=previous,
            attempt_limits=self.attempt_limits,
        )
        org.unique_name(self.contact_lists.values(), wire["name"], list_id, "contact list")
        self.contact_lists[list_id] = wire
        self.lists.setdefault(list_id, ContactList(list_id))
        return wire

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

    # -- configuration objects -------------------------------------------------------------

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

    def list_config(self, list_id: str) -> dict[str, Any]:
        self.contact_list(list_id)
        return self.contact_lists[list_id]

    def create_contact_list(self, body: Any) -> dict[str, Any]:
        with self.lock:
            return self._put_contact_list(org.new_id(), body, self.clock.now())

    def update_contact_list(self, list_id: str, body: Any) -> dict[str, Any]:
        with self.lock:
            self.list_config(list_id)
            return self._put_contact_list(list_id, body, self.clock.now())

    def delete_contact_list(self, list_id: str) -> None:
        with self.lock:
            self.list_config(list_id)
            users = [
                c["name"] for c in self.campaigns.values() if c["contactList"]["id"] == list_id
            ]
            if users:
                raise ApiError(
                    400,
                    "contact.list.in.use",
                    f"The contact list is used by campaign(s) {', '.join(users)}.",
                )
            del self.contact_lists[list_id]
            del self.lists[list_id]

    def put_object(
        self,
        kind: str,
        entity_id: str | None,
        body: Any,
    ) -> dict[str, Any]:
        """Create (``entity_id`` None) or update an attempt limits entry, callable time set, DNC
        list, campaign, rule set or wrap-up code."""
        with self.lock:
            now = self.clock.now()
            store, builder, what = self._kind(kind)
            previous = None
            if entity_id is not None:
                previous = store.get(entity_id)
                if previous is None:
                    raise ApiError(404, "not.found", f"The {what} {entity_id} could not be found.")
            new_id = entity_id or org.new_id()
            wire = builder(body, entity_id=new_id, now=now, previous=previous)
            org.unique_name(store.values(), wire["name"], new_id, what)
            if kind == "campaigns" and previous is not None:
                if wire["contactList"]["id"] != previous["contactList"]["id"]:
                    self.runs[new_id] = CampaignRun()
            store[new_id] = wire
            if kind == "dnclists":
                self.dnc.setdefault(new_id, set())
            if kind == "campaigns":
                self.runs.setdefault(new_id, CampaignRun())
            return wire

    def get_object(self, kind: str, entity_id: str) -> dict[str, Any]:
        with self.lock:
            store, _builder, what = self._kind(kind)
            found = store.get(entity_id)
            if found is None:
                raise ApiError(404, "not.found", f"The {what} {entity_id} could not be found.")
            return found

    def list_objects(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            store, _builder, _what = self._kind(kind)
            return sorted(store.values(), key=lambda e: (str(e.get("name", "")).lower(), e["id"]))

    def delete_object(self, kind: str, entity_id: str) -> dict[str, Any]:
        with self.lock:
            store, _builder, what = self._kind(kind)
            found = store.get(entity_id)
            if found is None:
                raise ApiError(404, "not.found", f"The {what} {entity_id} could not be found.")
            in_use = self._users_of(kind, entity_id)
            if in_use:
                raise ApiError(
                    400,
                    f"{what.replace(' ', '.')}.in.use",
                    f"The {what} is in use by {', '.join(in_use)}.",
                )
            del store[entity_id]
            if kind == "dnclists":
                self.dnc.pop(entity_id, None)
            if kind == "campaigns":
                self.runs.pop(entity_id, None)
            return found

    def _users_of(self, kind: str, entity_id: str) -> list[str]:
        users: list[str] = []
        if kind == "attemptlimits":
            users = [
                c["name"]
                for c in self.contact_lists.values()
                if c.get("attemptLimits", {}).get("id") == entity_id
            ]
        field_name = {
            "dnclists": "dncLists",
            "rulesets": "ruleSets",
            "callabletimesets": "callableTimeSet",
        }.get(kind)
        if field_name is not None:
            for campaign in self.campaigns.values():
                value = campaign.get(field_name)
                refs = value if isinstance(value, list) else [value] if value else []
                if any(r.get("id") == entity_id for r in refs):
                    users.append(campaign["name"])
        return users

    def _kind(
        self, kind: str
    ) -> tuple[dict[str, dict[str, Any]], Callable[..., dict[str, Any]], str]:
        if kind == "attemptlimits":
            return self.attempt_limits, org.attempt_limits, "attempt limits"
        if kind == "callabletimesets":
            return self.time_sets, org.callable_time_set, "callable time set"
        if kind == "dnclists":
            return self.dnc_lists, org.dnc_list, "DNC list"
        if kind == "wrapupcodes":
            return self.wrapup_codes, org.wrapup_code, "wrap-up code"
        if kind == "campaigns":

            def build_campaign(body: Any, **kw: Any) -> dict[str, Any]:
                return org.campaign(
                    body,
                    contact_lists=self.contact_lists,
                    dnc_lists=self.dnc_lists,
                    time_sets=self.time_sets,
                    rule_sets=self.rule_sets,
                    **kw,
                )

            return self.campaigns, build_campaign, "campaign"
        if kind == "rulesets":

            def build_rules(body: Any, **kw: Any) -> dict[str, Any]:
                return org.rule_set(body, data_actions=self.data_actions, **kw)

            return self.rule_sets, build_rules, "rule set"
        raise ApiError(404, "not.found", f"Unknown resource {kind}.")

    def put_mapping(self, body: Any) -> dict[str, Any]:
        with self.lock:
            self.mapping = org.wrapup_mapping(
                body, now=self.clock.now(), previous=self.mapping, codes=self.wrapup_codes
            )
            return self.mapping

    # -- contacts --------------------------------------------------------------------------

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
        """Add or update contacts (SDK ``post_outbound_contactlist_contacts``), the request
        validated as a whole first.

        ``doNotQueue``: "True means that updated contacts will not have their positions in the
        queue altered, so contacts that have already been dialed will not be redialed. For new
        contacts, this parameter has no effect; False means that updated contacts will be
        re-queued, according to the 'priority' parameter." The parameter has no documented
        default: absent is taken as false, so an update re-queues the contact, dialled or not.
        """
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
                        existing.clear_system_data()
                    if item["phone_status"] is not None:
                        existing.phone_status = item["phone_status"]
                    self._index(contact_list, existing)
                    if not do_not_queue:
                        self.counters.requeued += existing.dials > 0
                        self._enqueue(contact_list, contact_id, priority, "requeued")
                    answer.append(existing.to_wire())
                    continue
                stored = StoredContact(
                    id=contact_id,
                    contact_list_id=list_id,
                    data=data,
                    callable=item["callable"],
                    created_at=now,
                    phone_status=item["phone_status"] or {},
                )
                key = self._dedupe_key(data)
                if key is not None and contact_list.by_key.get(key):
                    self.counters.duplicates += 1
                contact_list.contacts[contact_id] = stored
                self._index(contact_list, stored)
                self.counters.contacts_created += 1
                self._enqueue(contact_list, contact_id, priority, "queued")
                answer.append(stored.to_wire())
            return answer

    def replace_contact(self, list_id: str, contact_id: str, body: Any) -> dict[str, Any]:
        """``PUT .../contacts/{contactId}`` with a whole ``DialerContact``. The endpoint has no
        ``doNotQueue`` parameter and its effect on the queue is not documented: the stricter
        reading re-queues a contact that the update leaves callable."""
        with self.lock:
            contact_list = self.contact_list(list_id)
            if contact_id not in contact_list.contacts:
                raise ApiError(404, "not.found", f"The contact {contact_id} could not be found.")
            if not isinstance(body, dict):
                raise ApiError(400, "bad.request", "The request body must be a contact object.")
            return self.add_contacts(
                list_id,
                [{**body, "id": contact_id}],
                priority=False,
                clear_system_data=False,
                do_not_queue=False,
            )[0]

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
    def _enqueue(contact_list: ContactList, contact_id: str, priority: bool, why: str) -> None:
        # "True means the contact(s) will be dialed next; false means the contact will go to
        # the end of the contact queue."
        contact_list.queue.pop(contact_id, None)
        contact_list.queue[contact_id] = why
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
        columns = set(self.contact_lists[list_id]["columnNames"])
        phones = {c["columnName"] for c in self.contact_lists[list_id]["phoneColumns"]}
        errors: list[dict[str, Any]] = []
        valid: list[dict[str, Any]] = []
        for index, item in enumerate(body):
            problem = self._contact_problem(list_id, item, columns, phones)
            if problem is not None:
                errors.append({"index": index, "message": problem[1], "code": problem[0]})
                continue
            contact_id = item.get("id")
            if contact_id in self.poisoned:
                errors.append(
                    {
                        "index": index,
                        "message": self.poisoned[contact_id],
                        "code": "invalid.property",
                    }
                )
                continue
            status = item.get("phoneNumberStatus")
            valid.append(
                {
                    "id": contact_id or secrets.token_hex(16),
                    "data": dict(item["data"]),
                    "callable": bool(item.get("callable", True)),
                    "phone_status": (
                        {k: bool(v.get("callable", True)) for k, v in status.items()}
                        if isinstance(status, dict)
                        else None
                    ),
                }
            )
        if errors:
            first = errors[0]
            raise ApiError(
                400,
                first["code"],
                f"Contact at index {first['index']}: {first['message']}",
                errors=[
                    {"message": e["message"], "code": e["code"], "status": 400} for e in errors
                ],
            )
        return valid

    @staticmethod
    def _contact_problem(
        list_id: str, item: Any, columns: set[str], phones: set[str]
    ) -> tuple[str, str] | None:
        if not isinstance(item, dict):
            return "invalid.property", "A contact must be a JSON object."
        if "contactListId" not in item or not item["contactListId"]:
            return "invalid.property", "contactListId is required."
        if item["contactListId"] != list_id:
            return (
                "invalid.property",
                "contactListId does not match the contact list of the request.",
            )
        if "id" in item and item["id"] is not None and not isinstance(item["id"], str):
            return "invalid.property", "id must be a string."
        if isinstance(item.get("id"), str) and not 1 <= len(item["id"]) <= 64:
            return "invalid.property", "id must be 1 to 64 characters."
        data = item.get("data")
        if not isinstance(data, dict):
            return "invalid.property", "data is required and must be an object."
        for column, value in data.items():
            if not isinstance(value, str):
                return "invalid.property", f"The value of column {column} must be a string."
        unknown = sorted(set(data) - columns)
        if unknown:
            return (
                UNKNOWN_COLUMN_CODE,
                f"Columns {', '.join(unknown)} are not columns of contact list {list_id}.",
            )
        if "callable" in item and not isinstance(item["callable"], bool):
            return "invalid.property", "callable must be a boolean."
        status = item.get("phoneNumberStatus")
        if status is not None:
            if not isinstance(status, dict) or not all(
                k in phones and isinstance(v, dict) for k, v in status.items()
            ):
                return "invalid.property", "phoneNumberStatus must map phone columns to {callable}."
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
                "contactsCount": total,
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
        """ "Only Internal DNC lists may be appended to" (SDK
        ``post_outbound_dnclist_phonenumbers``)."""
        with self.lock:
            numbers = self.dnc.get(dnc_list_id)
            config = self.dnc_lists.get(dnc_list_id)
            if numbers is None or config is None:
                raise ApiError(404, "not.found", f"The DNC list {dnc_list_id} could not be found.")
            if not org.accepts_phone_appends(config):
                raise ApiError(
                    400,
                    "dnc.list.not.internal",
                    "Only Internal DNC lists of phone numbers may be appended to.",
                )
            if not isinstance(body, list) or not all(isinstance(p, str) for p in body):
                raise ApiError(
                    400, "bad.request", "The request body must be an array of phone numbers."
                )
            for phone in body:
                digits = phone_digits(phone)
                if digits:
                    numbers.add(digits)
                    self.counters.dnc_appended += 1

    def on_dnc(self, phone: str, dnc_ids: list[str]) -> bool:
        digits = phone_digits(phone)
        return bool(digits) and any(digits in self.dnc.get(d, set()) for d in dnc_ids)

    def snapshot(self, list_id: str) -> list[dict[str, Any]]:
        with self.lock:
            contact_list = self.contact_list(list_id)
            return [
                {
                    **c.to_wire(),
                    "queued": c.id in contact_list.queue,
                    "dials": c.dials,
                    "attempts": c.attempts,
                    "recallAt": org.iso(c.recall_at) if c.recall_at else None,
                }
                for c in contact_list.contacts.values()
            ]


def _whole_seconds(reset: float, *, least: int) -> int:
    """Seconds until the window resets, as the service states them: whole, at most 60 (a
    stamp plus 60.0 minus the same stamp may come out a hair above 60 in floating point)."""
    return max(least, min(60, math.ceil(reset - 1e-6)))

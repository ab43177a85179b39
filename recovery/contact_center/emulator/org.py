"""The emulated organisation's outbound configuration: contact lists, attempt limits, DNC lists,
callable time sets, campaigns, wrap-up codes, wrap-up code mappings and rule sets.

Each object is kept in its wire form (camelCase JSON, as the official SDK
``PureCloudPlatformClientV2`` 269 reads it: ``models/contact_list.py``, ``attempt_limits.py``,
``dnc_list.py``, ``callable_time_set.py``, ``campaign.py``, ``wrapup_code.py``,
``wrap_up_code_mapping.py``, ``rule_set.py``) and validated the way the platform validates it,
taking the stricter reading wherever Genesys' documentation leaves the behaviour open. Every
function here runs under the state's lock.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from recovery.contact_center.emulator.errors import ApiError

HOME_DIVISION = {
    "id": "4f1b5f0e-4a43-4b5f-9d0f-6d2b1c9e0a11",
    "name": "Home",
    "selfUri": "/api/v2/authorization/divisions/4f1b5f0e-4a43-4b5f-9d0f-6d2b1c9e0a11",
}

# SDK ``AttemptLimits.reset_period`` allowed values: NEVER, TODAY, DAYS_2 .. DAYS_30.
RESET_PERIODS = frozenset({"NEVER", "TODAY", *(f"DAYS_{n}" for n in range(2, 31))})
# Recall types: Genesys' Terraform provider builds the map from busy, no_answer,
# answering_machine, fax (camel-cased); Help "Configure an attempt controls entry" lists
# "Answering Machine, Busy, Fax, or No Answer".
RECALL_KEYS = frozenset({"busy", "noAnswer", "answeringMachine", "fax"})
# SDK ``DncList.dnc_source_type`` and ``contact_method`` allowed values.
DNC_SOURCE_TYPES = frozenset({"rds", "rds_custom", "dnc.com", "gryphon"})
DNC_CONTACT_METHODS = frozenset({"Email", "Phone", "Any", "WhatsApp"})
# SDK ``Campaign.dialing_mode`` and ``campaign_status`` allowed values.
DIALING_MODES = frozenset(
    {"agentless", "preview", "power", "predictive", "progressive", "external"}
)
CAMPAIGN_STATUSES = frozenset(
    {"on", "stopping", "off", "complete", "invalid", "forced_off", "forced_stopping"}
)
# SDK ``DialerRule.category``, ``DialerAction.type`` / ``action_type_name``, ``Condition.type``.
RULE_CATEGORIES = frozenset({"DIALER_PRECALL", "DIALER_WRAPUP"})
ACTION_TYPES = frozenset({"Action", "modifyContactAttribute", "dataActionBehavior"})
ACTION_NAMES = frozenset(
    {
        "DO_NOT_DIAL",
        "MODIFY_CONTACT_ATTRIBUTE",
        "SWITCH_TO_PREVIEW",
        "APPEND_NUMBER_TO_DNC_LIST",
        "APPEND_CUSTOM_ENTRY_TO_DNC_LIST",
        "SCHEDULE_CALLBACK",
        "CONTACT_UNCALLABLE",
        "NUMBER_UNCALLABLE",
        "SET_CALLER_ID",
        "SET_SKILLS",
        "DATA_ACTION",
    }
)
CONDITION_TYPES = frozenset(
    {
        "wrapupCondition",
        "systemDispositionCondition",
        "contactAttributeCondition",
        "phoneNumberCondition",
        "phoneNumberTypeCondition",
        "callAnalysisCondition",
        "contactPropertyCondition",
        "dataActionCondition",
        "timeAndDateCondition",
    }
)
# Flags of a wrap-up code mapping (Genesys' Terraform provider validates the first three; the
# Java SDK's ``DefaultSetEnum`` adds the BUSINESS_* ones).
MAPPING_FLAGS = frozenset(
    {
        "CONTACT_UNCALLABLE",
        "NUMBER_UNCALLABLE",
        "RIGHT_PARTY_CONTACT",
        "BUSINESS_SUCCESS",
        "BUSINESS_FAILURE",
        "BUSINESS_NEUTRAL",
    }
)
_HHMMSS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$")


def iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


def entity_ref(entity_id: str, name: str | None, path: str) -> dict[str, Any]:
    """A ``DomainEntityRef`` (``models/domain_entity_ref.py``): id, name, selfUri."""
    ref: dict[str, Any] = {"id": entity_id, "selfUri": f"{path}/{entity_id}"}
    if name is not None:
        ref["name"] = name
    return ref


def listing(
    entities: list[dict[str, Any]], *, page_size: int, page_number: int, path: str
) -> dict[str, Any]:
    """The standard paging envelope of every ``*EntityListing`` model."""
    total = len(entities)
    page_count = math.ceil(total / page_size) if total else 0
    start = (page_number - 1) * page_size
    body: dict[str, Any] = {
        "entities": entities[start : start + page_size],
        "pageSize": page_size,
        "pageNumber": page_number,
        "total": total,
        "pageCount": page_count,
        "firstUri": f"{path}?pageSize={page_size}&pageNumber=1",
        "selfUri": f"{path}?pageSize={page_size}&pageNumber={page_number}",
    }
    if page_count:
        body["lastUri"] = f"{path}?pageSize={page_size}&pageNumber={page_count}"
    if page_number < page_count:
        body["nextUri"] = f"{path}?pageSize={page_size}&pageNumber={page_number + 1}"
    if page_number > 1:
        body["previousUri"] = f"{path}?pageSize={page_size}&pageNumber={page_number - 1}"
    return body


def paging(
    query: Mapping[str, str], *, default_size: int = 25, max_size: int = 100
) -> tuple[int, int]:
    """``pageSize`` and ``pageNumber`` of a list GET. Outbound's listings say "The max that will
    be returned is 100" (SDK ``get_outbound_contactlists``): a larger size is capped, a
    non-number refused."""
    try:
        size = int(query.get("pageSize", default_size))
        number = int(query.get("pageNumber", 1))
    except ValueError as exc:
        raise ApiError(400, "bad.request", "pageSize and pageNumber must be integers.") from exc
    if size < 1 or number < 1:
        raise ApiError(400, "bad.request", "pageSize and pageNumber must be positive.")
    return min(size, max_size), number


def name_filter(query: Mapping[str, str]) -> Callable[[dict[str, Any]], bool]:
    """The ``name`` filter of outbound listings; ``filterType`` defaults to ``Prefix``."""
    name = query.get("name")
    if not name:
        return lambda _entity: True
    kind = query.get("filterType", "Prefix")
    tests: dict[str, Callable[[str], bool]] = {
        "Equals": lambda value: value == name,
        "Contains": lambda value: name.lower() in value.lower(),
        "Prefix": lambda value: value.lower().startswith(name.lower()),
        "BeginsWith": lambda value: value.lower().startswith(name.lower()),
        "EndsWith": lambda value: value.lower().endswith(name.lower()),
    }
    if kind not in tests:
        raise ApiError(400, "bad.request", f"filterType {kind} is not supported here.")
    test = tests[kind]
    return lambda entity: test(str(entity.get("name", "")))


def _require(condition: bool, message: str, code: str = "invalid.property") -> None:
    if not condition:
        raise ApiError(400, code, message)


def _object(body: Any, what: str) -> dict[str, Any]:
    _require(isinstance(body, dict), f"The request body must be a {what} object.", "bad.request")
    return dict(body)


def _ref_id(value: Any, field: str) -> str:
    _require(
        isinstance(value, dict) and isinstance(value.get("id"), str) and bool(value["id"]),
        f"{field} must be a reference with an id.",
    )
    return str(value["id"])


def _name(body: dict[str, Any], what: str) -> str:
    name = body.get("name")
    _require(isinstance(name, str) and bool(name.strip()), f"A {what} needs a name.")
    return str(name).strip()


def unique_name(
    existing: Iterable[dict[str, Any]], name: str, own_id: str | None, what: str
) -> None:
    """Names are unique per object type (stricter reading: a duplicate is refused)."""
    for entity in existing:
        if entity.get("name") == name and entity.get("id") != own_id:
            raise ApiError(400, "name.already.exists", f"A {what} named {name!r} already exists.")


def stamp(
    body: dict[str, Any],
    *,
    entity_id: str,
    now: datetime,
    path: str,
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    """id, dates, version and selfUri, as every outbound configuration object carries them."""
    body["id"] = entity_id
    body["dateCreated"] = previous["dateCreated"] if previous else iso(now)
    body["dateModified"] = iso(now)
    body["version"] = (previous["version"] + 1) if previous else 1
    body["selfUri"] = f"{path}/{entity_id}"
    return body


def check_version(body: dict[str, Any], previous: dict[str, Any], what: str) -> None:
    """``version``: "Required for updates, must match the version number of the most recent
    update" (SDK docstring of every outbound configuration model)."""
    version = body.get("version")
    _require(isinstance(version, int), f"version is required to update a {what}.")
    if version != previous["version"]:
        raise ApiError(
            409,
            "version.mismatch",
            f"The {what} has changed since version {version}; "
            f"the current version is {previous['version']}.",
        )


# -- contact lists -----------------------------------------------------------------------------


def contact_list(
    body: Any,
    *,
    entity_id: str,
    now: datetime,
    previous: dict[str, Any] | None,
    attempt_limits: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    """A ``ContactList``. ``columnNames`` is the only schema-required field (SDK-docs
    ``ContactList.md``); phone columns are required when there are no email columns (Genesys'
    Terraform provider, PR #412). Phone columns and column names cannot be changed by an update:
    the platform answers ``cannot.update.phone.columns`` (quoted in that PR); the code for column
    names is not documented and is refused the same way here."""
    data = _object(body, "contact list")
    if previous is not None:
        check_version(data, previous, "contact list")
    name = _name(data, "contact list")
    columns: Any = data.get("columnNames")
    _require(
        isinstance(columns, list)
        and bool(columns)
        and all(isinstance(c, str) and c.strip() for c in columns),
        "columnNames must be a non-empty list of column names.",
    )
    _require(len(set(columns)) == len(columns), "columnNames must not repeat a column.")
    automatic = bool(data.get("automaticTimeZoneMapping", False))
    phones = data.get("phoneColumns") or []
    emails = data.get("emailColumns") or []
    _require(isinstance(phones, list) and isinstance(emails, list), "Columns must be lists.")
    _require(
        bool(phones) or bool(emails), "phoneColumns is required when there are no emailColumns."
    )
    clean_phones: list[dict[str, Any]] = []
    for column in phones:
        _require(isinstance(column, dict), "A phone column must be an object.")
        column_name = column.get("columnName")
        _require(column_name in columns, f"Phone column {column_name!r} is not one of columnNames.")
        _require(
            isinstance(column.get("type"), str) and bool(column["type"]),
            "A phone column needs a type.",
        )
        time_column = column.get("callableTimeColumnName") or column.get("callableTimeColumn")
        entry: dict[str, Any] = {"columnName": column_name, "type": column["type"]}
        if time_column:
            _require(
                not automatic,
                "callableTimeColumn is not allowed when automaticTimeZoneMapping is true.",
            )
            _require(
                time_column in columns,
                f"Callable time column {time_column!r} is not one of columnNames.",
            )
            entry["callableTimeColumn"] = time_column
            entry["callableTimeColumnName"] = time_column
        clean_phones.append(entry)
    zip_column = data.get("zipCodeColumnName")
    if zip_column:
        _require(
            automatic, "zipCodeColumnName is only allowed if automaticTimeZoneMapping is true."
        )
        _require(zip_column in columns, "zipCodeColumnName must be one of columnNames.")
    limits = data.get("attemptLimits")
    limits_ref: dict[str, Any] | None = None
    if limits:
        limits_id = _ref_id(limits, "attemptLimits")
        found = attempt_limits.get(limits_id)
        if found is None:
            raise ApiError(400, "invalid.property", f"Attempt limits {limits_id} do not exist.")
        limits_ref = entity_ref(limits_id, found["name"], "/api/v2/outbound/attemptlimits")
    if previous is not None:
        if [(c["columnName"], c["type"], c.get("callableTimeColumn")) for c in clean_phones] != [
            (c["columnName"], c["type"], c.get("callableTimeColumn"))
            for c in previous["phoneColumns"]
        ]:
            raise ApiError(
                400,
                "cannot.update.phone.columns",
                "An attempt was made to update a ContactList in an invalid way. "
                "Details: Phone number columns are different",
            )
        if list(columns) != list(previous["columnNames"]):
            raise ApiError(
                400,
                "cannot.update.column.names",
                "An attempt was made to update a ContactList in an invalid way. "
                "Details: Column names are different",
            )
    wire: dict[str, Any] = {
        "name": name,
        "division": HOME_DIVISION,
        "columnNames": list(columns),
        "phoneColumns": clean_phones,
        "emailColumns": list(emails),
        "automaticTimeZoneMapping": automatic,
        "trimWhitespace": bool(data.get("trimWhitespace", True)),
    }
    if zip_column:
        wire["zipCodeColumnName"] = zip_column
    if limits_ref is not None:
        wire["attemptLimits"] = limits_ref
    for passthrough in ("previewModeColumnName", "previewModeAcceptedValues", "timeZone"):
        if data.get(passthrough) is not None:
            wire[passthrough] = data[passthrough]
    return stamp(
        wire, entity_id=entity_id, now=now, path="/api/v2/outbound/contactlists", previous=previous
    )


# -- attempt limits ----------------------------------------------------------------------------


def attempt_limits(
    body: Any, *, entity_id: str, now: datetime, previous: dict[str, Any] | None
) -> dict[str, Any]:
    """``AttemptLimits``: at least one of ``maxAttemptsPerContact`` / ``maxAttemptsPerNumber``
    ("Required if ... is not defined"), ``resetPeriod`` (defaults to NEVER), ``timeZoneId``
    ("Required if the resetPeriod is TODAY"), ``recallEntries`` keyed by recall type with
    ``nbrAttempts`` 1..100 and ``minutesBetweenAttempts`` 5..480 (Help, "Configure an attempt
    controls entry")."""
    data = _object(body, "attempt limits")
    if previous is not None:
        check_version(data, previous, "attempt limits")
    name = _name(data, "attempt limits entry")
    per_contact = data.get("maxAttemptsPerContact")
    per_number = data.get("maxAttemptsPerNumber")
    _require(
        per_contact is not None or per_number is not None,
        "maxAttemptsPerContact is required if maxAttemptsPerNumber is not defined.",
    )
    for field, value in (
        ("maxAttemptsPerContact", per_contact),
        ("maxAttemptsPerNumber", per_number),
    ):
        if value is not None:
            _require(
                isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                f"{field} must be a positive integer.",
            )
    reset = data.get("resetPeriod") or "NEVER"
    _require(reset in RESET_PERIODS, f"resetPeriod {reset!r} is not valid.")
    zone = data.get("timeZoneId")
    if reset == "TODAY":
        _require(
            isinstance(zone, str) and bool(zone),
            "timeZoneId is required if the resetPeriod is TODAY.",
        )
    if zone:
        valid_zone(str(zone), "timeZoneId")
    recalls = data.get("recallEntries") or {}
    _require(isinstance(recalls, dict), "recallEntries must be an object.")
    clean_recalls: dict[str, dict[str, int]] = {}
    for key, entry in recalls.items():
        _require(key in RECALL_KEYS, f"Recall type {key!r} is not one of {sorted(RECALL_KEYS)}.")
        _require(isinstance(entry, dict), "A recall entry must be an object.")
        attempts = entry.get("nbrAttempts")
        minutes = entry.get("minutesBetweenAttempts")
        _require(
            isinstance(attempts, int) and 1 <= attempts <= 100,
            "nbrAttempts must be between 1 and 100.",
        )
        _require(
            isinstance(minutes, int) and 5 <= minutes <= 480,
            "minutesBetweenAttempts must be between 5 and 480.",
        )
        clean_recalls[key] = {"nbrAttempts": attempts, "minutesBetweenAttempts": minutes}
    wire: dict[str, Any] = {"name": name, "resetPeriod": reset, "recallEntries": clean_recalls}
    if per_contact is not None:
        wire["maxAttemptsPerContact"] = per_contact
    if per_number is not None:
        wire["maxAttemptsPerNumber"] = per_number
    if zone:
        wire["timeZoneId"] = zone
    return stamp(
        wire, entity_id=entity_id, now=now, path="/api/v2/outbound/attemptlimits", previous=previous
    )


def valid_zone(zone: str, field: str) -> ZoneInfo:
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ApiError(400, "invalid.property", f"{field} {zone!r} is not a time zone.") from exc


# -- callable time sets ------------------------------------------------------------------------


def callable_time_set(
    body: Any, *, entity_id: str, now: datetime, previous: dict[str, Any] | None
) -> dict[str, Any]:
    """``CallableTimeSet``: required ``name`` and ``callableTimes``; each ``CallableTime`` has a
    ``timeZoneId`` and ``timeSlots`` of ``startTime``/``stopTime`` ("HH:mm:ss") and ``day``
    ("Valid values: [1-7], representing Monday through Sunday";
    ``models/campaign_time_slot.py``)."""
    data = _object(body, "callable time set")
    if previous is not None:
        check_version(data, previous, "callable time set")
    name = _name(data, "callable time set")
    times: Any = data.get("callableTimes")
    _require(isinstance(times, list) and bool(times), "callableTimes is required.")
    clean: list[dict[str, Any]] = []
    for entry in times:
        _require(isinstance(entry, dict), "A callable time must be an object.")
        zone = entry.get("timeZoneId")
        _require(isinstance(zone, str) and bool(zone), "timeZoneId is required.")
        valid_zone(str(zone), "timeZoneId")
        slots = entry.get("timeSlots")
        _require(isinstance(slots, list) and bool(slots), "timeSlots is required.")
        clean_slots = []
        for slot in slots:
            _require(isinstance(slot, dict), "A time slot must be an object.")
            start, stop, day = slot.get("startTime"), slot.get("stopTime"), slot.get("day")
            _require(
                isinstance(start, str) and bool(_HHMMSS.match(start)),
                "startTime must be an ISO-8601 time, HH:mm:ss.",
            )
            _require(
                isinstance(stop, str) and bool(_HHMMSS.match(stop)),
                "stopTime must be an ISO-8601 time, HH:mm:ss.",
            )
            _require(
                isinstance(day, int) and 1 <= day <= 7, "day must be 1 (Monday) to 7 (Sunday)."
            )
            clean_slots.append({"startTime": start, "stopTime": stop, "day": day})
        item: dict[str, Any] = {"timeZoneId": zone, "timeSlots": clean_slots}
        if entry.get("name"):
            item["name"] = entry["name"]
        clean.append(item)
    wire = {"name": name, "callableTimes": clean}
    return stamp(
        wire,
        entity_id=entity_id,
        now=now,
        path="/api/v2/outbound/callabletimesets",
        previous=previous,
    )


# -- DNC lists ---------------------------------------------------------------------------------


def dnc_list(
    body: Any, *, entity_id: str, now: datetime, previous: dict[str, Any] | None
) -> dict[str, Any]:
    """``DncListCreate`` / ``DncList``: required ``name`` and ``dncSourceType`` (rds, rds_custom,
    dnc.com, gryphon); ``contactMethod`` "Required if dncSourceType is rds";
    ``customExclusionColumn`` for rds_custom; ``loginId`` and ``dncCodes`` for dnc.com;
    ``licenseId`` for gryphon (SDK docstrings)."""
    data = _object(body, "DNC list")
    if previous is not None:
        check_version(data, previous, "DNC list")
    name = _name(data, "DNC list")
    source = data.get("dncSourceType")
    _require(
        source in DNC_SOURCE_TYPES, f"dncSourceType must be one of {sorted(DNC_SOURCE_TYPES)}."
    )
    if previous is not None:
        _require(source == previous["dncSourceType"], "dncSourceType cannot be changed.")
    wire: dict[str, Any] = {"name": name, "dncSourceType": source, "division": HOME_DIVISION}
    method = data.get("contactMethod")
    if source == "rds":
        _require(
            method in DNC_CONTACT_METHODS, "contactMethod is required if dncSourceType is rds."
        )
    if method is not None:
        _require(method in DNC_CONTACT_METHODS, f"contactMethod {method!r} is not valid.")
        wire["contactMethod"] = method
    if source == "rds_custom":
        _require(
            bool(data.get("customExclusionColumn")),
            "customExclusionColumn is required for rds_custom.",
        )
        wire["customExclusionColumn"] = data["customExclusionColumn"]
    if source == "dnc.com":
        _require(
            bool(data.get("loginId")) and bool(data.get("dncCodes")),
            "loginId and dncCodes are required for dnc.com.",
        )
        wire["loginId"], wire["dncCodes"] = data["loginId"], list(data["dncCodes"])
    if source == "gryphon":
        _require(bool(data.get("licenseId")), "licenseId is required for gryphon.")
        wire["licenseId"] = data["licenseId"]
    return stamp(
        wire, entity_id=entity_id, now=now, path="/api/v2/outbound/dnclists", previous=previous
    )


def accepts_phone_appends(dnc: Mapping[str, Any]) -> bool:
    """ "Only Internal DNC lists may be appended to" (SDK ``post_outbound_dnclist_phonenumbers``).
    Internal phone lists are ``rds`` with a phone contact method; ``rds_custom`` lists take custom
    values through their own endpoint (stricter reading of an inferred mapping)."""
    return dnc.get("dncSourceType") == "rds" and dnc.get("contactMethod") in {"Phone", "Any"}


# -- campaigns ---------------------------------------------------------------------------------


def campaign(
    body: Any,
    *,
    entity_id: str,
    now: datetime,
    previous: dict[str, Any] | None,
    contact_lists: Mapping[str, dict[str, Any]],
    dnc_lists: Mapping[str, dict[str, Any]],
    time_sets: Mapping[str, dict[str, Any]],
    rule_sets: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    """``Campaign``: schema-required ``name``, ``contactList``, ``dialingMode``, ``phoneColumns``,
    ``callerName``, ``callerAddress`` (SDK-docs ``Campaign.md``); ``queue`` and ``script``
    "Required for all dialing modes except agentless"; ``edgeGroup`` (or ``site``) and
    ``callAnalysisResponseSet`` "Required for all dialing modes except preview"; ``abandonRate``
    "Required for power and predictive campaigns"; ``outboundLineCount`` "only required for
    agentless"; ``campaignStatus`` "Required for updates" (``models/campaign.py``)."""
    data = _object(body, "campaign")
    if previous is not None:
        check_version(data, previous, "campaign")
        _require(
            data.get("campaignStatus") in CAMPAIGN_STATUSES,
            "campaignStatus is required for updates.",
        )
    name = _name(data, "campaign")
    mode = data.get("dialingMode")
    _require(mode in DIALING_MODES, f"dialingMode must be one of {sorted(DIALING_MODES)}.")
    list_id = _ref_id(data.get("contactList"), "contactList")
    found_list = contact_lists.get(list_id)
    _require(found_list is not None, f"Contact list {list_id} does not exist.")
    assert found_list is not None
    for field in ("callerName", "callerAddress"):
        _require(isinstance(data.get(field), str) and bool(data[field]), f"{field} is required.")
    phones: Any = data.get("phoneColumns")
    _require(isinstance(phones, list) and bool(phones), "phoneColumns is required.")
    list_phones = {c["columnName"] for c in found_list["phoneColumns"]}
    for column in phones:
        _require(
            isinstance(column, dict) and column.get("columnName") in list_phones,
            "Every campaign phone column must be a phone column of its contact list.",
        )
    refs: dict[str, Any] = {}
    if mode != "agentless":
        refs["queue"] = data.get("queue")
        refs["script"] = data.get("script")
    if mode != "preview":
        _require(
            bool(data.get("edgeGroup")) or bool(data.get("site")),
            "edgeGroup or site is required for all dialing modes except preview.",
        )
        refs["callAnalysisResponseSet"] = data.get("callAnalysisResponseSet")
    for field, value in refs.items():
        _ref_id(value, field)
    if mode in {"power", "predictive"}:
        _require(
            isinstance(data.get("abandonRate"), int | float),
            "abandonRate is required for power and predictive campaigns.",
        )
    if mode == "agentless":
        _require(
            isinstance(data.get("outboundLineCount"), int),
            "outboundLineCount is required for agentless campaigns.",
        )
    dncs = data.get("dncLists") or []
    _require(isinstance(dncs, list), "dncLists must be a list.")
    dnc_refs = []
    for item in dncs:
        dnc_id = _ref_id(item, "dncLists")
        dnc = dnc_lists.get(dnc_id)
        _require(dnc is not None, f"DNC list {dnc_id} does not exist.")
        assert dnc is not None
        dnc_refs.append(entity_ref(dnc_id, dnc["name"], "/api/v2/outbound/dnclists"))
    time_set_ref = None
    if data.get("callableTimeSet"):
        set_id = _ref_id(data["callableTimeSet"], "callableTimeSet")
        found_set = time_sets.get(set_id)
        _require(found_set is not None, f"Callable time set {set_id} does not exist.")
        assert found_set is not None
        time_set_ref = entity_ref(set_id, found_set["name"], "/api/v2/outbound/callabletimesets")
    rule_refs = []
    for item in data.get("ruleSets") or []:
        rule_id = _ref_id(item, "ruleSets")
        rules = rule_sets.get(rule_id)
        _require(rules is not None, f"Rule set {rule_id} does not exist.")
        assert rules is not None
        rule_refs.append(entity_ref(rule_id, rules["name"], "/api/v2/outbound/rulesets"))
    status = data.get("campaignStatus") or "off"
    _require(status in CAMPAIGN_STATUSES, f"campaignStatus {status!r} is not valid.")
    wire: dict[str, Any] = {
        "name": name,
        "division": HOME_DIVISION,
        "contactList": entity_ref(list_id, found_list["name"], "/api/v2/outbound/contactlists"),
        "dialingMode": mode,
        "campaignStatus": status,
        "phoneColumns": [
            {"columnName": c["columnName"], "type": c.get("type", "")} for c in phones
        ],
        "dncLists": dnc_refs,
        "ruleSets": rule_refs,
        "callerName": data["callerName"],
        "callerAddress": data["callerAddress"],
        "alwaysRunning": bool(data.get("alwaysRunning", False)),
        "errors": [],
    }
    if time_set_ref is not None:
        wire["callableTimeSet"] = time_set_ref
    for field in ("queue", "script", "edgeGroup", "site", "callAnalysisResponseSet"):
        if data.get(field):
            wire[field] = {"id": _ref_id(data[field], field)}
    for field in (
        "abandonRate",
        "outboundLineCount",
        "priority",
        "noAnswerTimeout",
        "contactSorts",
    ):
        if data.get(field) is not None:
            wire[field] = data[field]
    return stamp(
        wire, entity_id=entity_id, now=now, path="/api/v2/outbound/campaigns", previous=previous
    )


# -- wrap-up codes and their mapping -----------------------------------------------------------


def wrapup_code(
    body: Any, *, entity_id: str, now: datetime, previous: dict[str, Any] | None
) -> dict[str, Any]:
    """``WrapupCodeRequest`` in, ``WrapupCode`` out (``models/wrapup_code.py``): required
    ``name``; the division is the home division unless given."""
    data = _object(body, "wrap-up code")
    name = _name(data, "wrap-up code")
    _require(len(name) <= 255, "A wrap-up code name is at most 255 characters.")
    wire: dict[str, Any] = {
        "id": entity_id,
        "name": name,
        "division": HOME_DIVISION,
        "dateCreated": previous["dateCreated"] if previous else iso(now),
        "dateModified": iso(now),
        "createdBy": "emulator",
        "selfUri": f"/api/v2/routing/wrapupcodes/{entity_id}",
    }
    if data.get("description"):
        wire["description"] = str(data["description"])
    return wire


def wrapup_mapping(
    body: Any, *, now: datetime, previous: dict[str, Any], codes: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """``WrapUpCodeMapping``: ``defaultSet`` (flags applied to codes with no mapping) and
    ``mapping`` from wrap-up code ids to flags (``models/wrap_up_code_mapping.py``)."""
    data = _object(body, "wrap-up code mapping")
    check_version(data, previous, "wrap-up code mapping")
    default_set = data.get("defaultSet") or []
    _require(
        isinstance(default_set, list) and all(f in MAPPING_FLAGS for f in default_set),
        "defaultSet holds unknown flags.",
    )
    mapping = data.get("mapping") or {}
    _require(isinstance(mapping, dict), "mapping must be an object.")
    for code_id, flags in mapping.items():
        _require(code_id in codes, f"Wrap-up code {code_id} does not exist.")
        _require(
            isinstance(flags, list) and all(f in MAPPING_FLAGS for f in flags),
            "mapping holds unknown flags.",
        )
    wire = {
        "id": previous["id"],
        "name": previous["name"],
        "defaultSet": list(default_set),
        "mapping": {k: list(v) for k, v in mapping.items()},
    }
    return stamp(
        wire,
        entity_id=previous["id"],
        now=now,
        path="/api/v2/outbound/wrapupcodemappings",
        previous=previous,
    ) | {"selfUri": "/api/v2/outbound/wrapupcodemappings"}


# -- rule sets ---------------------------------------------------------------------------------


def rule_set(
    body: Any,
    *,
    entity_id: str,
    now: datetime,
    previous: dict[str, Any] | None,
    data_actions: Iterable[str],
) -> dict[str, Any]:
    """``RuleSet`` with ``DialerRule``s (required ``name``, ``category``, ``conditions``) and
    ``DialerAction``s (required ``type``, ``actionTypeName``; ``dataAction`` "Required for a
    dataActionBehavior"). Help ("Use a rule to evaluate information from a data action"): "If
    you use a data action only as an action, you must still configure a condition for the rule"
    (``models/rule_set.py``, ``dialer_rule.py``, ``dialer_action.py``, ``condition.py``)."""
    data = _object(body, "rule set")
    if previous is not None:
        check_version(data, previous, "rule set")
    name = _name(data, "rule set")
    rules: Any = data.get("rules")
    _require(isinstance(rules, list) and bool(rules), "rules is required.")
    known_actions = set(data_actions)
    clean_rules = []
    for index, rule in enumerate(rules):
        _require(isinstance(rule, dict), "A rule must be an object.")
        _require(isinstance(rule.get("name"), str) and bool(rule["name"]), "A rule needs a name.")
        _require(
            rule.get("category") in RULE_CATEGORIES,
            f"category must be one of {sorted(RULE_CATEGORIES)}.",
        )
        conditions = rule.get("conditions")
        _require(
            isinstance(conditions, list) and bool(conditions),
            "A rule needs at least one condition.",
        )
        for condition in conditions:
            _require(
                isinstance(condition, dict) and condition.get("type") in CONDITION_TYPES,
                "A condition needs a valid type.",
            )
            if condition["type"] == "wrapupCondition":
                codes = condition.get("codes")
                _require(
                    isinstance(codes, list)
                    and bool(codes)
                    and all(isinstance(c, str) for c in codes),
                    "A wrapupCondition needs codes.",
                )
        actions = rule.get("actions") or []
        _require(isinstance(actions, list), "actions must be a list.")
        for action in actions:
            _require(isinstance(action, dict), "An action must be an object.")
            _require(
                action.get("type") in ACTION_TYPES,
                f"action type must be one of {sorted(ACTION_TYPES)}.",
            )
            _require(action.get("actionTypeName") in ACTION_NAMES, "actionTypeName is not valid.")
            if action["type"] == "dataActionBehavior":
                action_id = _ref_id(action.get("dataAction"), "dataAction")
                _require(action_id in known_actions, f"Data action {action_id} does not exist.")
        clean_rules.append(
            {
                "id": rule.get("id") or new_id(),
                "name": rule["name"],
                "order": rule.get("order", index),
                "category": rule["category"],
                "conditions": [dict(c) for c in conditions],
                "actions": [dict(a) for a in actions],
            }
        )
    wire: dict[str, Any] = {"name": name, "rules": clean_rules}
    if data.get("contactList"):
        wire["contactList"] = {"id": _ref_id(data["contactList"], "contactList")}
    if data.get("queue"):
        wire["queue"] = {"id": _ref_id(data["queue"], "queue")}
    return stamp(
        wire, entity_id=entity_id, now=now, path="/api/v2/outbound/rulesets", previous=previous
    )

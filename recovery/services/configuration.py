"""The contact centre's configuration, checked against what this project needs, and set up.

What the project needs, and why (sources in the platform's SDK ``PureCloudPlatformClientV2``
269 and Genesys' help pages):

- A contact list whose ``columnNames`` include every column a contact carries (a data key
  outside them is not part of the list), whose phone column's ``callableTimeColumn`` is the
  column the project fills with the contact's zone ("A column that indicates the timezone to
  use for a given contact when checking callable times. Not allowed if
  'automaticTimeZoneMapping' is set to true", ``models/contact_phone_number_column.py``).
- Attempt limits that forbid recycling: one attempt per contact, never reset, no recalls.
  Every planned attempt is a contact of its own, so Genesys needs to dial each once only;
  otherwise "contacts dispositioned with system wrap-up codes ... get retried in the next
  recycle" (Help, "Wrap-up codes assigned by outbound dialing") within ``maxAttemptsPerContact``
  since ``resetPeriod`` and ``recallEntries`` (``models/attempt_limits.py``).
- A campaign on that list that is ``alwaysRunning`` ("the campaign will remain on after
  contacts are depleted, allowing additional contacts to be appended"), checks the project's
  internal DNC list ("Only Internal DNC lists may be appended to",
  ``post_outbound_dnclist_phonenumbers``), and whose callable time set is no wider than the
  calling rules and lists every zone a contact can be in.
- Every wrap-up code of the organisation, and every system code, mapped to a disposition.
- When a data action is configured, a ``DIALER_WRAPUP`` rule set on the campaign that runs it
  with the contact's id, the call-analysis result and the agent's wrap-up.

``check`` reads only; ``set_up`` creates or corrects what it can, idempotently, and says what
a person must do about the rest (a list's columns cannot be changed once created: "Phone
number columns are different", ``cannot.update.phone.columns``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from recovery.contact_center.client import GenesysClient
from recovery.contact_center.contacts import contact_columns
from recovery.contact_center.wrapups import SYSTEM_CODES
from recovery.domain.compliance import CallingRules
from recovery.domain.compliance.rules import DAY_NAMES
from recovery.domain.compliance.zones import us_zones
from recovery.domain.policy import DispositionMap, is_mapped
from recovery.settings import Settings

OUTBOUND = "/outbound"
RULE_NAME = "Send each outcome to the payment-recovery receiver"
# The data action's input fields the receiver reads (recovery/api/routes/callbacks.py).
CONTACT_ID_FIELD = "contactId"
CALL_ANALYSIS_FIELD = "callAnalysisResult"
AGENT_WRAPUP_FIELD = "agentWrapup"


@dataclass
class Needs:
    """What the organisation must look like, from the settings and the calling rules."""

    contact_list_id: str
    dnc_list_id: str
    campaign_id: str
    phone_column: str
    time_zone_column: str
    columns: tuple[str, ...]
    zones: tuple[str, ...]
    # Per weekday (Monday first): the widest windows the calling rules ever allow, in minutes.
    week: tuple[tuple[tuple[int, int], ...], ...]
    data_action_id: str
    names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Settings, rules: CallingRules) -> Needs:
        # Every state's hours only narrow the country's: the country's rows are the widest.
        week = rules.plan(tuple(rules.baseline)).week
        return cls(
            contact_list_id=settings.genesys_contact_list_id,
            dnc_list_id=settings.genesys_dnc_list_id,
            campaign_id=settings.genesys_campaign_id,
            phone_column=settings.genesys_phone_column,
            time_zone_column=settings.genesys_time_zone_column,
            columns=contact_columns(settings.genesys_phone_column),
            zones=us_zones(),
            week=week,
            data_action_id=settings.genesys_data_action_id,
            names={
                "contact list": settings.genesys_contact_list_name,
                "DNC list": settings.genesys_dnc_list_name,
                "attempt limits": settings.genesys_attempt_limits_name,
                "callable time set": settings.genesys_callable_time_set_name,
                "rule set": settings.genesys_rule_set_name,
            },
        )


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(text: str) -> int:
    hours, minutes, *_ = (int(p) for p in text.split(":"))
    return hours * 60 + minutes


def _get(client: GenesysClient, path: str, what: str) -> dict[str, Any] | None:
    found = client.api_json("GET", path, what=what, missing_ok=True)
    return found if isinstance(found, dict) else None


def _limits_problems(limits: dict[str, Any]) -> list[str]:
    problems = []
    per_contact = limits.get("maxAttemptsPerContact")
    per_number = limits.get("maxAttemptsPerNumber")
    if per_contact != 1 and per_number != 1:
        problems.append(
            f"allow {per_contact or per_number or 'unlimited'} attempts per contact: "
            "Genesys may dial a contact again on its own (set maxAttemptsPerContact to 1)"
        )
    if limits.get("resetPeriod", "NEVER") != "NEVER":
        problems.append(
            f"reset every {limits.get('resetPeriod')}: a contact may be dialled again after "
            "the reset (set resetPeriod to NEVER)"
        )
    if limits.get("recallEntries"):
        problems.append(
            f"recall {', '.join(sorted(limits['recallEntries']))} calls on their own "
            "(remove recallEntries)"
        )
    return problems


def _slot_problems(time_set: dict[str, Any], needs: Needs) -> list[str]:
    """Slots wider than the calling rules allow (one line per slot shape), and zones missing."""
    wide: dict[tuple[str, str, str], tuple[set[int], set[str]]] = {}
    listed: set[str] = set()
    for entry in time_set.get("callableTimes") or []:
        zone = str(entry.get("timeZoneId"))
        listed.add(zone)
        for slot in entry.get("timeSlots") or []:
            day = int(slot.get("day", 0))
            if not 1 <= day <= 7:
                continue
            start, stop = _minutes(slot["startTime"]), _minutes(slot["stopTime"])
            if any(lo <= start and stop <= hi for lo, hi in needs.week[day - 1]):
                continue
            allowed = ", ".join(f"{_hhmm(a)}-{_hhmm(b)}" for a, b in needs.week[day - 1])
            key = (slot["startTime"][:5], slot["stopTime"][:5], allowed or "no calls")
            days, zones = wide.setdefault(key, (set(), set()))
            days.add(day)
            zones.add(zone)
    problems = [
        f"callable time set {time_set.get('name')!r} allows {start}-{stop} on "
        f"{', '.join(DAY_NAMES[d - 1] for d in sorted(days))} in {', '.join(sorted(zones))}; "
        f"the calling rules allow {allowed} at most"
        for (start, stop, allowed), (days, zones) in sorted(wide.items())
    ]
    missing = [z for z in needs.zones if z not in listed]
    if missing:
        problems.append(
            f"callable time set {time_set.get('name')!r} does not list {', '.join(missing)}: "
            "contacts in those zones are never dialled"
        )
    return problems


def _has_action_rule(rule_sets: Iterable[dict[str, Any]], action_id: str) -> bool:
    for rule_set in rule_sets:
        for rule in rule_set.get("rules") or []:
            if rule.get("category") != "DIALER_WRAPUP":
                continue
            for action in rule.get("actions") or []:
                if (
                    action.get("actionTypeName") == "DATA_ACTION"
                    and (action.get("dataAction") or {}).get("id") == action_id
                    and action.get("contactIdField") == CONTACT_ID_FIELD
                ):
                    return True
    return False


def check(*, client: GenesysClient, needs: Needs, mapping: DispositionMap) -> list[str]:
    """Every way the organisation differs from what the project needs, one line each."""
    problems: list[str] = []
    list_id = needs.contact_list_id
    contact_list = _get(client, f"{OUTBOUND}/contactlists/{list_id}", "read the contact list")
    if contact_list is None:
        problems.append(f"contact list {list_id} does not exist")
    else:
        missing = [c for c in needs.columns if c not in (contact_list.get("columnNames") or [])]
        if missing:
            problems.append(
                f"contact list {list_id} lacks the columns {', '.join(missing)}: the contact "
                "centre refuses contacts that carry them"
            )
        phones = {c.get("columnName"): c for c in contact_list.get("phoneColumns") or []}
        phone = phones.get(needs.phone_column)
        if phone is None:
            problems.append(f"contact list {list_id} has no phone column {needs.phone_column}")
        if contact_list.get("automaticTimeZoneMapping"):
            problems.append(
                f"contact list {list_id} maps time zones automatically: the dialler ignores "
                f"the zone the project puts in {needs.time_zone_column}"
            )
        elif phone is not None:
            column = phone.get("callableTimeColumnName") or phone.get("callableTimeColumn")
            if column != needs.time_zone_column:
                problems.append(
                    f"contact list {list_id}: the callable time column of {needs.phone_column} "
                    f"is {column or 'not set'}, not {needs.time_zone_column} (the column the "
                    "project fills)"
                )
        limits_ref = contact_list.get("attemptLimits")
        if not limits_ref:
            problems.append(
                f"contact list {list_id} has no attempt limits: Genesys recycles every "
                "contact it leaves callable, without end"
            )
        else:
            limits = _get(
                client, f"{OUTBOUND}/attemptlimits/{limits_ref['id']}", "read attempt limits"
            )
            if limits is None:
                problems.append(f"attempt limits {limits_ref['id']} do not exist")
            else:
                for problem in _limits_problems(limits):
                    problems.append(f"attempt limits {limits.get('name')!r} {problem}")
    problems.extend(_campaign_problems(client, needs))
    for code in _unmapped_codes(client, mapping):
        problems.append(f"wrap-up code {code!r} is not mapped in the disposition map")
    return problems


def _campaign_problems(client: GenesysClient, needs: Needs) -> list[str]:
    problems: list[str] = []
    campaign_id = needs.campaign_id
    campaign = _get(client, f"{OUTBOUND}/campaigns/{campaign_id}", "read the campaign")
    dnc = _get(client, f"{OUTBOUND}/dnclists/{needs.dnc_list_id}", "read the DNC list")
    if dnc is None:
        problems.append(f"DNC list {needs.dnc_list_id} does not exist")
    elif not (dnc.get("dncSourceType") == "rds" and dnc.get("contactMethod") in {"Phone", "Any"}):
        problems.append(
            f"DNC list {needs.dnc_list_id} is {dnc.get('dncSourceType')}, not an internal list "
            "of phone numbers: suppressed numbers cannot be appended to it"
        )
    if campaign is None:
        problems.append(f"campaign {campaign_id} does not exist")
        return problems
    if (campaign.get("contactList") or {}).get("id") != needs.contact_list_id:
        problems.append(
            f"campaign {campaign_id} dials list {(campaign.get('contactList') or {}).get('id')}, "
            f"not {needs.contact_list_id}"
        )
    if not campaign.get("alwaysRunning"):
        problems.append(
            f"campaign {campaign_id} is not always running: contacts added after the list is "
            "depleted are not dialled"
        )
    if campaign.get("campaignStatus") != "on":
        problems.append(
            f"campaign {campaign_id} is {campaign.get('campaignStatus')}: nothing is dialled"
        )
    if needs.dnc_list_id not in {d.get("id") for d in campaign.get("dncLists") or []}:
        problems.append(f"campaign {campaign_id} does not check DNC list {needs.dnc_list_id}")
    time_set_ref = campaign.get("callableTimeSet")
    if not time_set_ref:
        problems.append(
            f"campaign {campaign_id} has no callable time set: the dialler would call at any hour"
        )
    else:
        time_set = _get(
            client,
            f"{OUTBOUND}/callabletimesets/{time_set_ref['id']}",
            "read the callable time set",
        )
        if time_set is None:
            problems.append(f"callable time set {time_set_ref['id']} does not exist")
        else:
            problems.extend(_slot_problems(time_set, needs))
    if needs.data_action_id:
        rule_sets = [
            found
            for ref in campaign.get("ruleSets") or []
            if (found := _get(client, f"{OUTBOUND}/rulesets/{ref['id']}", "read a rule set"))
        ]
        if not _has_action_rule(rule_sets, needs.data_action_id):
            problems.append(
                f"campaign {campaign_id} has no wrap-up rule that sends outcomes to data action "
                f"{needs.data_action_id}"
            )
    return problems


def _unmapped_codes(client: GenesysClient, mapping: DispositionMap) -> list[str]:
    codes = client.api_pages("/routing/wrapupcodes", what="list wrap-up codes")
    names = [str(c.get("name")) for c in codes if c.get("name")]
    return [n for n in [*names, *SYSTEM_CODES] if not is_mapped(n, mapping)]


# -- set-up ------------------------------------------------------------------------------------


@dataclass
class SetUp:
    """What ``set_up`` did, and what it could not do."""

    done: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)


def _find(client: GenesysClient, kind: str, name: str) -> dict[str, Any] | None:
    for entity in client.api_pages(
        f"{OUTBOUND}/{kind}", what=f"list {kind}", params={"name": name, "filterType": "Equals"}
    ):
        if entity.get("name") == name:
            return entity
    return None


def _time_set_body(needs: Needs, name: str) -> dict[str, Any]:
    slots = [
        {
            "startTime": f"{_hhmm(lo)}:00",
            "stopTime": f"{_hhmm(min(hi, 23 * 60 + 59))}:00",
            "day": day,
        }
        for day, windows in enumerate(needs.week, start=1)
        for lo, hi in windows
    ]
    return {
        "name": name,
        "callableTimes": [{"timeZoneId": z, "timeSlots": slots} for z in needs.zones],
    }


def set_up(*, client: GenesysClient, needs: Needs, mapping: DispositionMap) -> SetUp:
    """Create or correct what the project needs; never deletes anything."""
    out = SetUp()
    limits = _ensure_limits(client, needs, out)
    list_id = _ensure_list(client, needs, limits, out)
    dnc_id = _ensure_dnc(client, needs, out)
    time_set = _ensure_time_set(client, needs, out)
    rule_set = _ensure_rule_set(client, needs, out) if needs.data_action_id else None
    _ensure_campaign(client, needs, list_id, dnc_id, time_set, rule_set, out)
    for code in _unmapped_codes(client, mapping):
        out.left.append(f"wrap-up code {code!r}: map it in the disposition map")
    return out


def _ensure_limits(client: GenesysClient, needs: Needs, out: SetUp) -> dict[str, Any]:
    name = needs.names["attempt limits"]
    wanted = {"name": name, "maxAttemptsPerContact": 1, "resetPeriod": "NEVER", "recallEntries": {}}
    found = _find(client, "attemptlimits", name)
    if found is None:
        created = client.api_json(
            "POST", f"{OUTBOUND}/attemptlimits", what="create attempt limits", json=wanted
        )
        out.done.append(f"created attempt limits {name!r} (one attempt per contact, never reset)")
        return dict(created)
    if _limits_problems(found):
        updated = client.api_json(
            "PUT",
            f"{OUTBOUND}/attemptlimits/{found['id']}",
            what="update attempt limits",
            json={**wanted, "version": found["version"]},
        )
        out.done.append(f"corrected attempt limits {name!r} (one attempt per contact, never reset)")
        return dict(updated)
    return found


def _list_body(needs: Needs, name: str, limits: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "columnNames": list(needs.columns),
        "phoneColumns": [
            {
                "columnName": needs.phone_column,
                "type": "cell",
                "callableTimeColumn": needs.time_zone_column,
            }
        ],
        "automaticTimeZoneMapping": False,
        "attemptLimits": {"id": limits["id"]},
    }


def _ensure_list(client: GenesysClient, needs: Needs, limits: dict[str, Any], out: SetUp) -> str:
    list_id = needs.contact_list_id
    found = _get(client, f"{OUTBOUND}/contactlists/{list_id}", "read the contact list")
    if found is None:
        name = needs.names["contact list"]
        found = _find(client, "contactlists", name)
        if found is None:
            found = client.api_json(
                "POST",
                f"{OUTBOUND}/contactlists",
                what="create the contact list",
                json=_list_body(needs, name, limits),
            )
            out.done.append(f"created contact list {name!r} ({found['id']})")
        out.settings["RECOVERY_GENESYS_CONTACT_LIST_ID"] = str(found["id"])
        needs.contact_list_id = str(found["id"])
    list_id = str(found["id"])
    phones = {c.get("columnName"): c for c in found.get("phoneColumns") or []}
    phone = phones.get(needs.phone_column) or {}
    time_column = phone.get("callableTimeColumnName") or phone.get("callableTimeColumn")
    missing = [c for c in needs.columns if c not in (found.get("columnNames") or [])]
    if (
        missing
        or not phone
        or found.get("automaticTimeZoneMapping")
        or time_column != needs.time_zone_column
    ):
        out.left.append(
            f"contact list {list_id} cannot be corrected (its columns and phone columns are fixed "
            "once created): create a new list, or let setup create one by removing "
            "RECOVERY_GENESYS_CONTACT_LIST_ID"
        )
        return list_id
    if (found.get("attemptLimits") or {}).get("id") != limits["id"]:
        client.api_json(
            "PUT",
            f"{OUTBOUND}/contactlists/{list_id}",
            what="attach attempt limits",
            json={**found, "attemptLimits": {"id": limits["id"]}},
        )
        out.done.append(f"contact list {list_id} now uses attempt limits {limits['name']!r}")
    return list_id


def _ensure_dnc(client: GenesysClient, needs: Needs, out: SetUp) -> str:
    found = _get(client, f"{OUTBOUND}/dnclists/{needs.dnc_list_id}", "read the DNC list")
    if found is None:
        name = needs.names["DNC list"]
        found = _find(client, "dnclists", name)
        if found is None:
            found = client.api_json(
                "POST",
                f"{OUTBOUND}/dnclists",
                what="create the DNC list",
                json={"name": name, "dncSourceType": "rds", "contactMethod": "Phone"},
            )
            out.done.append(f"created internal DNC list {name!r} ({found['id']})")
        out.settings["RECOVERY_GENESYS_DNC_LIST_ID"] = str(found["id"])
        needs.dnc_list_id = str(found["id"])
    if not (found.get("dncSourceType") == "rds" and found.get("contactMethod") in {"Phone", "Any"}):
        out.left.append(
            f"DNC list {found['id']} is not an internal list of phone numbers: name an internal "
            "one in RECOVERY_GENESYS_DNC_LIST_ID, or remove the setting to let setup create one"
        )
    return str(found["id"])


def _ensure_time_set(client: GenesysClient, needs: Needs, out: SetUp) -> dict[str, Any]:
    name = needs.names["callable time set"]
    wanted = _time_set_body(needs, name)
    found = _find(client, "callabletimesets", name)
    if found is None:
        created = client.api_json(
            "POST", f"{OUTBOUND}/callabletimesets", what="create the callable time set", json=wanted
        )
        out.done.append(f"created callable time set {name!r} ({len(needs.zones)} zones)")
        return dict(created)
    if _slot_problems(found, needs):
        updated = client.api_json(
            "PUT",
            f"{OUTBOUND}/callabletimesets/{found['id']}",
            what="update the callable time set",
            json={**wanted, "version": found["version"]},
        )
        out.done.append(f"corrected callable time set {name!r}")
        return dict(updated)
    return found


def _ensure_rule_set(client: GenesysClient, needs: Needs, out: SetUp) -> dict[str, Any]:
    name = needs.names["rule set"]
    codes = [c["id"] for c in client.api_pages("/routing/wrapupcodes", what="list wrap-up codes")]
    every_code = [*codes, *SYSTEM_CODES]
    wanted: dict[str, Any] = {
        "name": name,
        "rules": [
            {
                "name": RULE_NAME,
                "order": 0,
                "category": "DIALER_WRAPUP",
                # A rule needs a condition even when it only runs an action (Help, "Use a rule
                # to evaluate information from a data action"): every code there is.
                "conditions": [{"type": "wrapupCondition", "codes": every_code}],
                "actions": [
                    {
                        "type": "dataActionBehavior",
                        "actionTypeName": "DATA_ACTION",
                        "dataAction": {"id": needs.data_action_id},
                        "contactIdField": CONTACT_ID_FIELD,
                        "callAnalysisResultField": CALL_ANALYSIS_FIELD,
                        "agentWrapupField": AGENT_WRAPUP_FIELD,
                    }
                ],
            }
        ],
    }
    found = _find(client, "rulesets", name)
    if found is None:
        created = client.api_json(
            "POST", f"{OUTBOUND}/rulesets", what="create the rule set", json=wanted
        )
        out.done.append(
            f"created rule set {name!r}: each wrap-up goes to data action {needs.data_action_id}"
        )
        return dict(created)
    covered = {
        c
        for r in found.get("rules", [])
        for cond in r.get("conditions", [])
        for c in cond.get("codes", [])
    }
    if not _has_action_rule([found], needs.data_action_id) or not set(every_code) <= covered:
        updated = client.api_json(
            "PUT",
            f"{OUTBOUND}/rulesets/{found['id']}",
            what="update the rule set",
            json={**wanted, "version": found["version"]},
        )
        out.done.append(f"corrected rule set {name!r}")
        return dict(updated)
    return found


def _ensure_campaign(
    client: GenesysClient,
    needs: Needs,
    list_id: str,
    dnc_id: str,
    time_set: dict[str, Any],
    rule_set: dict[str, Any] | None,
    out: SetUp,
) -> None:
    campaign_id = needs.campaign_id
    campaign = _get(client, f"{OUTBOUND}/campaigns/{campaign_id}", "read the campaign")
    if campaign is None:
        out.left.append(
            f"campaign {campaign_id} does not exist: create it (its queue, script and edge "
            f"group are the organisation's choice) on contact list {list_id}, then run setup again"
        )
        return
    body = dict(campaign)
    changes: list[str] = []
    if (campaign.get("contactList") or {}).get("id") != list_id:
        body["contactList"] = {"id": list_id}
        changes.append(f"dials list {list_id}")
    dncs = [{"id": d["id"]} for d in campaign.get("dncLists") or []]
    if dnc_id not in {d["id"] for d in dncs}:
        body["dncLists"] = [*dncs, {"id": dnc_id}]
        changes.append(f"checks DNC list {dnc_id}")
    if (campaign.get("callableTimeSet") or {}).get("id") != time_set["id"]:
        body["callableTimeSet"] = {"id": time_set["id"]}
        changes.append(f"uses callable time set {time_set['name']!r}")
    if not campaign.get("alwaysRunning"):
        body["alwaysRunning"] = True
        changes.append("is always running")
    if rule_set is not None:
        rules = [{"id": r["id"]} for r in campaign.get("ruleSets") or []]
        if rule_set["id"] not in {r["id"] for r in rules}:
            body["ruleSets"] = [*rules, {"id": rule_set["id"]}]
            changes.append(f"runs rule set {rule_set['name']!r}")
    if changes:
        client.api_json(
            "PUT", f"{OUTBOUND}/campaigns/{campaign_id}", what="update the campaign", json=body
        )
        out.done.append(f"campaign {campaign_id} now " + ", ".join(changes))
    if campaign.get("campaignStatus") != "on":
        out.left.append(
            f"campaign {campaign_id} is {campaign.get('campaignStatus')}: turn it on when ready"
        )

"""The emulated dialer: every campaign that is on works through its contact list the way Genesys
Cloud's dialer does, and everything it does is written to the dial log.

What it does, with the platform's sources:

- Precall: a contact that is not callable, or whose number is not, is skipped; a contact over
  its list's attempt limits (``maxAttemptsPerContact``, ``maxAttemptsPerNumber`` since the last
  ``resetPeriod``) is skipped; outside the campaign's callable time set (the zone in the phone
  column's ``callableTimeColumn``, which must be one the set lists) it stays queued; a number on
  one of the campaign's DNC lists ("DncLists for this Campaign to check before placing a call",
  ``models/campaign.py``) ends as ``ININ-OUTBOUND-ON-DO-NOT-CALL-LIST`` without a call.
- The call ends with a wrap-up drawn from the seeded scenario. "Dialer does not mark a contact or
  phone number uncallable for any of the system wrap-up codes except for
  ININ-OUTBOUND-SIT-UNCALLABLE" and, for agent wrap-ups, "uses the wrap-up code mapping ... If
  no mapping is found, Dialer uses the default mapping" (Help, "Wrap-up codes assigned by
  outbound dialing"). Busy, no answer, machine and fax are recalled within the pass per the
  list's ``recallEntries``.
- Recycling: "Recycles happen automatically when a campaign completes after processing all
  records"; "A campaign recycle can occur once every five seconds" (Help, "Recycle a campaign").
  Once a round leaves nothing it can dial, the next pass queues again every contact that is
  still callable and within its attempt limits; a campaign that is not ``alwaysRunning`` turns
  complete when a pass finds nothing to dial.
- Wrap-up rules (``DIALER_WRAPUP`` rule sets of the campaign) run after the first wrap-up: a
  ``wrapupCondition`` on the code, and the actions ``CONTACT_UNCALLABLE``,
  ``NUMBER_UNCALLABLE`` and ``DATA_ACTION`` (its input: ``contactIdField``,
  ``callAnalysisResultField``, ``agentWrapupField`` and mapped columns, sent as the request
  body, the data action's default ``${input.rawRequest}``).
- Each placed call leaves an analytics conversation and notifications: the conversation's
  ``.outbound`` detail event at dial; for calls an agent handled, the queue's call conversation
  events and the conversation's ``.acw`` and ``.wrapup`` detail events. System-dispositioned
  calls produce no after-call-work events (the stricter reading: their outcome is in analytics
  and the contact's call records only).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from recovery.contact_center.emulator import org
from recovery.contact_center.emulator.scenarios import (
    DISPOSITION_NAMES,
    LIVE_DISPOSITION,
    LIVE_VOICE,
    ON_DNC_LIST,
    RECALL_TYPES,
    SIT_UNCALLABLE,
    WRAP_UP_TIMEOUT,
    call_seconds,
    is_system_code,
    wrapup_notes,
)
from recovery.contact_center.emulator.state import (
    ActionCall,
    CampaignRun,
    ContactList,
    DialReport,
    EmulatorState,
    StoredContact,
)

log = logging.getLogger(__name__)

RECYCLE_EVERY = timedelta(seconds=5)
ATTEMPT_LIMIT_SKIPPED = "ININ-OUTBOUND-CONTACT-ATTEMPT-LIMIT-SKIPPED"
NUMBER_LIMIT_SKIPPED = "ININ-OUTBOUND-NUMBER-ATTEMPT-LIMIT-SKIPPED"
AGENT_USER_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "genesys-emulator/user/agent"))
EDGE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "genesys-emulator/edge"))


def _uid(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "genesys-emulator/" + "/".join(map(str, parts))))


def conversation_id(seed: int, contact_list_id: str, contact_id: str, dial_number: int) -> str:
    """The id of the conversation of a contact's ``dial_number``-th call: stable per seed, so
    a test can subscribe to a conversation's events before the call is placed."""
    return _uid("conversation", seed, contact_list_id, contact_id, dial_number)


class _Campaign:
    """One campaign's view of its list for a dial round."""

    def __init__(self, state: EmulatorState, campaign: dict[str, Any]) -> None:
        self.state = state
        self.wire = campaign
        self.id: str = campaign["id"]
        self.list_id: str = campaign["contactList"]["id"]
        self.contacts: ContactList = state.lists[self.list_id]
        list_config = state.contact_lists[self.list_id]
        self.phone_column: str = campaign["phoneColumns"][0]["columnName"]
        self.time_column: str | None = next(
            (
                c.get("callableTimeColumn")
                for c in list_config["phoneColumns"]
                if c["columnName"] == self.phone_column
            ),
            None,
        )
        limits_ref = list_config.get("attemptLimits")
        self.limits: dict[str, Any] | None = (
            state.attempt_limits.get(limits_ref["id"]) if limits_ref else None
        )
        time_set_ref = campaign.get("callableTimeSet")
        self.time_set: dict[str, Any] | None = (
            state.time_sets.get(time_set_ref["id"]) if time_set_ref else None
        )
        self.dnc_ids = [ref["id"] for ref in campaign.get("dncLists", [])]
        self.queue_id: str | None = (campaign.get("queue") or {}).get("id")
        self.run: CampaignRun = state.runs.setdefault(self.id, CampaignRun())
        self.rules = [
            rule
            for ref in campaign.get("ruleSets", [])
            if (rule_set := state.rule_sets.get(ref["id"])) is not None
            for rule in sorted(rule_set["rules"], key=lambda r: r.get("order", 0))
            if rule["category"] == "DIALER_WRAPUP"
        ]


def dial(state: EmulatorState, at: datetime) -> DialReport:
    """One round of every campaign that is on, as at ``at``."""
    if at.tzinfo is None:
        raise ValueError("dial needs a timezone-aware instant")
    report = DialReport()
    with state.lock:
        for wire in list(state.campaigns.values()):
            if wire["campaignStatus"] != "on" or wire["contactList"]["id"] not in state.lists:
                continue
            _round(_Campaign(state, wire), at, report)
    return report


def _round(campaign: _Campaign, at: datetime, report: DialReport) -> None:
    state = campaign.state
    contacts = campaign.contacts
    if campaign.run.pass_started_at is None:
        campaign.run.pass_started_at = at
    for contact in sorted(
        (c for c in contacts.contacts.values() if c.recall_at is not None and c.recall_at <= at),
        key=lambda c: (c.recall_at, c.id),
    ):
        if contact.id in contacts.queue:
            contact.recall_at = None  # queued again meanwhile: the queue dials it
            continue
        if _consider(campaign, contact, at, report, trigger="recall"):
            contact.recall_at = None
            state.counters.recalls += 1
            report.recalled += 1
    for contact_id in list(contacts.queue):
        queued = contacts.contacts.get(contact_id)
        if queued is None:
            contacts.queue.pop(contact_id, None)
            continue
        if _consider(campaign, queued, at, report, trigger=contacts.queue[contact_id]):
            contacts.queue.pop(contact_id, None)
    _maybe_recycle(campaign, at, report)


def _maybe_recycle(campaign: _Campaign, at: datetime, report: DialReport) -> None:
    """The pass is over when nothing left in the queue can be dialled now (everything in it
    waits for its callable time): the campaign starts its next pass through the list."""
    run = campaign.run
    if run.pass_started_at is not None and at - run.pass_started_at < RECYCLE_EVERY:
        return
    pending = [c for c in campaign.contacts.contacts.values() if c.recall_at is not None]
    if pending:
        return
    again = [
        c
        for c in campaign.contacts.contacts.values()
        if c.dials > 0
        and c.id not in campaign.contacts.queue
        and _callable(campaign, c)
        and not _over_limits(campaign, c, at)
    ]
    run.pass_started_at = at
    if not again:
        if not campaign.wire.get("alwaysRunning") and not campaign.contacts.queue:
            # "the campaign will remain on after contacts are depleted" only when alwaysRunning
            campaign.wire["campaignStatus"] = "complete"
        return
    run.passes += 1
    campaign.state.counters.recycles += 1
    for contact in again:
        campaign.contacts.queue[contact.id] = "recycle"
    report.recycled += len(again)


def _callable(campaign: _Campaign, contact: StoredContact) -> bool:
    return contact.callable and contact.phone_status.get(campaign.phone_column, True)


def _reset_attempts(campaign: _Campaign, contact: StoredContact, at: datetime) -> None:
    """Attempt counters go back to 0 after the list's ``resetPeriod`` ("After how long the
    number of attempts will be set back to 0. Defaults to NEVER"; TODAY in ``timeZoneId``)."""
    limits = campaign.limits
    if limits is None or contact.window_start is None:
        return
    period = limits.get("resetPeriod", "NEVER")
    if period == "NEVER":
        return
    if period == "TODAY":
        zone = ZoneInfo(limits["timeZoneId"])
        expired = at.astimezone(zone).date() != contact.window_start.astimezone(zone).date()
    else:
        expired = at - contact.window_start >= timedelta(days=int(period.split("_")[1]))
    if expired:
        contact.attempts = 0
        contact.number_attempts.clear()
        contact.recalls_used.clear()
        contact.window_start = None


def _over_limits(campaign: _Campaign, contact: StoredContact, at: datetime) -> str | None:
    _reset_attempts(campaign, contact, at)
    limits = campaign.limits
    if limits is None:
        return None
    per_contact = limits.get("maxAttemptsPerContact")
    per_number = limits.get("maxAttemptsPerNumber")
    if per_contact is not None and contact.attempts >= per_contact:
        return ATTEMPT_LIMIT_SKIPPED
    if (
        per_number is not None
        and contact.number_attempts.get(campaign.phone_column, 0) >= per_number
    ):
        return NUMBER_LIMIT_SKIPPED
    return None


def within_callable_time(campaign: _Campaign, contact: StoredContact, at: datetime) -> bool:
    """A campaign without a callable time set dials at any hour; with one, only a contact whose
    zone the set lists, inside one of that zone's slots (start included, stop excluded)."""
    if campaign.time_set is None:
        return True
    zone_name = contact.data.get(campaign.time_column or "", "")
    for entry in campaign.time_set["callableTimes"]:
        if entry["timeZoneId"] != zone_name:
            continue
        try:
            local = at.astimezone(ZoneInfo(zone_name))
        except (ZoneInfoNotFoundError, ValueError):
            return False
        now = local.time().replace(tzinfo=None)
        for slot in entry["timeSlots"]:
            if slot["day"] != local.isoweekday():
                continue
            if (
                dtime.fromisoformat(slot["startTime"])
                <= now
                < dtime.fromisoformat(slot["stopTime"])
            ):
                return True
    return False


def next_callable_time(
    campaign: _Campaign, contact: StoredContact, at: datetime
) -> datetime | None:
    """The first instant from ``at`` inside the campaign's callable time set for this contact
    (``at`` itself when inside, None when no slot of its zone comes within eight days)."""
    if within_callable_time(campaign, contact, at):
        return at
    if campaign.time_set is None:
        return at
    zone_name = contact.data.get(campaign.time_column or "", "")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    local = at.astimezone(zone)
    found: list[datetime] = []
    for entry in campaign.time_set["callableTimes"]:
        if entry["timeZoneId"] != zone_name:
            continue
        for offset in range(9):
            day = local.date() + timedelta(days=offset)
            for slot in entry["timeSlots"]:
                if slot["day"] != day.isoweekday():
                    continue
                begins = datetime.combine(day, dtime.fromisoformat(slot["startTime"]), zone)
                if begins > at:
                    found.append(begins)
    return min(found, default=None)


def pending(state: EmulatorState, at: datetime) -> dict[str, Any]:
    """What the dialer still has to do, as at ``at``: contacts it would dial now (queued and
    callable, or recalls that are due), contacts waiting (for their callable time or a recall),
    and the first future instant one of them becomes dialable. Read-only."""
    ready = waiting = 0
    upcoming: list[datetime] = []
    with state.lock:
        for wire in state.campaigns.values():
            if wire["campaignStatus"] != "on" or wire["contactList"]["id"] not in state.lists:
                continue
            campaign = _Campaign(state, wire)
            contacts = campaign.contacts
            for contact in contacts.contacts.values():
                queued = contact.id in contacts.queue
                if not queued and contact.recall_at is None:
                    continue
                if not _callable(campaign, contact):
                    continue
                earliest = at if queued else max(at, contact.recall_at or at)
                when = next_callable_time(campaign, contact, earliest)
                if when is not None and when <= at:
                    ready += 1
                else:
                    waiting += 1
                    if when is not None:
                        upcoming.append(when)
        in_flight = state.actions_in_flight
    first = min(upcoming, default=None)
    return {
        "ready": ready,
        "waiting": waiting,
        "in_flight": in_flight,
        "next_at": org.iso(first.astimezone(UTC)) if first else None,
    }


def _consider(
    campaign: _Campaign, contact: StoredContact, at: datetime, report: DialReport, *, trigger: str
) -> bool:
    """Dial, skip or leave ``contact``; True when it is done with for this round."""
    state = campaign.state
    if not _callable(campaign, contact):
        state.counters.skipped_uncallable += 1
        return True
    limit = _over_limits(campaign, contact, at)
    if limit is not None:
        state.counters.skipped_attempt_limit += 1
        _log(campaign, contact, at, result=limit, placed=False, trigger=trigger, conversation=None)
        return True
    if not within_callable_time(campaign, contact, at):
        state.counters.refused_outside_window += 1
        report.refused_outside_window += 1
        return False
    phone = contact.data.get(campaign.phone_column, "")
    if state.on_dnc(phone, campaign.dnc_ids):
        state.counters.on_dnc_list += 1
        report.on_dnc_list += 1
        contact.call_records[campaign.phone_column] = {
            "lastAttempt": org.iso(at),
            "lastResult": ON_DNC_LIST,
        }
        _log(
            campaign,
            contact,
            at,
            result=ON_DNC_LIST,
            placed=False,
            trigger=trigger,
            conversation=None,
        )
        _wrapup_rules(
            campaign, contact, at, report, code=ON_DNC_LIST, system=True, conversation=None
        )
        return True
    _place_call(campaign, contact, at, report, trigger=trigger)
    return True


def _place_call(
    campaign: _Campaign, contact: StoredContact, at: datetime, report: DialReport, *, trigger: str
) -> None:
    state = campaign.state
    contact.dials += 1
    if contact.window_start is None:
        contact.window_start = at
    contact.attempts += 1
    column = campaign.phone_column
    contact.number_attempts[column] = contact.number_attempts.get(column, 0) + 1
    contact.dialled_in_pass = campaign.run.passes
    drawn = state.scenario.draw(state.seed, contact.id, contact.dials)
    system = is_system_code(drawn.code)
    code = drawn.code
    notes = ""
    if not system:
        found = next(
            (c["id"] for c in state.wrapup_codes.values() if c["name"] == drawn.code), None
        )
        if found is None:
            # The organisation has no such code for the agent to choose: the wrap-up times out.
            code, system = WRAP_UP_TIMEOUT, True
        else:
            code = found
            zone = contact.data.get(campaign.time_column or "", "")
            notes = wrapup_notes(state.seed, contact.id, contact.dials, drawn.code, at, zone)
    call_id = conversation_id(state.seed, contact.contact_list_id, contact.id, contact.dials)
    seconds = call_seconds(
        state.seed, contact.id, contact.dials, answered=not system or code == WRAP_UP_TIMEOUT
    )
    end = at + timedelta(seconds=seconds)
    # "Result of the last attempt to reach this number": an agent's code is recorded by id
    # (whether the platform records the id or the name is not documented; the id is stricter).
    contact.call_records[column] = {"lastAttempt": org.iso(at), "lastResult": code}
    state.counters.dials += 1
    report.dialled += 1
    conversation = _conversation(campaign, contact, at, end, call_id, code, system, notes)
    state.conversations[call_id] = conversation
    _log(campaign, contact, at, result=code, placed=True, trigger=trigger, conversation=call_id)
    _publish_call(campaign, contact, at, end, call_id, code, system, notes)
    _after_wrapup(campaign, contact, at, code=code, system=system)
    _wrapup_rules(campaign, contact, at, report, code=code, system=system, conversation=call_id)


def _after_wrapup(
    campaign: _Campaign, contact: StoredContact, at: datetime, *, code: str, system: bool
) -> None:
    """Uncallable flags and recalls that follow a wrap-up."""
    state = campaign.state
    column = campaign.phone_column
    if system:
        if code == SIT_UNCALLABLE:
            contact.phone_status[column] = False
        recall = RECALL_TYPES.get(code)
        limits = campaign.limits
        if recall and limits and recall in limits.get("recallEntries", {}):
            entry = limits["recallEntries"][recall]
            used = contact.recalls_used.get(recall, 0)
            if used < entry["nbrAttempts"] and _over_limits(campaign, contact, at) is None:
                contact.recalls_used[recall] = used + 1
                contact.recall_at = at + timedelta(minutes=entry["minutesBetweenAttempts"])
        return
    flags = state.mapping["mapping"].get(code, state.mapping["defaultSet"])
    if "CONTACT_UNCALLABLE" in flags:
        contact.callable = False
    if "NUMBER_UNCALLABLE" in flags:
        contact.phone_status[column] = False


def _wrapup_rules(
    campaign: _Campaign,
    contact: StoredContact,
    at: datetime,
    report: DialReport,
    *,
    code: str,
    system: bool,
    conversation: str | None,
) -> None:
    state = campaign.state
    for rule in campaign.rules:
        if not all(_condition_holds(c, code) for c in rule["conditions"]):
            continue
        for action in rule.get("actions", []):
            name = action.get("actionTypeName")
            if name == "CONTACT_UNCALLABLE":
                contact.callable = False
            elif name == "NUMBER_UNCALLABLE":
                contact.phone_status[campaign.phone_column] = False
            elif name == "DATA_ACTION" and action.get("type") == "dataActionBehavior":
                target = state.data_actions.get(action["dataAction"]["id"])
                if target is None:
                    continue
                body: dict[str, Any] = {}
                if action.get("contactIdField"):
                    body[action["contactIdField"]] = contact.id
                if action.get("callAnalysisResultField"):
                    body[action["callAnalysisResultField"]] = code if system else LIVE_VOICE
                if action.get("agentWrapupField"):
                    body[action["agentWrapupField"]] = "" if system else code
                for mapped in action.get("contactColumnToDataActionFieldMappings") or []:
                    body[mapped["dataActionField"]] = contact.data.get(
                        mapped["contactColumnName"], ""
                    )
                key = f"{conversation or contact.id}:{contact.dials}:{target.id}"
                if state.scenario.drops(state.seed, "action", key):
                    state.counters.actions_dropped += 1
                    report.dropped_actions += 1
                    continue
                report.actions.append(ActionCall(target=target, body=body, contact_id=contact.id))


def _condition_holds(condition: dict[str, Any], code: str) -> bool:
    """A ``wrapupCondition`` holds when the wrap-up is one of its ``codes`` (``inverted``
    negates it); other condition types are not emulated and never hold."""
    if condition.get("type") != "wrapupCondition":
        return False
    holds = code in condition.get("codes", [])
    return not holds if condition.get("inverted") else holds


def _log(
    campaign: _Campaign,
    contact: StoredContact,
    at: datetime,
    *,
    result: str,
    placed: bool,
    trigger: str,
    conversation: str | None,
) -> None:
    state = campaign.state
    name = state.wrapup_codes.get(result, {}).get("name", result)
    state.dial_log.append(
        {
            "seq": len(state.dial_log) + 1,
            "at": org.iso(at),
            "campaignId": campaign.id,
            "contactListId": campaign.list_id,
            "contactId": contact.id,
            "phone": contact.data.get(campaign.phone_column, ""),
            "result": name,
            "wrapupCode": result,
            "placed": placed,
            "pass": campaign.run.passes,
            "trigger": trigger,
            "dialNumber": contact.dials,
            "conversationId": conversation,
        }
    )


def _tel(phone: str) -> str:
    return f"tel:{phone}" if phone else ""


def _conversation(
    campaign: _Campaign,
    contact: StoredContact,
    at: datetime,
    end: datetime,
    conversation_id: str,
    code: str,
    system: bool,
    notes: str,
) -> dict[str, Any]:
    """The call as ``AnalyticsConversationWithoutAttributes``."""
    phone = contact.data.get(campaign.phone_column, "")
    ids = {
        "outboundCampaignId": campaign.id,
        "outboundContactId": contact.id,
        "outboundContactListId": campaign.list_id,
    }
    answered = not system or code == WRAP_UP_TIMEOUT
    talk_start = at + timedelta(seconds=8)
    dialer_segments: list[dict[str, Any]] = [
        {
            "segmentStart": org.iso(at),
            "segmentEnd": org.iso(talk_start if answered else end),
            "segmentType": "dialing",
        }
    ]
    if system and code != WRAP_UP_TIMEOUT:
        dialer_segments.append(
            {
                "segmentStart": org.iso(end),
                "segmentEnd": org.iso(end),
                "segmentType": "wrapup",
                "wrapUpCode": code,
            }
        )
    participants: list[dict[str, Any]] = [
        {
            "participantId": _uid("participant", conversation_id, "outbound"),
            "participantName": campaign.wire["name"],
            "purpose": "outbound",
            "sessions": [
                {
                    "sessionId": _uid("session", conversation_id, "outbound"),
                    "mediaType": "voice",
                    "direction": "outbound",
                    "ani": campaign.wire.get("callerAddress", ""),
                    "dnis": _tel(phone),
                    "edgeId": EDGE_ID,
                    **ids,
                    "dispositionAnalyzer": "disposition.analysis.callable",
                    "dispositionName": DISPOSITION_NAMES.get(code, LIVE_DISPOSITION),
                    "segments": dialer_segments,
                }
            ],
        },
        {
            "participantId": _uid("participant", conversation_id, "customer"),
            "purpose": "customer",
            "sessions": [
                {
                    "sessionId": _uid("session", conversation_id, "customer"),
                    "mediaType": "voice",
                    "direction": "outbound",
                    "ani": campaign.wire.get("callerAddress", ""),
                    "dnis": _tel(phone),
                    **ids,
                    "segments": [
                        {
                            "segmentStart": org.iso(at),
                            "segmentEnd": org.iso(end),
                            "segmentType": "interact" if answered else "contacting",
                            "disconnectType": "peer" if answered else "endpoint",
                        }
                    ],
                }
            ],
        },
    ]
    if answered:
        segments: list[dict[str, Any]] = [
            {
                "segmentStart": org.iso(talk_start),
                "segmentEnd": org.iso(end),
                "segmentType": "interact",
                **({"queueId": campaign.queue_id} if campaign.queue_id else {}),
            }
        ]
        wrap: dict[str, Any] = {
            "segmentStart": org.iso(end),
            "segmentEnd": org.iso(end + timedelta(seconds=20)),
            "segmentType": "wrapup",
            "wrapUpCode": code,
            **({"queueId": campaign.queue_id} if campaign.queue_id else {}),
        }
        if notes:
            wrap["wrapUpNote"] = notes
        segments.append(wrap)
        participants.append(
            {
                "participantId": _uid("participant", conversation_id, "agent"),
                "participantName": "Recovery agent",
                "purpose": "agent",
                "userId": AGENT_USER_ID,
                "sessions": [
                    {
                        "sessionId": _uid("session", conversation_id, "agent"),
                        "mediaType": "voice",
                        "direction": "outbound",
                        **ids,
                        "segments": segments,
                    }
                ],
            }
        )
    return {
        "conversationId": conversation_id,
        "conversationStart": org.iso(at),
        "conversationEnd": org.iso(end + timedelta(seconds=20) if answered else end),
        "originatingDirection": "outbound",
        "conversationInitiator": "dialer",
        "divisionIds": [org.HOME_DIVISION["id"]],
        "participants": participants,
    }


def _publish(state: EmulatorState, conversation_id: str, topic: str, body: dict[str, Any]) -> None:
    if state.scenario.drops(state.seed, f"event:{topic.rsplit('.', 1)[-1]}", conversation_id):
        state.counters.events_dropped += 1
        return
    state.counters.events_published += 1
    state.hub.publish(topic, body)


def _publish_call(
    campaign: _Campaign,
    contact: StoredContact,
    at: datetime,
    end: datetime,
    conversation_id: str,
    code: str,
    system: bool,
    notes: str,
) -> None:
    state = campaign.state
    phone = contact.data.get(campaign.phone_column, "")
    base = {
        "eventTime": int(at.timestamp() * 1000),
        "conversationId": conversation_id,
        "mediaType": "VOICE",
        "provider": "Edge",
        "direction": "OUTBOUND",
        "ani": campaign.wire.get("callerAddress", ""),
        "dnis": _tel(phone),
        "addressTo": _tel(phone),
        "addressFrom": campaign.wire.get("callerAddress", ""),
    }
    detail = f"v2.detail.events.conversation.{conversation_id}"
    _publish(
        state,
        conversation_id,
        f"{detail}.outbound",
        {
            **base,
            "participantId": _uid("participant", conversation_id, "outbound"),
            "sessionId": _uid("session", conversation_id, "outbound"),
            "outboundCampaignId": campaign.id,
            "divisionId": org.HOME_DIVISION["id"],
            "outboundContactListId": campaign.list_id,
            "outboundContactId": contact.id,
        },
    )
    if system and code != WRAP_UP_TIMEOUT:
        return
    agent = {
        "participantId": _uid("participant", conversation_id, "agent"),
        "sessionId": _uid("session", conversation_id, "agent"),
        "queueId": campaign.queue_id,
        "wrapupCode": code,
        "wrapupNotes": notes,
        "wrapupDurationMs": 20_000,
    }
    if campaign.queue_id:
        topic = f"v2.routing.queues.{campaign.queue_id}.conversations.calls"
        _publish(
            state,
            conversation_id,
            topic,
            _queue_call(campaign, contact, at, end, conversation_id, code, notes),
        )
    wrap_time = int((end + timedelta(seconds=20)).timestamp() * 1000)
    _publish(
        state,
        conversation_id,
        f"{detail}.acw",
        {**base, **agent, "eventTime": wrap_time, "userId": AGENT_USER_ID},
    )
    _publish(state, conversation_id, f"{detail}.wrapup", {**base, **agent, "eventTime": wrap_time})


def _queue_call(
    campaign: _Campaign,
    contact: StoredContact,
    at: datetime,
    end: datetime,
    conversation_id: str,
    code: str,
    notes: str,
) -> dict[str, Any]:
    """The queue's view of a finished, wrapped-up call
    (``QueueConversationCallEventTopicCallConversation``)."""
    phone = contact.data.get(campaign.phone_column, "")
    return {
        "id": conversation_id,
        "participants": [
            {
                "id": _uid("participant", conversation_id, "customer"),
                "purpose": "customer",
                "address": _tel(phone),
                "state": "disconnected",
                "direction": "outbound",
                "startTime": org.iso(at),
                "connectedTime": org.iso(at + timedelta(seconds=8)),
                "endTime": org.iso(end),
                "disconnectType": "peer",
                "provider": "Edge",
                "attributes": {},
            },
            {
                "id": _uid("participant", conversation_id, "agent"),
                "name": "Recovery agent",
                "purpose": "agent",
                "state": "disconnected",
                "direction": "outbound",
                "user": {"id": AGENT_USER_ID},
                "queue": {"id": campaign.queue_id},
                "startTime": org.iso(at + timedelta(seconds=8)),
                "endTime": org.iso(end),
                "wrapupRequired": True,
                "wrapup": {
                    "code": code,
                    "notes": notes,
                    "durationSeconds": 20,
                    "endTime": org.iso(end + timedelta(seconds=20)),
                },
            },
        ],
        "recordingState": "none",
    }


async def deliver(state: EmulatorState, actions: list[ActionCall]) -> tuple[int, int]:
    """Make each data-action request; returns (sent, failed). A failure is counted and not
    retried (a wrap-up rule runs once)."""
    if not actions:
        return 0, 0
    with state.lock:
        state.actions_in_flight += len(actions)
    semaphore = asyncio.Semaphore(state.config.action_concurrency)
    results: list[bool] = []

    async def one(call: ActionCall, http: httpx.AsyncClient) -> None:
        target = call.target
        auth: httpx.Auth | None = None
        if target.basic_username is not None:
            auth = httpx.BasicAuth(target.basic_username, target.basic_password or "")
        async with semaphore:
            try:
                response = await http.post(
                    target.url,
                    json=call.body,
                    headers={"Content-Type": "application/json", **target.headers},
                    auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                    timeout=target.timeout_seconds,
                )
                ok = response.is_success
                if not ok:
                    log.warning(
                        "data action %s for contact %s answered %s",
                        target.id,
                        call.contact_id,
                        response.status_code,
                    )
            except httpx.HTTPError as exc:
                log.warning(
                    "data action %s for contact %s failed: %s", target.id, call.contact_id, exc
                )
                ok = False
        results.append(ok)

    try:
        async with httpx.AsyncClient() as http:
            await asyncio.gather(*(one(a, http) for a in actions))
    finally:
        with state.lock:
            state.actions_in_flight -= len(actions)
    sent = sum(results)
    failed = len(results) - sent
    with state.lock:
        state.counters.actions_sent += sent
        state.counters.actions_failed += failed
    return sent, failed


async def run_dialer(state: EmulatorState, interval: float, stop: asyncio.Event) -> None:
    """Dial on an interval until ``stop`` is set (the CLI's emulator, never the tests')."""
    while not stop.is_set():
        try:
            report = dial(state, state.clock.now())
            await deliver(state, report.actions)
        except Exception:  # the loop must outlive one bad round
            log.exception("dialer round failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass

"""The emulated organisation through the official SDK (``PureCloudPlatformClientV2``): every
platform object it serves is read by the SDK's own models, and behaves as Genesys Cloud does
(columns, attempt limits and recycling, campaigns, callable time sets, DNC lists, wrap-up
codes, rule sets and data actions, analytics, notification channels)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import PureCloudPlatformClientV2 as genesys
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from websockets.sync.client import connect

from recovery.clock import FixedClock
from recovery.contact_center.contacts import CONTACT_COLUMNS
from recovery.contact_center.emulator import create_emulator_app
from recovery.contact_center.emulator.dialer import conversation_id
from tests.support import emulator as served_emulator
from tests.support.emulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    CONTACT_LIST,
    DNC_LIST,
    NOON_EASTERN,
    Emulator,
    emulator_config,
    serve_app,
)

emulator_server = served_emulator.emulator_server
emulator = served_emulator.emulator

CAMPAIGN = "recovery-campaign"
QUEUE = "recovery-queue"
COLUMNS = list(CONTACT_COLUMNS)


@pytest.fixture
def api(emulator: Emulator) -> Iterator[genesys.ApiClient]:
    previous = genesys.configuration.host
    genesys.configuration.host = emulator.base_url
    try:
        yield genesys.api_client.ApiClient().get_client_credentials_token(CLIENT_ID, CLIENT_SECRET)
    finally:
        genesys.configuration.host = previous


def as_model(client: genesys.ApiClient, body: Any, klass: str) -> Any:
    """A JSON body read by the SDK's own deserialiser into one of its models."""
    return client._ApiClient__deserialize(body, klass)


def contact(contact_id: str, phone: str, zone: str = "America/New_York") -> dict[str, Any]:
    return {
        "id": contact_id,
        "contactListId": CONTACT_LIST,
        "data": {"phone": phone, "timeZone": zone, "attemptCount": "1"},
        "callable": True,
    }


def add(emulator: Emulator, contacts: list[dict[str, Any]], **params: str) -> Any:
    response = emulator.api(
        "POST", f"/contactlists/{CONTACT_LIST}/contacts", json=contacts, params=params
    )
    assert response.status_code == 200, response.text
    return response.json()


def set_limits(emulator: Emulator, body: dict[str, Any] | None) -> None:
    """Give the ready-made list these attempt limits (None: none at all)."""
    current = emulator.api("GET", f"/contactlists/{CONTACT_LIST}").json()
    update = {k: v for k, v in current.items() if k != "attemptLimits"}
    if body is not None:
        created = emulator.api(
            "POST", "/attemptlimits", json={"name": f"limits {time.monotonic_ns()}", **body}
        )
        assert created.status_code == 200, created.text
        update["attemptLimits"] = {"id": created.json()["id"]}
    answer = emulator.api("PUT", f"/contactlists/{CONTACT_LIST}", json=update)
    assert answer.status_code == 200, answer.text


# -- contact lists and contacts ----------------------------------------------------------------


def test_contact_lists_through_the_sdk(emulator: Emulator, api: genesys.ApiClient) -> None:
    outbound = genesys.OutboundApi(api)
    ready = outbound.get_outbound_contactlist(CONTACT_LIST, include_size=True)
    assert ready.column_names == COLUMNS and ready.size == 0
    assert ready.phone_columns[0].column_name == "phone"
    assert ready.phone_columns[0].callable_time_column == "timeZone"
    assert ready.attempt_limits.id and ready.version == 1

    body = genesys.ContactList()
    body.name = "second list"
    body.column_names = ["phone", "ref"]
    column = genesys.ContactPhoneNumberColumn()
    column.column_name, column.type, column.callable_time_column = "phone", "cell", None
    body.phone_columns = [column]
    created = outbound.post_outbound_contactlists(body)
    assert created.id and created.version == 1 and created.date_created is not None
    listing = outbound.get_outbound_contactlists(page_size=1)
    assert listing.total == 2 and listing.page_count == 2 and len(listing.entities) == 1

    # Phone columns (and column names) are fixed once the list exists.
    created.phone_columns[0].type = "home"
    with pytest.raises(genesys.rest.ApiException) as refused:
        outbound.put_outbound_contactlist(created.id, created)
    assert refused.value.status == 400
    error = json.loads(refused.value.body)
    assert error["code"] == "cannot.update.phone.columns"
    assert "Phone number columns are different" in error["message"]
    stale = outbound.get_outbound_contactlist(created.id)
    stale.version = 7
    with pytest.raises(genesys.rest.ApiException) as conflict:
        outbound.put_outbound_contactlist(created.id, stale)
    assert conflict.value.status == 409


def test_a_data_key_outside_the_columns_refuses_the_whole_request(
    emulator: Emulator, api: genesys.ApiClient
) -> None:
    good = contact("good", "+14155550001")
    bad = contact("bad", "+14155550002")
    bad["data"]["customerName"] = "Jenny"
    response = emulator.api("POST", f"/contactlists/{CONTACT_LIST}/contacts", json=[good, bad])
    assert response.status_code == 400
    error = as_model(api, response.json(), "ErrorBody")
    assert error.status == 400 and error.code == "contact.columns.invalid"
    assert "customerName" in error.message and error.context_id
    assert emulator.contacts() == []


# -- attempt limits, recycling and recalls -----------------------------------------------------


def test_attempt_limits_through_the_sdk(emulator: Emulator, api: genesys.ApiClient) -> None:
    outbound = genesys.OutboundApi(api)
    body = genesys.AttemptLimits()
    body.name = "three a day"
    body.max_attempts_per_contact = 3
    body.reset_period = "TODAY"
    body.time_zone_id = "America/Chicago"
    recall = genesys.RecallEntry()
    recall.nbr_attempts, recall.minutes_between_attempts = 2, 30
    body.recall_entries = {"noAnswer": recall}
    created = outbound.post_outbound_attemptlimits(body)
    read = outbound.get_outbound_attemptlimit(created.id)
    assert (read.max_attempts_per_contact, read.reset_period, read.time_zone_id) == (
        3,
        "TODAY",
        "America/Chicago",
    )
    assert read.recall_entries["noAnswer"].minutes_between_attempts == 30
    assert outbound.get_outbound_attemptlimits().total == 2
    for wrong in (
        {"name": "x", "maxAttemptsPerContact": 1, "resetPeriod": "TODAY"},
        {
            "name": "y",
            "maxAttemptsPerContact": 1,
            "recallEntries": {"voicemail": {"nbrAttempts": 1, "minutesBetweenAttempts": 5}},
        },
        {
            "name": "z",
            "maxAttemptsPerContact": 1,
            "recallEntries": {"busy": {"nbrAttempts": 1, "minutesBetweenAttempts": 4}},
        },
        {"name": "w"},
    ):
        assert emulator.api("POST", "/attemptlimits", json=wrong).status_code == 400


def test_without_attempt_limits_every_callable_contact_is_recycled(emulator: Emulator) -> None:
    set_limits(emulator, None)
    add(emulator, [contact("a", "+12125550001"), contact("b", "+12125550002")])
    assert emulator.dial()["dialled"] == 2
    # "A campaign recycle can occur once every five seconds": the pass that began with the
    # first round ends, and the next begins, no sooner.
    assert emulator.dial(NOON_EASTERN + timedelta(seconds=4))["recycled"] == 0
    recycle = emulator.dial(NOON_EASTERN + timedelta(seconds=5))
    assert recycle["recycled"] == 2 and recycle["dialled"] == 0
    assert emulator.dial(NOON_EASTERN + timedelta(seconds=6))["dialled"] == 2
    log = emulator.dial_log()
    assert [(e["contactId"], e["pass"], e["trigger"]) for e in log] == [
        ("a", 1, "queued"),
        ("b", 1, "queued"),
        ("a", 2, "recycle"),
        ("b", 2, "recycle"),
    ]
    # A contact made uncallable is never recycled.
    held = emulator.api("GET", f"/contactlists/{CONTACT_LIST}/contacts/a").json()
    add(emulator, [{**held, "callable": False}], doNotQueue="true")
    assert emulator.dial(NOON_EASTERN + timedelta(seconds=20))["recycled"] == 1
    assert emulator.dial(NOON_EASTERN + timedelta(seconds=21))["dialled"] == 1
    assert emulator.placed() == ["a", "b", "a", "b", "b"]


def test_recalls_and_the_daily_reset(emulator: Emulator) -> None:
    emulator.control("POST", "/scenario", {"name": "all-no-answer"})
    set_limits(
        emulator,
        {
            "maxAttemptsPerContact": 2,
            "resetPeriod": "TODAY",
            "timeZoneId": "America/New_York",
            "recallEntries": {"noAnswer": {"nbrAttempts": 1, "minutesBetweenAttempts": 30}},
        },
    )
    add(emulator, [contact("a", "+12125550001")])
    assert emulator.dial()["dialled"] == 1
    assert emulator.dial(NOON_EASTERN + timedelta(minutes=29))["dialled"] == 0
    recalled = emulator.dial(NOON_EASTERN + timedelta(minutes=30))
    assert recalled["dialled"] == 1 and recalled["recalled"] == 1
    # Two attempts: the limit; nothing until the counters reset the next day (New York).
    assert emulator.dial(NOON_EASTERN + timedelta(hours=3))["dialled"] == 0
    next_day = NOON_EASTERN + timedelta(days=1)
    assert emulator.dial(next_day)["recycled"] == 1  # the counters reset: the next pass has it
    assert emulator.dial(next_day + timedelta(seconds=10))["dialled"] == 1
    assert [e["trigger"] for e in emulator.dial_log() if e["placed"]] == [
        "queued",
        "recall",
        "recycle",
    ]


def test_a_contact_updated_without_do_not_queue_is_dialled_again(emulator: Emulator) -> None:
    """The platform re-queues an updated contact unless doNotQueue=true, even after its dial
    (within the pass: no recycle is involved)."""
    set_limits(emulator, {"maxAttemptsPerContact": 5, "resetPeriod": "NEVER"})
    add(emulator, [contact("once", "+12125550001"), contact("kept", "+12125550002")])
    emulator.dial()
    for contact_id, flag in (("once", "false"), ("kept", "true")):
        held = emulator.api("GET", f"/contactlists/{CONTACT_LIST}/contacts/{contact_id}").json()
        add(emulator, [held], doNotQueue=flag)
    report = emulator.dial(NOON_EASTERN + timedelta(seconds=1))
    assert report["recycled"] == 0
    assert emulator.placed() == ["once", "kept", "once"]
    assert [e["trigger"] for e in emulator.dial_log()] == ["queued", "queued", "requeued"]


# -- campaigns, callable time sets, DNC lists --------------------------------------------------


def test_campaign_time_sets_and_dnc_lists_through_the_sdk(
    emulator: Emulator, api: genesys.ApiClient
) -> None:
    outbound = genesys.OutboundApi(api)
    campaign = outbound.get_outbound_campaign(CAMPAIGN)
    assert campaign.contact_list.id == CONTACT_LIST and campaign.always_running is True
    assert campaign.campaign_status == "on" and campaign.queue.id == QUEUE
    assert [d.id for d in campaign.dnc_lists] == [DNC_LIST]
    assert outbound.get_outbound_campaigns(contact_list_id=CONTACT_LIST).total == 1

    time_set = genesys.CallableTimeSet()
    time_set.name = "New York mornings"
    callable_time = genesys.CallableTime()
    callable_time.time_zone_id = "America/New_York"
    slot = genesys.CampaignTimeSlot()
    slot.start_time, slot.stop_time, slot.day = "09:00:00", "11:00:00", 2  # Tuesday
    callable_time.time_slots = [slot]
    time_set.callable_times = [callable_time]
    mornings = outbound.post_outbound_callabletimesets(time_set)
    assert (
        outbound.get_outbound_callabletimeset(mornings.id).callable_times[0].time_slots[0].day == 2
    )

    dnc = genesys.DncListCreate()
    dnc.name, dnc.dnc_source_type, dnc.custom_exclusion_column = "custom", "rds_custom", "ref"
    custom = outbound.post_outbound_dnclists(dnc)
    assert outbound.get_outbound_dnclist(custom.id).dnc_source_type == "rds_custom"
    with pytest.raises(genesys.rest.ApiException) as refused:
        outbound.post_outbound_dnclist_phonenumbers(custom.id, ["+12125550001"])
    assert refused.value.status == 400  # "Only Internal DNC lists may be appended to"

    campaign.callable_time_set = genesys.DomainEntityRef()
    campaign.callable_time_set.id = mornings.id
    campaign.dnc_lists = []
    updated = outbound.put_outbound_campaign(CAMPAIGN, campaign)
    assert updated.version == campaign.version + 1 and updated.dnc_lists == []

    # 12:00 Tuesday in New York is outside 09:00-11:00; Los Angeles is not in the set at all.
    emulator.api("POST", f"/dnclists/{DNC_LIST}/phonenumbers", json=["+12125550002"])
    add(
        emulator,
        [contact("ny", "+12125550001"), contact("la", "+13105550003", "America/Los_Angeles")],
    )
    assert emulator.dial()["refused_outside_window"] == 2
    at_ten = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # 10:00 in New York
    add(emulator, [contact("listed", "+12125550002")])
    report = emulator.dial(at_ten)
    # The DNC list no longer belongs to the campaign: the dialler does not check it.
    assert report["dialled"] == 2 and report["on_dnc_list"] == 0
    assert sorted(emulator.placed()) == ["listed", "ny"]

    no_queue = {
        "name": "missing queue",
        "contactList": {"id": CONTACT_LIST},
        "dialingMode": "progressive",
        "phoneColumns": [{"columnName": "phone", "type": "cell"}],
        "callerName": "x",
        "callerAddress": "+18005550100",
        "edgeGroup": {"id": "e"},
        "callAnalysisResponseSet": {"id": "c"},
        "script": {"id": "s"},
    }
    assert emulator.api("POST", "/campaigns", json=no_queue).status_code == 400


# -- wrap-up codes, mappings, rule sets and data actions ---------------------------------------


def test_wrapup_codes_and_mappings_through_the_sdk(
    emulator: Emulator, api: genesys.ApiClient
) -> None:
    routing = genesys.RoutingApi(api)
    listing = routing.get_routing_wrapupcodes(page_size=100)
    names = {c.name: c.id for c in listing.entities}
    assert {"Paid", "Promise to Pay", "Never Call"} <= set(names)
    assert not any(n.startswith("ININ-") for n in names)  # system codes are not listed
    assert listing.page_size == 100 and listing.total == len(names)
    assert routing.get_routing_wrapupcode(names["Paid"]).name == "Paid"
    request = genesys.WrapupCodeRequest()
    request.name = "Left Message"
    created = routing.post_routing_wrapupcodes(request)
    assert routing.get_routing_wrapupcode(created.id).division.id
    paged = routing.get_routing_wrapupcodes(page_size=2, page_number=2, sort_by="name")
    assert len(paged.entities) == 2 and paged.previous_uri

    outbound = genesys.OutboundApi(api)
    mapping = outbound.get_outbound_wrapupcodemappings()
    assert mapping.default_set == [] and mapping.mapping == {}
    mapping.mapping = {names["Paid"]: ["CONTACT_UNCALLABLE"]}
    saved = outbound.put_outbound_wrapupcodemappings(mapping)
    assert saved.mapping == {names["Paid"]: ["CONTACT_UNCALLABLE"]}
    emulator.control("POST", "/scenario", {"name": "all-paid"})
    set_limits(emulator, None)
    add(emulator, [contact("p", "+12125550001")])
    emulator.dial()
    assert emulator.contacts()[0]["callable"] is False  # the mapping made it uncallable
    assert emulator.dial(NOON_EASTERN + timedelta(seconds=10))["dialled"] == 0


class ActionReceiver:
    """An endpoint that keeps every data-action request it is sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, Any], str | None]] = []
        self.lock = threading.Lock()
        self.app = FastAPI()

        @self.app.post("/outcome")
        async def receive(request: Request) -> JSONResponse:
            with self.lock:
                self.requests.append((await request.json(), request.headers.get("authorization")))
            return JSONResponse({"ok": True})


def test_a_wrapup_rule_runs_its_data_action(emulator: Emulator, api: genesys.ApiClient) -> None:
    receiver = ActionReceiver()
    with serve_app(receiver.app) as url:
        emulator.control(
            "PUT",
            "/data-actions/outcome-action",
            {
                "id": "outcome-action",
                "url": f"{url}/outcome",
                "basic_username": "genesys",
                "basic_password": "s3cret-value",
            },
        )
        paid = next(
            c["id"]
            for c in emulator.platform(
                "GET", "/routing/wrapupcodes", params={"pageSize": 100}
            ).json()["entities"]
            if c["name"] == "Paid"
        )
        outbound = genesys.OutboundApi(api)
        rule_set = genesys.RuleSet()
        rule_set.name = "push outcomes"
        rule = genesys.DialerRule()
        rule.name, rule.category, rule.order = "push", "DIALER_WRAPUP", 0
        condition = genesys.Condition()
        condition.type, condition.codes = "wrapupCondition", [paid, "ININ-OUTBOUND-NO-ANSWER"]
        rule.conditions = [condition]
        action = genesys.DialerAction()
        action.type, action.action_type_name = "dataActionBehavior", "DATA_ACTION"
        action.data_action = genesys.DomainEntityRef()
        action.data_action.id = "outcome-action"
        action.contact_id_field = "contactId"
        action.call_analysis_result_field = "callAnalysisResult"
        action.agent_wrapup_field = "agentWrapup"
        mapping = genesys.ContactColumnToDataActionFieldMapping()
        mapping.contact_column_name, mapping.data_action_field = "attemptCount", "attempt"
        action.contact_column_to_data_action_field_mappings = [mapping]
        rule.actions = [action]
        rule_set.rules = [rule]
        created = outbound.post_outbound_rulesets(rule_set)
        assert (
            outbound.get_outbound_ruleset(created.id).rules[0].actions[0].data_action.id
            == "outcome-action"
        )
        campaign = outbound.get_outbound_campaign(CAMPAIGN)
        ref = genesys.DomainEntityRef()
        ref.id = created.id
        campaign.rule_sets = [ref]
        outbound.put_outbound_campaign(CAMPAIGN, campaign)

        emulator.control("POST", "/scenario", {"name": "all-paid"})
        add(emulator, [contact("c1", "+12125550001")])
        report = emulator.dial()
        emulator.control("POST", "/scenario", {"name": "all-machine"})  # not in the condition
        add(emulator, [contact("c2", "+12125550002")])
        quiet = emulator.dial()
    assert report["actions_sent"] == 1 and quiet["actions"] == 0
    body, authorization = receiver.requests[0]
    assert body == {
        "contactId": "c1",
        "callAnalysisResult": "ININ-OUTBOUND-LIVE-VOICE",
        "agentWrapup": paid,
        "attempt": "1",
    }
    assert authorization == "Basic " + base64.b64encode(b"genesys:s3cret-value").decode()


# -- analytics ---------------------------------------------------------------------------------


def test_conversation_details_through_the_sdk(emulator: Emulator, api: genesys.ApiClient) -> None:
    emulator.control("POST", "/scenario", {"name": "mixed", "seed": 3})
    add(emulator, [contact(f"c{i}", f"+1212555{i:04d}") for i in range(12)])
    emulator.dial()
    conversations = genesys.ConversationsApi(api)
    query = genesys.ConversationQuery()
    query.interval = "2026-03-03T00:00:00.000Z/2026-03-04T00:00:00.000Z"
    query.order, query.order_by = "asc", "conversationStart"
    paging = genesys.PagingSpec()
    paging.page_size, paging.page_number = 5, 1
    query.paging = paging
    segment_filter = genesys.SegmentDetailQueryFilter()
    segment_filter.type = "and"
    predicate = genesys.SegmentDetailQueryPredicate()
    predicate.type, predicate.dimension, predicate.operator, predicate.value = (
        "dimension",
        "outboundContactListId",
        "matches",
        CONTACT_LIST,
    )
    segment_filter.predicates = [predicate]
    query.segment_filters = [segment_filter]
    first = conversations.post_analytics_conversations_details_query(query)
    assert first.total_hits == 12 and len(first.conversations) == 5
    seen = set()
    for page in (1, 2, 3):
        query.paging.page_number = page
        for conversation in conversations.post_analytics_conversations_details_query(
            query
        ).conversations:
            seen.add(conversation.conversation_id)
            session = conversation.participants[0].sessions[0]
            assert session.outbound_contact_list_id == CONTACT_LIST
            assert (
                session.outbound_campaign_id == CAMPAIGN
                and session.outbound_contact_id.startswith("c")
            )
            assert session.disposition_name.startswith("disposition.classification.")
            wrapups = [
                s.wrap_up_code
                for p in conversation.participants
                for sess in p.sessions
                for s in sess.segments
                if s.segment_type == "wrapup"
            ]
            assert len(wrapups) == 1
    assert len(seen) == 12
    one = conversations.get_analytics_conversation_details(sorted(seen)[0])
    assert one.conversation_start == NOON_EASTERN and one.originating_direction == "outbound"

    too_long = emulator.platform(
        "POST",
        "/analytics/conversations/details/query",
        json={"interval": "2026-03-01T00:00:00Z/2026-03-09T00:00:00Z"},
    )
    assert too_long.status_code == 400
    unknown = emulator.platform(
        "POST",
        "/analytics/conversations/details/query",
        json={
            "interval": "2026-03-03T00:00:00Z/2026-03-04T00:00:00Z",
            "segmentFilters": [
                {"type": "and", "predicates": [{"dimension": "contactId", "value": "x"}]}
            ],
        },
    )
    assert unknown.status_code == 400


# -- notification channels ---------------------------------------------------------------------


@pytest.fixture
def fast_heartbeat() -> Iterator[Emulator]:
    clock = FixedClock(NOON_EASTERN)
    app = create_emulator_app(emulator_config(heartbeat_seconds=0.2), clock=clock)
    with serve_app(app) as base_url:
        handle = Emulator(base_url=base_url, clock=clock, state=app.state.emulator)
        try:
            yield handle
        finally:
            handle.http.close()


def receive_until(socket: Any, wanted: set[str], timeout: float = 5.0) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while wanted - set(found) and time.monotonic() < deadline:
        try:
            message = json.loads(socket.recv(timeout=max(0.01, deadline - time.monotonic())))
        except TimeoutError:
            break
        found.setdefault(message["topicName"], message)
    return found


def test_notification_channels_through_the_sdk(fast_heartbeat: Emulator) -> None:
    emulator = fast_heartbeat
    previous = genesys.configuration.host
    genesys.configuration.host = emulator.base_url
    try:
        api = genesys.api_client.ApiClient().get_client_credentials_token(CLIENT_ID, CLIENT_SECRET)
        notifications = genesys.NotificationsApi(api)
        topics = notifications.get_notifications_availabletopics(expand=["transports"])
        by_id = {t.id: t for t in topics.entities}
        assert by_id["v2.detail.events.conversation.{id}.acw"].transports == ["All"]
        assert by_id["v2.outbound.voice.campaigns.contact.postContact"].transports == [
            "EventBridge"
        ]
        channel = notifications.post_notifications_channels()
        assert channel.connect_uri.startswith("ws://") and channel.expires > NOON_EASTERN
        notifications.head_notifications_channel(channel.id)
        listed = notifications.get_notifications_channels()
        assert [c.id for c in listed.entities] == [channel.id]
        emulator.control("POST", "/scenario", {"name": "all-paid", "seed": 5})
        conversation = conversation_id(5, CONTACT_LIST, "c1", 1)
        wanted = [
            f"v2.routing.queues.{QUEUE}.conversations.calls",
            f"v2.detail.events.conversation.{conversation}.outbound",
            f"v2.detail.events.conversation.{conversation}.acw",
            f"v2.detail.events.conversation.{conversation}.wrapup",
        ]
        body = []
        for topic in wanted:
            entry = genesys.ChannelTopic()
            entry.id = topic
            body.append(entry)
        subscribed = notifications.put_notifications_channel_subscriptions(channel.id, body)
        assert [t.state for t in subscribed.entities] == ["Permitted"] * 4
        refused = genesys.ChannelTopic()
        refused.id = "v2.detail.events.conversation.{id}.acw"
        with pytest.raises(genesys.rest.ApiException) as caught:
            notifications.post_notifications_channel_subscriptions(channel.id, [refused])
        assert caught.value.status == 400
        lenient = notifications.post_notifications_channel_subscriptions(
            channel.id, [refused], ignore_errors=True
        )
        assert lenient.entities[-1].state == "Rejected" and lenient.entities[-1].rejection_reason
        assert len(notifications.get_notifications_channel_subscriptions(channel.id).entities) == 4

        with connect(channel.connect_uri) as socket:
            heartbeat = json.loads(socket.recv(timeout=5))
            assert heartbeat == {
                "topicName": "channel.metadata",
                "eventBody": {"message": "WebSocket Heartbeat"},
            }
            socket.send(json.dumps({"message": "ping"}))
            pong = receive_until(socket, {"channel.metadata"})
            assert pong["channel.metadata"]["eventBody"]["message"] in {
                "pong",
                "WebSocket Heartbeat",
            }
            add(emulator, [contact("c1", "+12125550001")])
            emulator.dial()
            events = receive_until(socket, set(wanted))
            emulator.control("POST", "/notifications/close")
            closing = receive_until(socket, {"v2.system.socket_closing"})
        assert set(wanted) <= set(events) and "v2.system.socket_closing" in closing
        for message in events.values():
            assert set(message) == {"topicName", "version", "eventBody", "metadata"}
            assert message["metadata"]["CorrelationId"]
        outbound_event = as_model(
            api, events[wanted[1]]["eventBody"], "OutboundDetailEventTopicOutboundInitEvent"
        )
        assert (outbound_event.outbound_contact_id, outbound_event.outbound_contact_list_id) == (
            "c1",
            CONTACT_LIST,
        )
        assert (
            outbound_event.conversation_id == conversation
            and outbound_event.direction == "OUTBOUND"
        )
        acw = as_model(api, events[wanted[2]]["eventBody"], "AcwDetailEventTopicAfterCallWorkEvent")
        paid = next(
            c["id"]
            for c in emulator.platform(
                "GET", "/routing/wrapupcodes", params={"pageSize": 100}
            ).json()["entities"]
            if c["name"] == "Paid"
        )
        assert acw.wrapup_code == paid and acw.user_id and acw.queue_id == QUEUE
        wrapup = as_model(api, events[wanted[3]]["eventBody"], "WrapupDetailEventTopicWrapupEvent")
        assert wrapup.wrapup_code == paid and wrapup.conversation_id == conversation
        queued = as_model(
            api, events[wanted[0]]["eventBody"], "QueueConversationCallEventTopicCallConversation"
        )
        agent = next(p for p in queued.participants if p.purpose == "agent")
        assert queued.id == conversation and agent.wrapup.code == paid and agent.queue.id == QUEUE
    finally:
        genesys.configuration.host = previous


def test_system_dispositions_raise_no_after_call_work(fast_heartbeat: Emulator) -> None:
    emulator = fast_heartbeat
    emulator.control("POST", "/scenario", {"name": "all-no-answer", "seed": 2})
    token = emulator.token()
    channel = emulator.platform("POST", "/notifications/channels", token=token).json()
    conversation = conversation_id(2, CONTACT_LIST, "n1", 1)
    topics = [
        f"v2.detail.events.conversation.{conversation}.{k}" for k in ("outbound", "acw", "wrapup")
    ]
    emulator.platform(
        "PUT",
        f"/notifications/channels/{channel['id']}/subscriptions",
        token=token,
        json=[{"id": t} for t in topics],
    )
    with connect(channel["connectUri"]) as socket:
        add(emulator, [contact("n1", "+12125550009")])
        emulator.dial()
        events = receive_until(socket, set(topics), timeout=1.0)
    assert set(events) - {"channel.metadata"} == {topics[0]}


def test_a_socket_the_client_closes_is_let_go_at_once() -> None:
    # A long heartbeat: the handler must notice the close itself, not at the next message,
    # or a server stopping waits out its graceful-shutdown timeout for sockets already gone.
    clock = FixedClock(NOON_EASTERN)
    app = create_emulator_app(emulator_config(heartbeat_seconds=60), clock=clock)
    with serve_app(app) as base_url:
        handle = Emulator(base_url=base_url, clock=clock, state=app.state.emulator)
        try:
            token = handle.token()
            channel = handle.platform("POST", "/notifications/channels", token=token).json()
            hub = app.state.emulator.hub
            with connect(channel["connectUri"]):
                deadline = time.monotonic() + 5
                while hub.channels[channel["id"]].connection is None:
                    assert time.monotonic() < deadline, "the socket never attached"
                    time.sleep(0.02)
            closed_at = time.monotonic()
            while hub.channels[channel["id"]].connection is not None:
                assert time.monotonic() - closed_at < 2, "the closed socket is still attached"
                time.sleep(0.02)
            # The channel itself stays, for a new socket to attach to.
            assert (
                handle.platform(
                    "HEAD", f"/notifications/channels/{channel['id']}", token=token
                ).status_code
                == 200
            )
        finally:
            handle.http.close()


def test_a_twenty_first_channel_replaces_the_oldest(emulator: Emulator) -> None:
    token = emulator.token()
    ids = [
        emulator.platform("POST", "/notifications/channels", token=token).json()["id"]
        for _ in range(21)
    ]
    listed = {
        c["id"]
        for c in emulator.platform("GET", "/notifications/channels", token=token).json()["entities"]
    }
    assert len(listed) == 20 and ids[0] not in listed and ids[-1] in listed
    assert (
        emulator.platform("HEAD", f"/notifications/channels/{ids[0]}", token=token).status_code
        == 404
    )


def test_seeded_outcomes_do_not_depend_on_the_order_of_dials(emulator: Emulator) -> None:
    def outcomes(order: list[int]) -> dict[str, str]:
        emulator.control("POST", "/reset")
        emulator.control("POST", "/scenario", {"name": "mixed", "seed": 9})
        for i in order:
            add(emulator, [contact(f"c{i:02d}", f"+1212555{i:04d}")])
            emulator.dial()
        return {e["contactId"]: e["result"] for e in emulator.dial_log()}

    forward = outcomes(list(range(20)))
    backward = outcomes(list(reversed(range(20))))
    assert forward == backward and len(set(forward.values())) >= 3

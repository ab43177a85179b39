"""Notification channels of the emulated organisation: channels, subscriptions, the topics it
offers, and the WebSocket that streams them.

The platform's shapes (SDK ``apis/notifications_api.py``, ``models/channel.py``,
``channel_topic.py``, ``available_topic.py``; Java SDK ``NotificationEvent`` for the envelope):

- ``POST /api/v2/notifications/channels`` answers ``{id, connectUri, expires}``; "There is a limit
  of 20 channels per user/app combination. Creating a 21st channel will remove the channel with
  oldest last used date. Channels without an active connection will be removed first."
- Subscriptions are ``[{"id": "<topic>"}]``; PUT replaces, POST adds, DELETE removes all.
- Messages: ``{"topicName", "version", "eventBody", "metadata": {"CorrelationId"}}``; heartbeats
  ``{"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}}``; a
  client's ``{"message": "ping"}`` is answered ``{"topicName": "channel.metadata", "eventBody":
  {"message": "pong"}}``; ``v2.system.socket_closing`` warns before the server closes a socket.
- Analytics detail events "can be subscribed to in bulk via EventBridge or on a per-conversation
  basis through WebSockets" (developer.genesys.cloud, analytics notifications): a WebSocket
  subscription names one conversation; the literal ``{id}`` is refused.
- Whether ``v2.outbound.voice.campaigns.contact.postContact`` is delivered over WebSockets is not
  documented: the stricter reading offers it on EventBridge only.
- Channels "remain active for 24 hours" and a connection takes at most 1,000 topics (secondary
  sources quoting Genesys' notification documentation).

Delivery is best effort: a channel with no open WebSocket receives nothing, and nothing is
replayed when it reconnects.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from recovery.contact_center.emulator.errors import ApiError

MAX_CHANNELS = 20
MAX_TOPICS = 1000
CHANNEL_LIFETIME = timedelta(hours=24)
HEARTBEAT = {"topicName": "channel.metadata", "eventBody": {"message": "WebSocket Heartbeat"}}
PONG = {"topicName": "channel.metadata", "eventBody": {"message": "pong"}}

DETAIL_EVENTS = {
    "outbound": "OutboundDetailEventTopicOutboundInitEvent",
    "acw": "AcwDetailEventTopicAfterCallWorkEvent",
    "wrapup": "WrapupDetailEventTopicWrapupEvent",
}
_DETAIL = re.compile(r"^v2\.detail\.events\.conversation\.([^.]+)\.(outbound|acw|wrapup)$")
_QUEUE = re.compile(r"^v2\.routing\.queues\.([^.]+)\.conversations\.calls$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
POST_CONTACT = "v2.outbound.voice.campaigns.contact.postContact"


def available_topics(expand: Collection[str]) -> list[dict[str, Any]]:
    """``AvailableTopic`` entries; ``expand`` adds description, transports, topicParameters,
    requiresPermissions and publicApiTemplateUriPaths (SDK ``get_notifications_availabletopics``
    ``expand`` values)."""
    topics: list[dict[str, Any]] = [
        {
            "id": f"v2.detail.events.conversation.{{id}}.{kind}",
            "description": f"Analytics detail event {model} of one conversation",
            "requiresPermissions": ["analytics:conversationDetail:view"],
            "transports": ["All"],
            "topicParameters": ["id"],
            "visibility": "Public",
        }
        for kind, model in DETAIL_EVENTS.items()
    ]
    topics.append(
        {
            "id": "v2.routing.queues.{id}.conversations.calls",
            "description": "Active call conversations of a queue",
            "requiresPermissions": ["routing:queue:view"],
            "transports": ["All"],
            "topicParameters": ["id"],
            "visibility": "Public",
        }
    )
    topics.append(
        {
            "id": POST_CONTACT,
            "description": "A voice campaign finished with a contact",
            "requiresPermissions": ["outbound:campaign:view"],
            "transports": ["EventBridge"],
            "topicParameters": [],
            "visibility": "Public",
        }
    )
    keep = {"id", "visibility"} | set(expand)
    if "permissionDetails" in expand or "requiresPermissions" in expand:
        keep.add("requiresPermissions")
    return [{k: v for k, v in t.items() if k in keep} for t in topics]


@dataclass
class Connection:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[str | None]

    def send(self, message: str | None) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, message)


@dataclass
class Channel:
    id: str
    owner: str
    expires: datetime
    last_used: int
    topics: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    connection: Connection | None = None

    def wire(self, base: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "connectUri": f"{base}/channels/{self.id}",
            "expires": self.expires.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }


class Hub:
    """Every channel of the organisation, the topics each is subscribed to, and the open
    WebSocket (one per channel) that receives them."""

    def __init__(self, *, heartbeat_seconds: float) -> None:
        self.heartbeat_seconds = heartbeat_seconds
        self.lock = threading.Lock()
        self.channels: OrderedDict[str, Channel] = OrderedDict()
        self._uses = 0

    def reset(self) -> None:
        with self.lock:
            for channel in self.channels.values():
                if channel.connection is not None:
                    channel.connection.send(None)
            self.channels.clear()

    def _touch(self, channel: Channel) -> None:
        self._uses += 1
        channel.last_used = self._uses

    def create(self, *, owner: str, now: datetime, base: str) -> dict[str, Any]:
        with self.lock:
            mine = [c for c in self.channels.values() if c.owner == owner]
            if len(mine) >= MAX_CHANNELS:
                # Channels without an active connection go first, then the least recently used.
                victim = min(mine, key=lambda c: (c.connection is not None, c.last_used))
                self._drop(victim)
            channel = Channel(
                id=str(uuid.uuid4()), owner=owner, expires=now + CHANNEL_LIFETIME, last_used=0
            )
            self._touch(channel)
            self.channels[channel.id] = channel
            return channel.wire(base)

    def _drop(self, channel: Channel) -> None:
        if channel.connection is not None:
            channel.connection.send(json.dumps(_closing(channel.id)))
            channel.connection.send(None)
        self.channels.pop(channel.id, None)

    def listing(self, *, owner: str, base: str) -> dict[str, Any]:
        with self.lock:
            return {"entities": [c.wire(base) for c in self.channels.values() if c.owner == owner]}

    def channel(self, channel_id: str, now: datetime | None = None) -> Channel:
        found = self.channels.get(channel_id)
        if found is None or (now is not None and now >= found.expires):
            raise ApiError(404, "not.found", f"The channel {channel_id} could not be found.")
        return found

    def exists(self, channel_id: str, now: datetime) -> bool:
        with self.lock:
            try:
                self.channel(channel_id, now)
            except ApiError:
                return False
            return True

    def subscriptions(self, channel_id: str, now: datetime) -> dict[str, Any]:
        with self.lock:
            channel = self.channel(channel_id, now)
            self._touch(channel)
            return {"entities": list(channel.topics.values())}

    def subscribe(
        self,
        channel_id: str,
        body: Any,
        *,
        now: datetime,
        replace: bool,
        ignore_errors: bool,
        queues: Collection[str],
    ) -> dict[str, Any]:
        """Add (or, ``replace``, set) topics. A topic the organisation does not offer is
        refused: with ``ignoreErrors`` it is listed as ``Rejected`` with the reason, otherwise
        the whole request is refused with 400 and nothing changes."""
        if not isinstance(body, list) or not all(
            isinstance(t, dict) and isinstance(t.get("id"), str) for t in body
        ):
            raise ApiError(400, "bad.request", 'The body must be a list of {"id": topic}.')
        with self.lock:
            channel = self.channel(channel_id, now)
            self._touch(channel)
            accepted: OrderedDict[str, dict[str, Any]] = OrderedDict()
            rejected: list[dict[str, Any]] = []
            for item in body:
                topic = item["id"]
                reason = topic_problem(topic, queues)
                entry: dict[str, Any] = {"id": topic, "state": "Permitted"}
                if reason is not None:
                    entry = {"id": topic, "state": "Rejected", "rejectionReason": reason}
                    rejected.append(entry)
                    continue
                accepted[topic] = entry
            if rejected and not ignore_errors:
                raise ApiError(
                    400,
                    "notification.topic.invalid",
                    f"Topic {rejected[0]['id']} cannot be subscribed to: "
                    f"{rejected[0]['rejectionReason']}",
                    errors=[
                        {"message": f"{r['id']}: {r['rejectionReason']}", "code": "bad.request"}
                        for r in rejected
                    ],
                )
            topics = OrderedDict() if replace else OrderedDict(channel.topics)
            topics.update(accepted)
            if len(topics) > MAX_TOPICS:
                raise ApiError(400, "bad.request", f"A channel takes at most {MAX_TOPICS} topics.")
            channel.topics = topics
            return {"entities": [*topics.values(), *rejected]}

    def unsubscribe_all(self, channel_id: str, now: datetime) -> None:
        with self.lock:
            channel = self.channel(channel_id, now)
            self._touch(channel)
            channel.topics.clear()

    # -- the WebSocket side ----------------------------------------------------------------

    def attach(self, channel_id: str, connection: Connection, now: datetime) -> Channel:
        """One connection per channel: a new one closes the one before."""
        with self.lock:
            channel = self.channel(channel_id, now)
            if channel.connection is not None:
                channel.connection.send(None)
            channel.connection = connection
            self._touch(channel)
            return channel

    def detach(self, channel_id: str, connection: Connection) -> None:
        with self.lock:
            channel = self.channels.get(channel_id)
            if channel is not None and channel.connection is connection:
                channel.connection = None

    def publish(self, topic: str, body: dict[str, Any], *, version: str = "2") -> int:
        """Send one event to every connected channel subscribed to ``topic``; how many."""
        message = json.dumps(
            {
                "topicName": topic,
                "version": version,
                "eventBody": body,
                "metadata": {"CorrelationId": str(uuid.uuid4())},
            }
        )
        sent = 0
        with self.lock:
            for channel in self.channels.values():
                if channel.connection is not None and topic in channel.topics:
                    channel.connection.send(message)
                    sent += 1
        return sent

    def close_all(self) -> int:
        """Warn every open socket that it is closing, then close it (the platform does so
        before maintenance or at a channel's expiry)."""
        closed = 0
        with self.lock:
            for channel in self.channels.values():
                if channel.connection is not None:
                    channel.connection.send(json.dumps(_closing(channel.id)))
                    channel.connection.send(None)
                    channel.connection = None
                    closed += 1
        return closed


def _closing(channel_id: str) -> dict[str, Any]:
    return {
        "topicName": "v2.system.socket_closing",
        "version": "2",
        "eventBody": {"message": "The socket is closing", "channelId": channel_id},
        "metadata": {"CorrelationId": str(uuid.uuid4())},
    }


def topic_problem(topic: str, queues: Collection[str]) -> str | None:
    """Why the organisation refuses a subscription to ``topic``; None when it accepts it."""
    detail = _DETAIL.match(topic)
    if detail is not None:
        if not _UUID.match(detail.group(1)):
            return (
                "detail events are subscribed to per conversation on a WebSocket: "
                "{id} must be a conversation id"
            )
        return None
    queue = _QUEUE.match(topic)
    if queue is not None:
        if queue.group(1) not in queues:
            return f"queue {queue.group(1)} does not exist"
        return None
    if topic == POST_CONTACT:
        return "this topic is not available on the WebSocket transport"
    return "unknown topic"

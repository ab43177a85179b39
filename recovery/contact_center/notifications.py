"""Genesys Cloud notification channels: create one, subscribe it to topics, read its WebSocket.

REST (SDK ``apis/notifications_api.py``): ``POST /api/v2/notifications/channels`` answers
``Channel {id, connectUri, expires}``; ``PUT .../channels/{id}/subscriptions`` "Replace the
current list of subscriptions with a new list", body ``[{"id": topic}]``, answered with
``ChannelTopic {id, state: Permitted|Rejected, rejectionReason}`` entries;
``GET /api/v2/notifications/availabletopics?expand=transports`` lists the topics and their
transports. Messages on the socket (Java SDK ``NotificationEvent``): ``{topicName, version,
eventBody, metadata}``; ``channel.metadata`` carries heartbeats and pongs; ``v2.system.
socket_closing`` announces that the server closes the socket (the Java SDK's
``SocketClosingHandler`` then opens a new one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from recovery.contact_center.client import GenesysClient
from recovery.contact_center.errors import PermanentContactCenterError

HEARTBEAT_TOPIC = "channel.metadata"
CLOSING_TOPIC = "v2.system.socket_closing"

__all__ = [
    "CLOSING_TOPIC",
    "HEARTBEAT_TOPIC",
    "Channel",
    "ConnectionClosed",
    "Socket",
    "available_topics",
    "create_channel",
    "subscribe",
]


@dataclass(frozen=True)
class Channel:
    id: str
    connect_uri: str


def create_channel(client: GenesysClient) -> Channel:
    body = client.api_json("POST", "/notifications/channels", what="create notification channel")
    if not isinstance(body, dict) or not body.get("id") or not body.get("connectUri"):
        raise PermanentContactCenterError("create notification channel: no id or connectUri")
    return Channel(id=str(body["id"]), connect_uri=str(body["connectUri"]))


def subscribe(client: GenesysClient, channel_id: str, topics: list[str]) -> dict[str, str]:
    """Replace the channel's subscriptions; each topic's state (``Permitted``, or
    ``Rejected: reason``)."""
    body = client.api_json(
        "PUT",
        f"/notifications/channels/{channel_id}/subscriptions",
        what="subscribe notification channel",
        json=[{"id": t} for t in topics],
        params={"ignoreErrors": "true"},
    )
    states: dict[str, str] = {}
    for entry in (body or {}).get("entities") or []:
        state = str(entry.get("state") or "Permitted")
        if state != "Permitted" and entry.get("rejectionReason"):
            state = f"{state}: {entry['rejectionReason']}"
        states[str(entry.get("id"))] = state
    return states


def available_topics(client: GenesysClient) -> dict[str, dict[str, Any]]:
    body = client.api_json(
        "GET",
        "/notifications/availabletopics",
        what="list notification topics",
        params={"expand": "transports,topicParameters"},
    )
    return {
        str(t["id"]): t
        for t in (body or {}).get("entities") or []
        if isinstance(t, dict) and t.get("id")
    }


class Socket:
    """The channel's WebSocket: JSON messages in, pings out."""

    def __init__(self, uri: str, *, open_timeout: float = 10.0) -> None:
        self._connection: ClientConnection = connect(uri, open_timeout=open_timeout)

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None after ``timeout`` seconds of silence. Raises
        ``ConnectionClosed`` when the socket closed."""
        try:
            raw = self._connection.recv(timeout=timeout)
        except TimeoutError:
            return None
        try:
            message = json.loads(raw)
        except ValueError:
            return {}
        return message if isinstance(message, dict) else {}

    def ping(self) -> None:
        self._connection.send(json.dumps({"message": "ping"}))

    def close(self) -> None:
        self._connection.close()

"""The notification-channel listener: call outcomes from Genesys Cloud as they happen.

What a WebSocket can carry: analytics detail events "can be subscribed to in bulk via
EventBridge or on a per-conversation basis through WebSockets" (developer.genesys.cloud,
analytics notifications), so a listener cannot subscribe to every conversation's after-call
work in advance. It subscribes instead to the campaign queue's call conversations,
``v2.routing.queues.{queueId}.conversations.calls`` (SDK ``notificationMappings.json`` →
``QueueConversationCallEventTopicCallConversation``), whose agent participant carries the
``wrapup`` (``code``: the wrap-up code's id, ``notes``) once the agent has wrapped up; the
contact is found in the conversation's analytics details (``outboundContactId``, SDK
``ConversationsApi.get_analytics_conversation_details``), since the ``.acw``/``.wrapup``
detail events do not carry it. Calls the dialler ended on its own (no answer, busy, machine...)
never reach the queue: their outcome comes from the analytics reconcile, as does any event
this listener misses (delivery over a WebSocket is best effort).

The loop: create a channel, subscribe, read the socket; a heartbeat is expected at least every
``silence`` seconds; ``v2.system.socket_closing``, a closed socket, silence or an error lead to
a new channel after a growing pause. Each conversation is recorded once (the store's unique
constraint on contact and attempt decides between channels).
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from recovery.clock import Clock
from recovery.contact_center.analytics import conversation_outcome
from recovery.contact_center.client import GenesysClient
from recovery.contact_center.errors import ContactCenterError
from recovery.contact_center.notifications import (
    CLOSING_TOPIC,
    HEARTBEAT_TOPIC,
    ConnectionClosed,
    Socket,
    create_channel,
    subscribe,
)
from recovery.contact_center.wrapups import WrapupNames
from recovery.domain.policy import DispositionMap
from recovery.services.outcomes import record_outcome
from recovery.store.dispositions import UnknownContact

log = logging.getLogger("recovery.services.listen")

_QUEUE_TOPIC = re.compile(r"^v2\.routing\.queues\.([^.]+)\.conversations\.calls$")
_DETAIL_TOPIC = re.compile(r"^v2\.detail\.events\.conversation\.([^.]+)\.(acw|wrapup)$")
SEEN_CAPACITY = 100_000
# A conversation whose analytics details are not there yet (the platform's data availability
# lags) is looked up again after 1, 2, 4, ... seconds, this many times (about four minutes).
PENDING_TRIES = 8


def queue_topic(queue_id: str) -> str:
    return f"v2.routing.queues.{queue_id}.conversations.calls"


@dataclass
class Wrapped:
    """An agent's wrap-up of one conversation, as an event told it."""

    conversation_id: str
    code: str
    notes: str


def wrapped_up(message: dict[str, Any]) -> Wrapped | None:
    """The wrap-up an event reports, if any."""
    topic = str(message.get("topicName") or "")
    body = message.get("eventBody")
    if not isinstance(body, dict):
        return None
    if _QUEUE_TOPIC.match(topic):
        conversation_id = body.get("id")
        for participant in body.get("participants") or []:
            wrapup = participant.get("wrapup") if isinstance(participant, dict) else None
            if participant.get("purpose") == "agent" and isinstance(wrapup, dict):
                code = wrapup.get("code")
                if isinstance(conversation_id, str) and isinstance(code, str) and code:
                    return Wrapped(conversation_id, code, str(wrapup.get("notes") or ""))
        return None
    detail = _DETAIL_TOPIC.match(topic)
    if detail is not None and isinstance(body.get("wrapupCode"), str) and body["wrapupCode"]:
        return Wrapped(detail.group(1), body["wrapupCode"], str(body.get("wrapupNotes") or ""))
    return None


class OutcomeListener:
    """Reads the notification channel and records each call outcome it reports."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        client: GenesysClient,
        mapping: DispositionMap,
        wrapups: WrapupNames,
        clock: Clock,
        campaign_id: str,
        silence: float = 90.0,
        max_backoff: float = 60.0,
        poll_seconds: float = 0.5,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.mapping = mapping
        self.wrapups = wrapups
        self.clock = clock
        self.campaign_id = campaign_id
        self.silence = silence
        self.max_backoff = max_backoff
        self.poll_seconds = poll_seconds
        self.stop = threading.Event()
        self.connected = threading.Event()
        self._wait = sleep or self.stop.wait
        self.stats: Counter[str] = Counter()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._pending: dict[str, tuple[Wrapped, int, float]] = {}
        self._rng = random.Random()

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> None:
        """Listen until ``stop`` is set, reconnecting after any failure."""
        backoff = 1.0
        while not self.stop.is_set():
            try:
                clean = self._listen_once()
                backoff = 1.0 if clean else backoff
            except (ConnectionClosed, OSError, ContactCenterError, TimeoutError) as exc:
                log.warning("notification channel lost (%s): reconnecting", exc)
            except Exception:  # a listener must outlive any one bad message
                log.exception("notification listener failed: reconnecting")
            self.connected.clear()
            if self.stop.is_set():
                break
            self.stats["reconnects"] += 1
            self._wait(backoff * (0.5 + self._rng.random()))
            backoff = min(backoff * 2, self.max_backoff)

    def _topics(self) -> list[str]:
        campaign = self.client.api_json(
            "GET", f"/outbound/campaigns/{self.campaign_id}", what="read the campaign"
        )
        queue = (campaign or {}).get("queue") or {}
        if not queue.get("id"):
            raise ContactCenterError(
                f"campaign {self.campaign_id} has no queue: no agent wrap-up reaches a listener"
            )
        return [queue_topic(str(queue["id"]))]

    def _listen_once(self) -> bool:
        """One channel's life; True when the platform closed it in good order."""
        topics = self._topics()
        channel = create_channel(self.client)
        states = subscribe(self.client, channel.id, topics)
        refused = {t: s for t, s in states.items() if s != "Permitted"}
        if refused or not states:
            raise ContactCenterError(f"subscriptions refused: {refused or topics}")
        socket = Socket(channel.connect_uri)
        self.connected.set()
        self.stats["channels"] += 1
        log.info("listening on notification channel %s (%s)", channel.id, ", ".join(topics))
        heard = time.monotonic()
        try:
            while not self.stop.is_set():
                message = socket.receive(timeout=self.poll_seconds)
                if message is None:
                    self._retry_pending()
                    if time.monotonic() - heard > self.silence:
                        raise TimeoutError(f"no heartbeat for {self.silence:.0f} s")
                    continue
                heard = time.monotonic()
                if message.get("topicName") == CLOSING_TOPIC:
                    self.stats["closing"] += 1
                    return True
                self.handle(message)
        finally:
            socket.close()
        return True

    # -- one message -----------------------------------------------------------------------

    def handle(self, message: dict[str, Any]) -> str:
        """Record what one message reports; what became of it."""
        topic = message.get("topicName")
        if topic == HEARTBEAT_TOPIC:
            self.stats["heartbeats"] += 1
            return "heartbeat"
        wrapped = wrapped_up(message)
        if wrapped is None:
            self.stats["ignored"] += 1
            return "ignored"
        if wrapped.conversation_id in self._seen:
            self.stats["duplicate"] += 1
            return "duplicate"
        return self._record(wrapped, tries=0)

    def _record(self, wrapped: Wrapped, *, tries: int) -> str:
        outcome = conversation_outcome(self.client, wrapped.conversation_id)
        if outcome is None:
            if tries + 1 >= PENDING_TRIES:
                self._pending.pop(wrapped.conversation_id, None)
                self.stats["left_for_reconcile"] += 1
                return "left_for_reconcile"
            retry_at = time.monotonic() + 2.0**tries
            self._pending[wrapped.conversation_id] = (wrapped, tries + 1, retry_at)
            self.stats["pending"] += 1
            return "pending"
        self._pending.pop(wrapped.conversation_id, None)
        try:
            result = record_outcome(
                sessions=self.sessions,
                contact_id=outcome.contact_id,
                wrapup_name=self.wrapups.name(wrapped.code),
                note=wrapped.notes,
                mapping=self.mapping,
                source="push",
                channel="notification",
                occurred_at=outcome.started_at,
                now=self.clock.now(),
                extra={"conversation_id": wrapped.conversation_id},
            )
        except UnknownContact:
            self._remember(wrapped.conversation_id)
            self.stats["unknown_contact"] += 1
            return "unknown_contact"
        self._remember(wrapped.conversation_id)
        what = "duplicate" if result.duplicate else "recorded"
        self.stats[what] += 1
        return what

    def _retry_pending(self) -> None:
        now = time.monotonic()
        for wrapped, tries, retry_at in list(self._pending.values()):
            if retry_at <= now:
                self._record(wrapped, tries=tries)

    def _remember(self, conversation_id: str) -> None:
        self._seen[conversation_id] = None
        while len(self._seen) > SEEN_CAPACITY:
            self._seen.popitem(last=False)

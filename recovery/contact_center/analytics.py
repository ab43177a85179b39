"""Call outcomes from the analytics conversation details.

``POST /api/v2/analytics/conversations/details/query`` (SDK
``ConversationsApi.post_analytics_conversations_details_query``, permission
``analytics:conversationDetail:view``) takes a ``ConversationQuery``; sessions of a dialler's
conversation carry ``outboundContactId``, ``outboundContactListId`` and ``outboundCampaignId``
("(Dialer) Unique identifier of the contact", ``models/analytics_session.py``), and the
``wrapup`` segment its ``wrapUpCode`` (an agent's code by id; a system code by its name) and
``wrapUpNote``. ``GET /api/v2/analytics/conversations/{conversationId}/details`` answers one
conversation in the same shape.

How the query behaves (Genesys developer blog, "How the Analytics Conversation Details Query
API Works", 2022-04-21): "the totalHits counter reflects the approximate number of matching
conversations", pages shift while data arrives, so results are deduplicated by conversation;
"Results will only include conversations that started on a day touched by the interval" (SDK
docstring). The largest page size and interval are not documented: pages of at most 100 and
intervals of at most 7 days (settings), the stricter reading.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from recovery.contact_center.client import GenesysClient

QUERY_PATH = "/analytics/conversations/details/query"


@dataclass(frozen=True)
class CallOutcome:
    """One dialler conversation's outcome, as analytics records it."""

    conversation_id: str
    contact_id: str
    contact_list_id: str
    campaign_id: str | None
    # The agent's wrap-up when an agent wrapped the call up, else the dialler's system code.
    wrapup_code: str
    note: str
    started_at: datetime
    by_agent: bool


def _instant(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def outcome_of(conversation: dict[str, Any]) -> CallOutcome | None:
    """The outcome of one ``AnalyticsConversation``; None when it is not a dialler's call or
    has no wrap-up yet."""
    conversation_id = conversation.get("conversationId")
    started = _instant(conversation.get("conversationStart"))
    if not isinstance(conversation_id, str) or started is None:
        return None
    ids: dict[str, str] = {}
    agent_code = agent_note = system_code = ""
    for participant in conversation.get("participants") or []:
        purpose = participant.get("purpose")
        for session in participant.get("sessions") or []:
            for key in ("outboundContactId", "outboundContactListId", "outboundCampaignId"):
                if isinstance(session.get(key), str) and key not in ids:
                    ids[key] = session[key]
            for segment in session.get("segments") or []:
                code = segment.get("wrapUpCode")
                if segment.get("segmentType") != "wrapup" or not isinstance(code, str):
                    continue
                if purpose == "agent":
                    agent_code = code
                    agent_note = str(segment.get("wrapUpNote") or "")
                elif not system_code:
                    system_code = code
    contact_id = ids.get("outboundContactId")
    list_id = ids.get("outboundContactListId")
    code = agent_code or system_code
    if not contact_id or not list_id or not code:
        return None
    return CallOutcome(
        conversation_id=conversation_id,
        contact_id=contact_id,
        contact_list_id=list_id,
        campaign_id=ids.get("outboundCampaignId"),
        wrapup_code=code,
        note=agent_note,
        started_at=started,
        by_agent=bool(agent_code),
    )


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def windows(start: datetime, end: datetime, days: int) -> Iterable[tuple[datetime, datetime]]:
    """``[start, end)`` cut into intervals of at most ``days``."""
    span = timedelta(days=days)
    at = start
    while at < end:
        yield at, min(end, at + span)
        at += span


def query_outcomes(
    client: GenesysClient,
    *,
    contact_list_id: str,
    start: datetime,
    end: datetime,
    window_days: int = 7,
    page_size: int = 100,
    contact_id: str | None = None,
) -> list[CallOutcome]:
    """Every finished dialler conversation of ``contact_list_id`` (of one contact, when
    ``contact_id`` is given) that started in ``[start, end)``, deduplicated by conversation,
    oldest first."""
    predicates: list[dict[str, Any]] = [
        {
            "type": "dimension",
            "dimension": "outboundContactListId",
            "operator": "matches",
            "value": contact_list_id,
        }
    ]
    if contact_id is not None:
        predicates.append(
            {
                "type": "dimension",
                "dimension": "outboundContactId",
                "operator": "matches",
                "value": contact_id,
            }
        )
    found: dict[str, CallOutcome] = {}
    for window_start, window_end in windows(start, end, window_days):
        page = 1
        while True:
            body = {
                "interval": f"{_iso(window_start)}/{_iso(window_end)}",
                "order": "asc",
                "orderBy": "conversationStart",
                "paging": {"pageSize": page_size, "pageNumber": page},
                "conversationFilters": [
                    {
                        "type": "and",
                        "predicates": [
                            {
                                "type": "dimension",
                                "dimension": "conversationEnd",
                                "operator": "exists",
                            }
                        ],
                    }
                ],
                "segmentFilters": [{"type": "and", "predicates": predicates}],
            }
            answer = client.api_json(
                "POST", QUERY_PATH, what=f"conversation details page {page}", json=body
            )
            conversations = (answer or {}).get("conversations") or []
            for conversation in conversations:
                outcome = outcome_of(conversation)
                if outcome is None or outcome.contact_list_id != contact_list_id:
                    continue
                if contact_id is None or outcome.contact_id == contact_id:
                    found.setdefault(outcome.conversation_id, outcome)
            # totalHits is approximate: a short page is the end.
            if len(conversations) < page_size:
                break
            page += 1
    return sorted(found.values(), key=lambda o: (o.started_at, o.conversation_id))


def conversation_outcome(client: GenesysClient, conversation_id: str) -> CallOutcome | None:
    """One conversation's outcome; None when analytics does not hold it (yet)."""
    body = client.api_json(
        "GET",
        f"/analytics/conversations/{conversation_id}/details",
        what=f"conversation {conversation_id} details",
        missing_ok=True,
    )
    return outcome_of(body) if isinstance(body, dict) else None

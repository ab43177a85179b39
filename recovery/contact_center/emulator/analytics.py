"""The emulated organisation's analytics: one conversation record per call the dialer placed,
and the conversation-details query over them.

Shapes from the official SDK: ``ConversationQuery`` (``models/conversation_query.py``: interval,
conversationFilters, segmentFilters, order, orderBy, paging), ``SegmentDetailQueryFilter`` and
``SegmentDetailQueryPredicate`` (type ``and``/``or``; predicates of type ``dimension`` with
``matches``/``exists``/``notExists``; the dimension enums copied below), and the answer
``AnalyticsConversationQueryResponse`` ``{conversations, totalHits}`` with
``AnalyticsConversationWithoutAttributes`` → participants → sessions (``outboundContactId``,
``outboundContactListId``, ``outboundCampaignId``, ``dispositionAnalyzer``, ``dispositionName``)
→ segments (``segmentType``, ``wrapUpCode``, ``wrapUpNote``, ``queueId``).

Where the platform is not documented, the stricter reading: a page holds at most 100
conversations (the SDK gives no maximum; a Genesys blog sample uses 200); an interval may span
at most 7 days; "Results will only include conversations that started on a day touched by the
interval" (SDK docstring) is applied literally, by UTC day, so a query may return conversations
that started outside the interval itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from recovery.contact_center.emulator.errors import ApiError

MAX_PAGE_SIZE = 100
MAX_INTERVAL = timedelta(days=7)
SEGMENT_DIMENSIONS = frozenset(
    "addressFrom addressTo agentAssistantId agentOwned ani authenticated bargedParticipantId "
    "callbackNumber callbackScheduledTime canonicalExternalContactId cleared coachedParticipantId "
    "conference deliveryPushed deliveryStatus destinationAddress destinationConversationId "
    "detectedSpeechEnd detectedSpeechStart direction disconnectType dnis edgeId engagementSource "
    "errorCode exitReason extendedDeliveryStatus externalContactId externalOrganizationId "
    "flaggedReason flowId flowName flowOutType flowOutcome flowOutcomeId flowOutcomeValue "
    "flowVersion groupId journeyActionId journeyActionMapId journeyCustomerId "
    "journeyCustomerIdType journeyCustomerSessionId mediaCount mediaType messageType "
    "monitoredParticipantId outboundCampaignId outboundContactId outboundContactListId "
    "participantName protocolCallId provider purpose queueId recording remote "
    "remoteNameDisplayable requestedLanguageId requestedRouting requestedRoutingSkillId "
    "scoredAgentId screenMonitoredUserId screenRecording scriptId segmentEnd segmentType "
    "sessionDnis sipResponseCode skillExpressionId snippetRecording subject teamId "
    "transferTargetAddress transferTargetName transferType usedRouting userId wrapUpCode "
    "wrapUpNote".split()
)
CONVERSATION_DIMENSIONS = frozenset(
    "accessAttribute conversationEnd conversationId conversationInitiator conversationStart "
    "customerParticipation divisionId externalTag mediaStatsMinConversationMos "
    "originatingDirection originatingSocialMediaPublic".split()
)
ORDERS = frozenset({"asc", "desc", "unordered"})
ORDER_BY = frozenset({"conversationStart", "conversationEnd", "segmentStart", "segmentEnd"})


def parse_instant(text: str, *, name: str = "") -> datetime:
    """An ISO-8601 instant with its offset, in UTC; otherwise a 400 (naming the parameter
    ``name`` when given)."""
    prefix = f"{name}: " if name else ""
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(400, "bad.request", f"{prefix}{text!r} is not an ISO-8601 instant.") from exc
    if at.tzinfo is None:
        raise ApiError(400, "bad.request", f"{prefix}{text!r} has no offset.")
    return at.astimezone(UTC)


def parse_interval(value: Any) -> tuple[datetime, datetime]:
    if not isinstance(value, str) or "/" not in value:
        raise ApiError(400, "bad.request", "interval is required, as start/end in ISO-8601.")
    start_text, end_text = value.split("/", 1)
    start, end = parse_instant(start_text), parse_instant(end_text)
    if end <= start:
        raise ApiError(400, "bad.request", "The interval's end must be after its start.")
    if end - start > MAX_INTERVAL:
        raise ApiError(
            400,
            "analytics.query.interval.too.long",
            f"The interval may span at most {MAX_INTERVAL.days} days.",
        )
    return start, end


def _days(start: datetime, end: datetime) -> tuple[date, date]:
    last = (end - timedelta(microseconds=1)).date()
    return start.date(), last


def _started(conversation: Mapping[str, Any]) -> datetime:
    return parse_instant(str(conversation["conversationStart"]))


def _segment_rows(conversation: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every segment with its session's and participant's dimensions folded in."""
    for participant in conversation.get("participants", []):
        base = {
            "purpose": participant.get("purpose"),
            "participantName": participant.get("participantName"),
            "userId": participant.get("userId"),
        }
        for session in participant.get("sessions", []):
            merged = {**base, **{k: v for k, v in session.items() if not isinstance(v, list)}}
            for segment in session.get("segments", []):
                yield {**merged, **segment}


def _predicate_holds(predicate: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    dimension = predicate["dimension"]
    operator = predicate.get("operator", "matches")
    value = row.get(dimension)
    if operator == "exists":
        return value is not None
    if operator == "notExists":
        return value is None
    return value is not None and str(value) == str(predicate.get("value"))


def _check_filter(found: Any, dimensions: frozenset[str], where: str) -> None:
    if not isinstance(found, dict) or found.get("type") not in {"and", "or"}:
        raise ApiError(400, "bad.request", f"Each of {where} needs a type of and or or.")
    predicates = found.get("predicates") or []
    clauses = found.get("clauses") or []
    if not isinstance(predicates, list) or not isinstance(clauses, list):
        raise ApiError(400, "bad.request", f"{where}: predicates and clauses must be lists.")
    if not predicates and not clauses:
        raise ApiError(400, "bad.request", f"{where}: a filter needs predicates or clauses.")
    for clause in clauses:
        _check_filter(clause, dimensions, where)
        if clause.get("clauses"):
            raise ApiError(400, "bad.request", f"{where}: up to two levels of nesting.")
    for predicate in predicates:
        if not isinstance(predicate, dict):
            raise ApiError(400, "bad.request", f"{where}: a predicate must be an object.")
        kind = predicate.get("type", "dimension")
        if kind != "dimension":
            raise ApiError(
                400, "bad.request", f"{where}: only dimension predicates are emulated, not {kind}."
            )
        if predicate.get("dimension") not in dimensions:
            raise ApiError(
                400, "bad.request", f"{where}: unknown dimension {predicate.get('dimension')!r}."
            )
        if predicate.get("operator", "matches") not in {"matches", "exists", "notExists"}:
            raise ApiError(400, "bad.request", f"{where}: unknown operator.")
        if predicate.get("operator", "matches") == "matches" and "value" not in predicate:
            raise ApiError(400, "bad.request", f"{where}: a matches predicate needs a value.")


def _filter_holds(found: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    results = [_predicate_holds(p, row) for p in found.get("predicates") or []]
    results += [_filter_holds(c, row) for c in found.get("clauses") or []]
    return all(results) if found["type"] == "and" else any(results)


def _conversation_row(conversation: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "conversationId": conversation["conversationId"],
        "conversationStart": conversation.get("conversationStart"),
        "conversationEnd": conversation.get("conversationEnd"),
        "conversationInitiator": conversation.get("conversationInitiator"),
        "originatingDirection": conversation.get("originatingDirection"),
        "divisionId": (conversation.get("divisionIds") or [None])[0],
    }


def query(conversations: Mapping[str, dict[str, Any]], body: Any) -> dict[str, Any]:
    """Answer ``POST /api/v2/analytics/conversations/details/query``."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad.request", "The request body must be a ConversationQuery.")
    start, end = parse_interval(body.get("interval"))
    order = body.get("order", "asc")
    order_by = body.get("orderBy", "conversationStart")
    if order not in ORDERS or order_by not in ORDER_BY:
        raise ApiError(400, "bad.request", "order or orderBy is not valid.")
    paging = body.get("paging") or {"pageSize": 25, "pageNumber": 1}
    size, number = paging.get("pageSize"), paging.get("pageNumber")
    if not isinstance(size, int) or not 1 <= size <= MAX_PAGE_SIZE:
        raise ApiError(400, "bad.request", f"paging.pageSize must be 1 to {MAX_PAGE_SIZE}.")
    if not isinstance(number, int) or number < 1:
        raise ApiError(400, "bad.request", "paging.pageNumber must be a positive integer.")
    segment_filters = body.get("segmentFilters") or []
    conversation_filters = body.get("conversationFilters") or []
    for found in segment_filters:
        _check_filter(found, SEGMENT_DIMENSIONS, "segmentFilters")
    for found in conversation_filters:
        _check_filter(found, CONVERSATION_DIMENSIONS, "conversationFilters")
    first_day, last_day = _days(start, end)
    matched = []
    for conversation in conversations.values():
        if not first_day <= _started(conversation).date() <= last_day:
            continue
        rows = list(_segment_rows(conversation))
        if not all(any(_filter_holds(f, r) for r in rows) for f in segment_filters):
            continue
        row = _conversation_row(conversation)
        if not all(_filter_holds(f, row) for f in conversation_filters):
            continue
        matched.append(conversation)
    if order != "unordered":
        key = "conversationEnd" if order_by == "conversationEnd" else "conversationStart"
        matched.sort(
            key=lambda c: (str(c.get(key) or ""), c["conversationId"]), reverse=order == "desc"
        )
    page = matched[(number - 1) * size : number * size]
    answer: dict[str, Any] = {"totalHits": len(matched)}
    if page:
        answer["conversations"] = page
    return answer

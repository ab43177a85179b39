"""Wrap-up codes by name: the contact centre refers to an organisation's wrap-up codes by id.

``Condition.codes`` is a "List of wrap-up code identifiers", ``WrapUpCodeMapping.mapping`` "A
map from wrap-up code identifiers", analytics segments carry ``wrapUpCode`` and the after-call
work event ``wrapupCode`` (SDK ``PureCloudPlatformClientV2`` 269 models); the names are read
with ``GET /api/v2/routing/wrapupcodes`` (``RoutingApi.get_routing_wrapupcodes``, permission
``routing:wrapupCode:view``). The dialler's own codes (``ININ-OUTBOUND-*``,
``ININ-WRAP-UP-TIMEOUT``, ``OUTBOUND-*``) travel as their literal names and, on the stricter
reading, are not listed by that endpoint: they are names already.
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import datetime, timedelta

from recovery.clock import Clock
from recovery.contact_center.client import GenesysClient
from recovery.contact_center.errors import ContactCenterError

log = logging.getLogger(__name__)

# The dialler's own wrap-up codes of a voice campaign. Primary: Help, "Wrap-up codes assigned by
# outbound dialing" (the part of its table that could be read) and "Wrap-up rules"; a Genesys
# developer-forum answer for TRANSFERRED-TO-*. The rest appear in third-party integrations
# only (unconfirmed). Each must be mapped in ``recovery/data/dispositions.yaml``.
SYSTEM_CODES = (
    "ININ-OUTBOUND-PREVIEW-ERROR-PHONE-NUMBER",
    "ININ-OUTBOUND-PREVIEW-SKIPPED",
    "ININ-OUTBOUND-INVALID-PHONE-NUMBER",
    "ININ-OUTBOUND-ON-DO-NOT-CALL-LIST",
    "ININ-OUTBOUND-DNC-AUTHENTICATION-FAILED",
    "ININ-OUTBOUND-DNC-SKIPPED",
    "ININ-OUTBOUND-SIT-UNCALLABLE",
    "ININ-OUTBOUND-STUCK-INTERACTION",
    "ININ-OUTBOUND-CAMPAIGN-FORCED-OFF",
    "OUTBOUND-INVALID-AGENT",
    "ININ-OUTBOUND-INTERNAL-ERROR-SKIPPED",
    "ININ-OUTBOUND-CONTACT-UNCALLABLE-SKIPPED",
    "ININ-OUTBOUND-ZONE-BLOCKED-SKIPPED",
    "ININ-OUTBOUND-NUMBER-UNCALLABLE-SKIPPED",
    "ININ-OUTBOUND-CONTACT-ATTEMPT-LIMIT-SKIPPED",
    "ININ-OUTBOUND-NUMBER-ATTEMPT-LIMIT-SKIPPED",
    "ININ-OUTBOUND-RULE-SKIPPED",
    "ININ-OUTBOUND-TRANSFERRED-TO-QUEUE",
    "ININ-OUTBOUND-TRANSFERRED-TO-FLOW",
    "ININ-OUTBOUND-BUSY",
    "ININ-OUTBOUND-NO-ANSWER",
    "ININ-OUTBOUND-FAX",
    "ININ-OUTBOUND-MACHINE",
    "ININ-OUTBOUND-LINE-CONNECTED",
    "ININ-OUTBOUND-SIT-CALLABLE",
    "ININ-OUTBOUND-AMBIGUOUS",
    "ININ-OUTBOUND-FAILED-TO-REACH-AGENT",
    "ININ-OUTBOUND-DISCONNECT",
    "ININ-OUTBOUND-CALLBACK-DISCONNECT",
    "ININ-OUTBOUND-CAMPAIGN-RECYCLE-CANCELLED-RECALL",
    "ININ-OUTBOUND-RULE-ERROR-SKIPPED",
    "ININ-OUTBOUND-NO-CALLABLE-NUMBERS-SKIPPED",
    "ININ-OUTBOUND-NOT-CALLABLE-TIME",
    "ININ-OUTBOUND-AUTOMATIC-TIMEZONE-BLOCKED",
    "ININ-OUTBOUND-AUTOMATIC-TIME-ZONE-BLOCKED-SKIPPED",
    "ININ-OUTBOUND-EXTERNALLY-THROTTLED",
    "ININ-OUTBOUND-NO-ACTIVE-EDGES",
    "ININ-OUTBOUND-NOT-TRANSFERRED-TO-FLOW",
    "ININ-OUTBOUND-FAILED-TO-REACH-FLOW",
    "ININ-OUTBOUND-LIVE-VOICE",
    "ININ-OUTBOUND-RECALL-CANCELLED",
    "ININ-OUTBOUND-CONTACT-NOT-FOUND",
    "ININ-OUTBOUND-NUMBER_COULD_NOT_BE_DIALED",
    "OUTBOUND-INVALID-PHONE-NUMBER",
    "OUTBOUND-STUCK-CONTACT",
    "ININ-WRAP-UP-TIMEOUT",
)

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_system_code(code: str) -> bool:
    """A code the dialler itself assigns (Help, "Wrap-up codes assigned by outbound dialing")."""
    return code.upper().startswith(("ININ-", "OUTBOUND-"))


def looks_like_id(code: str) -> bool:
    return bool(_UUID.match(code.strip()))


class WrapupNames:
    """Wrap-up code ids to names, cached for ``ttl``; thread-safe.

    A code that is a system code, or not an id at all (a name already), is its own name. An id
    the organisation does not know stays an id: it maps to no disposition, and its case is
    parked for a person.

    A known id is answered from the cache at once, even when the cache is older than ``ttl``:
    the list is then read again in a thread of its own (one read at a time), so that an outcome
    callback does not wait for a request (and its slot of the shared request budget) to learn
    a name it already knows. An id the cache does not hold waits for a fresh read.
    ``background=False`` reads a stale list in the caller's thread instead."""

    def __init__(
        self, client: GenesysClient, *, clock: Clock, ttl: timedelta, background: bool = True
    ) -> None:
        self._client = client
        self._clock = clock
        self._ttl = ttl
        self._background = background
        self._lock = threading.Lock()
        # Held for the whole of a read: one read of the list at a time.
        self._reading = threading.Lock()
        self._names: dict[str, str] = {}
        self._loaded_at: datetime | None = None
        self.loads = 0

    def _stale(self) -> bool:
        return self._loaded_at is None or self._clock.now() - self._loaded_at >= self._ttl

    def refresh(self) -> dict[str, str]:
        """Read every wrap-up code of the organisation; id to name."""
        with self._reading:
            return self._read()

    def _refresh_behind(self) -> None:
        """Read the list again in a thread of its own, unless a read is under way."""
        if not self._reading.acquire(blocking=False):
            return

        def read() -> None:
            try:
                self._read()
            except ContactCenterError as exc:
                log.warning("wrap-up codes not read again (the cached names stay): %s", exc)
            finally:
                self._reading.release()

        threading.Thread(target=read, name="wrapup-names", daemon=True).start()

    def _read(self) -> dict[str, str]:
        entities = self._client.api_pages("/routing/wrapupcodes", what="list wrap-up codes")
        names = {
            str(e["id"]): str(e["name"])
            for e in entities
            if isinstance(e.get("id"), str) and isinstance(e.get("name"), str)
        }
        with self._lock:
            self._names = names
            self._loaded_at = self._clock.now()
            self.loads += 1
        return dict(names)

    def name(self, code: str) -> str:
        """The name of ``code`` (itself when it is not an organisation's id)."""
        code = code.strip()
        if not code or is_system_code(code) or not looks_like_id(code):
            return code
        with self._lock:
            known = self._names.get(code)
            stale = self._stale()
        if known is not None and not stale:
            return known
        if known is not None and self._background:
            self._refresh_behind()
            return known
        try:
            names = self.refresh()
        except ContactCenterError as exc:
            if known is not None:
                return known  # a stale name beats none while the contact centre is away
            raise exc
        found = names.get(code)
        if found is None:
            log.warning("wrap-up code %s is not one of the organisation's codes", code)
            return code
        return found

"""The Genesys Cloud client: contacts in, contacts out, numbers on the DNC list, and the plain
JSON requests the rest of the platform API needs (analytics, notifications, configuration).

Synchronous httpx, thread-safe (one client may serve several worker threads). Every request
goes through one ``Throttle``; authentication is OAuth client credentials with the token cached
until shortly before it expires and one fresh login when the API answers 401.
"""

from __future__ import annotations

import base64
import logging
import random
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from recovery.clock import Clock, SystemClock
from recovery.contact_center.contacts import ContactRequest, mask_phone, redact
from recovery.contact_center.errors import (
    AuthenticationFailed,
    ContactCenterError,
    ContactRejected,
    PermanentContactCenterError,
    TransientContactCenterError,
)
from recovery.contact_center.throttle import (
    Acquire,
    Monotonic,
    RetryPolicy,
    Sleep,
    Throttle,
    parse_retry_after,
)
from recovery.settings import Settings

log = logging.getLogger(__name__)

# Every region the official SDK knows (``PureCloudPlatformClientV2`` 269,
# ``purecloud_region_hosts.py``, ``PureCloudRegionHosts``), by the region's AWS-style name; the
# API host is ``api.<domain>`` and the login host ``login.<domain>``.
REGION_DOMAINS: dict[str, str] = {
    "us-east-1": "mypurecloud.com",
    "us-east-2": "use2.us-gov-pure.cloud",
    "us-west-2": "usw2.pure.cloud",
    "ca-central-1": "cac1.pure.cloud",
    "sa-east-1": "sae1.pure.cloud",
    "eu-west-1": "mypurecloud.ie",
    "eu-west-2": "euw2.pure.cloud",
    "eu-central-1": "mypurecloud.de",
    "eu-central-2": "euc2.pure.cloud",
    "me-central-1": "mec1.pure.cloud",
    "ap-southeast-2": "mypurecloud.com.au",
    "ap-northeast-1": "mypurecloud.jp",
    "ap-northeast-2": "apne2.pure.cloud",
    "ap-northeast-3": "apne3.pure.cloud",
    "ap-south-1": "aps1.pure.cloud",
    "ap-southeast-1": "apse1.pure.cloud",
    "mx-central-1": "mxc1.pure.cloud",
    "eusc-de-east-1": "edee1.eusc-pure.cloud",
}

RETRIABLE_STATUSES = frozenset({502, 503, 504})
# A whole batch refused with one of these is bisected to find the contact(s) at fault.
CONTACT_LEVEL_STATUSES = frozenset({400, 409, 422})
BULK_GET_MAX = 50
TOKEN_EARLY_REFRESH = timedelta(seconds=60)


def region_urls(region: str) -> tuple[str, str]:
    """(API base URL, login base URL) of a Genesys Cloud region, by name or by domain."""
    key = region.strip().lower().replace("_", "-")
    domain = REGION_DOMAINS.get(key)
    if domain is None:
        if key in REGION_DOMAINS.values():
            domain = key
        else:
            known = ", ".join(sorted(REGION_DOMAINS))
            raise ValueError(f"unknown Genesys Cloud region {region!r}; known: {known}")
    return f"https://api.{domain}", f"https://login.{domain}"


def login_url_for(base_url: str) -> str:
    """Where the token endpoint lives for ``base_url``: ``//api.`` becomes ``//login.``, and an
    address without ``//api.`` (the emulator, a proxy) serves the login path itself, as the
    official SDK assumes."""
    base = base_url.rstrip("/")
    if "//api." in base:
        return base.replace("//api.", "//login.", 1)
    return base


class CallRecord(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    last_attempt: AwareDatetime | None = Field(default=None, alias="lastAttempt")
    last_result: str | None = Field(default=None, alias="lastResult")


class DialerContact(BaseModel):
    """A contact as the contact centre returns it (``DialerContact``)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str
    contact_list_id: str | None = Field(default=None, alias="contactListId")
    data: dict[str, str] = Field(default_factory=dict)
    call_records: dict[str, CallRecord] = Field(default_factory=dict, alias="callRecords")
    callable: bool | None = None


class RejectedContact(BaseModel):
    model_config = ConfigDict(frozen=True)

    contact_id: str
    status: int
    reason: str


class AddContactsResult(BaseModel):
    """Which contacts the contact centre now holds, and which it refused (with its reason)."""

    created: list[str] = Field(default_factory=list)
    rejected: list[RejectedContact] = Field(default_factory=list)
    requests: int = 0

    def merge(self, other: AddContactsResult) -> None:
        self.created.extend(other.created)
        self.rejected.extend(other.rejected)
        self.requests += other.requests


def _error_reason(response: httpx.Response) -> tuple[str, str | None]:
    """The service's message and code, made safe to log (phones masked, card numbers removed)."""
    code: str | None = None
    message = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("code") if isinstance(body.get("code"), str) else None
        raw = body.get("message") or body.get("error_description") or body.get("error") or ""
        message = str(raw)
    if not message:
        message = response.reason_phrase or f"HTTP {response.status_code}"
    return redact(message)[:500], code


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class GenesysClient:
    """Genesys Cloud outbound API: contact lists, DNC lists, OAuth client credentials."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        region: str | None = None,
        base_url: str | None = None,
        login_url: str | None = None,
        batch_size: int = 50,
        timeout: float = 30.0,
        phone_column: str = "phone",
        acquire: Acquire | None = None,
        sleep: Sleep = time.sleep,
        monotonic: Monotonic = time.monotonic,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
        low_water: float = 0.2,
    ) -> None:
        if base_url is None:
            if region is None:
                raise ValueError("give a region name or an explicit base URL")
            base_url, default_login = region_urls(region)
        else:
            default_login = login_url_for(base_url)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.login_url = (login_url or default_login).rstrip("/")
        self.batch_size = batch_size
        self.phone_column = phone_column
        self.retry = retry or RetryPolicy()
        self.throttle = Throttle(
            acquire=acquire, sleep=sleep, monotonic=monotonic, low_water=low_water
        )
        self._client_id = client_id
        self._client_secret = client_secret
        self._sleep = sleep
        self._clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_expires_at: datetime | None = None
        self.logins = 0

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        acquire: Acquire | None = None,
        sleep: Sleep | None = None,
    ) -> GenesysClient:
        """A client for the region (or emulator address) the settings name."""
        region = settings.genesys_region.strip()
        explicit = region.lower() in {"", "emulator", "custom"}
        return cls(
            client_id=settings.genesys_client_id,
            client_secret=settings.genesys_client_secret.get_secret_value(),
            region=None if explicit else region,
            base_url=settings.genesys_base_url if explicit else None,
            login_url=settings.genesys_login_url,
            batch_size=settings.genesys_batch_size,
            timeout=settings.genesys_timeout_seconds,
            phone_column=settings.genesys_phone_column,
            acquire=acquire,
            sleep=sleep or time.sleep,
            clock=clock,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GenesysClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- authentication --------------------------------------------------------------------

    def _access_token(self) -> str:
        with self._token_lock:
            now = self._clock.now()
            if (
                self._token is not None
                and self._token_expires_at is not None
                and now < self._token_expires_at
            ):
                return self._token
            self._token, self._token_expires_at = self._login(now)
            return self._token

    def invalidate_token(self) -> None:
        with self._token_lock:
            self._token = None
            self._token_expires_at = None

    def _login(self, now: datetime) -> tuple[str, datetime]:
        basic = base64.b64encode(f"{self._client_id}:{self._client_secret}".encode()).decode()
        response = self._send(
            "POST",
            f"{self.login_url}/oauth/token",
            what="login",
            authenticated=False,
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            content=b"grant_type=client_credentials",
        )
        if response.status_code != 200:
            reason, code = _error_reason(response)
            raise AuthenticationFailed(
                f"login refused ({response.status_code}): {reason}",
                status=response.status_code,
                code=code,
            )
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthenticationFailed("login answered without an access token", status=200)
        expires_in = body.get("expires_in")
        lifetime = timedelta(seconds=float(expires_in)) if expires_in else timedelta(hours=24)
        # Refresh a little early so a request never leaves with a token about to expire.
        margin = min(TOKEN_EARLY_REFRESH, lifetime / 10)
        self.logins += 1
        return token, now + lifetime - margin

    # -- the one request path --------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        authenticated: bool = True,
        headers: dict[str, str] | None = None,
        json: Any = None,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send one request with throttling, 401 re-login, 429 and 5xx retries.

        Returns any response that is not retried (2xx, 4xx); raises
        ``TransientContactCenterError`` when retries are exhausted or not worth waiting for.
        """
        relogged = False
        rate_limited = 0
        server_errors = 0
        while True:
            request_headers = dict(headers or {})
            token: str | None = None
            if authenticated:
                token = self._access_token()
                request_headers["Authorization"] = f"Bearer {token}"
            self.throttle.before_request(pace=authenticated)
            try:
                response = self._http.request(
                    method, url, headers=request_headers, json=json, params=params, content=content
                )
            except httpx.TransportError as exc:
                if authenticated:
                    self.throttle.finish(None)
                server_errors += 1
                wait = self.retry.backoff(server_errors, self._rng)
                kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
                if wait is None:
                    raise TransientContactCenterError(
                        f"{what}: request {kind} after {server_errors} tries ({type(exc).__name__})"
                    ) from exc
                log.warning("%s: request %s (%s); retrying in %.1f s", what, kind, exc, wait)
                self._sleep(wait)
                continue
            if authenticated:
                self.throttle.finish(response.headers)
            status = response.status_code
            if status == 401 and authenticated and not relogged:
                relogged = True
                # Another thread may already have logged in again: only drop this token.
                with self._token_lock:
                    if self._token == token:
                        self._token = None
                continue
            if status == 401 and authenticated:
                reason, code = _error_reason(response)
                raise AuthenticationFailed(
                    f"{what}: a fresh token was refused too: {reason}", status=401, code=code
                )
            if status == 429:
                # An HTTP-date Retry-After is wall-clock time, whatever clock the project runs.
                retry_after = parse_retry_after(
                    response.headers.get("Retry-After"), now=datetime.now(UTC)
                )
                wait_for = self.retry.default_retry_after if retry_after is None else retry_after
                if wait_for > self.retry.max_retry_after:
                    raise TransientContactCenterError(
                        f"{what}: rate limited for {wait_for:.0f} s, more than the "
                        f"{self.retry.max_retry_after:.0f} s worth waiting",
                        status=429,
                        code="too.many.requests",
                        retry_after=wait_for,
                    )
                rate_limited += 1
                if rate_limited > self.retry.max_rate_limited_retries:
                    raise TransientContactCenterError(
                        f"{what}: still rate limited after {rate_limited - 1} waits",
                        status=429,
                        code="too.many.requests",
                        retry_after=wait_for,
                    )
                wait = self.retry.with_jitter(wait_for, self._rng)
                log.info("%s: rate limited; waiting %.1f s", what, wait)
                self._sleep(wait)
                continue
            if status in RETRIABLE_STATUSES:
                server_errors += 1
                wait_or_none = self.retry.backoff(server_errors, self._rng)
                if wait_or_none is None:
                    reason, code = _error_reason(response)
                    raise TransientContactCenterError(
                        f"{what}: HTTP {status} after {server_errors} tries: {reason}",
                        status=status,
                        code=code,
                    )
                log.warning("%s: HTTP %s; retrying in %.1f s", what, status, wait_or_none)
                self._sleep(wait_or_none)
                continue
            if status >= 500:
                reason, code = _error_reason(response)
                raise TransientContactCenterError(
                    f"{what}: HTTP {status}: {reason}", status=status, code=code
                )
            return response

    def _api(self, path: str) -> str:
        return f"{self.base_url}/api/v2/outbound{path}"

    # -- contacts --------------------------------------------------------------------------

    def add_contacts(
        self,
        contact_list_id: str,
        contacts: Sequence[ContactRequest],
        *,
        priority: bool = False,
    ) -> AddContactsResult:
        """Add (or update) contacts in batches of ``batch_size``.

        Each contact's id is deterministic, so a batch sent again after a timeout updates the
        same contacts. A batch refused as a whole (400) is split to isolate the contact(s) at
        fault; the others are created and the refused ones reported with the reason.
        """
        writable = [
            c.to_writable(contact_list_id, phone_column=self.phone_column) for c in contacts
        ]
        return self.add_writable_contacts(contact_list_id, writable, priority=priority)

    def add_writable_contacts(
        self,
        contact_list_id: str,
        contacts: Sequence[dict[str, Any]],
        *,
        priority: bool = False,
    ) -> AddContactsResult:
        """``add_contacts`` for ready-made ``WritableDialerContact`` dicts (each with an id).

        Always ``doNotQueue=true`` and ``clearSystemData=false``: "True means that updated
        contacts will not have their positions in the queue altered, so contacts that have
        already been dialed will not be redialed. For new contacts, this parameter has no
        effect; False means that updated contacts will be re-queued" (SDK
        ``OutboundApi.post_outbound_contactlist_contacts``). A new contact is queued either
        way; a re-send (crash recovery, a retried batch) or an update never queues a contact
        the dialler has already called, and never clears its attempts.
        """
        for contact in contacts:
            if not contact.get("id"):
                raise ValueError("every contact needs its deterministic id")
        params = {
            "priority": str(priority).lower(),
            "clearSystemData": "false",
            "doNotQueue": "true",
        }
        result = AddContactsResult()
        for batch in _chunks(contacts, self.batch_size):
            result.merge(self._add_batch(contact_list_id, batch, params))
        return result

    def make_uncallable(
        self, contact_list_id: str, contacts: Sequence[DialerContact]
    ) -> AddContactsResult:
        """Make contacts the project is done with uncallable, so the dialler never calls them
        again on its own (a recycle, a recall, an operator's recycle of a stopped campaign).

        The contacts are posted again, as the contact centre holds them, with
        ``callable=false`` and every phone column's ``phoneNumberStatus`` uncallable, under
        ``doNotQueue=true`` (an upsert that neither re-queues nor clears system data). Genesys
        keeps a contact dialled with a system wrap-up callable and "retried in the next
        recycle" (Help, "Wrap-up codes assigned by outbound dialing")."""
        writable = [
            {
                "id": c.id,
                "contactListId": contact_list_id,
                "data": dict(c.data),
                "callable": False,
                "phoneNumberStatus": {self.phone_column: {"callable": False}},
            }
            for c in contacts
        ]
        return self.add_writable_contacts(contact_list_id, writable)

    def _add_batch(
        self, contact_list_id: str, batch: Sequence[dict[str, Any]], params: dict[str, str]
    ) -> AddContactsResult:
        url = self._api(f"/contactlists/{contact_list_id}/contacts")
        response = self._send(
            "POST", url, what=f"add {len(batch)} contacts", json=list(batch), params=params
        )
        result = AddContactsResult(requests=1)
        if response.is_success:
            returned = response.json()
            ids = {c.get("id") for c in returned if isinstance(c, dict)}
            sent = [str(c["id"]) for c in batch]
            missing = [i for i in sent if i not in ids]
            if missing:
                raise TransientContactCenterError(
                    f"add contacts: {len(missing)} of {len(sent)} contacts missing from the answer"
                )
            result.created.extend(sent)
            return result
        reason, code = _error_reason(response)
        if response.status_code in CONTACT_LEVEL_STATUSES or response.status_code == 413:
            if len(batch) == 1:
                if response.status_code == 413:
                    raise PermanentContactCenterError(
                        f"add contacts: one contact is too large: {reason}", status=413, code=code
                    )
                contact_id = str(batch[0]["id"])
                log.warning(
                    "contact %s (phone %s) rejected: %s",
                    contact_id,
                    mask_phone(str(batch[0].get("data", {}).get(self.phone_column, ""))),
                    reason,
                )
                result.rejected.append(
                    RejectedContact(
                        contact_id=contact_id, status=response.status_code, reason=reason
                    )
                )
                return result
            middle = len(batch) // 2
            result.merge(self._add_batch(contact_list_id, batch[:middle], params))
            result.merge(self._add_batch(contact_list_id, batch[middle:], params))
            return result
        raise PermanentContactCenterError(
            f"add contacts to list {contact_list_id}: HTTP {response.status_code}: {reason}",
            status=response.status_code,
            code=code,
        )

    def get_contact(self, contact_list_id: str, contact_id: str) -> DialerContact | None:
        """One contact, or None when the list does not hold it."""
        response = self._send(
            "GET",
            self._api(f"/contactlists/{contact_list_id}/contacts/{contact_id}"),
            what=f"get contact {contact_id}",
        )
        if response.status_code == 404:
            return None
        self._raise_for_contact(response, contact_id)
        return DialerContact.model_validate(response.json())

    def get_contacts(self, contact_list_id: str, contact_ids: Sequence[str]) -> list[DialerContact]:
        """Several contacts (with their ``callRecords``); ids the list lacks are left out."""
        found: list[DialerContact] = []
        size = min(self.batch_size, BULK_GET_MAX)
        for chunk in _chunks(list(contact_ids), size):
            response = self._send(
                "POST",
                self._api(f"/contactlists/{contact_list_id}/contacts/bulk"),
                what=f"bulk get {len(chunk)} contacts",
                json=list(chunk),
            )
            self._raise_for_status(response, f"bulk get from list {contact_list_id}")
            found.extend(DialerContact.model_validate(item) for item in response.json())
        return found

    def remove_contact(self, contact_list_id: str, contact_id: str) -> bool:
        """Delete a contact so it is never dialled; False when it was already gone."""
        response = self._send(
            "DELETE",
            self._api(f"/contactlists/{contact_list_id}/contacts/{contact_id}"),
            what=f"remove contact {contact_id}",
        )
        if response.status_code == 404:
            return False
        self._raise_for_contact(response, contact_id)
        return True

    def append_dnc(self, dnc_list_id: str, phone_numbers: Sequence[str]) -> int:
        """Append numbers to an internal DNC list; returns how many were sent."""
        numbers = list(dict.fromkeys(p for p in phone_numbers if p))
        for chunk in _chunks(numbers, 1000):
            response = self._send(
                "POST",
                self._api(f"/dnclists/{dnc_list_id}/phonenumbers"),
                what=f"append {len(chunk)} numbers to DNC list {dnc_list_id}",
                json=list(chunk),
            )
            self._raise_for_status(response, f"append to DNC list {dnc_list_id}")
        return len(numbers)

    # -- the rest of the platform API -----------------------------------------------------

    def api_json(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json: Any = None,
        params: dict[str, str] | None = None,
        missing_ok: bool = False,
    ) -> Any:
        """One request to ``/api/v2{path}``; its JSON answer (None for an empty one, or for a
        404 when ``missing_ok``). Any other 4xx raises ``PermanentContactCenterError`` with
        the service's message and code."""
        response = self._send(
            method, f"{self.base_url}/api/v2{path}", what=what, json=json, params=params
        )
        if response.status_code == 404 and missing_ok:
            return None
        self._raise_for_status(response, what)
        if not response.content:
            return None
        return response.json()

    def api_pages(
        self, path: str, *, what: str, params: dict[str, str] | None = None, page_size: int = 100
    ) -> list[dict[str, Any]]:
        """Every entity of a paged listing (``entities``, ``pageCount``)."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.api_json(
                "GET",
                path,
                what=what,
                params={**(params or {}), "pageSize": str(page_size), "pageNumber": str(page)},
            )
            entities = body.get("entities") or [] if isinstance(body, dict) else []
            found.extend(e for e in entities if isinstance(e, dict))
            count = body.get("pageCount") if isinstance(body, dict) else None
            if not entities or not isinstance(count, int) or page >= count:
                return found
            page += 1

    def _raise_for_contact(self, response: httpx.Response, contact_id: str) -> None:
        if response.is_success:
            return
        reason, code = _error_reason(response)
        raise ContactRejected(contact_id, reason, status=response.status_code, code=code)

    def _raise_for_status(self, response: httpx.Response, what: str) -> None:
        if response.is_success:
            return
        reason, code = _error_reason(response)
        raise PermanentContactCenterError(
            f"{what}: HTTP {response.status_code}: {reason}",
            status=response.status_code,
            code=code,
        )


ContactCenterErrorKind = Literal["transient", "permanent"]


def error_kind(exc: ContactCenterError) -> ContactCenterErrorKind:
    """Whether a task should retry after ``exc``."""
    return "transient" if isinstance(exc, TransientContactCenterError) else "permanent"

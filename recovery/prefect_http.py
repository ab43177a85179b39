"""Requests to the Prefect API through the Prefect client's own HTTP client (its address,
headers and credentials), without the Prefect client's retries (2, 4, 8 s on a busy answer):
for calls that retry on their own terms, the rate-limit acquisitions of
``recovery/contact_center/budget.py`` and the case events of ``tasks/events.py``."""

from __future__ import annotations

import atexit
import threading
from typing import Any

import httpx

# A busy Prefect server's answers (503: SQLite busy on the embedded server), worth another try
# within a fraction of a second.
BUSY_STATUSES = frozenset({408, 429, 502, 503})


class PrefectHttp:
    """One Prefect client, opened here and closed by ``close``."""

    def __init__(self) -> None:
        from prefect.client.orchestration import get_client

        self._client: Any = get_client(sync_client=True)
        self._client.__enter__()

    def post(self, path: str, body: object) -> httpx.Response:
        """One attempt at ``POST path`` (relative to the API URL), its answer whatever it is."""
        http = getattr(self._client, "_client", None)
        if not isinstance(http, httpx.Client):  # pragma: no cover - another Prefect client
            response: httpx.Response = self._client.request("POST", path, json=body)
            return response
        return httpx.Client.send(http, http.build_request("POST", path, json=body))

    def close(self) -> None:
        self._client.__exit__(None, None, None)


_shared: dict[str, PrefectHttp] = {}
_shared_lock = threading.Lock()


def shared_prefect_http() -> PrefectHttp | None:
    """This process's client for the Prefect API it talks to now (one per API URL, closed at
    exit); None when no Prefect API is set."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return None
    with _shared_lock:
        found = _shared.get(url)
        if found is None:
            found = _shared[url] = PrefectHttp()
        return found


@atexit.register
def _close_shared() -> None:
    with _shared_lock:
        clients = list(_shared.values())
        _shared.clear()
    for client in clients:
        client.close()

"""Starting the ingest deployment from the receiver, over Prefect's REST API.

Pokes are coalesced: one background thread creates at most one flow run per time bucket
(the bucket is the idempotency key, so even several receivers create one run per bucket).
When Prefect is unreachable the receiver is unaffected: the inbox rows wait for the next run
(the scheduled ingest sweep or the next successful trigger).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import httpx

log = logging.getLogger("recovery.api.trigger")


class IngestTrigger:
    def __init__(
        self,
        *,
        api_url: str,
        deployment: str,
        bucket_seconds: int,
        wall_time: Callable[[], float] = time.time,
        timeout: float = 5.0,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.deployment = deployment
        self.bucket_seconds = max(1, bucket_seconds)
        self._wall_time = wall_time
        self._client = httpx.Client(timeout=timeout)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._deployment_id: str | None = None
        self._last_bucket: int | None = None
        self._last_error_logged = 0.0
        self.runs_created = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._loop, name="ingest-trigger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._client.close()

    def poke(self) -> None:
        """Cheap and non-blocking: called after every committed delivery."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            self._wake.clear()
            bucket = int(self._wall_time() // self.bucket_seconds)
            if bucket == self._last_bucket:
                # Already started a run for this bucket: look again when the next one begins.
                delay = (bucket + 1) * self.bucket_seconds - self._wall_time()
                if self._stop.wait(max(0.0, delay)):
                    return
                self._wake.set()
                continue
            if self._create_run(bucket):
                self._last_bucket = bucket
            else:
                # Prefect unreachable: retry later; the rows are safe in the inbox meanwhile.
                if self._stop.wait(self.bucket_seconds):
                    return
                self._wake.set()

    def _create_run(self, bucket: int) -> bool:
        try:
            if self._deployment_id is None:
                response = self._client.get(f"{self.api_url}/deployments/name/{self.deployment}")
                response.raise_for_status()
                self._deployment_id = str(response.json()["id"])
            response = self._client.post(
                f"{self.api_url}/deployments/{self._deployment_id}/create_flow_run",
                json={
                    "parameters": {},
                    "state": {"type": "SCHEDULED", "name": "Scheduled"},
                    "idempotency_key": f"ingest-{self.bucket_seconds}s-{bucket}",
                    "tags": ["recovery", "purpose:ingest", "trigger:receiver"],
                },
            )
            if response.status_code == 404:
                self._deployment_id = None
            response.raise_for_status()
            self.runs_created += 1
            return True
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            self.failures += 1
            now = self._wall_time()
            if now - self._last_error_logged > 60:
                self._last_error_logged = now
                log.warning(
                    "could not start the ingest deployment %s (%s); inbox rows wait for the "
                    "next run",
                    self.deployment,
                    type(exc).__name__,
                )
            return False

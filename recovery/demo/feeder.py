"""Posting the campaign's webhooks to the receiver as the virtual clock reaches each one."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

import httpx

from recovery.clock import Clock
from recovery.demo.campaign import SECRET, CampaignPlan, Delivery
from recovery.gateways import samples


class Feeder:
    """Posts each delivery to the receiver once the virtual clock reaches its time."""

    def __init__(self, plan: CampaignPlan, *, receiver: str, clock: Clock) -> None:
        self.plan = plan
        self.receiver = receiver
        self.clock = clock
        self.posted = 0
        self.kinds: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()
        # Deliveries not posted yet (oldest first) and whether a batch is being posted: what
        # the time-skipping driver reads to know whether the feeder has work.
        self._pending = list(plan.deliveries)
        self._posting = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-feeder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def next_at(self) -> datetime | None:
        """When the next delivery is due (None once every one is posted)."""
        with self._lock:
            return self._pending[0].at if self._pending else None

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._posting

    def _run(self) -> None:
        with httpx.Client(base_url=self.receiver, timeout=15) as client:
            while self._pending and not self._stop.is_set():
                now = self.clock.now()
                with self._lock:
                    due = 0
                    while due < len(self._pending) and self._pending[due].at <= now:
                        due += 1
                    batch = self._pending[:due]
                    self._posting = bool(batch)
                    del self._pending[:due]
                if not batch:
                    self._stop.wait(0.02)
                    continue
                # One after another, in the plan's order: the inbox then holds them in that
                # order whatever the machine, so the same seed plays the same campaign.
                for delivery in batch:
                    self.answers[self._post(client, delivery)] += 1
                self.kinds.update(d.kind for d in batch)
                self.posted += len(batch)
                with self._lock:
                    self._posting = False

    def _post(self, client: httpx.Client, delivery: Delivery) -> str:
        # Stripe signs with the wall clock, and the receiver checks it against the wall clock.
        body, header = samples.signed(delivery.event, SECRET)
        headers = {"Stripe-Signature": header, "Content-Type": "application/json"}
        for attempt in range(1, 6):
            try:
                response = client.post("/webhooks/stripe", content=body, headers=headers)
                if response.status_code < 500:
                    status = response.json().get("status", "")
                    return f"{response.status_code} {status}".strip()
            except httpx.HTTPError:
                pass
            if self._stop.wait(0.2 * attempt):
                break
        return "not delivered"

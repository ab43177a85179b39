"""The emulated dialer: calls what is queued, within the callable window, and pushes outcomes.

Like a Genesys campaign with a callable time set and DNC lists, it refuses to call a contact
outside 08:00-21:00 in the time zone its data carries (a missing or unknown zone is a refusal:
the contact stays queued and every refusal is counted), records numbers on a DNC list as
``ININ-OUTBOUND-ON-DO-NOT-CALL-LIST``, and delivers every outcome to the callback URL the way
a wrap-up rule's data action would, signed like the project's other callbacks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from recovery.contact_center.contacts import mask_phone
from recovery.contact_center.emulator.scenarios import ON_DNC_LIST, wrapup_details
from recovery.contact_center.emulator.state import (
    DialReport,
    EmulatorState,
    Push,
    StoredContact,
)
from recovery.gateways.signing import sign

log = logging.getLogger(__name__)


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def within_window(state: EmulatorState, contact: StoredContact, at: datetime) -> bool:
    zone_name = contact.data.get(state.config.time_zone_column, "")
    if not zone_name:
        return False
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    local = at.astimezone(zone).time()
    return state.config.callable_from <= local < state.config.callable_until


def dial(state: EmulatorState, at: datetime) -> DialReport:
    """Dial every queued contact of every list once, as at ``at``."""
    if at.tzinfo is None:
        raise ValueError("dial needs a timezone-aware instant")
    report = DialReport()
    column = state.config.phone_column
    with state.lock:
        for contact_list in state.lists.values():
            for contact_id in list(contact_list.queue):
                contact = contact_list.contacts[contact_id]
                phone = contact.data.get(column, "")
                if state.on_dnc(phone):
                    code, right_party = ON_DNC_LIST, False
                    state.counters.on_dnc_list += 1
                    report.on_dnc_list += 1
                elif not within_window(state, contact, at):
                    state.counters.refused_outside_window += 1
                    report.refused_outside_window += 1
                    continue
                else:
                    wrapup = state.scenario.draw(state.seed, contact_id, contact.dials + 1)
                    code, right_party = wrapup.code, wrapup.right_party
                    state.counters.dials += 1
                    report.dialled += 1
                del contact_list.queue[contact_id]
                contact.dials += 1
                contact.call_records[column] = {"lastAttempt": _iso(at), "lastResult": code}
                if state.config.callback_url is None:
                    continue
                if state.scenario.drops_push(state.seed, contact_id, contact.dials):
                    state.counters.pushes_dropped += 1
                    report.dropped_pushes += 1
                    continue
                report.pushes.append(
                    Push(
                        {
                            "contactId": contact_id,
                            "contactListId": contact_list.id,
                            "wrapupCode": code,
                            "isRightPartyContact": right_party,
                            "callAttemptedAt": _iso(at),
                            "phoneColumn": column,
                            "data": dict(contact.data),
                            **wrapup_details(
                                state.seed,
                                contact_id,
                                contact.dials,
                                code,
                                at,
                                contact.data.get(state.config.time_zone_column, ""),
                            ),
                        }
                    )
                )
    return report


async def deliver(state: EmulatorState, pushes: list[Push]) -> tuple[int, int]:
    """POST each outcome to the callback URL; returns (sent, failed). Failures are counted and
    left for the reconcile poll, never raised."""
    url = state.config.callback_url
    secret = state.config.callback_secret or ""
    if not pushes or url is None:
        return 0, 0
    semaphore = asyncio.Semaphore(state.config.push_concurrency)
    results: list[bool] = []

    async with httpx.AsyncClient(timeout=state.config.push_timeout_seconds) as http:

        async def one(push: Push) -> None:
            body = json.dumps(push.payload, separators=(",", ":")).encode()
            async with semaphore:
                # Signed at sending time, in real time: the signature's freshness is about
                # transport, not the (possibly virtual) business clock.
                headers = {
                    "Content-Type": "application/json",
                    "Recovery-Signature": sign(body, secret, int(time.time())),
                }
                try:
                    response = await http.post(url, content=body, headers=headers)
                    ok = response.is_success
                    if not ok:
                        log.warning(
                            "push for contact %s (phone %s) answered %s",
                            push.payload["contactId"],
                            mask_phone(push.payload["data"].get(state.config.phone_column)),
                            response.status_code,
                        )
                except httpx.HTTPError as exc:
                    log.warning("push for contact %s failed: %s", push.payload["contactId"], exc)
                    ok = False
            results.append(ok)

        await asyncio.gather(*(one(p) for p in pushes))
    sent = sum(results)
    failed = len(results) - sent
    with state.lock:
        state.counters.pushes_sent += sent
        state.counters.pushes_failed += failed
    return sent, failed


async def run_dialer(state: EmulatorState, interval: float, stop: asyncio.Event) -> None:
    """Dial on an interval until ``stop`` is set (the CLI's emulator, never the tests')."""
    while not stop.is_set():
        try:
            report = dial(state, state.clock.now())
            await deliver(state, report.pushes)
        except Exception:  # the loop must outlive one bad round
            log.exception("dialer round failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval)
        except TimeoutError:
            pass

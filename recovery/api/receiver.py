"""The receiver as it runs: the app with its delivery events (which start ingest runs), the
contact centre's outcome callback and the admin routes."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI

from recovery import event_feed
from recovery.api.app import create_app
from recovery.api.deliveries import DeliveryEvents
from recovery.event_feed import EventSender
from recovery.runtime import Runtime

log = logging.getLogger("recovery.api")


def build_receiver(runtime: Runtime, *, trigger: bool = True) -> tuple[FastAPI, Callable[[], None]]:
    """The app and a function that stops what it started."""
    settings = runtime.settings
    deliveries: DeliveryEvents | None = None
    case_events: EventSender | None = None
    if settings.prefect_api_url:
        # Outcomes recorded here (the data action) are case events.
        case_events = EventSender(settings.prefect_api_url)
        event_feed.install_sink(case_events)
    if trigger and settings.prefect_api_url:
        deliveries = DeliveryEvents(
            api_url=settings.prefect_api_url, window_seconds=settings.trigger_bucket_seconds
        )
        deliveries.start()
    elif trigger:
        log.warning(
            "no Prefect API URL set: the receiver records deliveries but announces none (the "
            "ingest schedule sweeps the inbox)"
        )
    from datetime import timedelta

    from recovery.api.routes.admin import build_admin_router
    from recovery.api.routes.callbacks import build_callbacks_router
    from recovery.contact_center.analytics import query_outcomes
    from recovery.contact_center.throttle import RetryPolicy
    from recovery.contact_center.wrapups import WrapupNames

    # Wrap-up codes arrive by id; their names are read from the contact centre (cached). The
    # data actions of a dialling round arrive together, each reading a wrap-up note: slots are
    # taken a few at a time while they keep coming (one after a pause), as a flow's are.
    client = runtime.contact_center(runtime.request_budget(block=settings.rate_limit_occupy))
    # Those reads and the wrap-up note's happen while a data action waits for its answer: they
    # give up within seconds (the outcome is recorded without the note) rather than retrying
    # for the better part of a minute, by which time the data action has timed out.
    client.retry = RetryPolicy(
        server_error_backoff=(0.5, 1.0), max_retry_after=5.0, max_rate_limited_retries=1
    )
    wrapups = WrapupNames(
        client,
        clock=runtime.clock,
        ttl=timedelta(seconds=settings.genesys_wrapup_cache_seconds),
    )

    def note_for(contact_id: str) -> str:
        now = runtime.clock.now()
        calls = query_outcomes(
            client,
            contact_list_id=settings.genesys_contact_list_id,
            start=now - timedelta(days=2),
            end=now + timedelta(minutes=1),
            window_days=settings.genesys_analytics_window_days,
            page_size=settings.genesys_analytics_page_size,
            contact_id=contact_id,
        )
        return calls[-1].note if calls else ""

    routers = [
        build_callbacks_router(
            sessions=runtime.sessions,
            settings=settings,
            clock=runtime.clock,
            wrapup_name=wrapups.name,
            note_for=note_for,
        )
    ]

    routers.append(build_admin_router(sessions=runtime.sessions, settings=settings))
    app = create_app(
        settings=settings,
        sessions=runtime.sessions,
        clock=runtime.clock,
        deliveries=deliveries,
        extra_routers=routers,
    )

    def stop() -> None:
        if deliveries is not None:
            deliveries.stop()
        if case_events is not None:
            event_feed.install_sink(None)
            case_events.stop()
        client.close()

    return app, stop

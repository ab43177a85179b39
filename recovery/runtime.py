"""Building the long-lived objects from settings, once, at the edge (CLI, receiver, flows)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from recovery.clock import Clock, VirtualClock, parse_clock
from recovery.contact_center.client import GenesysClient
from recovery.contact_center.throttle import Acquire
from recovery.domain.compliance import CallingRules, load_rules
from recovery.domain.policy import DispositionMap, Policy, load_disposition_map, load_policy
from recovery.domain.taxonomy import FailureCodes, load_failure_codes
from recovery.gateways import stripe as stripe_gateway
from recovery.log_scrubbing import install_log_scrubbing
from recovery.settings import Settings
from recovery.store.db import make_engine, make_sessionmaker
from recovery.store.migrate import ensure_schema


@dataclass
class Runtime:
    settings: Settings
    clock_override: Clock | None = field(default=None)
    # Threads of one process share a runtime (a flow's tasks): what they build is built once.
    _guard: threading.RLock = field(
        default_factory=threading.RLock, init=False, repr=False, compare=False
    )
    _engine: Engine | None = field(default=None, init=False, repr=False, compare=False)
    _sessions: sessionmaker[Session] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _shared_client: GenesysClient | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # Every process that builds a runtime (CLI, receiver, flow run) scrubs its logs.
        install_log_scrubbing()

    @cached_property
    def clock(self) -> Clock:
        return self.clock_override or parse_clock(self.settings.clock, self.settings.data_dir)

    @property
    def engine(self) -> Engine:
        with self._guard:
            if self._engine is None:
                self._engine = make_engine(self.settings.database_url)
            return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        with self._guard:
            if self._sessions is None:
                self._sessions = make_sessionmaker(
                    self.engine, fingerprint=self.settings.fingerprint()
                )
            return self._sessions

    @cached_property
    def failure_codes(self) -> FailureCodes:
        return load_failure_codes(self.settings.failure_codes_file)

    @cached_property
    def policy(self) -> Policy:
        return load_policy(self.settings.policy_file)

    @cached_property
    def rules(self) -> CallingRules:
        return load_rules(self.settings.calling_rules_file, self.settings.calling_rules_profile)

    @cached_property
    def disposition_map(self) -> DispositionMap:
        return load_disposition_map(self.settings.disposition_map_file)

    @property
    def time_scale(self) -> float:
        """Virtual seconds per real second (1 on the system clock)."""
        return self.clock.speed if isinstance(self.clock, VirtualClock) else 1.0

    def real_seconds(self, seconds: float) -> timedelta:
        """A span of real time expressed on this runtime's clock (leases, margins)."""
        return timedelta(seconds=seconds * self.time_scale)

    def request_budget(self, *, block: int = 1) -> Acquire:
        """The process's share of the contact centre's request budget (the shared Prefect
        rate limit), taken ``block`` slots at a time: every client's ``acquire`` hook."""
        from recovery.contact_center.budget import request_budget

        settings = self.settings
        return request_budget(
            settings.genesys_rate_limit_name, settings.genesys_requests_per_minute, block=block
        )

    def contact_center(self, acquire: Acquire | None = None) -> GenesysClient:
        """A client for the configured region or emulator; close it when done. Its requests
        count against the shared request budget unless ``acquire`` says otherwise."""
        return GenesysClient.from_settings(
            self.settings, clock=self.clock, acquire=acquire or self.request_budget()
        )

    @property
    def shared_contact_center(self) -> GenesysClient:
        """One client for everything this runtime runs at once (a flow's tasks, in threads,
        share its token, throttle and connections); ``close`` closes it, and the next use
        builds a new one."""
        with self._guard:
            if self._shared_client is None:
                # A flow's tasks send many requests: slots are taken a group at a time.
                block = self.settings.rate_limit_occupy
                self._shared_client = self.contact_center(self.request_budget(block=block))
            return self._shared_client

    def interactive_contact_center(self) -> GenesysClient:
        """A client for a person waiting at a terminal: it gives up within seconds rather than
        the minute a flow's task may wait; the person is told that nothing changed and runs
        the command again."""
        from recovery.contact_center.throttle import RetryPolicy

        client = self.contact_center()
        client.retry = RetryPolicy(server_error_backoff=(1.0, 2.0), max_retry_after=10.0)
        return client

    def require_schema(self) -> None:
        ensure_schema(self.settings.database_url)

    def customer_lookup(self) -> stripe_gateway.StripeLookup | None:
        """What ingest reads from Stripe (customers' phones, the invoice a payment intent
        pays); None when no lookup could succeed: the development key against Stripe's own
        address (the demo, a fresh checkout)."""
        settings = self.settings
        if not settings.stripe_api_usable:
            return None
        return stripe_gateway.StripeLookup(
            api_key=settings.stripe_api_key.get_secret_value(), api_base=settings.stripe_api_base
        )

    def close(self) -> None:
        """Close the shared contact-centre client and the store's pooled connections (the
        engine stays usable: it opens new connections when next asked)."""
        with self._guard:
            client, self._shared_client = self._shared_client, None
            engine = self._engine
        if client is not None:
            client.close()
        if engine is not None:
            engine.dispose()

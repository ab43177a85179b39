"""Building the long-lived objects from settings, once, at the edge (CLI, receiver, flows)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from recovery.clock import Clock, parse_clock
from recovery.domain.models import ContactPoint
from recovery.domain.taxonomy import FailureCodes, load_failure_codes
from recovery.gateways import stripe as stripe_gateway
from recovery.logging import install_log_scrubbing
from recovery.settings import Settings
from recovery.store.db import make_engine, make_sessionmaker
from recovery.store.migrate import ensure_schema


@dataclass
class Runtime:
    settings: Settings
    clock_override: Clock | None = field(default=None)

    def __post_init__(self) -> None:
        # Every process that builds a runtime (CLI, receiver, flow run) scrubs its logs.
        install_log_scrubbing()

    @cached_property
    def clock(self) -> Clock:
        return self.clock_override or parse_clock(self.settings.clock, self.settings.data_dir)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_sessionmaker(self.engine)

    @cached_property
    def failure_codes(self) -> FailureCodes:
        return load_failure_codes(self.settings.failure_codes_file)

    def require_schema(self) -> None:
        ensure_schema(self.settings.database_url)

    def customer_lookup(
        self,
    ) -> Callable[[str], tuple[ContactPoint, str | None, str | None] | None]:
        settings = self.settings

        def lookup(customer_id: str) -> tuple[ContactPoint, str | None, str | None] | None:
            return stripe_gateway.fetch_customer_contact(
                customer_id,
                api_key=settings.stripe_api_key.get_secret_value(),
                api_base=settings.stripe_api_base,
            )

        return lookup

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()

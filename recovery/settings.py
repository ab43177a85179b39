"""One settings object, read once at the edge (CLI, receiver, flow entry) and passed in.

Every setting is an environment variable with the prefix ``RECOVERY_`` (or a line in a ``.env``
file in the working folder). In production mode placeholder or empty secrets are refused.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from recovery.domain.fingerprint import Fingerprint, keyed_fingerprint
from recovery.domain.pan import Marker, keyed_marker

STRIPE_API_BASE = "https://api.stripe.com"
PLACEHOLDER_MARKERS = ("change-me", "changeme", "placeholder", "example", "dev-", "test-", "xxx")

DEFAULT_DATA_DIR = Path("data")


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RECOVERY_", env_file=".env", extra="ignore", validate_default=True
    )

    mode: Literal["development", "production"] = "development"
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""

    # Clock: "system", or "virtual:<ISO start>@<speed>" (speed x real time, shared by all
    # processes that are given the same value and the same anchor file in data_dir).
    clock: str = "system"

    # Gateways
    stripe_webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=lambda: [SecretStr("whsec_dev-local-only")]
    )
    stripe_api_key: SecretStr = SecretStr("sk_test_dev-local-only")
    stripe_api_base: str = STRIPE_API_BASE
    stripe_tolerance_seconds: int = 300
    generic_signing_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=lambda: [SecretStr("generic-dev-local-only")]
    )
    braintree_environment: str = "sandbox"
    braintree_merchant_id: str = "dev-merchant"
    braintree_public_key: str = "dev-public-key"
    braintree_private_key: SecretStr = SecretStr("dev-private-key")
    paypal_webhook_id: str = "dev-webhook-id"
    # PayPal: which environment's certificate hosts and signing-certificate name are trusted;
    # offline verification against pinned anchors, or PayPal's verify-webhook-signature API.
    paypal_environment: Literal["live", "sandbox"] = "live"
    paypal_cert_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    paypal_trust_anchors_file: Path | None = None
    paypal_intermediates_file: Path | None = None
    paypal_tolerance_seconds: int = Field(default=300, ge=1, le=3600)
    paypal_max_concurrent_fetches: int = Field(default=4, ge=1, le=64)
    paypal_verification: Literal["offline", "api"] = "offline"
    paypal_api_base: str = ""
    paypal_client_id: str = ""
    paypal_client_secret: SecretStr = SecretStr("")
    max_body_bytes: int = 1024 * 1024

    # Receiver
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    admin_token: SecretStr = SecretStr("admin-dev-local-only")
    # Keys the fingerprint in a redacted card number's marker, so ids that look like card
    # numbers stay distinct once redacted (see recovery/domain/pan.py).
    redaction_key: SecretStr = SecretStr("redaction-dev-local-only")
    # Keys the fingerprint that replaces a phone number or customer reference once personal
    # data is erased (``recovery forget``, retention); a suppressed number stays blocked.
    privacy_key: SecretStr = SecretStr("privacy-dev-local-only")
    # Personal fields of cases closed longer than this many days are erased by the retention
    # flow (unset: never).
    retention_days: int | None = Field(default=None, ge=1, le=36_500)

    # Prefect (the API URL falls back to PREFECT_API_URL)
    prefect_api_url: str | None = Field(
        default=None, validation_alias=AliasChoices("RECOVERY_PREFECT_API_URL", "PREFECT_API_URL")
    )
    # The receiver announces deliveries (the ingest trigger) at most once per this many
    # seconds: a burst becomes one event.
    trigger_bucket_seconds: float = Field(default=1.0, ge=0, le=300)
    ingest_batch_size: int = Field(default=500, ge=1, le=10_000)

    # Rules and policies (None: the shipped defaults)
    calling_rules_file: Path | None = None
    calling_rules_profile: str = "strict"
    policy_file: Path | None = None
    failure_codes_file: Path | None = None
    disposition_map_file: Path | None = None

    # Contact centre (Genesys Cloud)
    genesys_region: str = "emulator"
    genesys_base_url: str = "http://127.0.0.1:8900"
    genesys_login_url: str | None = None
    genesys_client_id: str = "emulator-client"
    genesys_client_secret: SecretStr = SecretStr("emulator-secret-dev-local-only")
    genesys_contact_list_id: str = "recovery-contacts"
    genesys_dnc_list_id: str = "recovery-dnc"
    genesys_batch_size: int = Field(default=50, ge=1, le=1000)
    genesys_requests_per_minute: int = Field(default=300, ge=1)
    genesys_rate_limit_name: str = "genesys-outbound-api"
    genesys_phone_column: str = "phone"
    genesys_timeout_seconds: float = 30.0
    # The organisation's set-up that `recovery genesys check` holds to account and
    # `recovery genesys setup` creates (by these names when missing).
    genesys_campaign_id: str = "recovery-campaign"
    genesys_time_zone_column: str = "timeZone"
    genesys_contact_list_name: str = "Payment recovery contacts"
    genesys_dnc_list_name: str = "Payment recovery do-not-call"
    genesys_attempt_limits_name: str = "Payment recovery: one dial per contact"
    genesys_callable_time_set_name: str = "Payment recovery calling hours"
    # Outcomes by a wrap-up rule's web-services data action: its id ("" for none), the rule
    # set that runs it, and the static credentials the receiver accepts from it (Basic auth
    # with this user name, or the secret alone in this header); several secrets for rotation.
    genesys_data_action_id: str = ""
    genesys_rule_set_name: str = "Payment recovery outcomes"
    genesys_action_user: str = "genesys"
    genesys_action_header: str = "X-Recovery-Key"
    genesys_action_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=lambda: [SecretStr("genesys-action-dev-local-only")]
    )
    # The notification-channel listener and the analytics reconcile.
    genesys_listener_silence_seconds: float = Field(default=90.0, gt=0, le=3600)
    genesys_listener_max_backoff_seconds: float = Field(default=60.0, gt=0, le=3600)
    genesys_analytics_window_days: int = Field(default=7, ge=1, le=7)
    genesys_analytics_page_size: int = Field(default=100, ge=1, le=100)
    genesys_wrapup_cache_seconds: int = Field(default=900, ge=0)

    # Reporting: a recovery counts as "after a call" within this many days of a right-party
    # contact (and "after a promise" within this many days of the promised date).
    attribution_days: int = Field(default=7, ge=1, le=365)

    # Advancing due cases
    lease_seconds: int = Field(default=300, ge=10, description="real seconds")
    advance_chunk_size: int = Field(default=500, ge=1, le=10_000)
    dial_margin_minutes: int = Field(default=15, ge=0, le=600)
    advance_interval_seconds: int = Field(default=60, ge=1)
    # How long an advance run keeps watching for cases that fall due after it drained the
    # queue (real seconds; 0: it ends as soon as nothing is due).
    advance_linger_seconds: float = Field(default=0, ge=0, le=3600)
    # How long an ingest run keeps watching the inbox after draining it (real seconds from the
    # run's start; 0: it ends as soon as the inbox is empty). Runs started meanwhile wait for it
    # (the deployment runs one at a time), so a linger a little shorter than the trigger bucket
    # keeps one run watching while deliveries keep coming.
    ingest_linger_seconds: float = Field(default=0, ge=0, le=3600)
    # How many advance runs `recovery serve` lets run at once (prefect.yaml says one; cases are
    # leased, so two never decide the same case). Two let a watching run's successor start
    # while it still watches: no gap while a flow-run process starts.
    advance_concurrency: int | None = Field(default=None, ge=1, le=16)
    # How many ingest runs `recovery serve` lets run at once (prefect.yaml says one). Batches
    # never overlap (SQLite takes the write lock up front, PostgreSQL skips the rows another
    # run holds); two let a watching run's successor start while it still watches.
    ingest_concurrency: int | None = Field(default=None, ge=1, le=16)
    # How many flow runs `recovery serve` (flows/deployments.py) runs at once, each a process.
    runner_limit: int = Field(default=4, ge=1, le=64)
    reconcile_interval_seconds: int = Field(default=900, ge=1)
    # How long a reconcile run keeps watching for outcomes that fall overdue after its first
    # look (real seconds from the run's start; 0: it ends after one look).
    reconcile_linger_seconds: float = Field(default=0, ge=0, le=3600)
    close_on_payment_interval_seconds: int = Field(default=60, ge=1)
    dispositions_interval_seconds: int = Field(default=60, ge=1)
    uncallable_interval_seconds: int = Field(default=60, ge=1)
    # Slots a flow process takes from the shared rate limit per round trip to the Prefect server
    # (recovery/contact_center/budget.py); the limit holds four such blocks.
    rate_limit_occupy: int = Field(default=20, ge=1, le=50)

    @field_validator(
        "stripe_webhook_secrets",
        "generic_signing_secrets",
        "paypal_cert_hosts",
        "genesys_action_secrets",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @model_validator(mode="after")
    def _defaults_and_production(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'recovery.db').as_posix()}"
        if self.mode == "production":
            problems = list(self._placeholder_problems())
            if problems:
                raise ValueError(
                    "production mode refuses placeholder secrets: " + "; ".join(problems)
                )
        return self

    def _placeholder_problems(self) -> list[str]:
        found: list[str] = []
        singles: dict[str, SecretStr] = {
            "RECOVERY_ADMIN_TOKEN": self.admin_token,
            "RECOVERY_REDACTION_KEY": self.redaction_key,
            "RECOVERY_PRIVACY_KEY": self.privacy_key,
            "RECOVERY_STRIPE_API_KEY": self.stripe_api_key,
            "RECOVERY_BRAINTREE_PRIVATE_KEY": self.braintree_private_key,
            "RECOVERY_GENESYS_CLIENT_SECRET": self.genesys_client_secret,
        }
        lists = {
            "RECOVERY_STRIPE_WEBHOOK_SECRETS": self.stripe_webhook_secrets,
            "RECOVERY_GENERIC_SIGNING_SECRETS": self.generic_signing_secrets,
            "RECOVERY_GENESYS_ACTION_SECRETS": self.genesys_action_secrets,
        }
        for name, secret in singles.items():
            if _is_placeholder(secret.get_secret_value()):
                found.append(f"{name} is empty or a placeholder")
        identifiers = {
            "RECOVERY_BRAINTREE_MERCHANT_ID": self.braintree_merchant_id,
            "RECOVERY_BRAINTREE_PUBLIC_KEY": self.braintree_public_key,
            "RECOVERY_PAYPAL_WEBHOOK_ID": self.paypal_webhook_id,
        }
        for name, value in identifiers.items():
            if value.strip().lower().startswith("dev-") or not value.strip():
                found.append(f"{name} is empty or a placeholder")
        if self.paypal_verification == "api":
            if _is_placeholder(self.paypal_client_secret.get_secret_value()):
                found.append("RECOVERY_PAYPAL_CLIENT_SECRET is empty or a placeholder")
            if not self.paypal_client_id.strip():
                found.append("RECOVERY_PAYPAL_CLIENT_ID is empty")
        for name, secrets in lists.items():
            if not secrets:
                found.append(f"{name} is empty")
            for i, secret in enumerate(secrets):
                if _is_placeholder(secret.get_secret_value()):
                    found.append(f"{name}[{i}] is empty or a placeholder")
        return found

    @property
    def stripe_api_usable(self) -> bool:
        """False for a placeholder API key against Stripe's own address (the demo, a fresh
        checkout): no request could succeed, so none is made."""
        own = self.stripe_api_base.rstrip("/") == STRIPE_API_BASE
        return not (own and _is_placeholder(self.stripe_api_key.get_secret_value()))

    def fingerprint(self) -> Fingerprint:
        """The keyed fingerprint of personal data (see recovery/domain/fingerprint.py)."""
        return keyed_fingerprint(self.privacy_key.get_secret_value().encode("utf-8"))

    def redaction_marker(self) -> Marker:
        """The marker a redacted card number leaves in what the receiver and backfill store."""
        return keyed_marker(self.redaction_key.get_secret_value().encode("utf-8"))

    def served_interval(self, deployment: str) -> int | None:
        """The interval (seconds) these settings give a served deployment's schedule, in
        place of prefect.yaml's (None: prefect.yaml's stands)."""
        name = SERVED_INTERVALS.get(deployment)
        return int(getattr(self, name)) if name else None

    def served_concurrency(self, deployment: str) -> int | None:
        """The concurrency limit these settings give a served deployment, in place of
        prefect.yaml's (None: prefect.yaml's stands)."""
        name = SERVED_CONCURRENCY.get(deployment)
        value = getattr(self, name) if name else None
        return int(value) if value else None


# The settings `recovery serve` (flows/deployments.py) puts in place of prefect.yaml's
# intervals and concurrency limits, by deployment.
SERVED_INTERVALS = {
    "advance": "advance_interval_seconds",
    "dispositions": "dispositions_interval_seconds",
    "close-on-payment": "close_on_payment_interval_seconds",
    "reconcile": "reconcile_interval_seconds",
    "uncallable": "uncallable_interval_seconds",
}
SERVED_CONCURRENCY = {"advance": "advance_concurrency", "ingest": "ingest_concurrency"}


LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def bind_problem(host: str, mode: str) -> str | None:
    """Why the receiver must not listen on ``host`` in this mode, or None.

    Development mode runs with the development secrets published in the source, so it only
    listens on loopback; production mode (which refuses those secrets) may bind anywhere."""
    if mode == "production":
        return None
    name = host.strip().strip("[]").lower()
    try:
        loopback = ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = name in LOOPBACK_NAMES
    if loopback:
        return None
    return (
        f"development mode listens on loopback only (127.0.0.1, ::1, localhost), not "
        f"{host!r}: its secrets are public; set RECOVERY_MODE=production with real secrets "
        "to listen elsewhere"
    )


def _is_placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    if len(lowered) < 8:
        return True
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS) or "local-only" in lowered

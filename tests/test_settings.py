"""Settings: one object, env prefix RECOVERY_, placeholders refused in production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from recovery.settings import Settings


def test_defaults_are_a_local_sqlite_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_DATA_DIR", "somewhere")
    settings = Settings()
    assert settings.database_url == "sqlite:///somewhere/recovery.db"
    assert settings.mode == "development"


def test_secrets_are_comma_separated_for_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "RECOVERY_STRIPE_WEBHOOK_SECRETS", "whsec_new_aaaaaaaaaaaa, whsec_old_bbbbbbbbbbbb"
    )
    secrets = [s.get_secret_value() for s in Settings().stripe_webhook_secrets]
    assert secrets == ["whsec_new_aaaaaaaaaaaa", "whsec_old_bbbbbbbbbbbb"]
    assert "whsec_new" not in repr(Settings())


def test_production_refuses_placeholder_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_MODE", "production")
    with pytest.raises(ValidationError) as info:
        Settings()
    message = str(info.value)
    assert "RECOVERY_STRIPE_WEBHOOK_SECRETS" in message and "placeholder" in message
    assert "RECOVERY_REDACTION_KEY" in message
    assert "RECOVERY_PRIVACY_KEY" in message
    assert "dev-local-only" not in message


def test_production_accepts_real_looking_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "RECOVERY_MODE": "production",
        "RECOVERY_STRIPE_WEBHOOK_SECRETS": "whsec_Q8fh2kLm9PzX4wVt",
        "RECOVERY_GENERIC_SIGNING_SECRETS": "gs_7Hq2mN4pR8sT1vW3",
        "RECOVERY_STRIPE_API_KEY": "rk_live_51Hq2mN4pR8sT1vW3",
        "RECOVERY_ADMIN_TOKEN": "adm_9kL2mQ7rT4vX1zB8",
        "RECOVERY_GENESYS_ACTION_SECRETS": "cb_3Fh8jK2mP5sV9xZ1,cb_7Kq2nW5rT8yB1dF4",
        "RECOVERY_REDACTION_KEY": "rk_8Tz3nB6wQ1yE5uH9",
        "RECOVERY_PRIVACY_KEY": "pk_5Rw8yB2nM6qT9vX3",
        "RECOVERY_BRAINTREE_PRIVATE_KEY": "bt_6Gj1kN4qS7uW0yA3",
        "RECOVERY_GENESYS_CLIENT_SECRET": "gc_2Dg5hJ8lN1pR4tV7",
        "RECOVERY_BRAINTREE_MERCHANT_ID": "m7x2kq9v4b",
        "RECOVERY_BRAINTREE_PUBLIC_KEY": "pk4n8x2q7w",
        "RECOVERY_PAYPAL_WEBHOOK_ID": "1JE4291016473214C",
    }.items():
        monkeypatch.setenv(name, value)
    assert Settings().mode == "production"


def test_empty_secret_list_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_MODE", "production")
    monkeypatch.setenv("RECOVERY_STRIPE_WEBHOOK_SECRETS", "")
    with pytest.raises(ValidationError, match="RECOVERY_STRIPE_WEBHOOK_SECRETS is empty"):
        Settings()


def test_paypal_api_verification_needs_real_credentials_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECOVERY_MODE", "production")
    monkeypatch.setenv("RECOVERY_PAYPAL_VERIFICATION", "api")
    with pytest.raises(ValidationError) as info:
        Settings()
    message = str(info.value)
    assert "RECOVERY_PAYPAL_CLIENT_SECRET" in message and "RECOVERY_PAYPAL_CLIENT_ID" in message


def test_paypal_cert_hosts_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERY_PAYPAL_CERT_HOSTS", "api.paypal.com, api-m.paypal.com")
    assert Settings().paypal_cert_hosts == ["api.paypal.com", "api-m.paypal.com"]

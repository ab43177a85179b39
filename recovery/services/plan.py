"""``recovery plan``: check the arguments, load the policy and rules files, and simulate one
case end to end on a virtual clock (``recovery.domain.simulate``)."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from recovery.domain.models import ContactPoint
from recovery.domain.simulate import (
    Plan,
    RetryOutcome,
    _aware,
    parse_dispositions,
    parse_reason,
    simulate,
)


class PlanArgumentError(ValueError):
    """A ``recovery plan`` argument that cannot be used; the message says which and why."""


def run_plan(
    *,
    reason: str,
    phone: str,
    state: str | None = None,
    postal_code: str | None = None,
    tz: str | None = None,
    failed_at: str | None = None,
    dispositions: str = "",
    policy_file: str | None = None,
    rules_file: str | None = None,
    next_retry: str | None = None,
    retry_in: str | None = None,
    retry_outcome: str | None = None,
    failure_codes_file: str | None = None,
    now: datetime,
) -> Plan:
    """Check the ``recovery plan`` arguments, load the files, and simulate.

    Bad arguments raise ``PlanArgumentError``; ``now`` is the failure time when ``failed_at``
    is not given. ``next_retry`` (ISO 8601) or ``retry_in`` (a duration after the failure):
    when the gateway retries by itself; ``retry_outcome`` (``paid`` or ``failed``) what that
    retry brings.
    """
    from pathlib import Path

    from recovery.domain.compliance import RulesFileError, load_rules
    from recovery.domain.policy import load_disposition_map, load_policy, parse_duration
    from recovery.domain.taxonomy import DataFileError, load_failure_codes

    try:
        codes = load_failure_codes(Path(failure_codes_file) if failure_codes_file else None)
        category, _ = parse_reason(reason, codes)
        contact = _contact(phone, state, postal_code, tz)
        if failed_at:
            failed = _aware(failed_at.strip(), "--failed-at")
        else:
            failed = now
        if next_retry and retry_in:
            raise ValueError("give --next-retry or --retry-in, not both")
        retry_at: datetime | None = None
        if next_retry:
            retry_at = _aware(next_retry.strip(), "--next-retry")
        elif retry_in:
            try:
                retry_at = failed + parse_duration(retry_in)
            except ValueError as exc:
                raise ValueError(f"--retry-in: {exc}") from None
        if retry_at is not None and retry_at <= failed:
            raise ValueError("--next-retry must be after the failure")
        outcome: RetryOutcome | None = None
        if retry_outcome:
            if retry_outcome not in ("paid", "failed"):
                raise ValueError(f"--retry-outcome {retry_outcome!r}: expected paid or failed")
            if retry_at is None:
                raise ValueError("--retry-outcome needs --next-retry or --retry-in")
            outcome = "paid" if retry_outcome == "paid" else "failed"
        script = parse_dispositions(dispositions, load_disposition_map())
        policy = load_policy(Path(policy_file) if policy_file else None)
        rules = load_rules(Path(rules_file) if rules_file else None)
    except (ValueError, DataFileError, RulesFileError) as exc:
        raise PlanArgumentError(str(exc)) from None
    return simulate(
        category=category,
        contact=contact,
        failed_at=failed,
        dispositions=script,
        policy=policy,
        rules=rules,
        next_retry_at=retry_at,
        retry_outcome=outcome,
        soft_decline=codes.is_soft(category),
    )


def _contact(
    phone: str, state: str | None, postal_code: str | None, tz: str | None
) -> ContactPoint:
    import phonenumbers

    try:
        parsed = phonenumbers.parse(phone.strip(), None)
    except phonenumbers.NumberParseException:
        raise ValueError(f"--phone {phone!r} is not an E.164 number (e.g. +13055550123)") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"--phone {phone!r} is not a valid phone number")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    region = phonenumbers.region_code_for_number(parsed) or "US"
    if state is not None and not re.fullmatch(r"[A-Za-z]{2}", state.strip()):
        raise ValueError(f"--state {state!r} must be a two-letter state code")
    if tz is not None:
        try:
            ZoneInfo(tz.strip())
        except (ValueError, KeyError):
            raise ValueError(f"--tz {tz!r} is not an IANA time zone name") from None
    return ContactPoint(
        phone_e164=e164,
        country=region if len(region) == 2 else "US",
        state=state.strip().upper() if state else None,
        postal_code=postal_code.strip() if postal_code else None,
        explicit_tz=tz.strip() if tz else None,
    )

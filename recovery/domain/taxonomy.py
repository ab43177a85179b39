"""The failure taxonomy: gateway decline codes to the project's failure categories.

The mapping is data (``recovery/data/failure_codes.yaml``, or an operator's own file), validated
by pydantic. Precedence, most specific first:

1. ``decline_code`` (Stripe's issuer reason, Braintree's processor response code);
2. ``failure_code`` (Stripe's broader code, Braintree's response type, PayPal's reason);
3. the same two lookups in the gateway's ``fallback`` gateway, when it names one;
4. otherwise ``unknown``, with a warning on the ``recovery.taxonomy`` logger so the table can
   be extended.

Then the ``advice_code`` table may override the category found: Stripe's ``do_not_try_again``
turns soft reasons (insufficient funds, processing error, generic or unknown decline) into
``card_invalid_or_lost``, because the issuer has said this card will not succeed again and the
call must ask for a new payment method rather than wait for funds. Hard reasons are kept.

The file also says which categories are **soft declines** (a gateway retries them by itself and
a retry may succeed: Stripe's "usually soft" codes, ``docs.stripe.com/declines/codes``) and
which are **hard** (no retry succeeds without a new payment method or the customer's own
action: Stripe never retries ``incorrect_number``, ``lost_card``, ``stolen_card``, ...,
``docs.stripe.com/billing/revenue-recovery/smart-retries#non-retryable-decline-codes``). The
state machine waits for a gateway's announced retry only for soft declines.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from recovery.domain.models import FailureCategory, Gateway

logger = logging.getLogger("recovery.taxonomy")

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEFAULT_FAILURE_CODES = DATA_DIR / "failure_codes.yaml"

_M = TypeVar("_M", bound=BaseModel)


class DataFileError(ValueError):
    """A rules or policy data file that cannot be used; the message names the entry."""


def read_yaml_model(path: Path, model: type[_M], what: str) -> _M:
    """Parse ``path`` as YAML into ``model``; every problem becomes one ``DataFileError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(f"{what} {path}: cannot read: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DataFileError(f"{what} {path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise DataFileError(f"{what} {path}: expected a mapping at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise DataFileError(f"{what} {path}: {describe_errors(exc)}") from None


def describe_errors(exc: ValidationError) -> str:
    """One line per problem: ``entry.path: reason``."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def _norm(code: str) -> str:
    return code.strip().lower()


def _normalise_keys(value: Any, field: str) -> Any:
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        text = _norm(str(key))
        if not text:
            raise ValueError(f"{field}: empty code")
        if text in out:
            raise ValueError(f"{field}: code {text!r} appears twice (codes ignore case)")
        out[text] = item
    return out


class GatewayCodes(BaseModel):
    """One gateway's tables."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fallback: Gateway | None = None
    decline_code: dict[str, FailureCategory] = {}
    failure_code: dict[str, FailureCategory] = {}
    advice_code: dict[str, dict[FailureCategory, FailureCategory]] = {}

    @field_validator("decline_code", "failure_code", "advice_code", mode="before")
    @classmethod
    def _keys(cls, value: Any, info: Any) -> Any:
        if value is None:
            return {}
        return _normalise_keys(value, info.field_name)


# The shipped classification, used when an operator's file has no ``declines`` entry.
SOFT_DECLINES = frozenset(
    {
        FailureCategory.insufficient_funds,
        FailureCategory.processing_error,
        FailureCategory.generic_decline,
        FailureCategory.unknown,
    }
)


class Declines(BaseModel):
    """Which categories are soft declines and which are hard: every category exactly once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    soft: frozenset[FailureCategory] = SOFT_DECLINES
    hard: frozenset[FailureCategory] = frozenset(FailureCategory) - SOFT_DECLINES

    @model_validator(mode="after")
    def _partition(self) -> Declines:
        both = sorted(c.value for c in self.soft & self.hard)
        if both:
            raise ValueError(f"both soft and hard: {', '.join(both)}")
        missing = sorted(c.value for c in set(FailureCategory) - self.soft - self.hard)
        if missing:
            raise ValueError(f"neither soft nor hard: {', '.join(missing)}")
        return self


class FailureCodes(BaseModel):
    """The whole taxonomy, keyed by gateway."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    gateways: dict[Gateway, GatewayCodes]
    declines: Declines = Declines()

    def is_soft(self, category: FailureCategory) -> bool:
        """Whether a gateway may recover this category by retrying on its own."""
        return category in self.declines.soft

    @model_validator(mode="after")
    def _fallbacks(self) -> FailureCodes:
        for name, table in self.gateways.items():
            seen = {name}
            nxt = table.fallback
            while nxt is not None:
                if nxt not in self.gateways:
                    raise ValueError(f"gateways.{name}.fallback: no gateway {nxt.value!r} here")
                if nxt in seen:
                    raise ValueError(f"gateways.{name}.fallback: fallbacks form a cycle")
                seen.add(nxt)
                nxt = self.gateways[nxt].fallback
        return self


def load_failure_codes(path: Path | None = None) -> FailureCodes:
    """The shipped taxonomy, or an operator's file; raises ``DataFileError`` naming the entry."""
    return read_yaml_model(path or DEFAULT_FAILURE_CODES, FailureCodes, "failure codes")


def _lookup(
    codes: FailureCodes, gateway: Gateway, decline: str | None, failure: str | None
) -> tuple[FailureCategory, str] | None:
    current: Gateway | None = gateway
    while current is not None:
        table = codes.gateways.get(current)
        if table is None:
            return None
        if decline and decline in table.decline_code:
            return table.decline_code[decline], f"{current.value} decline_code {decline}"
        if failure and failure in table.failure_code:
            return table.failure_code[failure], f"{current.value} failure_code {failure}"
        current = table.fallback
    return None


def categorize(
    *,
    gateway: Gateway | str,
    failure_code: str | None = None,
    decline_code: str | None = None,
    advice_code: str | None = None,
    codes: FailureCodes,
) -> tuple[FailureCategory, str]:
    """The failure category of a gateway's codes, and a short reason saying which code decided.

    Pure apart from a warning log when no code is known.
    """
    try:
        gw = Gateway(gateway)
    except ValueError:
        gw = None
    decline = _norm(decline_code) if decline_code else None
    failure = _norm(failure_code) if failure_code else None
    advice = _norm(advice_code) if advice_code else None

    found = _lookup(codes, gw, decline, failure) if gw is not None else None
    if found is None:
        category, reason = FailureCategory.unknown, _unknown_reason(gateway, decline, failure)
        if decline or failure:
            logger.warning("no failure category for %s", reason.removeprefix("unknown: "))
    else:
        category, reason = found[0], f"{found[1]} -> {found[0].value}"

    if advice and gw is not None:
        table = codes.gateways.get(gw)
        overrides = table.advice_code.get(advice) if table is not None else None
        if overrides is not None and category in overrides:
            new = overrides[category]
            if new != category:
                reason = f"{reason}; advice_code {advice} -> {new.value}"
                category = new
    return category, reason


def _unknown_reason(gateway: Gateway | str, decline: str | None, failure: str | None) -> str:
    name = gateway.value if isinstance(gateway, Gateway) else str(gateway)
    if not decline and not failure:
        return f"unknown: {name} gave no failure code"
    parts = [
        f"decline_code {decline}" if decline else "",
        f"failure_code {failure}" if failure else "",
    ]
    return f"unknown: {name} " + ", ".join(p for p in parts if p)

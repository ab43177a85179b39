"""The failure taxonomy: gateway codes to failure categories, and its data file's validation."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from recovery.domain.models import FailureCategory as C
from recovery.domain.models import Gateway
from recovery.domain.taxonomy import (
    DataFileError,
    FailureCodes,
    categorize,
    load_failure_codes,
)


@pytest.fixture(scope="module")
def codes() -> FailureCodes:
    return load_failure_codes()


def stripe(codes: FailureCodes, **kw: str | None) -> C:
    return categorize(gateway=Gateway.stripe, codes=codes, **kw)[0]


# Stripe never retries these: a new payment method (or authentication) is needed.
HARD = [
    "incorrect_number",
    "lost_card",
    "pickup_card",
    "stolen_card",
    "revocation_of_authorization",
    "revocation_of_all_authorizations",
    "authentication_required",
    "highest_risk_level",
    "expired_card",
]
SOFT = {
    "insufficient_funds": C.insufficient_funds,
    "processing_error": C.processing_error,
    "try_again_later": C.processing_error,
    "do_not_honor": C.generic_decline,
    "generic_decline": C.generic_decline,
}


@pytest.mark.parametrize("code", HARD)
def test_hard_declines_need_a_new_payment_method(codes: FailureCodes, code: str) -> None:
    category = stripe(codes, failure_code="card_declined", decline_code=code)
    assert category in {C.card_expired, C.card_invalid_or_lost, C.authentication_required}


@pytest.mark.parametrize(("code", "expected"), sorted(SOFT.items()))
def test_soft_declines(codes: FailureCodes, code: str, expected: C) -> None:
    assert stripe(codes, failure_code="card_declined", decline_code=code) is expected


def test_specific_codes(codes: FailureCodes) -> None:
    assert stripe(codes, decline_code="expired_card") is C.card_expired
    assert stripe(codes, decline_code="authentication_required") is C.authentication_required
    assert stripe(codes, decline_code="lost_card") is C.card_invalid_or_lost


def test_decline_code_is_more_specific_than_failure_code(codes: FailureCodes) -> None:
    category, reason = categorize(
        gateway="stripe",
        failure_code="card_declined",
        decline_code="insufficient_funds",
        codes=codes,
    )
    assert category is C.insufficient_funds
    assert "decline_code insufficient_funds" in reason
    # and the other way round: a failure_code alone decides when no decline code is known
    assert stripe(codes, failure_code="expired_card") is C.card_expired
    assert stripe(codes, failure_code="card_declined", decline_code="brand_new_code") is (
        C.generic_decline
    )


def test_codes_ignore_case_and_spaces(codes: FailureCodes) -> None:
    assert stripe(codes, decline_code=" Insufficient_FUNDS ") is C.insufficient_funds


def test_do_not_try_again_makes_soft_declines_need_a_new_card(codes: FailureCodes) -> None:
    category, reason = categorize(
        gateway="stripe",
        failure_code="card_declined",
        decline_code="insufficient_funds",
        advice_code="do_not_try_again",
        codes=codes,
    )
    assert category is C.card_invalid_or_lost
    assert "advice_code do_not_try_again" in reason
    for soft in ("processing_error", "generic_decline", "something_unheard_of"):
        assert stripe(codes, decline_code=soft, advice_code="do_not_try_again") is (
            C.card_invalid_or_lost
        )


def test_do_not_try_again_keeps_hard_categories(codes: FailureCodes) -> None:
    assert stripe(codes, decline_code="expired_card", advice_code="do_not_try_again") is (
        C.card_expired
    )
    assert stripe(
        codes, decline_code="authentication_required", advice_code="do_not_try_again"
    ) is (C.authentication_required)


def test_try_again_later_changes_nothing(codes: FailureCodes) -> None:
    assert stripe(codes, decline_code="insufficient_funds", advice_code="try_again_later") is (
        C.insufficient_funds
    )
    assert stripe(codes, decline_code="insufficient_funds", advice_code="unheard_of") is (
        C.insufficient_funds
    )


def test_unknown_codes_are_unknown_with_a_logged_note(
    codes: FailureCodes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="recovery.taxonomy"):
        category, reason = categorize(
            gateway="stripe", failure_code="zzz_new", decline_code="yyy_new", codes=codes
        )
    assert category is C.unknown
    assert "yyy_new" in reason and "zzz_new" in reason
    assert [r.name for r in caplog.records] == ["recovery.taxonomy"]
    assert "yyy_new" in caplog.records[0].getMessage()


def test_no_codes_at_all_is_unknown_without_a_warning(
    codes: FailureCodes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="recovery.taxonomy"):
        category, reason = categorize(gateway="stripe", codes=codes)
    assert category is C.unknown
    assert "no failure code" in reason
    assert caplog.records == []


def test_other_gateways(codes: FailureCodes) -> None:
    bt = categorize(gateway="braintree", decline_code="2001", codes=codes)
    assert bt[0] is C.insufficient_funds
    assert categorize(gateway="braintree", decline_code="2004", codes=codes)[0] is C.card_expired
    assert categorize(gateway="braintree", failure_code="hard_declined", codes=codes)[0] is (
        C.card_invalid_or_lost
    )
    assert categorize(gateway="paypal", failure_code="INSUFFICIENT_FUNDS", codes=codes)[0] is (
        C.insufficient_funds
    )


def test_generic_gateway_takes_category_names_and_falls_back_to_stripe(
    codes: FailureCodes,
) -> None:
    assert categorize(gateway="generic", failure_code="card_expired", codes=codes)[0] is (
        C.card_expired
    )
    category, reason = categorize(gateway="generic", decline_code="lost_card", codes=codes)
    assert category is C.card_invalid_or_lost
    assert reason.startswith("stripe decline_code lost_card")


def test_an_unknown_gateway_is_unknown(codes: FailureCodes) -> None:
    assert categorize(gateway="acme", decline_code="insufficient_funds", codes=codes)[0] is (
        C.unknown
    )


# --- the data file ---


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "codes.yaml"
    path.write_text(text)
    return path


def test_an_operator_file_replaces_the_shipped_one(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\ngateways:\n  stripe:\n    decline_code:\n      Insufficient_Funds: "
        "card_invalid_or_lost\n",
    )
    codes = load_failure_codes(path)
    assert stripe(codes, decline_code="insufficient_funds") is C.card_invalid_or_lost
    assert categorize(gateway="braintree", decline_code="2001", codes=codes)[0] is C.unknown


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (
            "version: 1\ngateways:\n  stripe:\n    decline_code:\n      lost_card: card_gone\n",
            "gateways.stripe.decline_code.lost_card",
        ),
        (
            "version: 1\ngateways:\n  stripe:\n    decline_code:\n      Lost_Card: card_expired\n"
            "      lost_card: card_expired\n",
            "'lost_card' appears twice",
        ),
        (
            "version: 1\ngateways:\n  generic:\n    fallback: paypal\n",
            "gateways.generic.fallback: no gateway 'paypal'",
        ),
        (
            "version: 1\ngateways:\n  generic:\n    fallback: stripe\n  stripe:\n"
            "    fallback: generic\n",
            "cycle",
        ),
        (
            "version: 1\ngateways:\n  stripe:\n    advice_code:\n      do_not_try_again:\n"
            "        insufficient_funds: broke\n",
            "gateways.stripe.advice_code.do_not_try_again.insufficient_funds",
        ),
        ("version: 1\ngateways:\n  stripe:\n    decline_codes: {}\n", "decline_codes"),
        ("version: 1\ngateways:\n  visa: {}\n", "gateways.visa"),
        ("version: 2\ngateways: {}\n", "version"),
        ("gateways: [unclosed\n", "not valid YAML"),
        ("- just a list\n", "a mapping at the top level"),
    ],
)
def test_bad_files_name_the_entry(tmp_path: Path, text: str, names: str) -> None:
    with pytest.raises(DataFileError) as err:
        load_failure_codes(write(tmp_path, text))
    assert names in str(err.value)
    assert str(tmp_path) in str(err.value)


def test_a_missing_file_is_a_data_file_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="cannot read"):
        load_failure_codes(tmp_path / "nope.yaml")

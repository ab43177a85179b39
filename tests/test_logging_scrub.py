"""Every log record, from any logger, has card numbers replaced and phones masked."""

from __future__ import annotations

import logging

import pytest

from recovery.log_scrubbing import install_log_scrubbing, mask_phone, scrub


def test_mask_phone() -> None:
    assert mask_phone("+14155552671") == "***2671"
    assert mask_phone(None) == ""


def test_scrub_text() -> None:
    text = scrub("call +14155552671 about 4242 4242 4242 4242")
    assert "4242 4242" not in text and "+14155552671" not in text and "2671" in text


@pytest.mark.parametrize("name", ["recovery.x", "prefect.flow_runs", "uvicorn.error", "some.lib"])
def test_any_logger_is_scrubbed(caplog: pytest.LogCaptureFixture, name: str) -> None:
    install_log_scrubbing()
    logger = logging.getLogger(name)
    with caplog.at_level(logging.INFO, logger=name):
        logger.warning("customer %s paid with %s", "+13055550143", "4000056655665556")
        try:
            raise ValueError("bad card 4000056655665556")
        except ValueError:
            logger.exception("failed for +13055550143")
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert "4000056655665556" not in text
    assert "+13055550143" not in text
    assert "***0143" in text

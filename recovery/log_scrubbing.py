"""Logging that cannot leak: every record, from any logger (Prefect's included), has card
numbers replaced and phone numbers masked to their last four digits before any handler sees it.

A log-record factory is used rather than per-logger filters because a filter on a logger does
not apply to its children's records; the factory runs for every record created in the process.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from recovery.domain.fingerprint import is_fingerprint
from recovery.domain.pan import redact_text

_PHONE = re.compile(
    r"(?<![\w])(?:\+[0-9]{7,15}|\(?[0-9]{3}\)?[ .\-][0-9]{3}[ .\-][0-9]{4})(?![0-9])"
)

_installed = False


def mask_phone(phone: str | None) -> str:
    """``+14155552671`` -> ``***2671``; empty for None; an erased number's keyed fingerprint
    as it is (it is no phone number)."""
    if not phone:
        return ""
    if is_fingerprint(phone):
        return phone
    digits = re.sub(r"[^0-9]", "", phone)
    return f"***{digits[-4:]}" if len(digits) >= 4 else "***"


def scrub(text: str) -> str:
    """Card numbers replaced, phone numbers masked."""
    cleaned, _ = redact_text(text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), cleaned)


class ScrubFilter(logging.Filter):
    """For handlers: scrubs the message and any exception text once more."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub_record(record)
        return True


def _scrub_record(record: logging.LogRecord) -> None:
    if getattr(record, "_recovery_scrubbed", False):
        return
    try:
        message = record.getMessage()
    except Exception:  # a broken format string must not lose the record
        message = str(record.msg)
    record.msg = scrub(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    record._recovery_scrubbed = True


def install_log_scrubbing() -> None:
    """Idempotent: wraps the record factory and adds the filter to existing handlers."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _scrub_record(record)
        return record

    logging.setLogRecordFactory(factory)
    scrub_filter = ScrubFilter()
    loggers = [logging.getLogger()] + [
        logger
        for logger in list(logging.root.manager.loggerDict.values())
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            handler.addFilter(scrub_filter)
    _installed = True

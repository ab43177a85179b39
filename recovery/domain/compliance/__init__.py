"""Who may be called, and when: calling hours, holidays, frequency caps and time zones.

Everything here is pure: callers pass the contact, its call history, the instant and the
rules; nothing reads a clock, the environment or the store.
"""

from recovery.domain.compliance.engine import (
    CallHistory,
    Verdict,
    naive_next_permitted,
    next_permitted,
    permitted,
)
from recovery.domain.compliance.holds import (
    CALLING_RULES,
    HOLD_RULES,
    Hold,
    HoldRule,
    dial_margin_hold,
    holds_data,
    read_holds,
)
from recovery.domain.compliance.rules import (
    CallingRules,
    RulesFileError,
    default_rules_path,
    load_rules,
)
from recovery.domain.compliance.zones import Resolution, resolve_contact

__all__ = [
    "CALLING_RULES",
    "HOLD_RULES",
    "CallHistory",
    "CallingRules",
    "Resolution",
    "RulesFileError",
    "Verdict",
    "Hold",
    "HoldRule",
    "default_rules_path",
    "dial_margin_hold",
    "holds_data",
    "load_rules",
    "naive_next_permitted",
    "next_permitted",
    "permitted",
    "read_holds",
    "resolve_contact",
]

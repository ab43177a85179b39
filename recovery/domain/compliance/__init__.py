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
from recovery.domain.compliance.rules import (
    CallingRules,
    RulesFileError,
    default_rules_path,
    load_rules,
)
from recovery.domain.compliance.zones import Resolution, resolve_contact

__all__ = [
    "CallHistory",
    "CallingRules",
    "Resolution",
    "RulesFileError",
    "Verdict",
    "default_rules_path",
    "load_rules",
    "naive_next_permitted",
    "next_permitted",
    "permitted",
    "resolve_contact",
]

"""The calling rules as data: loaded from YAML and validated."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel


class RulesFileError(ValueError):
    """A calling-rules file that cannot be used; the message names the row and the reason."""


class CallingRules(BaseModel, frozen=True):
    profile: str


def default_rules_path() -> Path:
    return Path(__file__).resolve().parents[2] / "data" / "calling_rules.yaml"


def load_rules(path: Path | None = None, profile: str = "strict") -> CallingRules:
    raise NotImplementedError

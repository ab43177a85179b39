"""An in-memory Genesys Cloud outbound emulator (login, contact lists, DNC, dialer)."""

from recovery.contact_center.emulator.app import create_emulator_app
from recovery.contact_center.emulator.state import EmulatorConfig

__all__ = ["EmulatorConfig", "create_emulator_app"]

"""An in-memory Genesys Cloud organisation, at least as strict as the platform: login, outbound
configuration (contact lists, attempt limits, DNC lists, callable time sets, campaigns, rule
sets, wrap-up codes and their mapping), contacts, a dialler that recalls and recycles,
analytics conversation details, notification channels and data actions."""

from recovery.contact_center.emulator.app import create_emulator_app
from recovery.contact_center.emulator.state import EmulatorConfig

__all__ = ["EmulatorConfig", "create_emulator_app"]

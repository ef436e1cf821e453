"""`comethook emulate`: CometChat's REST API served locally (server.py holds it for now)."""

from comethook_cli.engine.emulator.server import CHOICES, LEGACY_TRIGGERS, Emulator, Refused, State

__all__ = ["CHOICES", "LEGACY_TRIGGERS", "Emulator", "Refused", "State"]

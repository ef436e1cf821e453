"""Warnings that come in floods (a connection cap reached, accept() failing, slow bodies) said once in a while, with a
count of those held back."""

from __future__ import annotations

import time
from collections.abc import Callable

#: At most one warning of a kind (connection cap, accept errors, aiohttp errors) per this many seconds.
WARN_EVERY = 30.0


class RateLimitedWarnings:
    """One warning per kind per WARN_EVERY seconds, saying how many were held back."""

    def __init__(self, on_warning: Callable[[str], None]) -> None:
        self.on_warning = on_warning
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._message: dict[str, str] = {}

    def warn(self, kind: str, message: str) -> bool:
        """Warn now (True), or count it when this kind was warned about recently (False)."""
        now = time.monotonic()
        if now - self._last.get(kind, -WARN_EVERY) < WARN_EVERY:
            self._held[kind] = self._held.get(kind, 0) + 1
            return False
        held = self._held.pop(kind, 0)
        self._last[kind] = now
        self._message[kind] = message
        self.on_warning(message + (f" ({held} more like it since the last warning)" if held else ""))
        return True

    def flush(self) -> None:
        """Say how many were held back since each kind's last warning (at the end, so no count goes unsaid)."""
        for kind, held in self._held.items():
            self.on_warning(f"{self._message[kind]} ({held} more like it since the last warning)")
        self._held.clear()

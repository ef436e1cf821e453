"""A byte budget shared by everything buffered at once: bodies the listener receives, answers the forwarder reads."""

from __future__ import annotations


class ByteBudget:
    """A total of bytes shared by everything buffered at once (bodies being received, answers being read), so memory
    stays bounded however many connections there are: `take()` before buffering, `give()` back when done."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> bool:
        """Reserve `size` bytes; False (nothing reserved) when that would pass the limit."""
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        """Hand back bytes taken earlier."""
        self.used = max(self.used - size, 0)


class BudgetSpent(Exception):
    """Reading this answer would pass the shared budget for answers being read at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the answers being read at once already hold {limit:,} bytes (comethook's memory budget)")

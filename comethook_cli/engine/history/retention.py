"""How much history to keep: a size cap in bytes and an age cap in seconds (a light module: configs hold a Retention,
and importing it must not bring SQLite and the writer's threads with it)."""

from __future__ import annotations

from dataclasses import dataclass

from comethook_cli.errors import InvalidSetting
from comethook_cli.models import DEFAULT_HISTORY_MAX_AGE_DAYS, DEFAULT_HISTORY_MAX_MB

MIB = 1024 * 1024
DAY = 86400.0
#: The WAL may grow to a quarter of the size cap, within these bounds, before a checkpoint waits for writers; the
#: cap covers the database and its WAL together, so the database is pruned to the rest (see Retention).
WAL_LIMIT_MIN = 256 * 1024
WAL_LIMIT_MAX = 64 * MIB


@dataclass(frozen=True)
class Retention:
    """How much history to keep (None: no limit); past either cap, the oldest exchanges are deleted."""

    max_bytes: int | None = DEFAULT_HISTORY_MAX_MB * MIB
    max_age: float | None = DEFAULT_HISTORY_MAX_AGE_DAYS * DAY

    def __post_init__(self) -> None:
        if (self.max_bytes is not None and self.max_bytes < 1) or (self.max_age is not None and self.max_age <= 0):
            raise InvalidSetting("retention", " cannot be negative or zero.", "Use None to turn a cap off.")

    @classmethod
    def from_options(cls, max_mb: float, max_age_days: float) -> Retention:
        """From a size in MiB and an age in days (0 turns that cap off), as `listen`'s flags and file keys give them."""
        if max_mb < 0 or max_age_days < 0:
            raise InvalidSetting("retention", " cannot be negative.", "Use 0 to turn a cap off.")
        return cls(max(1, int(max_mb * MIB)) if max_mb > 0 else None, max_age_days * DAY if max_age_days > 0 else None)

    @property
    def wal_limit(self) -> int:
        """The WAL size past which a checkpoint waits for writers to reset it (see WAL_LIMIT_MIN)."""
        if self.max_bytes is None:
            return WAL_LIMIT_MAX
        return min(max(self.max_bytes // 4, WAL_LIMIT_MIN), WAL_LIMIT_MAX)

    @property
    def database_bytes(self) -> int | None:
        """What the database itself may hold: the size cap less the WAL's share, so the files together keep to the cap."""
        return None if self.max_bytes is None else max(self.max_bytes - self.wal_limit, self.max_bytes // 2)

    def describe(self) -> str:
        """The caps in words ("500 MiB and 30 days"), for the banner and `history list`."""
        size = f"{self.max_bytes / MIB:g} MiB" if self.max_bytes is not None else "no size limit"
        days = self.max_age / DAY if self.max_age is not None else None
        age = "no age limit" if days is None else f"{days:g} day" + ("" if days == 1 else "s")
        return f"{size} and {age}"

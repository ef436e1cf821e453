"""The history database's place under the home (engine/home.py), and a damaged one found and set aside."""

from __future__ import annotations

import os
import shlex
import sqlite3
import time
from pathlib import Path

from comethook_cli.engine.home import home
from comethook_cli.errors import ComethookError

#: SQLite's primary result codes for a damaged file: SQLITE_CORRUPT, SQLITE_NOTADB.
DAMAGED_CODES = (11, 26)


def default_path() -> Path:
    """Where the history lives: <home>/history.db."""
    return home() / "history.db"


def move_aside(path: Path, suffix: str) -> str:
    """The shell commands that move the database (and its -wal, which holds the last commits) to path + suffix."""
    quoted = shlex.quote(str(path))
    moves = [f"mv {quoted} {shlex.quote(f'{path}{suffix}')}"]
    if Path(f"{path}-wal").exists():  # named only when there is one
        moves.append(f"mv {shlex.quote(f'{path}-wal')} {shlex.quote(f'{path}{suffix}-wal')}")
    return "; ".join(moves)


class HistoryDamaged(ComethookError):
    """The history database is corrupt, or not a database at all."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"The history database {path} is damaged ({reason}).",
            f"Move it aside (`{move_aside(path, '.damaged')}`); the next `comethook listen` starts a fresh one. "
            f"`sqlite3 {shlex.quote(f'{path}.damaged')} .recover` may save what is left.",
        )
        self.path = path
        self.reason = reason


def is_damaged(error: sqlite3.Error) -> bool:
    """Whether SQLite says the file is corrupt or not a database (rather than busy, read-only, full ...)."""
    if "Could not decode to UTF-8" in str(error):
        return True  # garbage that passed SQLite's own checks: no row comethook writes holds invalid UTF-8 text
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in DAMAGED_CODES
    return isinstance(error, sqlite3.DatabaseError) and ("malformed" in str(error) or "not a database" in str(error))


def set_aside(path: Path) -> Path:
    """Move a damaged database (with its -wal and -shm) to history.db.corrupt-<time>; never overwrites anything
    (OSError when it cannot)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    number = 1
    while any(Path(f"{target}{suffix}").exists() for suffix in ("", "-wal", "-shm")):
        number += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{number}")
    # The -wal goes along under the matching name, so `sqlite3 <target>` still sees its last commits.
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            os.rename(f"{path}{suffix}", f"{target}{suffix}")
    return target

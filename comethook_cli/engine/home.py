"""Where comethook keeps its files ($COMETHOOK_HOME), and keeping them private.

The files hold chat bodies, tokens and URLs, so they are private: directories are created 0700, files 0600, and
SQLite gives a database's -wal and -shm files the database's own mode. `open_private`/`write_private`,
`make_private_directory` and `make_private_database` are the one home for every file and directory comethook writes
(the history, the trust records, the public URL, listen.json, a JUnit report, `emulate --state`).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
import sys
from pathlib import Path
from typing import TextIO

DIR_MODE = 0o700
FILE_MODE = 0o600


def home() -> Path:
    """$COMETHOOK_HOME, else the platform's per-user data directory."""
    explicit = os.environ.get("COMETHOOK_HOME")
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "comethook"
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", Path.home())) / "comethook"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "comethook"


def make_private_directory(directory: Path) -> None:
    """Create the directory, and every missing parent, 0700 whatever the umask (directories that exist keep their mode)."""
    missing: list[Path] = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made meanwhile by someone else: theirs, so its mode is left alone
            continue
        if os.name != "nt":
            os.chmod(folder, DIR_MODE)  # mkdir's mode passes through the umask; say it exactly


def open_private(path: Path | str, encoding: str = "utf-8") -> TextIO:
    """Open a text file for writing (created, or emptied) that only its owner can read: 0600 whatever the umask.
    A file that exists is taken back to 0600 as well; a device or a FIFO (`-o /dev/stdout`) is written as it is."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        if os.name != "nt" and stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.fchmod(descriptor, FILE_MODE)  # os.open's mode passes through the umask, and misses a file that exists
        return os.fdopen(descriptor, "w", encoding=encoding)
    except BaseException:
        os.close(descriptor)
        raise


def write_private(path: Path | str, text: str) -> None:
    """Write a text file only its owner can read (0600 whatever the umask; OSError when it cannot be written)."""
    with open_private(path) as file:
        file.write(text)


def private_directory_warning(directory: Path) -> str | None:
    """Create the directory 0700 (whatever the umask); for one that exists and is open to others, a warning."""
    if not directory.exists():
        make_private_directory(directory)
        return None
    mode = directory.stat().st_mode & 0o777
    if os.name == "nt" or not mode & 0o077:
        return None
    # Not ours to change (COMETHOOK_HOME may point anywhere): the files inside are 0600 regardless.
    return (
        f"{directory} is open to other users (mode {mode:o}); the history files in it are private (0600), "
        f"but `chmod 700 {shlex.quote(str(directory))}` hides their names too."
    )


def make_private_database(path: Path, create: bool = True) -> None:
    """Create an SQLite database file 0600 before SQLite opens it (`create`), and take back any group/other access
    from the database and its -wal/-shm (SQLite creates those with the database's mode, whatever the umask). For
    every SQLite file comethook keeps (the history; `emulate --state` may use it too)."""
    if os.name == "nt":
        return
    if create and not path.exists():
        with contextlib.suppress(FileExistsError):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                os.fchmod(descriptor, FILE_MODE)  # os.open's mode passes through the umask too
            finally:
                os.close(descriptor)
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(OSError):  # missing, or someone else's file: SQLite's own error says more
            if file.stat().st_mode & 0o077:
                os.chmod(file, FILE_MODE)

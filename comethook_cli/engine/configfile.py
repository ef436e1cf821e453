"""The project file: `comethook.toml` (or `[tool.comethook]` in `pyproject.toml`), found, read, and placed line by line.

This module knows TOML and the file system only. Which keys a section may hold, and what their values
may be, is decided by the option declarations in the command layer (cli/projectfile.py), so a flag
and a file key can never disagree about types or limits.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comethook_cli.errors import UsageError

FILE_NAME = "comethook.toml"
PYPROJECT = "pyproject.toml"
#: The sections of the file: they mirror the commands (and listen's tunnel and history options; emulate's moderation;
#: [payloads] fixtures, the project's fixtures directory, which send, check, emulate and `payloads` read).
SECTIONS = ("listen", "send", "check", "history", "tunnel", "emulate", "payloads")
#: A section header (`[listen]`, `[[listen.rules]]`, `[tool.comethook.listen]`) and a `key =` line.
_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*(["']?)([A-Za-z0-9_-]+)\1\s*=""")


@dataclass(frozen=True)
class Setting:
    """One key of one section as the file gives it."""

    section: str
    key: str
    #: The TOML value; for `{ env = "NAME" }`, the variable's value (None when it is not set).
    value: Any
    line: int | None
    #: The variable a `{ env = "NAME" }` value names (None for a literal value).
    env: str | None = None

    @property
    def unset(self) -> bool:
        """Whether the value names an environment variable that is not set."""
        return self.env is not None and self.value is None


@dataclass(frozen=True)
class ProjectFile:
    """A read project file: where it is, and every setting it holds with its line."""

    path: Path
    #: "tool.comethook." in a pyproject.toml, "" in a comethook.toml.
    prefix: str
    settings: tuple[Setting, ...]
    #: The SHA-256 of the exact bytes read: what `comethook trust` records.
    digest: str = ""

    def label(self, section: str) -> str:
        """How the section is written in this file: `[listen]`, or `[tool.comethook.listen]`."""
        return f"[{self.prefix}{section}]"

    def where(self, setting: Setting | None = None) -> str:
        """`file:line` of a setting (the file alone when the line is unknown)."""
        shown = display_path(self.path)
        return f"{shown}:{setting.line}" if setting is not None and setting.line else shown


def display_path(path: Path) -> str:
    """A path as short as it can be said: relative to the current directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def find(start: Path | None = None, home: Path | None = None, skipped: list[Path] | None = None) -> Path | None:
    """The nearest comethook.toml, or pyproject.toml with [tool.comethook], from `start` upward.

    The search stops at the repository root (a directory holding `.git`) or at the home directory,
    whichever comes first, so a file in a parent project or elsewhere on the machine is never picked up.
    It also stops at a directory another user owns or anyone may write to (a shared /tmp): a file there may
    be anyone's, so it is not read; `skipped` gets such a directory when it holds a project file.
    """
    directory = (start or Path.cwd()).resolve()
    stop = (home or Path.home()).resolve()
    while True:
        if not_ours(directory):
            if skipped is not None and ((directory / FILE_NAME).is_file() or (directory / PYPROJECT).is_file()):
                skipped.append(directory)
            return None
        candidate = directory / FILE_NAME
        if candidate.is_file():
            return candidate
        pyproject = directory / PYPROJECT
        if pyproject.is_file() and _has_tool_table(pyproject):
            return pyproject
        if (directory / ".git").exists() or directory == stop or directory.parent == directory:
            return None
        directory = directory.parent


def not_ours(directory: Path) -> bool:
    """Whether a directory is owned by another user or writable by every user: not a place to take settings from."""
    if os.name == "nt":
        return False
    try:
        status = directory.stat()
    except OSError:
        return True
    return status.st_uid != os.geteuid() or bool(status.st_mode & stat.S_IWOTH)


def _has_tool_table(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return re.search(r"^\s*\[\[?\s*tool\.comethook\b", text, re.MULTILINE) is not None


def in_git_repository(path: Path) -> bool:
    """Whether a file lies inside a git work tree (a `.git` directory or file in one of its parents)."""
    return any((parent / ".git").exists() for parent in path.resolve().parents)


def read(path: Path) -> ProjectFile:
    """Read a project file: UsageError (exit 2) for a file that is missing, not TOML, or not made of sections."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except OSError as error:
        raise UsageError(
            f"Cannot read config file {str(path)!r}: {error.strerror}.", "Check the path given to --config."
        ) from None
    except UnicodeDecodeError:
        raise UsageError(f"Config file {str(path)!r} is not UTF-8 text.", "Save it as UTF-8.") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UsageError(
            f"{display_path(path)} is not valid TOML: {error}.",
            "See https://toml.io for the syntax, or start over with `comethook init`.",
        ) from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise too_deep(path) from None
    prefix = ""
    if path.name == PYPROJECT:
        prefix = "tool.comethook."
        tool = document.get("tool")
        document = tool.get("comethook", {}) if isinstance(tool, dict) else {}
        if not isinstance(document, dict):
            raise UsageError(f"{display_path(path)}: tool.comethook must be a table.", "Write [tool.comethook.listen] and so on.")
    lines = _lines(text)
    settings: list[Setting] = []
    for section, table in document.items():
        label = f"[{prefix}{section}]"
        if section not in SECTIONS:
            raise UsageError(f"{display_path(path)}: unknown section {label}.", _did_you_mean(section, SECTIONS, "sections are"))
        if not isinstance(table, dict):
            line = lines.get((prefix.rstrip("."), section)) or lines.get(("", f"{prefix}{section}"))
            raise UsageError(
                f"{display_path(path)}{f':{line}' if line else ''}: {prefix}{section} must be a table, e.g. {label}.",
                "Put each setting under its section header.",
            )
        for key, value in table.items():
            line = lines.get((f"{prefix}{section}", key)) or lines.get((f"{prefix}{section}.{key}", None))
            settings.append(_setting(path, label, section, key, value, line))
    from comethook_cli.engine.trust import digest

    return ProjectFile(path, prefix, tuple(settings), digest(data))


def too_deep(path: Path) -> UsageError:
    """The error for a file nested deeper than comethook (or Python's parser) follows."""
    return UsageError(
        f"{display_path(path)} nests arrays or tables too deeply to read.",
        "No comethook setting needs more than a few levels: flatten it, or start over with `comethook init`.",
    )


def _setting(path: Path, label: str, section: str, key: str, value: Any, line: int | None) -> Setting:
    if isinstance(value, dict):
        name = value.get("env")
        if set(value) != {"env"} or not isinstance(name, str) or not name:
            where = f"{display_path(path)}{f':{line}' if line else ''}"
            raise UsageError(
                f'{where}: {label} {key}: a table here must be {{ env = "NAME" }}.',
                'Write the value itself, or read it from the environment: key = { env = "NAME" }.',
            )
        return Setting(section, key, os.environ.get(name), line, env=name)
    return Setting(section, key, value, line)


def _lines(text: str) -> dict[tuple[str, str | None], int]:
    """(table, key) → the line a key is first set on, and (table, None) → a header's line: tomllib keeps no positions."""
    found: dict[tuple[str, str | None], int] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = re.sub(r"\s*\.\s*", ".", header.group(1)).replace('"', "")
            found.setdefault((table, None), number)
            continue
        key = _KEY.match(line)
        if key:
            found.setdefault((table, key.group(2)), number)
    return found


def _did_you_mean(word: str, choices: Any, plural: str) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    known = ", ".join(choices)
    return f"Did you mean {close[0]!r}? The {plural}: {known}." if close else f"The {plural}: {known}."

"""The project file this run read (comethook.toml): what cli/config.py found, for the commands that need more
than click's default_map (inline rules, and which Basic auth source wins)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from comethook_cli.engine.configfile import ProjectFile, Setting

if TYPE_CHECKING:
    from comethook_cli.cometchat.rules import Rule

#: A command's place in the command tree: ("listen",), ("history", "list").
CommandPath = tuple[str, ...]


@dataclass
class Loaded:
    """The project file read for this run: click's default_map, and where each default came from."""

    file: ProjectFile | None = None
    default_map: dict[str, Any] = field(default_factory=dict)
    #: (command path, parameter name) → the setting that gave its default.
    origins: dict[tuple[CommandPath, str], Setting] = field(default_factory=dict)
    #: [[listen.rules]]: the rules written inline, parsed once where the file is read (None when there are none).
    inline_rules: tuple[Rule, ...] | None = None
    rules_setting: Setting | None = None
    #: `[emulate] moderation = [...]`: the moderation rules written inline (None when there are none).
    inline_moderation: list[str] | None = None
    moderation_setting: Setting | None = None
    #: Settings that name an environment variable which is not set.
    unset: list[Setting] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Whether the user trusted this file's exact content (`comethook trust`, or CI=true + COMETHOOK_TRUST_PROJECT=1).
    trusted: bool = False
    #: Whether the file was found by the upward search (False: named by --config / COMETHOOK_CONFIG).
    found: bool = True
    #: The settings that need that trust and do not have it (cli/config.py's Untrusted markers).
    gated: list[Any] = field(default_factory=list)
    #: Directories whose project file the search passed over: another user's, or writable by everyone.
    skipped: list[Path] = field(default_factory=list)
    #: Command path → the error of a broken section it reads (every reader of the file, when it is not TOML). Said when
    #: that command parses its arguments (refuse_broken), so a typo in [check] never blocks `listen`, `--help` or
    #: `payloads list`.
    blocked: dict[CommandPath, Exception] = field(default_factory=dict)


#: The project file of this run (set by the root callback; None with --no-config or when there is none).
_active: Loaded | None = None


def activate(loaded: Loaded | None) -> None:
    """Remember the project file of this run (the root callback calls this once per run)."""
    global _active
    _active = loaded


def active() -> Loaded | None:
    """The project file the current run read, if any."""
    return _active


def refuse_broken(path: CommandPath) -> None:
    """Raise the project file's error when the command at `path` reads a broken section of it (a command's parsing
    calls this once --help is handled, so help always works)."""
    if _active is not None and path in _active.blocked:
        raise _active.blocked[path]


def prefer_given(credentials: str | None, path: str | None) -> tuple[str | None, str | None]:
    """Basic auth given one way on the command line or in the environment beats the other way given in the file."""
    loaded = active()
    if loaded is None or not (credentials and path):
        return credentials, path
    from_file = set(_values(loaded.default_map, ("basic_auth", "basic_auth_file")))
    if path in from_file and credentials not in from_file:
        return credentials, None
    if credentials in from_file and path not in from_file:
        return None, path
    return credentials, path


def _values(node: dict[str, Any], names: tuple[str, ...]) -> Iterator[Any]:
    for name, value in node.items():
        if isinstance(value, dict):
            yield from _values(value, names)
        elif name in names:
            yield value

"""Project fixtures on disk: `comethook/fixtures/NAME.json` beside the project file (or the directory `[payloads]
fixtures` names), found, read and written.

A fixture is a file a project or a stranger supplies, so it is untrusted input: at most MAX_FIXTURES files, each
read bounded (engine/userfiles.py), parsed by the one strict JSON parser, checked by cometchat/fixtures.py
(known placeholders only). A broken file is a warning naming it; the rest are still found.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from comethook_cli import jsonbody
from comethook_cli.cometchat.fixtures import NAME, check_name, template_of
from comethook_cli.cometchat.payloads import Template
from comethook_cli.engine.configfile import display_path
from comethook_cli.engine.userfiles import read_user_file
from comethook_cli.errors import UsageError

#: Where fixtures live when the project file names no directory: relative to the project file's directory.
DEFAULT_DIRECTORY = Path("comethook") / "fixtures"
#: The most fixture files one directory is read for (a project has a handful; a stranger's may have millions).
MAX_FIXTURES = 500


def directory(configured: str | None = None, project_file: Path | None = None, root: Path | None = None) -> Path:
    """The fixtures directory: `configured` (relative to the project file's directory), else comethook/fixtures there,
    else in `root` (the current directory unless given)."""
    base = project_file.parent if project_file is not None else (root or Path.cwd())
    if configured:
        path = Path(configured).expanduser()
        return path if path.is_absolute() else base / path
    return base / DEFAULT_DIRECTORY


def linked(folder: Path) -> bool:
    """Whether the fixtures directory, or the directory it is in (`comethook/`), is a symbolic link."""
    return Path(folder).is_symlink() or Path(folder).parent.is_symlink()


def load(folder: Path) -> tuple[dict[str, Template], list[str]]:
    """The fixtures in `folder` by name, and a warning for each file that is not one (none when there is no folder)."""
    found: dict[str, Template] = {}
    warnings: list[str] = []
    if linked(folder):
        return found, [f"the fixtures directory {folder} is a link: left out (a cloned project could point it anywhere)."]
    try:
        entries = sorted((e for e in os.scandir(folder) if e.name.endswith(".json")), key=lambda e: e.name)[: MAX_FIXTURES + 1]
    except (FileNotFoundError, NotADirectoryError):
        return found, warnings
    except OSError as error:
        return found, [f"cannot read the fixtures directory {folder}: {error.strerror or error}."]
    if len(entries) > MAX_FIXTURES:
        warnings.append(f"the fixtures directory {folder} holds more than {MAX_FIXTURES} files: only the first are read.")
        entries = entries[:MAX_FIXTURES]
    for entry in entries:
        name = entry.name.removesuffix(".json")
        shown = display_path(Path(folder) / entry.name)
        if not NAME.fullmatch(name):
            warnings.append(f"{shown}: not a fixture name (letters, digits, '_', '-', '.'): left out.")
            continue
        if not entry.is_file(follow_symlinks=False):  # a link (out of the project), a FIFO or a device (a read that hangs)
            warnings.append(f"{shown}: not a regular file: left out.")
            continue
        try:
            raw = read_user_file(entry.path, "the fixture")
            try:
                document = jsonbody.parse(raw)
            except jsonbody.JsonBodyError as error:
                raise UsageError(f"The fixture {shown} is not JSON ({error}).") from None
            found[name] = template_of(name, document, shown)
        except UsageError as error:
            warnings.append(f"{error.message} Left out.")
    return found, warnings


def save(folder: Path, name: str, document: dict[str, Any], overwrite: bool = False) -> Path:
    """Write a fixture as `folder/NAME.json` (made with its parents), whole or not at all; UsageError when it exists
    and `overwrite` is not given, or when it cannot be written."""
    path = folder / f"{check_name(name)}.json"
    if linked(folder):
        raise UsageError(
            f"The fixtures directory {folder} is a link.", "Make it a directory of the project, or name one with --fixtures DIR."
        )
    if path.exists() and not overwrite:
        raise UsageError(f"The fixture {path} exists already.", "Pick another NAME, or pass --force to replace it.")
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
            os.chmod(temporary, 0o644)  # a project file, meant to be committed: not a private one
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as error:
        raise UsageError(
            f"Cannot write the fixture {path}: {error.strerror or error}.",
            "Check the directory's permissions, or name another with --fixtures DIR.",
        ) from None
    return path

"""Which project-file settings need the user's trust, and the record of the files the user has trusted.

A comethook.toml arrives with a `git clone`: it is code someone else wrote. Most of its keys only shape what
comethook does here (a port, a canned answer), but a few can run a program, read a file outside the project, write
one, or send data somewhere new. Those take effect only once the user has trusted the file's exact content
(`comethook trust`, after mise's `mise trust` and direnv's `direnv allow`); the record is the content's SHA-256,
kept per file under the history home, so any change to the file asks again.

This module decides and records; it never prints. The command layer turns a refusal into a usage error.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROGRAM = "runs a program"
READS = "reads a file outside the project"
WRITES = "writes a file outside the project"
SENDS = "sends data to a host that is not this machine"
TUNNELS = "opens the tunnel in the ngrok account of a token written in the file"
#: Every key that can run a program, read or write a file outside the project file's directory, or send data to a new
#: destination: the one list (docs/guides/configuration.md repeats it). A key's value is checked as comethook will use it (a relative
#: path from the file's directory, symlinks resolved; `8000` as http://localhost:8000), and only the values that do
#: one of these things need trust. `api-base` is no file key today (`trigger` takes no settings from the file); it is
#: here so that the day it becomes one, it is gated without a second list.
GATED: Mapping[str, str] = {
    "ngrok-path": PROGRAM,  # always: an executable inside the repository is exactly the planted program
    "body": READS,
    "basic-auth-file": READS,
    "rules": READS,
    "moderation": READS,  # a file's name; the words written inline read nothing
    "fixtures": READS,  # a directory: read by send, check, emulate; `payloads save` writes into it too
    "respond": READS,  # inject:@FILE only
    "junit": WRITES,
    "output": WRITES,
    "to": SENDS,
    "forward-to": SENDS,
    "route": SENDS,  # TRIGGER=URL
    "api-base": SENDS,
    # A public URL is probed (a request every 30 s to that host) and the banner tells the user to paste it in the
    # CometChat Dashboard: a stranger's file naming their own host would get both, and every delivery after that.
    "public-url": SENDS,
    "ngrok-authtoken": TUNNELS,  # a literal token only: { env = "NAME" } reads the user's own environment
}
#: Both must be set for a CI job to trust its checkout without `comethook trust` (one alone is no consent).
CI_VARIABLES = ("CI", "COMETHOOK_TRUST_PROJECT")
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def digest(data: bytes) -> str:
    """The SHA-256 of a file's bytes, as hex: what a trust record holds."""
    return hashlib.sha256(data).hexdigest()


def needs_trust(key: str, value: Any, directory: Path, literal: bool = True) -> bool:
    """Whether this value of this key does one of the things in GATED, for a file in `directory`."""
    kind = GATED.get(key)
    if kind is None or value is None:
        return False
    if kind == PROGRAM:
        return True
    if kind == TUNNELS:
        return literal and isinstance(value, str) and bool(value)
    if kind in (READS, WRITES):
        if key == "respond":
            if not (isinstance(value, str) and value.startswith("inject:@")):
                return False
            value = value.removeprefix("inject:@")
        return isinstance(value, str) and value != "-" and not inside(value, directory)
    values = value if isinstance(value, (list, tuple)) else [value]
    for item in values:
        if not isinstance(item, str):
            continue
        url = item.partition("=")[2] if key == "route" else item
        if url.strip() and not is_loopback_url(url):
            return True
    return False


def inside(path: str, directory: Path) -> bool:
    """Whether a path (relative to `directory`) lies within it once every symlink and `..` is resolved."""
    try:
        resolved = (directory / Path(path).expanduser()).resolve()
        return resolved.is_relative_to(directory.resolve())
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte: not provably inside
        return False


def is_loopback_url(target: str) -> bool:
    """Whether a URL (or a shorthand such as `8000`, `:8000/hook`) names this machine's loopback interface."""
    import ipaddress
    from urllib.parse import urlsplit

    from comethook_cli.engine.urls import normalize_url
    from comethook_cli.errors import UsageError

    try:
        host = urlsplit(normalize_url(target)).hostname or ""
    except (UsageError, ValueError):
        return False  # not a URL comethook would send to: nothing is sent, and it is not provably local either
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ci_trusted(environ: Mapping[str, str] | None = None) -> bool:
    """`CI=true` (or 1) and `COMETHOOK_TRUST_PROJECT=1` together: a CI job trusts the checkout it runs in."""
    env = os.environ if environ is None else environ
    return env.get("CI", "").strip().lower() in ("true", "1") and env.get("COMETHOOK_TRUST_PROJECT", "").strip() == "1"


def _directory() -> Path:
    from comethook_cli.engine.home import home

    return home() / "trusted"


def _record(path: Path) -> Path:
    """One small file per trusted project file, named after its absolute path: no shared file to rewrite."""
    return _directory() / hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:32]


def trusted_digest(path: Path) -> str | None:
    """The content digest the user trusted this file with, if any (a record someone else could write counts not)."""
    record = _record(path)
    try:
        status = record.stat()
        if os.name != "nt" and (status.st_uid != os.geteuid() or status.st_mode & 0o022):
            return None
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("path") != str(path.resolve()) or not isinstance(data.get("sha256"), str):
        return None
    return str(data["sha256"])


def is_trusted(path: Path, content_digest: str) -> bool:
    """Whether the user trusted this file with exactly this content."""
    return trusted_digest(path) == content_digest


def trust(path: Path, content_digest: str) -> Path:
    """Record that the user trusts this file with this content (0600, in a 0700 directory); the record's path."""
    from comethook_cli.engine.home import FILE_MODE, make_private_directory

    record = _record(path)
    make_private_directory(record.parent)
    text = json.dumps({"path": str(path.resolve()), "sha256": content_digest}) + "\n"
    temporary = record.with_name(f"{record.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        if os.name != "nt":
            os.fchmod(descriptor, FILE_MODE)  # os.open's mode passes through the umask
        os.write(descriptor, text.encode("utf-8", "surrogateescape"))
    finally:
        os.close(descriptor)
    os.replace(temporary, record)  # whole or not at all: a half-written record would trust nothing anyway
    return record


def revoke(path: Path) -> bool:
    """Forget a trusted file; whether there was a record."""
    record = _record(path)
    with contextlib.suppress(FileNotFoundError):
        record.unlink()
        return True
    return False

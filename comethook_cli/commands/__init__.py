"""The command layer: turn parsed flags into engine calls, pick the output, decide the exit code.

comethook_cli/cli/ declares options and calls these; nothing below this layer (engine, cometchat) imports it.
This module holds the flag helpers several commands share; each command's body has a module of its own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from comethook_cli.errors import UsageError

if TYPE_CHECKING:  # the catalog is imported by the commands that build payloads, not by `comethook --help`
    from comethook_cli.cometchat.payloads import BuildOptions
    from comethook_cli.models import JSON


def build_options(
    type_: str,
    text: str | None,
    sender: str,
    receiver: str,
    group: str | None,
    webhook_id: str,
    app_id: str,
    region: str,
    sets: Sequence[str] | None,
) -> BuildOptions:
    """BuildOptions from the shared builder flags, validated."""
    from comethook_cli.cometchat.payloads import REGIONS, BuildOptions, parse_set

    if region not in REGIONS:
        raise UsageError(f"Unknown region {region!r}.", f"Use one of: {', '.join(REGIONS)}.")
    return BuildOptions(
        type=type_,
        text=text,
        sender=sender,
        receiver=receiver,
        group=group,
        webhook_id=webhook_id,
        app_id=app_id,
        region=region,
        sets=tuple(parse_set(s) for s in sets or ()),
    )


def read_body(source: str) -> tuple[bytes, JSON]:
    """The bytes of `--body FILE|-` and what they parse to (strict JSON, as the listener reads it)."""
    from comethook_cli import jsonbody

    if source == "-" and sys.stdin.isatty():
        from comethook_cli.outputs.terminal import Renderer

        Renderer().note("Reading the body from stdin (Ctrl-D to end).", style="bold")
    try:
        raw = sys.stdin.buffer.read() if source == "-" else open(source, "rb").read()  # noqa: SIM115
    except OSError as error:
        raise UsageError(
            f"Cannot read --body {source!r}: {error.strerror or error}.", "Check the path, or pass - for stdin."
        ) from None
    try:
        return raw, jsonbody.parse(raw)
    except jsonbody.JsonBodyError as error:
        raise UsageError(
            f"--body {source!r} is not valid JSON: {error}.", "Fix the file, or start from `comethook payloads show`."
        ) from None


def basic_auth(credentials: str | None, path: str | None) -> str | None:
    """USER:PASS from --basic-auth / COMETHOOK_BASIC_AUTH or from --basic-auth-file; for USER alone, asks the password."""
    from comethook_cli.commands.project import prefer_given

    credentials, path = prefer_given(credentials, path)
    if path is not None:
        if credentials:
            raise UsageError(
                "Both --basic-auth-file and --basic-auth (or COMETHOOK_BASIC_AUTH) give credentials.",
                "Use one: drop a flag, or unset COMETHOOK_BASIC_AUTH.",
            )
        credentials = read_credentials(path)
    if credentials and ":" not in credentials:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise UsageError(
                "Malformed Basic auth credentials: USER without :PASS, and no terminal to ask for the password.",
                "Pass USER:PASS in COMETHOOK_BASIC_AUTH or with --basic-auth-file FILE.",
            )
        from comethook_cli.outputs.terminal import Renderer

        try:
            password = Renderer().secret(f"Password for {credentials}")
        except EOFError:
            raise UsageError("No password given for Basic auth.", "Type it at the prompt, or pass USER:PASS.") from None
        credentials = f"{credentials}:{password}"
    return credentials


def read_credentials(path: str) -> str:
    """The first line of a --basic-auth-file, checked to be USER:PASS (a warning when others may read the file)."""
    try:
        with open(path, encoding="utf-8") as file:
            first = file.readline(65536).rstrip("\r\n")
            mode = os.fstat(file.fileno()).st_mode
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not UTF-8 text"
        raise UsageError(
            f"Cannot read --basic-auth-file {path!r}: {reason}.", "The file holds USER:PASS on its first line."
        ) from None
    user, sep, _ = first.partition(":")
    if not sep or not user:
        # Never quote the line: it may be the password alone.
        raise UsageError(f"The first line of --basic-auth-file {path!r} is not USER:PASS.", "Write USER:PASS on its first line.")
    if os.name == "posix" and mode & 0o077:
        from comethook_cli.outputs.terminal import Renderer

        Renderer().warning(f"--basic-auth-file {path!r} is open to other users (mode {mode & 0o777:04o}): chmod 600 it.")
    return first

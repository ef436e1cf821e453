"""`comethook replay`: deliver a stored exchange's exact bytes again, optionally edited first."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from comethook_cli import jsonbody
from comethook_cli.cometchat.payloads import encode, parse_set, set_path
from comethook_cli.commands.history import open_history, replay_headers
from comethook_cli.commands.send import execute
from comethook_cli.engine.config import Delivering
from comethook_cli.engine.sender import Outgoing, normalize_url
from comethook_cli.errors import UsageError


def run(key: str | None, last: bool, to: str | None, sets: Sequence[str], edit: bool, how: Delivering) -> None:
    """Pick the exchange, change it if asked, deliver it like `send`."""
    if (key is None) == (not last):
        raise UsageError("Name one exchange: an ID, or --last.", "`comethook history list` shows the ids.")
    history = open_history()
    exchange = history.last() if last else history.get(key or "")
    if to:
        url = normalize_url(to)
    elif exchange.forwarded_to:
        url = exchange.forwarded_to
    else:
        raise UsageError(f"{exchange.id} was not forwarded anywhere, so there is no default target.", "Pass --to URL.")
    body = exchange.body
    if sets:
        payload = _parse(body, "the stored body")
        for path, value in (parse_set(s) for s in sets):
            set_path(payload, path, value)
        body = encode(payload)
    if edit:
        body = edit_body(body)
    payload = _parse(body, "the body")
    trigger = payload.get("trigger") if isinstance(payload, dict) else None
    outgoing = Outgoing(body, payload, trigger if isinstance(trigger, str) else None)
    execute(url, lambda: outgoing, how, replay_headers(exchange))


def _parse(body: bytes, what: str) -> Any:
    try:
        return jsonbody.parse(body)
    except jsonbody.JsonBodyError as error:
        raise UsageError(
            f"{what.capitalize()} is not JSON ({error}), so it cannot be changed or replayed.", "Fix it, or replay without --set."
        ) from None


def edit_body(body: bytes) -> bytes:
    """Open $VISUAL / $EDITOR on the body (pretty-printed when JSON); abort on an empty or invalid result."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        text = json.dumps(jsonbody.parse(body), indent=2, ensure_ascii=False) + "\n"
    except jsonbody.JsonBodyError:
        text = body.decode("utf-8", errors="replace")
    with tempfile.TemporaryDirectory(prefix="comethook-") as folder:
        path = Path(folder) / "body.json"
        path.write_text(text, encoding="utf-8")
        try:
            finished = subprocess.run([*shlex.split(editor), str(path)], check=False)
        except OSError as error:
            raise UsageError(
                f"Cannot start the editor {editor!r}: {error.strerror}.", "Set $EDITOR to an editor you have."
            ) from None
        if finished.returncode != 0:
            raise UsageError(f"Replay aborted: the editor exited with status {finished.returncode}.")
        edited = path.read_bytes()
    if not edited.strip():
        raise UsageError("Replay aborted: the edited body is empty.")
    try:
        jsonbody.parse(edited)
    except jsonbody.JsonBodyError as error:
        raise UsageError(f"Replay aborted: the edited body is not valid JSON ({error}).", "Nothing was sent.") from None
    return edited

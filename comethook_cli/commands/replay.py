"""`comethook replay`: pick the exchange, let $EDITOR change it, then deliver it like `send` (engine.replay plans it)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from comethook_cli import jsonbody
from comethook_cli.cometchat.payloads import parse_set
from comethook_cli.commands.send import execute, parse_header
from comethook_cli.engine import replay
from comethook_cli.engine.config import Delivering
from comethook_cli.engine.history.reader import History
from comethook_cli.errors import UsageError


def run(key: str | None, last: bool, to: str | None, sets: Sequence[str], edit: bool, how: Delivering) -> None:
    """Pick the exchange, change it if asked, deliver it like `send`."""
    if (key is None) == (not last):
        raise UsageError("Name one exchange: an ID, or --last.", "`comethook history list` shows the ids.")
    with History() as history:
        exchange = history.last() if last else history.get(key or "")
    replay.target_url(exchange, to)  # a missing target is said before the editor opens
    body = None  # unchanged: the stored bytes go as they are (a compressed body with its Content-Encoding)
    if sets or edit:
        body = replay.apply_sets(replay.plain(exchange), [parse_set(s) for s in sets], "the stored body")
        if edit:
            body = edit_body(body)
    chosen = replay.plan(exchange, to, replay.Edits(body=body))
    given = {parse_header(line)[0].lower() for line in how.headers} | ({"authorization"} if how.basic_auth else set())
    if (left_out := chosen.warning(given)) is not None:
        from comethook_cli.outputs.terminal import Renderer

        Renderer().warning(left_out)
    execute(chosen.url, lambda: chosen.outgoing, how, chosen.headers, original=exchange)


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
            raise UsageError(
                f"Replay aborted: the editor exited with status {finished.returncode}.",
                "Nothing was sent; save and quit to send.",
            )
        edited = path.read_bytes()
    if not edited.strip():
        raise UsageError("Replay aborted: the edited body is empty.", "Nothing was sent; run it again and leave a JSON body.")
    try:
        jsonbody.parse(edited)
    except jsonbody.JsonBodyError as error:
        raise UsageError(f"Replay aborted: the edited body is not valid JSON ({error}).", "Nothing was sent.") from None
    return edited

"""`comethook replay`: its options; pick the exchange, let $EDITOR change it, then deliver it like `send` (engine.replay
plans it).

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from comethook_cli import jsonbody
from comethook_cli.cli import completion
from comethook_cli.cli.app import App, funnel
from comethook_cli.cli.options import (
    Adds,
    AnswerTimeout,
    BasicAuth,
    BasicAuthFile,
    ContentType,
    DeliveryVerbose,
    Expect,
    ExpectJson,
    Headers,
    Insecure,
    JsonOut,
    MaxAnswer,
    MaxLatency,
    RetryDelays,
    Sets,
    SimulateRetries,
    Unsets,
    delivering,
)
from comethook_cli.cli.send import execute
from comethook_cli.cometchat.payloads.paths import parse_set, parse_unset
from comethook_cli.engine import replay as replaying
from comethook_cli.engine.config import Delivering, default
from comethook_cli.engine.history.reader import History
from comethook_cli.errors import UsageError

app = App()  # what the root group takes this command from


@app.command()
@funnel
def replay(
    exchange_id: Annotated[
        str | None,
        typer.Argument(
            metavar="ID",
            help="Stored exchange id (or a unique end of it, as `history list` shows).",
            autocompletion=completion.history_ids,
        ),
    ] = None,
    last: Annotated[bool, typer.Option("--last", help="Replay the newest stored exchange.")] = False,
    to: Annotated[
        str | None, typer.Option("--to", metavar="URL", help="Where to (default: the app it was forwarded to).")
    ] = None,
    set_: Sets = None,
    add: Adds = None,
    unset: Unsets = None,
    edit: Annotated[bool, typer.Option("--edit", help="Edit the body in $EDITOR first.")] = False,
    basic_auth: BasicAuth = None,
    basic_auth_file: BasicAuthFile = None,
    header: Headers = None,
    timeout: AnswerTimeout = default(Delivering, "timeout"),
    content_type: ContentType = None,
    json_out: JsonOut = False,
    expect: Expect = None,
    expect_json: ExpectJson = None,
    max_latency: MaxLatency = None,
    simulate_retries: SimulateRetries = False,
    retry_delays: RetryDelays = None,
    verbose: DeliveryVerbose = False,
    max_answer: MaxAnswer = default(Delivering, "max_answer"),
    insecure: Insecure = False,
) -> None:
    """Deliver a stored exchange's exact bytes again (optionally changed) and show the answer like `send`."""
    how = delivering(
        basic_auth=basic_auth, basic_auth_file=basic_auth_file, header=header, timeout=timeout, content_type=content_type,
        json_out=json_out, expect=expect, expect_json=expect_json, max_latency=max_latency,
        simulate_retries=simulate_retries, retry_delays=retry_delays, verbose=verbose, max_answer=max_answer,
        insecure=insecure,
    )  # fmt: skip
    overrides = replaying.Edits(
        sets=[parse_set(s) for s in set_ or ()], adds=[parse_set(s, "add") for s in add or ()],
        unsets=[parse_unset(p) for p in unset or ()],
    )  # fmt: skip
    run(exchange_id, last, to, overrides, edit, how)


def run(key: str | None, last: bool, to: str | None, overrides: replaying.Edits, edit: bool, how: Delivering) -> None:
    """Pick the exchange, change it if asked, deliver it like `send`."""
    if (key is None) == (not last):
        raise UsageError("Name one exchange: an ID, or --last.", "`comethook history list` shows the ids.")
    with History() as history:
        exchange = history.last() if last else history.get(key or "")
    replaying.target_url(exchange, to)  # a missing target is said before the editor opens
    body = None  # unchanged: the stored bytes go as they are (a compressed body with its Content-Encoding)
    if overrides.sets or overrides.adds or overrides.unsets or edit:
        body = replaying.apply_sets(replaying.plain(exchange), overrides, "the stored body")
        if edit:
            body = edit_body(body)
    chosen = replaying.plan(exchange, to, replaying.Edits(body=body))
    given = {name.lower() for name, _ in how.headers} | ({"authorization"} if how.basic_auth else set())
    if (left_out := chosen.warning(given)) is not None:
        from comethook_cli.outputs.terminal import Renderer

        Renderer().warning(left_out)
    execute(chosen.url, lambda: chosen.outgoing, how, chosen.headers, original=exchange)


def edit_body(body: bytes) -> bytes:
    """Open $VISUAL / $EDITOR on the body (pretty-printed when JSON); abort on an empty or invalid result."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or ""
    if not editor:
        if not sys.stdin.isatty():  # vi with no terminal would hang a script or an agent: no question off a terminal
            raise UsageError(
                "--edit opens an editor, and there is no terminal and no $VISUAL or $EDITOR.",
                "Change the body with --set PATH=VALUE instead, or set $EDITOR to a program that edits the file it is given.",
            )
        editor = "vi"
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

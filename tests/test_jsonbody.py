"""The one JSON-body parser: strict constants, UTF-8, bounded depth, the same
answer in the listener, `send --body`, `replay --edit`, rule files and `--respond inject:`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from comethook_cli.cli.options import load_rules, respond_action
from comethook_cli.cometchat.rules import Responder
from comethook_cli.engine.listener import Listener, ListenerConfig
from comethook_cli.engine.values import action as parse_respond
from comethook_cli.errors import UsageError
from comethook_cli.jsonbody import MAX_DEPTH, JsonBodyError, depth, parse
from tests.cli.test_replay import record_exchange, write_editor
from tests.conftest import hub_for

TOO_DEEP = b"[" * 100_000 + b"]" * 100_000
#: Deeper than MAX_DEPTH, shallow enough that json.loads alone would accept it.
DEEPISH = b'{"trigger": "after_message", "x": ' + b"[" * 300 + b"]" * 300 + b"}"


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b'{"a": [1, 2.5, "x", null, true]}', {"a": [1, 2.5, "x", None, True]}),
        ('{"t": "caf\\u00e9 [[[ {{{"}', {"t": "café [[[ {{{"}),
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, json.loads(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)),
        ('{"q": "\\"[[[[\\\\"}', {"q": '"[[[[\\'}),
    ],
)
def test_valid_json_parses(raw: bytes | str, value: Any) -> None:
    assert parse(raw) == value


@pytest.mark.parametrize(
    ("raw", "kind", "words"),
    [
        (b'{"x": NaN}', "constant", "NaN is not JSON"),
        (b"[Infinity]", "constant", "Infinity is not JSON"),
        (b"-Infinity", "constant", "-Infinity is not JSON"),
        (TOO_DEEP, "depth", f"nested deeper than {MAX_DEPTH} levels"),
        (DEEPISH, "depth", f"nested deeper than {MAX_DEPTH} levels"),
        (b'{"a": "\xff"}', "encoding", "not valid UTF-8"),
        ('{"a": 1}'.encode("utf-16"), "encoding", "not valid UTF-8"),  # json.loads would guess UTF-16
        (b'\xef\xbb\xbf{"a": 1}', "syntax", "byte order mark"),
        (b"{not json", "syntax", "Expecting property name"),
        (b"", "syntax", "Expecting value"),
    ],
)
def test_what_is_refused_and_why(raw: bytes, kind: str, words: str) -> None:
    with pytest.raises(JsonBodyError) as caught:
        parse(raw)
    assert caught.value.kind == kind and words in str(caught.value)


def test_depth_ignores_brackets_inside_strings() -> None:
    assert depth('{"a": "[[[[{{{{", "b": [[1]]}') == 3


async def test_listener_refuses_too_deep_bodies_and_keeps_serving() -> None:
    exchanges: list[Any] = []
    listener = Listener(ListenerConfig(port=0), Responder(), hub_for(exchanges.append, None, lambda w: None))
    await listener.start()
    try:
        async with aiohttp.ClientSession() as session:
            for body in (TOO_DEEP, DEEPISH):
                async with session.post(listener.local_url + "/webhook", data=body) as response:
                    assert response.status == 400 and await response.json() == {"error": "body is not JSON"}
            async with session.post(listener.local_url + "/webhook", data=b'{"trigger": "after_message"}') as response:
                assert response.status == 200
    finally:
        await listener.stop()
    assert len(exchanges) == 1


async def test_send_body_too_deep_is_a_usage_error(cli: Any, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_bytes(TOO_DEEP)
    from_file = await cli.run("send", "--body", str(deep), "--to", "http://127.0.0.1:9/")
    assert from_file.exit_code == 2, from_file.output
    assert f"nested deeper than {MAX_DEPTH} levels" in from_file.stderr and "Traceback" not in from_file.output
    from_stdin = await cli.run("send", "--body", "-", "--to", "http://127.0.0.1:9/", input=TOO_DEEP)
    assert from_stdin.exit_code == 2 and "nested deeper" in from_stdin.stderr
    nan = tmp_path / "nan.json"
    nan.write_bytes(b'{"trigger": "message_sent", "score": NaN}')
    refused = await cli.run("send", "--body", str(nan), "--to", "http://127.0.0.1:9/")
    assert refused.exit_code == 2 and "NaN is not JSON" in refused.stderr


async def test_replay_edit_refuses_a_too_deep_or_nan_body(target: Any, listen_process: Any, cli: Any, tmp_path: Path) -> None:
    await asyncio.to_thread(record_exchange, cli, listen_process)
    app_url, received = await target(lambda r: web.json_response({}))
    for content, words in ((TOO_DEEP, "nested deeper"), (b'{"x": NaN}', "NaN is not JSON")):
        (tmp_path / "content.json").write_bytes(content)
        editor = write_editor(tmp_path, f"open(path, 'wb').write(open({str(tmp_path / 'content.json')!r}, 'rb').read())")
        result = await cli.run("replay", "--last", "--to", app_url, "--edit", env={"EDITOR": editor, "VISUAL": ""})
        assert result.exit_code == 2 and words in result.stderr and "Traceback" not in result.output
    assert received == []


@pytest.mark.parametrize(
    ("content", "words"),
    [(TOO_DEEP, "nested deeper"), (b'[{"match": {}, "action": {"body": NaN}}]', "NaN is not JSON"), (b"\xff[]", "UTF-8")],
)
def test_rules_files_use_the_same_parser(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "rules.json"
    path.write_bytes(content)
    with pytest.raises(UsageError) as caught:
        load_rules(str(path))
    assert "is not valid JSON" in caught.value.message and words in caught.value.message


@pytest.mark.parametrize(
    ("spec", "words"), [('inject:{"score": NaN}', "NaN is not JSON"), ("inject:" + "[" * 5000, "nested deeper")]
)
def test_respond_inject_uses_the_same_parser(spec: str, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_respond(spec)
    assert words in caught.value.message


def test_respond_inject_from_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "answer.json"
    path.write_bytes(b'{"tag": "\xff"}')
    with pytest.raises(UsageError) as caught:
        respond_action(f"inject:@{path}")
    assert "UTF-8" in caught.value.message

"""orjson and uvloop are used when present, and the stdlib fallback gives the same results."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from comethook_cli import jsonbody, speedups
from comethook_cli.cometchat.payloads import BuildOptions, build, catalog, encode
from comethook_cli.outputs import wire

CORPUS = [
    b'{"a": 1, "b": [1.5, -0.0, 1e16, null, true], "c": "\\u00e9\\u2028 \\ud83d\\ude00"}',
    b'{"big": 123456789012345678901234567890, "x": 1}',  # json keeps the integer exact; orjson would not
    b'"\\ud800"',  # a lone surrogate: json accepts it, orjson refuses
    b'{"a": 1, "a": 2}',
    b"  [ ]  ",
    b'{"text": "\\u001b]0;x\\u0007 \\u007f \\u009b"}',
]
REFUSED = [b"\xef\xbb\xbf{}", b'{"a": NaN}', b"[Infinity]", b"1e400x", b"\xff", b"[" * 300 + b"]" * 300, b"{"]


def outcomes() -> list[Any]:
    results: list[Any] = []
    for raw in CORPUS + REFUSED:
        try:
            results.append(("ok", jsonbody.parse(raw)))
        except jsonbody.JsonBodyError as error:
            results.append(("refused", error.kind))
    return results


DOCUMENTS: list[Any] = [build(t, BuildOptions(text="hé \x1b \u2028")) for t in catalog()]
DOCUMENTS += [{"nan": float("nan"), "inf": float("-inf"), "n": 10**30, "s": "\ud800"}, {1: "non-string key"}]


def lines() -> list[str]:
    return [wire.dumps(d) for d in DOCUMENTS]


def test_the_speedups_are_used_when_installed() -> None:
    pytest.importorskip("orjson")
    assert speedups.active()["orjson"] and speedups.dumps({"a": 1}) == '{"a":1}'
    if sys.platform != "win32":
        pytest.importorskip("uvloop")
        assert speedups.run(_loop_name()) == "uvloop.Loop"


def test_the_fallback_gives_the_same_results(without_speedups: None) -> None:
    assert speedups.active() == {"orjson": False, "uvloop": False}
    assert speedups.run(_loop_name()) != "uvloop.Loop"
    slow_outcomes, slow_lines = outcomes(), lines()
    os.environ["COMETHOOK_NO_SPEEDUPS"] = "0"
    speedups._orjson.cache_clear()
    fast_outcomes, fast_lines = outcomes(), lines()
    assert fast_outcomes == slow_outcomes
    assert [json.loads(line) for line in fast_lines] == [json.loads(line) for line in slow_lines]
    assert not any("\n" in line or "\x1b" in line or "\u2028" in line for line in fast_lines)
    assert {kind for kind, _ in slow_outcomes[len(CORPUS) :]} == {"refused"}
    assert slow_outcomes[1] == ("ok", {"big": 123456789012345678901234567890, "x": 1})


def test_payload_bytes_do_not_depend_on_the_json_library(without_speedups: None) -> None:
    # What `send` puts on the wire is the same with or without orjson.
    slow = [encode(d) for d in DOCUMENTS[:-2]]
    os.environ["COMETHOOK_NO_SPEEDUPS"] = "0"
    speedups._orjson.cache_clear()
    assert [encode(d) for d in DOCUMENTS[:-2]] == slow


def test_the_cli_works_on_the_stdlib_alone(tmp_path: Any, listen_process: Any) -> None:
    listener = listen_process("--max-events", "1")
    env = {**os.environ, "COMETHOOK_NO_SPEEDUPS": "1"}
    command = [sys.executable, "-m", "comethook_cli", "send", "before_message", "--to", listener.url + "/webhook", "--json"]
    sent = subprocess.run(command, capture_output=True, text=True, env=env, timeout=30)
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout.splitlines()[0])["verdict"] == "pass"
    code, out, err = listener.finish()
    assert code == 0, err
    assert json.loads(out.splitlines()[-2])["type"] == "event"


async def _loop_name_async() -> str:
    loop = asyncio.get_running_loop()
    return f"{type(loop).__module__.split('.')[0]}.{type(loop).__name__}"


def _loop_name() -> Any:
    return _loop_name_async()

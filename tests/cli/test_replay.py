"""`listen --forward-to` through the real CLI, and `comethook replay` (with --set and a scripted $EDITOR)."""

from __future__ import annotations

import base64
import gzip
import json
import stat
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.conftest import AFTER, delivery, ndjson, post, post_json


async def test_forward_display_json_and_history(target: Any, listen_process: Any, cli: Any) -> None:
    import asyncio

    app_url, received = await target(lambda r: web.json_response({"flag": "checked"}))
    base = app_url.rsplit("/", 1)[0]
    listener = await asyncio.to_thread(listen_process, "--forward-to", base, "--max-events", "1", json_out=False)
    sent = delivery()
    status, body = await asyncio.to_thread(post_json, listener.url + "/webhook", sent)
    assert (status, json.loads(body)) == (200, {"flag": "checked"})
    code, out, err = await asyncio.to_thread(listener.finish)
    assert code == 0, err
    arrow, back, injected = out.splitlines()[:3]
    assert "--> before_message" in arrow
    assert "<-- 200 INJECT" in back and f"from {base}/webhook" in back
    assert '"flag":"checked"' in injected
    assert received[0][1] == sent
    stored = ndjson(cli("history", "list", "--json").stdout)[0]
    assert stored["forwarded_to"] == base + "/webhook" and stored["response"]["body"] == {"flag": "checked"}
    assert stored["verdict"] == "inject"


async def test_forward_json_event_of_a_slow_app(target: Any, listen_process: Any) -> None:
    import asyncio

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.json_response({})

    app_url, _ = await target(slow)
    base = app_url.rsplit("/", 1)[0]
    listener = await asyncio.to_thread(listen_process, "--forward-to", base, "--max-events", "1")
    await asyncio.to_thread(post_json, listener.url + "/webhook", delivery())
    code, out, err = await asyncio.to_thread(listener.finish)
    event = ndjson(out)[0]
    assert code == 0 and event["forwarded_to"] == base + "/webhook" and event["verdict"] == "pass"
    assert event["response"] == {"status": 200, "body": {}} and event["latency_ms"] > 200
    assert "budget" not in err  # 0.3 s is within CometChat's 2 s (the warning past it: test_listen_forward.py)


def record_exchange(cli: Any, listen_process: Any, *args: str, text: str = "stored") -> str:
    listener = listen_process("--max-events", "1", *args)
    post_json(listener.url + "/webhook?src=cc", delivery(text=text), {"Authorization": "Basic dTpzM2NyZXQ=", "X-Trace": "abc"})
    code, out, _ = listener.finish()
    assert code == 0
    return str(ndjson(out)[0]["id"])


async def test_replay_exact_bytes_and_headers_to_a_target(target: Any, listen_process: Any, cli: Any) -> None:
    import asyncio

    exchange_id = await asyncio.to_thread(record_exchange, cli, listen_process)
    app_url, received = await target(lambda r: web.json_response({"action": "do_not_propagate"}))
    result = await cli.run("replay", exchange_id, "--to", app_url, "--json")
    assert result.exit_code == 0, result.output
    delivery_line = ndjson(result.stdout)[0]
    assert delivery_line["verdict"] == "drop" and delivery_line["trigger"] == "before_message"
    request, raw = received[0]
    assert json.loads(raw)["data"]["data"]["text"] == "stored"
    assert request.headers["X-Trace"] == "abc"
    assert "Authorization" not in request.headers  # not replayed unless --basic-auth
    with_auth = await cli.run("replay", "--last", "--to", app_url, "--basic-auth", "u:other")
    assert with_auth.exit_code == 0 and received[1][0].headers["Authorization"].startswith("Basic ")
    assert "Verdict: DROP" in with_auth.stdout


async def test_replay_with_set_and_assertions(target: Any, listen_process: Any, cli: Any) -> None:
    import asyncio

    await asyncio.to_thread(record_exchange, cli, listen_process)
    app_url, received = await target(lambda r: web.json_response({}))
    result = await cli.run("replay", "--last", "--to", app_url, "--set", "data.data.text=changed", "--expect", "pass")
    assert result.exit_code == 0, result.output
    assert json.loads(received[0][1])["data"]["data"]["text"] == "changed"
    failed = await cli.run("replay", "--last", "--to", app_url, "--expect", "drop")
    assert failed.exit_code == 3


async def test_replay_defaults_to_the_forward_target(target: Any, listen_process: Any, cli: Any) -> None:
    import asyncio

    app_url, received = await target(lambda r: web.json_response({}))
    base = app_url.rsplit("/", 1)[0]
    await asyncio.to_thread(record_exchange, cli, listen_process, "--forward-to", base)
    result = await cli.run("replay", "--last")
    assert result.exit_code == 0, result.output
    assert len(received) == 2 and received[0][1] == received[1][1]
    assert received[1][0].path_qs == "/webhook?src=cc"


def write_editor(tmp_path: Path, script: str) -> str:
    editor = tmp_path / "editor.py"
    editor.write_text(f"import sys, json\npath = sys.argv[1]\n{script}\n")
    launcher = tmp_path / "edit"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{editor}" "$@"\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IEXEC)
    return str(launcher)


async def test_replay_edit_with_a_scripted_editor(target: Any, listen_process: Any, cli: Any, tmp_path: Path) -> None:
    import asyncio

    await asyncio.to_thread(record_exchange, cli, listen_process)
    app_url, received = await target(lambda r: web.json_response({}))
    editor = write_editor(
        tmp_path, "doc = json.load(open(path))\ndoc['data']['data']['text'] = 'edited'\njson.dump(doc, open(path, 'w'))"
    )
    result = await cli.run("replay", "--last", "--to", app_url, "--edit", env={"EDITOR": editor, "VISUAL": ""})
    assert result.exit_code == 0, result.output
    assert json.loads(received[0][1])["data"]["data"]["text"] == "edited"


async def test_replay_edit_aborts_on_empty_or_invalid(target: Any, listen_process: Any, cli: Any, tmp_path: Path) -> None:
    import asyncio

    await asyncio.to_thread(record_exchange, cli, listen_process)
    app_url, received = await target(lambda r: web.json_response({}))
    empty = write_editor(tmp_path, "open(path, 'w').write('')")
    result = await cli.run("replay", "--last", "--to", app_url, "--edit", env={"EDITOR": empty, "VISUAL": ""})
    assert result.exit_code == 2 and "the edited body is empty" in result.stderr
    broken = write_editor(tmp_path, "open(path, 'w').write('{oops')")
    result = await cli.run("replay", "--last", "--to", app_url, "--edit", env={"EDITOR": broken, "VISUAL": ""})
    assert result.exit_code == 2 and "not valid JSON" in result.stderr
    failing = write_editor(tmp_path, "sys.exit(1)")
    result = await cli.run("replay", "--last", "--to", app_url, "--edit", env={"EDITOR": failing, "VISUAL": ""})
    assert result.exit_code == 2 and "editor exited with status 1" in result.stderr
    assert received == []  # nothing was sent


async def test_replay_edit_with_no_editor_and_no_terminal_refuses_instead_of_hanging(
    target: Any, listen_process: Any, cli: Any
) -> None:
    import asyncio

    await asyncio.to_thread(record_exchange, cli, listen_process)
    app_url, received = await target(lambda r: web.json_response({}))
    result = await cli.run("replay", "--last", "--to", app_url, "--edit", "--json", env={"EDITOR": "", "VISUAL": ""})
    assert result.exit_code == 2 and "no terminal and no $VISUAL or $EDITOR" in result.stderr
    assert "--set PATH=VALUE" in json.loads(result.stdout.splitlines()[-1])["hint"]
    assert received == []


async def test_replay_usage_errors(listen_process: Any, cli: Any) -> None:
    import asyncio

    neither = await cli.run("replay")
    assert neither.exit_code == 2 and "an ID, or --last" in neither.stderr
    await asyncio.to_thread(record_exchange, cli, listen_process)
    no_target = await cli.run("replay", "--last")
    assert no_target.exit_code == 2 and "Pass --to URL" in no_target.stderr
    unknown = await cli.run("replay", "evt_missing", "--to", "http://127.0.0.1:9")
    assert unknown.exit_code == 2


async def test_replay_with_url_credentials_and_an_authorization_header_is_a_usage_error(
    target: Any, listen_process: Any, cli: Any
) -> None:
    import asyncio

    url, received = await target(lambda r: web.json_response({}))
    await asyncio.to_thread(record_exchange, cli, listen_process)
    with_user = url.replace("http://", "http://cc:s3cret@")
    twice = await cli.run("replay", "--last", "--to", with_user, "-H", "Authorization: Bearer t0ken")
    assert twice.exit_code == 2, twice.output
    assert "Two sets of credentials" in twice.stderr and "-H Authorization" in twice.stderr and "Hint:" in twice.stderr
    assert "Traceback" not in twice.output and "s3cret" not in twice.output and not received
    alone = await cli.run("replay", "--last", "--to", with_user)
    assert alone.exit_code == 0, alone.output
    assert received[0][0].headers["Authorization"] == "Basic " + base64.b64encode(b"cc:s3cret").decode()


def test_one_rule_for_the_default_replay_target() -> None:
    """engine.replay.target_of: the target given; else where it was forwarded; else the running listener at the
    exchange's path and query; else none. `comethook replay`, the inspector and the exports all use it."""
    import dataclasses

    import pytest

    from comethook_cli.cli.app import flagged
    from comethook_cli.cometchat.events import describe
    from comethook_cli.engine import replay
    from comethook_cli.errors import InvalidSetting, UsageError
    from comethook_cli.models import Exchange
    from comethook_cli.outputs.exports import target_of as export_target

    payload = {"trigger": "after_message", "data": {}}
    stored = Exchange(
        id="evt_1", received_at=0.0, method="POST", path="/hook", query="src=cc", headers=(), body=json.dumps(payload).encode(),
        info=describe(payload), response_status=200, response_body=b"{}", latency_ms=1.0, listener="http://127.0.0.1:9001",
    )  # fmt: skip
    forwarded = dataclasses.replace(stored, forwarded_to="http://app.test/webhook")
    # 1. A target given wins, normalized (a bare port is localhost's).
    assert replay.target_of(forwarded, "8123", "http://127.0.0.1:9000") == "http://localhost:8123"
    assert replay.target_url(stored, ":8123/x") == "http://localhost:8123/x"
    # 2. Else the app it was forwarded to, before any listener.
    assert replay.target_of(forwarded, None, "http://127.0.0.1:9000") == "http://app.test/webhook"
    assert replay.target_url(forwarded) == "http://app.test/webhook"
    # 3. Else the running listener, at the exchange's own path and query.
    assert replay.target_of(stored, None, "http://127.0.0.1:9000") == "http://127.0.0.1:9000/hook?src=cc"
    assert replay.target_url(dataclasses.replace(stored, query=""), "", "http://127.0.0.1:9000") == "http://127.0.0.1:9000/hook"
    # 4. Else there is none: None, and a UsageError with a hint from target_url.
    assert replay.target_of(stored) is None
    with pytest.raises(InvalidSetting, match=r"^evt_1 was not forwarded anywhere") as raised:
        replay.target_url(stored)
    assert (
        isinstance(raised.value, UsageError) and raised.value.hint == "Pass to URL."
    )  # the inspector's and MCP's field, `comethook replay`'s --to
    assert flagged(raised.value)[1] == "Pass --to URL."  # what `comethook replay` says
    with pytest.raises(InvalidSetting) as secret:
        replay.target_url(dataclasses.replace(stored, forwarded_to="http://u:***@app.test/webhook"))
    assert flagged(secret.value) == (
        "evt_1 was forwarded to http://u:***@app.test/webhook, whose password was not stored.",
        "Pass --to with the full URL (and its password) to replay it there.",
    )
    assert secret.value.hint == "Pass to with the full URL (and its password) to replay it there."
    # The exports follow the same rule, with the listener that received the exchange.
    assert export_target(stored) == "http://127.0.0.1:9001/hook?src=cc"
    assert export_target(forwarded) == "http://app.test/webhook"
    assert export_target(dataclasses.replace(stored, listener=None)) == "http://localhost:8765/hook?src=cc"


async def test_a_gzip_exchange_replays_as_stored_or_decoded_when_changed(start: Any, aiohttp_server: Any, cli: Any) -> None:
    running = await start()
    packed = gzip.compress(AFTER)
    assert (await post(running.url, packed, {"Content-Encoding": "gzip", "Content-Type": "application/json"}))[0] == 200
    received: list[tuple[web.Request, bytes]] = []

    async def record(request: web.Request) -> web.Response:
        received.append((request, await request.read()))
        return web.json_response({})

    app = web.Application(handler_args={"auto_decompress": False})  # the bytes as they came over the wire
    app.router.add_post("/{tail:.*}", record)
    app_url = f"http://127.0.0.1:{(await aiohttp_server(app, host='127.0.0.1')).port}/hook"
    as_stored = await cli.run("replay", "--last", "--to", app_url)
    assert as_stored.exit_code == 0, as_stored.output  # today: "The body is not JSON (not valid UTF-8 (byte 1))"
    request, body = received[-1]
    assert body == packed and request.headers["Content-Encoding"] == "gzip"
    changed = await cli.run("replay", "--last", "--to", app_url, "--set", "data.data.text=changed")
    assert changed.exit_code == 0, changed.output
    request, body = received[-1]
    assert "Content-Encoding" not in request.headers and json.loads(body)["data"]["data"]["text"] == "changed"
    exchange_id = running.exchanges[0].id
    human = await cli.run("history", "show", exchange_id)
    assert human.exit_code == 0 and "hello there" in human.stdout and "\x1f" not in human.output
    assert "Content-Encoding gzip" in human.stderr and "shown decoded" in human.stderr
    shown = ndjson((await cli.run("history", "show", exchange_id, "--json")).stdout)[0]
    assert shown["body"] == json.loads(AFTER)
    exported = ndjson((await cli.run("history", "export")).stdout)
    assert exported[0]["body"] == json.loads(AFTER)

"""What check, send, listen and replay show on a terminal and in --json: who is sending, -v request bodies,
assertion records, failures after the summary, one line per repeated retry answer, names in summaries, filtered
events, and the original answer beside a replayed one."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from aiohttp import web

from comethook_cli import __version__
from comethook_cli.cometchat.events import describe
from tests.conftest import ListenProcess, delivery, ndjson


async def test_send_says_who_it_is_and_shows_the_request_body_with_v(cli: Any, target: Any) -> None:
    url, received = await target(lambda request: web.json_response({"ok": True}))
    result = await cli.run("send", "message_sent", "--to", url, "-v", "--text", "look at this body")
    assert result.exit_code == 0
    assert received[0][0].headers["User-Agent"] == f"comethook/{__version__}"
    out = result.stdout
    assert out.index("request body:") < out.index('"look at this body"') < out.index("<-- 200")


async def test_assertions_say_so_on_a_terminal_line_and_in_json(cli: Any, target: Any) -> None:
    url, _ = await target(lambda request: web.json_response({"status": "queued"}))
    passed = await cli.run("send", "message_sent", "--to", url, "--expect", "ok", "--expect-json", "status=queued")
    assert passed.exit_code == 0
    assert "✓ assertions held: --expect ok, --expect-json status=queued" in passed.stdout
    failed = await cli.run("send", "message_sent", "--to", url, "--expect-json", "status=done", "--json")
    assert failed.exit_code == 3
    (record,) = [r for r in ndjson(failed.stdout) if r["type"] == "assertion"]
    assert record == {
        "type": "assertion", "ok": False, "asserted": ["--expect-json status=done"],
        "failures": ['expected answer status = "done", got "queued"'],
    }  # fmt: skip
    assert "Hint: " in failed.stderr
    plain = await cli.run("send", "message_sent", "--to", url, "--json")
    assert not [r for r in ndjson(plain.stdout) if r["type"] == "assertion"]  # nothing asserted, nothing said


async def test_failures_of_a_run_come_after_the_summary_under_a_heading(cli: Any, target: Any) -> None:
    calls = iter(range(100))
    url, _ = await target(lambda request: web.json_response({}, status=500 if next(calls) % 2 else 200))
    result = await cli.run("send", "message_sent", "--to", url, "--count", "14")
    assert result.exit_code == 1
    out = result.stdout
    assert out.index("count") < out.index("Failed deliveries (the first 5 of 7):")
    assert out.split("Failed deliveries (the first 5 of 7):\n", 1)[1].count("500 ") == 5


async def test_a_retry_that_got_the_same_answer_is_one_line(cli: Any, target: Any) -> None:
    url, _ = await target(lambda request: web.json_response({"moderation": {"score": 0.1}}))
    result = await cli.run("send", "before_message", "--to", url, "--simulate-retries", "--retry-delays", "0,0")
    assert result.exit_code == 0
    assert result.stdout.count("resulting data.metadata") == 1 and result.stdout.count('"score"') <= 2
    assert [line.endswith("  same answer") for line in result.stdout.splitlines()].count(True) == 2  # one per retry
    assert "Retries: same answer on all 3 attempts" in result.stdout


def test_summaries_use_names_and_a_documented_trigger_is_never_undocumented() -> None:
    body = json.loads(delivery("group_created"))
    assert describe(body).summary == "group Hiking Group created by Andrew Joseph"
    assert describe({"trigger": "message_sent"}).summary == "message_sent without data.message (data: no data)"
    assert "undocumented" in describe({"trigger": "brand_new_trigger"}).summary


def post(url: str, body: bytes, agent: str | None = None) -> None:
    request = urllib.request.Request(url + "/webhook", data=body, headers={"User-Agent": agent} if agent else {})
    urllib.request.urlopen(request, timeout=10).read()


def test_listen_events_stores_and_shows_only_those(cli: Any) -> None:
    listening = ListenProcess("--no-tunnel", "--events", "BEFORE_MESSAGE", "--max-events", "1", "--timeout", "20")
    post(listening.url, delivery("message_sent"))
    post(listening.url, delivery("before_message"))
    code, out, _ = listening.finish()
    assert code == 0
    records = ndjson(out)
    assert [r["type"] for r in records] == ["event", "stopped"] and records[0]["trigger"] == "before_message"
    stored = ndjson(cli("history", "export").stdout)
    assert [e["trigger"] for e in stored] == ["before_message"]


def test_listen_events_shows_the_others_as_one_dim_line_and_marks_probes() -> None:
    listening = ListenProcess("--no-tunnel", "--events", "legacy", "--max-events", "1", "--timeout", "20", json_out=False)
    post(listening.url, delivery("message_sent"))
    post(listening.url, delivery("before_message"), agent=f"comethook-check/{__version__}")
    code, out, _ = listening.finish()
    assert code == 0
    lines = out.splitlines()
    assert " --- message_sent (not in --events; answered 200)" in lines[0]
    assert "--> before_message [legacy] check probe  200 PASS" in lines[1]


async def test_replay_shows_the_original_answer_beside_the_new_one(cli: Any, target: Any) -> None:
    import time as clock

    from comethook_cli.engine.history.files import default_path
    from comethook_cli.engine.history.writer import HistoryWriter
    from comethook_cli.models import Exchange

    body = delivery("message_sent")
    stored = Exchange(
        id="evt_01a22ad6000000000001", received_at=clock.time(), method="POST", path="/webhook", query="", headers=(),
        body=body, info=describe(json.loads(body)), response_status=200, response_body=b'{"a": 1, "b": true}', latency_ms=1.5,
    )  # fmt: skip
    writer = HistoryWriter(default_path())
    writer._write([stored])
    writer.close()
    answers = iter([{"a": 1, "b": True}, {"a": 2, "b": True}])
    url, _ = await target(lambda request: web.json_response(next(answers)))
    same = await cli.run("replay", "--last", "--to", url)
    assert same.exit_code == 0 and "Original: 200 in 1.5 ms  now: 200  same answer" in same.stdout
    changed = await cli.run("replay", "--last", "--to", url)
    assert "Original: 200 in 1.5 ms  now: 200  the answer changed" in changed.stdout
    assert '-  "a": 1,\n+  "a": 2,' in changed.stdout

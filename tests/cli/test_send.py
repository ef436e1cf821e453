"""`comethook send` against real aiohttp servers on loopback: verdicts, exit codes, NDJSON, assertions."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from comethook_cli import speedups
from comethook_cli.cometchat.payloads import BuildOptions, IdSource, Template, build, catalog
from tests.conftest import ndjson
from tests.hostile import strict


async def test_pass_verdict_and_what_the_endpoint_received(cli: Any, target: Any) -> None:
    url, received = await target(lambda r: web.json_response({}))
    result = await cli.run("send", "before_message", "--to", url, "--text", "hello there")
    assert result.exit_code == 0, result.output
    assert "Verdict: PASS" in result.stdout
    assert "--> POST " + url in result.stdout
    request, raw = received[0]
    assert request.method == "POST" and request.headers["Content-Type"] == "Application/json"
    body = json.loads(raw)
    assert body["trigger"] == "before_message" and body["data"]["data"]["text"] == "hello there"
    assert "id" not in body["data"]


async def test_inject_shows_the_resulting_metadata(cli: Any, target: Any) -> None:
    url, _ = await target(lambda r: web.json_response({"risk": "low"}))
    result = await cli.run("send", "before_message", "--to", url, "--webhook-id", "mod1", "--expect", "inject")
    assert result.exit_code == 0, result.output
    assert "Verdict: INJECT" in result.stdout
    assert 'metadata["@injected"]["webhooks"]["mod1"]' in result.stdout
    assert '"risk": "low"' in result.stdout


async def test_an_acknowledgement_answer_is_injected_with_a_warning_that_says_what_to_answer(cli: Any, target: Any) -> None:
    url, _ = await target(lambda r: web.json_response({"status": "ok"}))
    result = await cli.run("send", "before_message", "--to", url, "--expect", "inject")
    assert result.exit_code == 0 and "Verdict: INJECT" in result.stdout
    assert "looks like an acknowledgement" in result.stderr and "answer {} to let the message pass" in result.stderr
    as_json = await cli.run("send", "before_message", "--to", url, "--json")
    record = next(line for line in ndjson(as_json.stdout) if line.get("verdict") == "inject")
    assert "acknowledgement" in record["verdict_reason"]


async def test_drop_verdict_and_failed_expectation_exits_3(cli: Any, target: Any) -> None:
    url, _ = await target(lambda r: web.json_response({"action": "do_not_propagate"}))
    ok = await cli.run("send", "before_message", "--to", url, "--expect", "drop")
    assert ok.exit_code == 0 and "Verdict: DROP" in ok.stdout
    wrong = await cli.run("send", "before_message", "--to", url, "--expect", "pass")
    assert wrong.exit_code == 3
    assert "expected verdict pass, delivery 1 got drop" in wrong.stderr


async def test_non_2xx_exits_1(cli: Any, target: Any) -> None:
    url, _ = await target(lambda r: web.Response(status=500, text="boom"))
    result = await cli.run("send", "after_message", "--to", url)
    assert result.exit_code == 1
    assert "<-- 500" in result.stdout
    assert "1 of 1 deliveries failed: HTTP 500" in result.stderr


async def test_non_json_before_message_answer_is_invalid_and_exits_1(cli: Any, target: Any) -> None:
    url, _ = await target(lambda r: web.Response(text="ok"))
    result = await cli.run("send", "before_message", "--to", url, "--json")
    assert result.exit_code == 1
    (delivery, summary, error) = ndjson(result.stdout)
    assert error == {"type": "error", "message": "1 of 1 deliveries failed: the answer is not JSON.", "exit_code": 1,
                     "hint": "CometChat needs a 2xx answer and, for before_message, a JSON object."}  # fmt: skip
    assert delivery["verdict"] == "invalid" and delivery["verdict_reason"] == "the answer is not JSON"
    assert delivery["response"] == "ok" and delivery["ok"] is False
    assert summary == {**summary, "type": "summary", "count": 1, "ok": 0, "failed": 1}


async def test_unknown_action_is_invalid_with_reason(cli: Any, target: Any) -> None:
    url, _ = await target(lambda r: web.json_response({"action": "block"}))
    result = await cli.run("send", "before_message", "--to", url)
    assert result.exit_code == 1
    assert "Verdict: INVALID" in result.stdout and "unknown action 'block'" in result.stdout


async def test_json_delivery_line_has_the_documented_fields(cli: Any, target: Any) -> None:
    url, _ = await target(lambda r: web.json_response({"ok": True}))
    result = await cli.run("send", "message_sent", "--to", url, "--json")
    assert result.exit_code == 0
    delivery, summary = ndjson(result.stdout)
    assert {"type", "trigger", "url", "status", "latency_ms", "verdict", "response", "ok", "error"} <= set(delivery)
    assert delivery["trigger"] == "message_sent" and delivery["verdict"] is None and delivery["response"] == {"ok": True}
    assert {"type", "count", "ok", "failed", "p50_ms", "p95_ms", "p99_ms", "rps"} == set(summary)
    assert result.stderr == ""


async def test_slow_answer_fails_max_latency_within_the_2s_budget(cli: Any, target: Any) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.json_response({})

    url, _ = await target(slow)
    result = await cli.run("send", "before_message", "--to", url, "--max-latency", "200")
    assert result.exit_code == 3
    assert "expected latency <= 200 ms" in result.stderr
    assert "budget" not in result.stderr  # 0.3 s is within CometChat's 2 s: what every user's send holds it to


async def test_an_answer_over_the_budget_gets_a_warning(target: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The view that shows `send`'s delivery warns when it took longer than its budget (CometChat's 2 s; 100 ms here)."""
    import aiohttp

    from comethook_cli.engine.sender import Outgoing, deliver
    from comethook_cli.outputs.views import HumanView

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.json_response({})

    url, _ = await target(slow)
    async with aiohttp.ClientSession() as session:
        slow_delivery = await deliver(session, url, Outgoing(b'{"trigger":"message_sent"}'), {}, 10)
    HumanView(budget_ms=100).delivery(slow_delivery, None)
    assert "over CometChat's 2 s budget: CometChat may time out" in capsys.readouterr().err
    HumanView().delivery(slow_delivery, None)
    assert "budget" not in capsys.readouterr().err


async def test_timeout_exits_4(cli: Any, target: Any) -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    url, _ = await target(hang)
    result = await cli.run("send", "message_sent", "--to", url, "--timeout", "0.3")
    assert result.exit_code == 4
    assert "timed out after 0.3 s" in result.stderr


async def test_connection_refused_exits_4(cli: Any, closed_port: int) -> None:
    result = await cli.run("send", "message_sent", "--to", f"http://127.0.0.1:{closed_port}/x")
    assert result.exit_code == 4
    assert f"could not connect to 127.0.0.1:{closed_port}" in result.stderr
    assert "Traceback" not in result.output


async def test_basic_auth_from_flag_and_env(cli: Any, target: Any) -> None:
    expected = "Basic " + base64.b64encode(b"cc:s3cret").decode()

    def guarded(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401)
        return web.json_response({})

    url, _ = await target(guarded)
    denied = await cli.run("send", "message_sent", "--to", url)
    assert denied.exit_code == 1 and "HTTP 401" in denied.stderr
    assert "The endpoint wants Basic auth: pass --basic-auth USER:PASS" in " ".join(denied.stderr.split())
    wrong = await cli.run("send", "message_sent", "--to", url, "--basic-auth", "cc:wrong")
    assert wrong.exit_code == 1 and "The credentials sent were refused" in " ".join(wrong.stderr.split())
    assert "wrong" not in wrong.output
    allowed = await cli.run("send", "message_sent", "--to", url, "--basic-auth", "cc:s3cret")
    assert allowed.exit_code == 0
    from_env = await cli.run("send", "message_sent", "--to", url, "--json", env={"COMETHOOK_BASIC_AUTH": "cc:s3cret"})
    assert from_env.exit_code == 0
    assert "s3cret" not in from_env.output and "s3cret" not in allowed.output


async def test_extra_headers_and_set(cli: Any, target: Any) -> None:
    url, received = await target(lambda r: web.json_response({}))
    result = await cli.run("send", "message_sent", "--to", url, "-H", "X-Trace: abc", "--add", 'data.message.tags=["a"]')
    assert result.exit_code == 0, result.output
    request, raw = received[0]
    assert request.headers["X-Trace"] == "abc"
    assert json.loads(raw)["data"]["message"]["tags"] == ["a"]
    bad = await cli.run("send", "message_sent", "--to", url, "-H", "nocolon")
    assert bad.exit_code == 2 and "Malformed header" in bad.stderr


async def test_count_and_concurrency_send_fresh_ids_and_summarize(cli: Any, target: Any) -> None:
    url, received = await target(lambda r: web.json_response({}))
    result = await cli.run("send", "message_sent", "--to", url, "--count", "40", "--concurrency", "8", "--json")
    assert result.exit_code == 0
    lines = ndjson(result.stdout)
    assert [line["type"] for line in lines] == ["delivery"] * 40 + ["summary"]
    assert lines[-1]["count"] == 40 and lines[-1]["ok"] == 40 and lines[-1]["p99_ms"] >= lines[-1]["p50_ms"]
    ids = {json.loads(raw)["data"]["message"]["id"] for _, raw in received}
    assert len(ids) == 40
    human = await cli.run("send", "message_sent", "--to", url, "--count", "5")
    assert human.exit_code == 0 and "req/s" in human.stdout and "count" in human.stdout


async def test_expect_json_on_the_answer(cli: Any, target: Any) -> None:
    url, _ = await target(lambda r: web.json_response({"result": {"status": "queued", "n": 2}}))
    good = await cli.run(
        "send", "message_sent", "--to", url, "--expect-json", "result.status=queued", "--expect-json", "result.n=2"
    )
    assert good.exit_code == 0
    bad = await cli.run("send", "message_sent", "--to", url, "--expect-json", "result.status=done")
    assert bad.exit_code == 3 and 'expected answer result.status = "done", got "queued"' in bad.stderr


async def test_expect_verdict_on_a_non_before_message_trigger_is_a_usage_error(cli: Any, target: Any) -> None:
    url, received = await target(lambda r: web.json_response({}))
    result = await cli.run("send", "message_sent", "--to", url, "--expect", "drop")
    assert result.exit_code == 2 and "needs a before_message delivery" in result.stderr
    assert received == []
    unknown = await cli.run("send", "message_sent", "--to", url, "--expect", "maybe")
    assert unknown.exit_code == 2


async def test_simulated_retries_same_answer(cli: Any, target: Any) -> None:
    url, received = await target(lambda r: web.json_response({}))
    result = await cli.run("send", "before_message", "--to", url, "--simulate-retries", "--retry-delays", "0.05,0.1", "--json")
    assert result.exit_code == 0, result.output
    lines = ndjson(result.stdout)
    assert [line.get("attempt") for line in lines if line["type"] == "delivery"] == [1, 2, 3]
    retries = next(line for line in lines if line["type"] == "retries")
    assert retries["consistent"] is True and retries["attempts"] == 3
    assert len({raw for _, raw in received}) == 1  # the exact same bytes each time


async def test_simulated_retries_different_answer_exits_3(cli: Any, target: Any) -> None:
    calls: list[int] = []

    def dedupe(request: web.Request) -> web.Response:
        calls.append(1)
        return web.json_response({"duplicate": len(calls) > 1})

    url, _ = await target(dedupe)
    result = await cli.run("send", "message_sent", "--to", url, "--simulate-retries", "--retry-delays", "0.01")
    assert result.exit_code == 3
    assert "answers differ" in result.stdout and "simulated retries got different answers" in result.stderr


async def test_own_body_from_file_and_stdin(cli: Any, target: Any, tmp_path: Path) -> None:
    url, received = await target(lambda r: web.json_response({"action": "do_not_propagate"}))
    raw = b'{ "trigger" : "before_message",\n  "data": {"text": "odd   spacing"}, "webhook": "w"}'
    path = tmp_path / "body.json"
    path.write_bytes(raw)
    result = await cli.run("send", "--body", str(path), "--to", url, "--expect", "drop")
    assert result.exit_code == 0, result.output
    assert received[0][1] == raw  # exact bytes, not re-serialised
    piped = await cli.run("send", "--body", "-", "--to", url, input=raw)
    assert piped.exit_code == 0 and received[1][1] == raw


async def test_unreadable_or_invalid_body_is_a_usage_error(cli: Any, tmp_path: Path) -> None:
    missing = await cli.run("send", "--body", str(tmp_path / "nope.json"), "--to", "http://127.0.0.1:9/")
    assert missing.exit_code == 2 and "Cannot read --body" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    invalid = await cli.run("send", "--body", str(bad), "--to", "http://127.0.0.1:9/")
    assert invalid.exit_code == 2 and "is not valid JSON" in invalid.stderr


async def test_usage_errors_exit_2_without_traceback(cli: Any) -> None:
    for args in (
        ["send", "mesage_sent", "--to", "http://127.0.0.1:9/"],
        ["send", "--to", "http://127.0.0.1:9/"],
        ["send", "message_sent"],
        ["send", "message_sent", "--to", "ftp://x"],
        ["send", "message_sent", "--to", "http://127.0.0.1:9/", "--retry-delays", "a,b", "--simulate-retries"],
    ):
        result = await cli.run(*args)
        assert result.exit_code == 2, args
        assert "Traceback" not in result.output
    suggestion = await cli.run("send", "mesage_sent", "--to", "http://127.0.0.1:9/")
    assert "Did you mean message_sent" in suggestion.stderr


async def test_ctrl_c_during_send_exits_130(target: Any) -> None:
    import signal
    import subprocess
    import sys

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response({})

    url, received = await target(hang)
    proc = await asyncio.to_thread(
        subprocess.Popen, [sys.executable, "-m", "comethook_cli", "send", "message_sent", "--to", url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for _ in range(200):
            if received:
                break
            await asyncio.sleep(0.05)
        assert received, "the delivery never arrived"
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.to_thread(proc.communicate, None, 10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "Interrupted." in err and "Traceback" not in err


async def test_url_credentials_are_basic_auth_and_a_second_authorization_is_a_usage_error(cli: Any, target: Any) -> None:
    url, received = await target(lambda r: web.json_response({}))
    with_user = url.replace("http://", "http://cc:s3cr%40t@")
    alone = await cli.run("send", "message_sent", "--to", with_user)
    assert alone.exit_code == 0, alone.output
    assert received[-1][0].headers["Authorization"] == "Basic " + base64.b64encode(b"cc:s3cr@t").decode()
    sent = len(received)
    for extra, named in (
        (["-H", "Authorization: Bearer t0ken"], "-H Authorization"),
        (["--basic-auth", "u:other"], "--basic-auth"),
    ):
        twice = await cli.run("send", "message_sent", "--to", with_user, *extra)
        assert twice.exit_code == 2, twice.output
        assert "Two sets of credentials" in twice.stderr and "--to" in twice.stderr and named in twice.stderr
        assert "Hint:" in twice.stderr and "Traceback" not in twice.output
        assert "s3cr" not in twice.output and "cc:***@" in twice.stderr  # the password never shown
    assert len(received) == sent  # refused before anything was sent


async def test_send_uses_a_password_in_the_url_but_never_prints_it(target: Any, cli: Any) -> None:
    app_url, received = await target(lambda r: web.json_response({}))
    with_password = app_url.replace("http://", "http://u:hunter22@")
    for args in ((), ("--json",), ("-v",)):
        result = await cli.run("send", "message_sent", "--to", with_password, *args)
        assert result.exit_code == 0, result.output
        assert "hunter22" not in result.output and "u:***@" in result.output
    checked = await cli.run("check", "--to", with_password, "--triggers", "message_sent")
    assert "hunter22" not in checked.output and "u:***@" in checked.output
    # The URL's credentials are the endpoint's Basic auth: check's two auth probes send none and wrong ones on purpose.
    sent = [request.headers.get("Authorization") for request, _ in received]
    assert set(sent) == {"Basic dTpodW50ZXIyMg==", None, "Basic Y29tZXRob29rLXdyb25nOmNyZWRlbnRpYWxz"}
    assert sent.count(None) == 1 and sent.count("Basic Y29tZXRob29rLXdyb25nOmNyZWRlbnRpYWxz") == 1


async def test_ctrl_c_during_send_count_prints_the_summary_of_what_was_sent_then_exits_130(target: Any) -> None:
    import signal
    import sys

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        return web.json_response({})

    url, received = await target(slow)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "comethook_cli", "send", "message_sent", "--to", url, "--count", "100000", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        while len(received) < 5:
            await asyncio.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 130, err
    *_, summary, interrupted = ndjson(out.decode())
    assert summary["type"] == "summary" and 1 <= summary["count"] < 100000, summary  # the answered ones
    assert interrupted == {"type": "error", "message": "Interrupted.", "exit_code": 130, "hint": None}
    assert "Interrupted." in err.decode() and "Traceback" not in err.decode()


# --- --count: every trigger gets fresh ids in the dict-built shape (the lean path: Bodies and the lean client) --------


NOW = 1_750_000_000.0


def paths(value: Any, prefix: str = "") -> list[str]:
    """Every key path of a JSON value, in document order (list items by index): equal lists, equal shape and order."""
    found: list[str] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found.append(f"{prefix}{key}")
        found += paths(item, f"{prefix}{key}.")
    return found


def leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, (dict, list)):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return {path: leaf for key, item in items for path, leaf in leaves(item, f"{prefix}{key}.").items()}
    return {prefix: value}


def varying(template: Template, options: BuildOptions) -> tuple[set[str], set[str]]:
    """The leaf paths whose values come from the ids and random draws, and those that come from the clock."""
    base = leaves(build(template, options, IdSource(seed=1), NOW))
    by_ids = leaves(build(template, options, IdSource(seed=2), NOW))
    by_time = leaves(build(template, options, IdSource(seed=1), NOW + 100_000.5))
    return {p for p in base if base[p] != by_ids[p]}, {p for p in base if base[p] != by_time[p]}


def cli_args(template: Template) -> list[str]:
    return [template.trigger, *(["--legacy"] if template.generation == "legacy" else [])]


async def check_every_trigger(cli: Any, target: Any, count: int = 3) -> None:
    url, received = await target(lambda request: web.json_response({}))
    for template in catalog():
        received.clear()
        result = await cli.run("send", *cli_args(template), "--to", url, "--count", str(count), "--concurrency", "2", "--json")
        assert result.exit_code == 0, (template.key, result.output)
        records = ndjson(result.stdout)
        assert [r["type"] for r in records] == ["delivery"] * count + ["summary"] and records[-1]["ok"] == count
        assert len(received) == count
        expected = build(template, BuildOptions(), IdSource(seed=1), NOW)
        by_ids, by_time = varying(template, BuildOptions())
        bodies = [json.loads(raw) for _, raw in received]
        for body in bodies:
            assert paths(body) == paths(expected), template.key  # the same keys, in the same order
            got, want = leaves(body), leaves(expected)
            assert {p: v for p, v in got.items() if p not in by_ids | by_time} == {
                p: v for p, v in want.items() if p not in by_ids | by_time
            }, template.key
            assert all(type(got[p]) is type(want[p]) for p in want), template.key
        # Fresh ids: every id-made value differs from one delivery to the next.
        for path in by_ids:
            assert len({json.dumps(leaves(body)[path]) for body in bodies}) == count, (template.key, path)
        # A body with no id (a before_message's message is not saved yet) is the same bytes within a second, as before.
        assert len({raw for _, raw in received}) == (count if by_ids else len({json.dumps(leaves(b)) for b in bodies}))


async def test_every_trigger_gets_fresh_ids_in_the_dict_built_shape(cli: Any, target: Any) -> None:
    await check_every_trigger(cli, target)


async def test_without_the_speedups_every_trigger_gets_the_same(cli: Any, target: Any, without_speedups: None) -> None:
    assert speedups.active() == {"orjson": False, "uvloop": False}
    await check_every_trigger(cli, target, count=2)


async def test_a_whole_process_without_speedups_sends_a_run_of_fresh_bodies(target: Any) -> None:
    url, received = await target(lambda request: web.json_response({"n": 1}))
    command = [sys.executable, "-m", "comethook_cli", "send", "message_sent", "--to", url, "--count", "50", "--concurrency", "8"]
    done = await asyncio.to_thread(
        subprocess.run, [*command, "--json"], capture_output=True, text=True, timeout=30,
        env={**os.environ, "COMETHOOK_NO_SPEEDUPS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = ndjson(done.stdout)
    assert len(records) == 51 and all(r["response"] == {"n": 1} and r["ok"] for r in records[:-1])
    assert len({json.loads(raw)["data"]["message"]["id"] for _, raw in received}) == 50


async def test_a_before_message_run_judges_every_delivery(cli: Any, target: Any) -> None:
    url, _ = await target(lambda request: web.json_response({"action": "do_not_propagate"}))
    result = await cli.run(
        "send", "before_message", "--to", url, "--count", "20", "--concurrency", "4", "--expect", "drop", "--json"
    )
    assert result.exit_code == 0, result.output
    records = ndjson(result.stdout)
    assert [r["verdict"] for r in records if r["type"] == "delivery"] == ["drop"] * 20


# --- what send shows of an answer, and --add with NaN -----------------------------------------------------------------


async def test_long_answers_are_cut_in_the_human_output_and_v_shows_more(target: Any, cli: Any) -> None:
    text = "".join(f"line {n:05d}\n" for n in range(500))  # 5,500 characters
    url, _ = await target(lambda r: web.Response(text=text))
    short = await cli.run("send", "message_sent", "--to", url)
    assert short.exit_code == 0 and "line 00100" in short.stdout and "line 00499" not in short.stdout
    assert "… 3,500 more characters; -v shows more" in short.stdout
    full = await cli.run("send", "message_sent", "--to", url, "-v")
    assert "line 00499" in full.stdout and "more characters" not in full.stdout
    json_url, _ = await target(lambda r: web.json_response(list(range(3000))))
    listed = await cli.run("send", "message_sent", "--to", json_url)
    assert "more characters; -v shows more" in listed.stdout and "2999" not in listed.stdout
    whole = await cli.run("send", "message_sent", "--to", json_url, "--json")
    assert ndjson(whole.stdout)[0]["response"] == list(range(3000))  # --json has all of it


async def test_set_nan_sends_a_string_not_an_invalid_number(target: Any, cli: Any) -> None:
    url, received = await target(lambda r: web.json_response({}))
    result = await cli.run("send", "message_sent", "--to", url, "--add", "data.score=NaN")
    assert result.exit_code == 0
    assert strict(received[0][1].decode())["data"]["score"] == "NaN"

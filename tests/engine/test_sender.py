"""The HTTP client seam: deliver() against real loopback servers, its typed failures, and the run statistics; send,
check and replay against hostile endpoints (answers bounded in bytes and time), TLS, and the Content-Type casing on
the wire."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from comethook_cli.cli.send import outcome
from comethook_cli.cometchat.payloads import BuildOptions, build, encode, find_template
from comethook_cli.engine import checks, values
from comethook_cli.engine.runs import Expectations, check_expectations, compare_attempts, percentile, summarize
from comethook_cli.engine.sender import CONTENT_TYPE, Outgoing, connector, deliver
from comethook_cli.errors import AssertionFailed, ComethookError, UnreachableError, UsageError
from comethook_cli.models import Delivery
from tests.cli.test_replay import record_exchange
from tests.conftest import ndjson
from tests.hostile import HostileServer


def outgoing(trigger: str = "message_sent") -> Outgoing:
    payload = build(find_template(trigger), BuildOptions(text="hi"))
    return Outgoing(encode(payload), payload, trigger)


async def send(url: str, out: Outgoing | None = None, headers: dict[str, str] | None = None, **options: Any) -> Delivery:
    async with aiohttp.ClientSession(connector=connector(1, options.pop("insecure", False))) as session:
        return await deliver(session, url, out or outgoing(), headers or {}, options.pop("timeout", 10.0), **options)


# --- deliver(): what came back -------------------------------------------------------------------------------


async def test_deliver_reads_status_answer_and_latency(target: Any) -> None:
    url, received = await target(lambda request: web.json_response({"seen": True}, status=202))
    d = await send(url)
    assert (d.status, d.response, d.ok, d.failure, d.error) == (202, {"seen": True}, True, None, None)
    assert d.latency_ms is not None and d.latency_ms > 0 and d.reached
    assert d.response_body == b'{"seen": true}'
    request, body = received[0]
    assert json.loads(body)["trigger"] == "message_sent"
    # CometChat's own casing, sent once.
    assert request.headers.getall("Content-Type") == [CONTENT_TYPE]


async def test_a_given_content_type_wins_and_is_sent_once(target: Any) -> None:
    url, received = await target(lambda request: web.json_response({}))
    await send(url, headers={"content-type": "application/json; charset=utf-8"})
    assert received[0][0].headers.getall("Content-Type") == ["application/json; charset=utf-8"]


async def test_a_non_2xx_answer_is_not_ok_but_not_a_failure_to_answer(target: Any) -> None:
    url, _ = await target(lambda request: web.Response(status=500, text="boom"))
    d = await send(url)
    assert (d.status, d.ok, d.error, d.failure, d.response) == (500, False, "HTTP 500", None, "boom")


async def test_a_before_message_answer_gets_its_verdict(target: Any) -> None:
    url, _ = await target(lambda request: web.json_response({"action": "do_not_propagate"}))
    d = await send(url, outgoing("before_message"))
    assert d.verdict is not None and d.verdict.kind == "drop" and d.ok


# --- deliver(): typed failures -------------------------------------------------------------------------------


async def test_a_refused_connection_is_unreachable(closed_port: int) -> None:
    d = await send(f"http://127.0.0.1:{closed_port}/hook")
    assert (d.status, d.failure, d.reached, d.ok) == (None, "unreachable", False, False)
    assert d.error is not None and "could not connect" in d.error


async def test_no_answer_in_time_is_a_timeout_that_reached_the_endpoint(target: Any) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    url, _ = await target(slow)
    d = await send(url, timeout=0.2)
    assert (d.status, d.failure, d.reached) == (None, "timeout", True)
    assert d.error == "timed out after 0.2 s"


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
async def test_an_answer_over_max_answer_is_too_large(target: Any, declared: bool) -> None:
    async def big(request: web.Request) -> web.StreamResponse:
        if declared:
            return web.Response(body=b"x" * 5000)
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"x" * 500)
        await response.write_eof()
        return response

    url, _ = await target(big)
    d = await send(url, max_answer=1000)
    assert (d.status, d.failure, d.ok, d.response, d.reached) == (200, "too_large", False, None, True)
    assert d.error is not None and "answer larger than 1,000 bytes" in d.error


@contextlib.asynccontextmanager
async def hang_up_server() -> AsyncIterator[str]:
    """A server that reads the request and closes the connection without a word."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_server_that_hangs_up_is_a_protocol_failure() -> None:
    async with hang_up_server() as url:
        d = await send(url)
    assert (d.status, d.failure, d.reached) == (None, "protocol", True)
    assert d.error == "the server closed the connection without answering"


async def test_an_untrusted_certificate_is_a_tls_failure(https_url: str) -> None:
    d = await send(https_url)
    assert (d.status, d.failure, d.reached) == (None, "tls", False)
    assert (await send(https_url, insecure=True)).status == 200


# --- the exit code, decided in the command layer from the typed failure ---------------------------------------


def made(**fields: Any) -> Delivery:
    defaults: dict[str, Any] = {"trigger": "message_sent", "url": "http://x", "status": 200, "latency_ms": 1.0,
                                "response": {}, "ok": True}  # fmt: skip
    return Delivery(**{**defaults, **fields})


@pytest.mark.parametrize(
    ("failure", "hint"),
    [("unreachable", "Is the endpoint running"), ("tls", "SSL_CERT_FILE"), ("timeout", "Raise --timeout")],
)  # fmt: skip
def test_every_failure_to_answer_exits_4_with_its_hint(failure: Any, hint: str) -> None:
    # The error text is deliberately unlike aiohttp's: the decision must come from `failure`, not from words.
    d = made(status=None, latency_ms=None, response=None, ok=False, error="something", failure=failure)
    with pytest.raises(UnreachableError) as raised:
        outcome([made(), d], [])
    assert raised.value.message == "1 of 2 deliveries got no answer: something." and hint in (raised.value.hint or "")


def test_too_large_is_a_failure_with_its_own_hint_and_bad_status_exits_1() -> None:
    with pytest.raises(ComethookError) as raised:
        outcome([made(response=None, ok=False, error="too big", failure="too_large")], [])
    assert type(raised.value) is ComethookError and "--max-answer" in (raised.value.hint or "")
    with pytest.raises(ComethookError) as bad:
        outcome([made(status=500, ok=False, error="HTTP 500")], [])
    assert type(bad.value) is ComethookError and "2xx" in (bad.value.hint or "")


def test_assertions_exit_3_and_all_well_returns() -> None:
    outcome([made()], [])
    with pytest.raises(AssertionFailed):
        outcome([made()], ["expected verdict drop, delivery 1 got None"])
    with pytest.raises(AssertionFailed, match="simulated retries"):
        outcome([made(), made(attempt=2)], [], compare_attempts([made(), made(attempt=2, response={"n": 2})]))


# --- runs: statistics and comparisons ------------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 11)]
    assert [percentile(values, p) for p in (0, 10, 50, 51, 95, 100)] == [1.0, 1.0, 5.0, 6.0, 10.0, 10.0]
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0


def test_summarize_counts_and_ignores_missing_latencies() -> None:
    runs = [made(latency_ms=float(ms)) for ms in (30, 10, 20)] + [made(status=None, latency_ms=None, ok=False)]
    s = summarize(runs, elapsed=2.0)
    assert (s.count, s.ok, s.failed, s.p50_ms, s.p95_ms, s.p99_ms, s.rps) == (4, 3, 1, 20.0, 30.0, 30.0, 2.0)
    assert summarize([], 0).rps == 0.0 and summarize([], 0).p50_ms is None


def test_compare_attempts_names_the_first_attempt_that_differs() -> None:
    same = compare_attempts([made(), made(attempt=2), made(attempt=3)])
    assert (same.attempts, same.consistent, same.detail) == (3, True, "200 {}")
    differ = compare_attempts([made(), made(attempt=2), made(attempt=3, status=500, response="x" * 200)])
    assert not differ.consistent and differ.detail.startswith("attempt 1 got 200 {}, attempt 3 got 500 ")
    assert differ.detail.endswith("…") and len(differ.detail) < 150


def test_check_expectations_says_each_broken_assertion_once() -> None:
    runs = [made(response={"a": 1}, latency_ms=50.0), made(response={"a": 2}, latency_ms=5.0), made(response={"a": 2})]
    failures = check_expectations(runs, Expectations("ok", (("a", 1),), 10))
    assert failures == ["expected latency <= 10 ms, a delivery took 50.0 ms", "expected answer a = 1, got 2"]
    assert check_expectations(runs[:1], Expectations("ok", (("a", 1),))) == []


# --- run_checks: reachability from the typed failure ---------------------------------------------------------


async def test_run_checks_says_unreachable_only_when_nothing_got_through(closed_port: int, target: Any) -> None:
    templates = values.triggers("message_sent")
    refused = await checks.run_checks(f"http://127.0.0.1:{closed_port}/hook", templates, timeout=2)
    assert (refused.reached, refused.failure) == (False, "unreachable")
    assert all(r.status in ("fail", "warn") for r in refused.results)
    url, _ = await target(lambda request: web.json_response({}))
    answered = await checks.run_checks(url, templates)
    assert (answered.reached, answered.failure) == (True, None) and answered.seconds > 0


async def test_run_checks_counts_a_timeout_as_reached(target: Any) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    url, _ = await target(slow)
    run = await checks.run_checks(url, values.triggers("message_sent"), timeout=0.2)
    assert (run.reached, run.failure) == (True, None)
    assert any(r.status == "fail" and "timed out" in r.detail for r in run.results)


async def test_run_checks_names_a_tls_failure(https_url: str) -> None:
    run = await checks.run_checks(https_url, values.triggers("message_sent"))
    assert (run.reached, run.failure) == (False, "tls")


# --- replay(): a stored exchange delivered again ------------------------------------------------------------


async def test_replay_delivers_the_stored_bytes_again_changed_by_edits(target: Any, tmp_path: Any) -> None:
    from comethook_cli.engine import replay
    from comethook_cli.engine.exchanges import redact_headers
    from comethook_cli.engine.history.reader import History
    from comethook_cli.engine.history.writer import HistoryWriter
    from tests.engine.history.test_reader import exchange

    stored = exchange("evt_replay_1", "message_sent", "original")
    headers = (
        ("Content-Type", "application/json"),
        ("Authorization", "Basic dTpw"),
        ("X-Trace", "t1"),
        ("Cookie", "s=1"),
        ("X-Note", "[redacted] upstream"),
    )
    stored = replace(stored, headers=redact_headers(headers))
    writer = HistoryWriter(tmp_path / "h.db")
    await writer.record(stored)
    writer.close()
    url, received = await target(lambda request: web.json_response({"ok": 1}))
    with History(tmp_path / "h.db") as history:
        exact = await replay.replay("replay_1", url, history=history)
        changed = await replay.replay(
            "evt_replay",
            url,
            replay.Edits(sets=[("data.message.data.text", "changed")]),
            history=history,
            headers={"x-trace": "t2"},
        )
    assert (exact.status, exact.response, changed.status) == (200, {"ok": 1}, 200)
    (first, first_body), (second, second_body) = received
    assert first_body == stored.body  # the exact bytes
    assert json.loads(second_body)["data"]["message"]["data"]["text"] == "changed"
    # Redacted headers are left out by name; a given header replaces the stored one of that name.
    assert "Authorization" not in first.headers and "Cookie" not in first.headers
    assert first.headers.getall("X-Trace") == ["t1"] and second.headers.getall("X-Trace") == ["t2"]
    assert first.headers.get("X-Note") == "[redacted] upstream"  # decided by name, not by what a value says
    with pytest.raises(UsageError, match="not forwarded anywhere"):
        replay.plan(stored)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://h/x?token=abc&n=1", "http://h/x?token=[redacted]&n=1"),
        ("http://h/x?Access_Token=a&api-key=b&apikey=c&KEY=d&client_secret=e&password=f#frag",
         "http://h/x?Access_Token=[redacted]&api-key=[redacted]&apikey=[redacted]&KEY=[redacted]&client_secret=[redacted]"
         "&password=[redacted]#frag"),
        ("http://h/x?monkey=1&tokens=2&keyword=3&token=", "http://h/x?monkey=1&tokens=2&keyword=3&token="),  # not secrets; empty
        ("http://h/x?t%6Fken=abc", "http://h/x?t%6Fken=[redacted]"),  # the name is compared decoded, kept as it came
        ("http://u:p@ss@h/x?key=1", "http://u:***@h/x?key=[redacted]"),
    ],
)  # fmt: skip
def test_redact_url_hides_passwords_and_secret_query_values(url: str, shown: str) -> None:
    from comethook_cli.engine.urls import redact_url

    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("url", "bare", "credentials"),
    [
        ("http://h:1/x?a=1", "http://h:1/x?a=1", None),
        ("http://u:pw@h:1/x", "http://h:1/x", "u:pw"),
        ("https://u%40x:p%3Aw@ss@h/x", "https://h/x", "u@x:p:w@ss"),  # the authority ends at its last @
        ("http://u@h/x", "http://h/x", "u:"),
        ("http://h/x?next=http://a:b@c", "http://h/x?next=http://a:b@c", None),  # an @ past the authority is not user info
    ],
)
def test_take_credentials_takes_user_info_out_of_the_url(url: str, bare: str, credentials: str | None) -> None:
    from comethook_cli.engine.urls import take_credentials

    assert take_credentials(url) == (bare, credentials)


# --- send, check and replay against hostile endpoints: answers bounded in bytes and time ---------------------------


@pytest.mark.parametrize("mode", ["huge", "endless"])
async def test_send_refuses_an_answer_over_max_answer(hostile: HostileServer, cli: Any, mode: str) -> None:
    result = await asyncio.wait_for(cli.run("send", "message_sent", "--to", f"{hostile.url}/{mode}", "--timeout", "30"), 20)
    assert result.exit_code == 1, result.output
    assert "answer larger than 1,048,576 bytes" in result.stderr and "--max-answer" in result.stderr
    assert "Traceback" not in result.output
    assert hostile.streamed < 20 * 1024 * 1024


async def test_max_answer_sets_the_cap_for_send(target: Any, cli: Any) -> None:
    url, _ = await target(lambda r: web.Response(text="y" * 5000))
    small = await cli.run("send", "message_sent", "--to", url, "--max-answer", "1000", "--json")
    (line, _summary, error) = ndjson(small.stdout)
    assert error["type"] == "error" and error["exit_code"] == 1 and "--max-answer" in error["hint"]
    assert (
        small.exit_code == 1
        and line["ok"] is False
        and line["error"] == "answer larger than 1,000 bytes (--max-answer), Content-Length 5,000"
    )
    assert line["status"] == 200 and line["response"] is None
    enough = await cli.run("send", "message_sent", "--to", url, "--max-answer", "5000")
    assert enough.exit_code == 0, enough.output


async def test_timeout_bounds_the_whole_exchange_including_the_body(hostile: HostileServer, cli: Any) -> None:
    started = time.monotonic()
    result = await asyncio.wait_for(cli.run("send", "message_sent", "--to", f"{hostile.url}/drip", "--timeout", "1"), 15)
    assert result.exit_code == 4 and "timed out after 1 s" in result.stderr
    assert time.monotonic() - started < 10


async def test_garbage_answer_is_a_clear_failure(hostile: HostileServer, cli: Any) -> None:
    result = await cli.run("send", "message_sent", "--to", f"{hostile.url}/garbage")
    # The server was reached and answered, only not with HTTP: exit 1 (a bad answer), not 4 (nobody there).
    assert result.exit_code == 1 and "the answer was not valid HTTP" in result.stderr and "Traceback" not in result.output
    assert "did not answer with HTTP" in result.stderr and "Is the endpoint running" not in result.stderr


async def test_check_fails_an_endpoint_with_an_endless_answer(hostile: HostileServer, cli: Any) -> None:
    result = await asyncio.wait_for(
        cli.run("check", "--to", f"{hostile.url}/endless", "--triggers", "message_sent", "--json"), 30
    )
    assert result.exit_code == 3, result.output
    accepted = next(c for c in ndjson(result.stdout) if c.get("name") == "message_sent (current) accepted")
    assert accepted["status"] == "fail" and "answer larger than 1,048,576 bytes" in accepted["detail"]


async def test_replay_refuses_an_answer_over_max_answer(hostile: HostileServer, cli: Any, listen_process: Any) -> None:
    await asyncio.to_thread(record_exchange, cli, listen_process)
    result = await asyncio.wait_for(cli.run("replay", "--last", "--to", f"{hostile.url}/huge"), 20)
    assert result.exit_code == 1 and "answer larger than 1,048,576 bytes" in result.stderr
    capped = await cli.run("replay", "--last", "--to", f"{hostile.url}/ok", "--max-answer", "1")
    assert capped.exit_code == 1 and "answer larger than 1 bytes" in capped.stderr


# --- TLS: an untrusted certificate, --insecure, SSL_CERT_FILE ------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def https_url(aiohttp_server: Any, certificate: tuple[Path, Path]) -> str:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    server = await aiohttp_server(app, host="127.0.0.1", ssl=context)
    return f"https://127.0.0.1:{server.port}/hook"


async def test_self_signed_endpoint_fails_with_a_hint_and_insecure_gets_through(https_url: str, cli: Any) -> None:
    refused = await cli.run("send", "message_sent", "--to", https_url)
    assert refused.exit_code == 4 and "TLS certificate not trusted" in refused.stderr
    assert "SSL_CERT_FILE" in refused.stderr and "--insecure" in refused.stderr
    insecure = await cli.run("send", "message_sent", "--to", https_url, "-k")
    assert insecure.exit_code == 0, insecure.output
    assert "Warning: --insecure: TLS certificates are not verified" in insecure.stderr
    checked = await cli.run("check", "--to", https_url, "--insecure", "--triggers", "message_sent")
    assert checked.exit_code == 0, checked.output
    assert "--insecure" in checked.stderr
    unchecked = await cli.run("check", "--to", https_url, "--triggers", "message_sent")
    assert unchecked.exit_code == 4 and "SSL_CERT_FILE" in unchecked.stderr


async def test_replay_takes_insecure_too(https_url: str, cli: Any, listen_process: Any) -> None:
    await asyncio.to_thread(record_exchange, cli, listen_process)
    assert (await cli.run("replay", "--last", "--to", https_url)).exit_code == 4
    replayed = await cli.run("replay", "--last", "--to", https_url, "--insecure")
    assert replayed.exit_code == 0 and "--insecure" in replayed.stderr


async def test_ssl_cert_file_makes_the_certificate_trusted(https_url: str, certificate: tuple[Path, Path]) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "comethook_cli", "send", "message_sent", "--to", https_url,
        env={**os.environ, "SSL_CERT_FILE": str(certificate[0])},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()


# --- the Content-Type casing on the wire: the live one sent, the documented one probed by check -----------------------


async def raw_receiver(aiohttp_server: Any) -> tuple[str, list[str]]:
    """A receiver that records the Content-Type exactly as it arrived."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers["Content-Type"])
        await request.read()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", handle)
    server = await aiohttp_server(app)
    return str(server.make_url("/hook")), seen


async def test_send_puts_the_live_casing_on_the_wire(cli: Any, aiohttp_server: Any) -> None:
    url, seen = await raw_receiver(aiohttp_server)
    assert (await cli.run("send", "message_sent", "--to", url)).exit_code == 0
    assert (await cli.run("send", "message_sent", "--to", url, "--content-type", "application/json")).exit_code == 0
    assert (await cli.run("send", "message_sent", "--to", url, "--content-type", "x/y", "-H", "content-type: a/b")).exit_code == 0
    assert seen == ["Application/json", "application/json", "a/b"]


async def test_check_sends_the_live_casing_and_probes_the_documented_one(cli: Any, aiohttp_server: Any) -> None:
    url, seen = await raw_receiver(aiohttp_server)
    result = await cli.run("check", "--to", url, "--triggers", "message_sent", "--json")
    assert result.exit_code == 0, result.output
    assert seen.count("application/json") == 1 and set(seen) == {"Application/json", "application/json"}
    names = {line["name"] for line in ndjson(result.stdout) if line["type"] == "check"}
    assert "Content-Type: application/json accepted" in names


async def test_check_fails_a_receiver_that_only_takes_the_documented_casing(cli: Any, target: Any) -> None:
    async def strict(request: web.Request) -> web.Response:
        if request.headers.get("Content-Type") != "application/json":
            return web.json_response({"error": "unsupported media type"}, status=415)
        return web.json_response({})

    url, _ = await target(strict)
    result = await cli.run("check", "--to", url, "--triggers", "message_sent", "--json")
    assert result.exit_code == 3
    lines = {line["name"]: line for line in ndjson(result.stdout) if line["type"] == "check"}
    accepted = lines["message_sent (current) accepted"]
    assert (
        accepted["status"] == "fail" and "Application/json" in accepted["detail"] and "case-insensitively" in accepted["detail"]
    )
    assert lines["Content-Type: application/json accepted"]["status"] == "pass"

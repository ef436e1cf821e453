"""Hostile servers on the client side: a bad app behind --forward-to, and bad endpoints for send, check
and replay. Bounded bytes and time, copies that never delay the primary, odd headers relayed right, strict JSON, TLS."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from comethook_cli.cometchat.rules import Responder
from comethook_cli.engine.forwarder import Forwarder
from comethook_cli.engine.listener import Listener, ListenerConfig
from comethook_cli.models import Exchange
from comethook_cli.outputs.wire import Event
from tests.cli.test_replay import record_exchange
from tests.conftest import forward_config, hub_for, ndjson
from tests.hostile import HostileServer

AFTER = b'{"trigger": "after_message", "data": {"message": {"data": {"text": "hi"}}}}'
DROP = {"action": "do_not_propagate"}


def strict(line: str) -> Any:
    """Parse like Node's JSON.parse: NaN and Infinity are errors."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(line, parse_constant=refuse)


@pytest.fixture
async def hostile() -> AsyncIterator[HostileServer]:
    server = await HostileServer().start()
    yield server
    await server.stop()


class Forwarding:
    def __init__(self, url: str, exchanges: list[Exchange], warnings: list[str]) -> None:
        self.url, self.exchanges, self.warnings = url, exchanges, warnings


@pytest.fixture
async def forwarding() -> AsyncIterator[Callable[..., Any]]:
    running: list[tuple[Listener, Forwarder]] = []

    async def start(*targets: str, fallback: str = "error", timeout: float = 5, max_answer: int = 1024 * 1024) -> Forwarding:
        exchanges: list[Exchange] = []
        warnings: list[str] = []
        forwarder = Forwarder.from_config(
            forward_config(tuple(targets), (), timeout, fallback, max_answer=max_answer), warnings.append, Responder()
        )
        listener = Listener(ListenerConfig(port=0), forwarder, hub_for(exchanges.append, None, warnings.append))
        await listener.start()
        running.append((listener, forwarder))
        return Forwarding(listener.local_url, exchanges, warnings)

    yield start
    for listener, forwarder in running:
        await listener.stop()
        await forwarder.close()


async def post(
    url: str, body: bytes = AFTER, headers: dict[str, str] | None = None, timeout: float = 20, **kwargs: Any
) -> tuple[int, bytes, aiohttp.ClientResponse]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout), **kwargs) as response,
    ):
        return response.status, await response.read(), response


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


# --- item 2: a bad app behind --forward-to --------------------------------------------------------------------


async def test_every_hostile_answer_gets_the_fallback_and_the_listener_keeps_serving(
    hostile: HostileServer, forwarding: Any
) -> None:
    running = await forwarding(hostile.url, fallback="drop", timeout=2)
    for mode in ("endless", "huge", "drip", "garbage"):
        status, body, _ = await post(running.url + f"/{mode}")
        assert (status, json.loads(body)) == (200, DROP), mode
        assert running.exchanges[-1].answered_by == "comethook (fallback drop)"
    endless, huge, drip, garbage = (e.forward_error or "" for e in running.exchanges)
    assert "answer larger than 1,048,576 bytes" in endless
    assert "Content-Length 4,294,967,296" in huge
    assert "no answer within 2 s" in drip
    assert garbage
    # Reading stopped at the cap: the app pushed a few MB into socket buffers at most, not its 200 MB each.
    assert hostile.streamed < 20 * 1024 * 1024
    too_large = [w for w in running.warnings if "answered more than" in w]
    assert len(too_large) == 2 and f"{hostile.url}/endless" in too_large[0] and "4,294,967,296" in too_large[1]
    assert "--fallback drop" in too_large[0]
    status, body, _ = await post(running.url + "/ok")
    assert (status, body) == (200, b"{}")


async def test_max_answer_is_the_cap_for_the_listener(hostile: HostileServer, forwarding: Any) -> None:
    running = await forwarding(hostile.url, max_answer=1)  # the app's `{}` is 2 bytes
    status, body, _ = await post(running.url + "/ok")
    assert status == 502 and "answer larger than 1 bytes" in json.loads(body)["error"]


async def test_listener_memory_stays_bounded_while_the_app_streams_endlessly(hostile: HostileServer, listen_process: Any) -> None:
    listener = await asyncio.to_thread(listen_process, "--forward-to", hostile.url, "--fallback", "pass", "--no-tunnel")
    for _ in range(3):  # warm up: imports, the client session, the history database
        assert (await post(listener.url + "/ok"))[:2] == (200, b"{}")
    await asyncio.sleep(0.3)
    idle = rss_mb(listener.proc.pid)
    for round_ in range(6):
        status, body, _ = await post(listener.url + ("/endless" if round_ % 2 else "/huge"))
        assert (status, body) == (200, b"{}")  # --fallback pass
        grown = rss_mb(listener.proc.pid) - idle
        assert grown < 50, f"listener RSS grew {grown:.0f} MB after {round_ + 1} hostile answers"
    concurrent = await asyncio.gather(*(post(listener.url + "/endless") for _ in range(10)))
    assert all(status == 200 for status, _, _ in concurrent)
    assert rss_mb(listener.proc.pid) - idle < 50


# --- item 6: copies never delay the primary -------------------------------------------------------------------


async def test_a_copy_target_that_never_answers_does_not_delay_600_primaries(
    hostile: HostileServer, forwarding: Any, aiohttp_server: Any
) -> None:
    # The bound of 64 copies in flight, at scale. That the copies' pool is not the primary's is shown by
    # test_forwarder.py::test_the_primary_pool_is_not_the_copies_pool (a primary pool of 4, copies that hang).
    async def fast(request: web.Request) -> web.Response:
        answer = web.json_response({"primary": True})
        answer.force_close()  # every primary needs a fresh connection, as from an app that does not keep them alive
        return answer

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fast)
    primary = await aiohttp_server(app, host="127.0.0.1")
    running = await forwarding(f"http://127.0.0.1:{primary.port}", hostile.url + "/silent", timeout=30)
    slowest = 0.0
    answers: list[tuple[int, bytes]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=50)) as session:

        async def one() -> None:
            nonlocal slowest
            started = time.monotonic()
            async with session.post(running.url + "/hook", data=AFTER, timeout=aiohttp.ClientTimeout(total=20)) as response:
                answers.append((response.status, await response.read()))
            slowest = max(slowest, time.monotonic() - started)

        await asyncio.gather(*(one() for _ in range(600)))
    assert len(answers) == 600 and all(a == (200, b'{"primary": true}') for a in answers)
    assert not [e for e in running.exchanges if e.forward_error]  # none got the fallback
    assert slowest < 5, f"a primary answer took {slowest:.1f} s"
    dropped = [w for w in running.warnings if w.startswith("dropped")]
    assert 1 <= len(dropped) <= 2 and "64 copies already in flight" in dropped[0]  # rate-limited, not 536 lines


# --- item 9: odd requests and answers relayed right ------------------------------------------------------------


async def test_expect_100_continue_does_not_hang_the_forward(hostile: HostileServer, forwarding: Any) -> None:
    # The hostile app never sends "100 Continue": relaying Expect would leave the forward waiting until its timeout.
    running = await forwarding(hostile.url, timeout=3)
    status, body, _ = await post(running.url + "/ok", expect100=True, timeout=10)
    assert (status, body) == (200, b"{}") and running.exchanges[0].forward_error is None
    assert "expect" not in hostile.received[0].headers


async def test_headers_named_in_connection_are_hop_by_hop_both_ways(hostile: HostileServer, forwarding: Any) -> None:
    running = await forwarding(hostile.url)
    headers = {"Connection": "keep-alive, X-Hop", "X-Hop": "for comethook only", "X-Trace": "t1"}
    status, _, response = await post(running.url + "/cookies", headers=headers)
    assert status == 200
    relayed = hostile.received[0].headers
    assert "x-hop" not in relayed and relayed["x-trace"] == "t1"
    assert response.headers.getall("Set-Cookie") == ["a=1", "b=2"]  # both repeats survive
    assert response.headers["X-App"] == "1" and "X-Internal" not in response.headers


# --- item 3: send, check and replay against hostile endpoints --------------------------------------------------


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


# --- item 11: strict JSON -------------------------------------------------------------------------------------


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
async def test_listener_refuses_nan_and_infinity(forwarding: Any, hostile: HostileServer, constant: bytes) -> None:
    running = await forwarding(hostile.url)
    status, body, _ = await post(running.url + "/ok", b'{"trigger": "after_message", "score": ' + constant + b"}")
    assert status == 400 and json.loads(body) == {"error": "body is not JSON"}
    assert running.exchanges == [] and hostile.received == []


async def test_a_nan_answer_is_text_and_every_json_line_stays_strict(hostile: HostileServer, forwarding: Any, cli: Any) -> None:
    running = await forwarding(hostile.url)
    status, body, _ = await post(running.url + "/nan")
    assert (status, body) == (200, b'{"score": NaN, "tag": "x"}')  # the app's bytes go back unchanged
    event = strict(Event(running.exchanges[0]).encode())
    assert event["response"]["body"] == '{"score": NaN, "tag": "x"}'  # text: it is not JSON
    result = await cli.run("send", "before_message", "--to", hostile.url + "/nan", "--json")
    lines = [strict(line) for line in result.stdout.splitlines()]
    assert lines[0]["response"] == '{"score": NaN, "tag": "x"}' and lines[0]["verdict_reason"] == "the answer is not JSON"
    assert result.exit_code == 1


async def test_set_nan_sends_a_string_not_an_invalid_number(target: Any, cli: Any) -> None:
    url, received = await target(lambda r: web.json_response({}))
    result = await cli.run("send", "message_sent", "--to", url, "--add", "data.score=NaN")
    assert result.exit_code == 0
    assert strict(received[0][1].decode())["data"]["score"] == "NaN"


# --- item 17: TLS -----------------------------------------------------------------------------------------------


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

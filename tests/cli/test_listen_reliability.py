"""The reliability suite: fuzzing, bursts, SIGINT mid-burst, a misbehaving forward target. Bounded in time."""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comethook_cli.cometchat.rules import Responder
from comethook_cli.engine.forwarder import Forwarder
from comethook_cli.engine.history.reader import History
from comethook_cli.engine.listener import Listener, ListenerConfig
from comethook_cli.models import Exchange
from tests.conftest import ThreadedListener, forward_config, hub_for


@pytest.fixture(scope="module")
def threaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedListener]:
    running = ThreadedListener(tmp_path_factory.mktemp("fuzz") / "history.db")
    yield running
    running.close()


TOKEN = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20)
HEADER_VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
BODIES = (
    st.binary(max_size=2048)
    | st.text(max_size=500).map(lambda t: t.encode("utf-8"))
    | JSON_VALUES.map(lambda v: json.dumps(v).encode())
    | st.fixed_dictionaries({"trigger": st.text(max_size=30), "data": JSON_VALUES}).map(lambda v: json.dumps(v).encode())
    | st.sampled_from(
        [
            b"",
            b"{",
            b"[]",
            b"null",
            b'{"trigger": null}',
            b'{"trigger": "before_message", "data": 5}',
            b'{"trigger": "message_sent", "data": {"message": []}}',
            b"\xff\xfe\x00",
        ]
    )
)
VALID = b'{"trigger": "after_message", "data": {"data": {"text": "still alive"}}, "webhook": "w"}'


def request(port: int, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]) | TOKEN.map(str.upper),
    path=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/-_.~%?&=+", max_size=40).map(lambda p: "/" + p),
    headers=st.dictionaries(TOKEN, HEADER_VALUE, max_size=5),
    content_type=st.sampled_from(["application/json", "Application/json", "text/plain", "", "multipart/form-data", "x/\u00e9"]),
    body=BODIES,
)
def test_fuzzed_requests_never_get_a_5xx_and_the_listener_keeps_working(
    threaded: ThreadedListener, method: str, path: str, headers: dict[str, str], content_type: str, body: bytes
) -> None:
    headers = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "transfer-encoding", "host", "connection")}
    if content_type.isascii():
        headers["Content-Type"] = content_type
    status, _ = request(threaded.port, method, path, headers, body)
    assert status < 500
    before = len(threaded.exchanges)
    status, answer = request(threaded.port, "POST", "/webhook", {"Content-Type": "application/json"}, VALID)
    assert (status, answer) == (200, b"{}")
    assert len(threaded.exchanges) == before + 1
    latest = threaded.exchanges[-1]
    assert latest.body == VALID and History(threaded.db).get(latest.id).body == VALID
    assert threaded.warnings == []


def start_listener(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path, str]:
    """`comethook listen --json` as a subprocess writing NDJSON to a file (a pipe nobody reads would block it)."""
    out = tmp_path / "events.ndjson"
    stream = out.open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "comethook_cli", "listen", "--port", "0", "--json", *args],
                            stdout=stream, stderr=subprocess.PIPE)  # fmt: skip
    stream.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        text = out.read_text() if out.exists() else ""
        if text.endswith("\n") and '"ready"' in text:
            return proc, out, json.loads(text.splitlines()[0])["local_url"]
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("listener did not start")


async def burst(url: str, count: int, stop_after: int | None = None, on_ack: Any = None) -> list[str]:
    """POST `count` distinct deliveries concurrently; return the markers of those acknowledged with 200."""
    acknowledged: list[str] = []
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def one(n: int) -> None:
            marker = f"m-{n}"
            body = json.dumps({"trigger": "after_message", "webhook": "w", "data": {"id": str(n), "data": {"text": marker}}})
            try:
                async with session.post(url, data=body) as response:
                    await response.read()
                    if response.status == 200:
                        acknowledged.append(marker)
                        if on_ack is not None and len(acknowledged) == stop_after:
                            on_ack()
            except (TimeoutError, aiohttp.ClientError):
                pass

        await asyncio.gather(*(one(n) for n in range(count)))
    return acknowledged


def stored_markers(db: Path) -> list[str]:
    connection = sqlite3.connect(db)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return [json.loads(body)["data"]["data"]["text"] for (body,) in connection.execute("SELECT body FROM exchanges")]
    finally:
        connection.close()


async def test_a_burst_of_5000_concurrent_deliveries_is_all_stored_and_printed_exactly_once(tmp_path: Path) -> None:
    proc, out, url = await asyncio.to_thread(start_listener, tmp_path)
    try:
        acknowledged = await burst(url + "/webhook", 5000)
        proc.send_signal(signal.SIGINT)
        await asyncio.to_thread(proc.wait, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert len(acknowledged) == 5000
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    printed = [line["body"]["data"]["data"]["text"] for line in lines if line["type"] == "event"]
    assert sorted(printed) == sorted(acknowledged) and len(set(printed)) == 5000
    assert lines[-1] == {"type": "stopped", "events": 5000}
    stored = stored_markers(tmp_path / "home" / "history.db")
    assert sorted(stored) == sorted(acknowledged)


async def test_sigint_in_the_middle_of_a_burst_loses_nothing_acknowledged(tmp_path: Path) -> None:
    proc, out, url = await asyncio.to_thread(start_listener, tmp_path)
    try:
        acknowledged = await burst(url + "/webhook", 4000, stop_after=500, on_ack=lambda: proc.send_signal(signal.SIGINT))
        await asyncio.to_thread(proc.wait, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert 500 <= len(acknowledged) < 4000  # it really stopped mid-burst
    text = out.read_text()
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]  # every line complete
    printed = {line["body"]["data"]["data"]["text"] for line in lines if line["type"] == "event"}
    assert set(acknowledged) <= printed
    assert lines[-1]["type"] == "stopped" and lines[-1]["events"] == len(printed)
    stored = stored_markers(tmp_path / "home" / "history.db")
    assert set(acknowledged) <= set(stored) and len(stored) == len(set(stored))


async def raw_server(reply: bytes | None) -> tuple[asyncio.Server, int]:
    """A TCP server that reads a request, then writes `reply` and closes (or hangs when reply is None)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        if reply is None:
            await asyncio.sleep(30)
        else:
            writer.write(reply)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_a_misbehaving_forward_target_never_stalls_other_deliveries(aiohttp_server: Any, closed_port: int) -> None:
    healthy = web.Application()

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    healthy.router.add_post("/{tail:.*}", ok)
    good = await aiohttp_server(healthy, host="127.0.0.1")
    hang, hang_port = await raw_server(None)
    garbage, garbage_port = await raw_server(b"this is not http\r\n\r\n")
    cut, cut_port = await raw_server(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"half')
    routes = (f"t_hang=http://127.0.0.1:{hang_port}", f"t_garbage=http://127.0.0.1:{garbage_port}",
              f"t_cut=http://127.0.0.1:{cut_port}", f"t_refused=http://127.0.0.1:{closed_port}")  # fmt: skip
    exchanges: list[Exchange] = []
    forwarder = Forwarder.from_config(
        forward_config((f"http://127.0.0.1:{good.port}",), tuple(routes), 3.0, "error"), lambda w: None, Responder()
    )
    listener = Listener(ListenerConfig(port=0), forwarder, hub_for(exchanges.append, None, lambda w: None))
    await listener.start()
    url = listener.local_url + "/webhook"
    try:
        async with aiohttp.ClientSession() as session:

            async def post(trigger: str) -> tuple[int, float]:
                started = time.monotonic()
                async with session.post(url, data=json.dumps({"trigger": trigger})) as response:
                    await response.read()
                    return response.status, time.monotonic() - started

            bad = [asyncio.ensure_future(post(t)) for t in ("t_hang", "t_garbage", "t_cut", "t_refused") for _ in range(5)]
            await asyncio.sleep(0.2)
            good_results = await asyncio.gather(*(post("message_sent") for _ in range(50)))
            assert all(status == 200 for status, _ in good_results)
            assert max(elapsed for _, elapsed in good_results) < 1.0  # not held up by the hanging target
            bad_results = await asyncio.gather(*bad)
        assert {status for status, _ in bad_results} == {502}
        errors = {e.info.trigger: e.forward_error for e in exchanges if e.forward_error}
        assert set(errors) == {"t_hang", "t_garbage", "t_cut", "t_refused"}
        assert "no answer within 3 s" in (errors["t_hang"] or "")
    finally:
        await listener.stop()
        await forwarder.close()
        for server in (hang, garbage, cut):
            server.close()

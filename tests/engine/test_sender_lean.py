"""The lean `send --count` path: fresh bodies spliced into a pre-encoded template, and the lean HTTP/1.1
client (engine/lean_client, httptools' parser) that sends runs over plain http instead of aiohttp, with the same requests, bounds and results."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import yarl
from aiohttp import web

from comethook_cli import speedups
from comethook_cli.cometchat import payloads
from comethook_cli.cometchat.payloads import Bodies, BuildOptions, IdSource, Template, build, catalog, encode
from comethook_cli.engine import lean_client, sender
from comethook_cli.models import Delivery
from tests.conftest import ndjson

NOW = 1_750_000_000.0


# --- Bodies: byte for byte what build() gives ------------------------------------------------------------------


OPTIONS = [
    BuildOptions(),
    BuildOptions(type="image", group="cometchat-guid-7", sender="cometchat-uid-3"),
    BuildOptions(type="custom", text="hé \u2028 \x1b", region="eu", adds=(("data.extra", [1, {"a": None}]),)),
    BuildOptions(message_id="4242", webhook_id="hook-2"),
]


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "image-group", "custom-set", "fixed-id"])
def test_every_body_is_what_build_gives_for_the_same_ids_and_time(options: BuildOptions) -> None:
    # Times across ticks of a millisecond, a second and a day: each body must be the build at its own time.
    times = [NOW, NOW + 0.0004, NOW + 0.0011, NOW + 0.9, NOW + 1.2, NOW + 1.2, NOW + 86_400.5]
    for template in catalog():
        bodies = Bodies(template, options, IdSource(seed=7), clock=iter([NOW, *times]).__next__)
        assert bodies.exact, template.key
        reference = IdSource(seed=7)
        for now in times:
            assert bodies.next() == encode(build(template, options, reference, now)), (template.key, now)


def test_a_template_the_splice_cannot_reproduce_gets_a_real_build_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    template = next(t for t in catalog() if t.trigger == "message_sent")
    tokens = payloads._tokens

    def derived(*args: Any) -> dict[str, Any]:
        made = tokens(*args)
        made["text"] = f"message {made['id']} of {len(made['id'])} digits"  # a value computed from an id, not the id
        return made

    monkeypatch.setattr(payloads, "_tokens", derived)
    bodies = Bodies(template, BuildOptions(), IdSource(seed=3))
    assert not bodies.exact
    first, second = json.loads(bodies.next()), json.loads(bodies.next())
    assert first["data"]["message"]["id"] != second["data"]["message"]["id"]
    assert first["data"]["message"]["data"]["text"] == f"message {first['data']['message']['id']} of 7 digits"


# --- the real CLI: every trigger, fresh ids, the dict-built shape --------------------------------------------------


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


# --- the lean client: the same request as aiohttp, on few connections ---------------------------------------------


class RawServer:
    """A loopback HTTP server on raw asyncio streams: keeps every request's exact bytes and each connection's count,
    and answers with `answer(n)` (bytes, or None to hang up) for the n-th request."""

    def __init__(self, answer: Callable[[int], bytes | Awaitable[bytes | None] | None]) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.writer: asyncio.StreamWriter | None = None
        self.url = ""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/hook"
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self.writer = writer  # the latest connection's, for an answer written in pieces
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                answer = self.answer(len(self.requests))
                if asyncio.iscoroutine(answer):
                    answer = await answer
                if answer is None:
                    break
                assert isinstance(answer, bytes)
                writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()


@pytest.fixture
async def raw() -> AsyncIterator[Callable[..., Awaitable[RawServer]]]:
    servers: list[RawServer] = []

    async def start(answer: Callable[[int], Any] | bytes) -> RawServer:
        server = await RawServer(answer if callable(answer) else lambda n: answer).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


async def deliver_run(
    url: str, lean: bool, count: int = 1, concurrency: int = 1, headers: dict[str, str] | None = None, **plan: Any
) -> list[Delivery]:
    body = encode(build(catalog()[0], BuildOptions(), IdSource(seed=5), NOW))
    sending = sender.SendPlan(url, lambda: sender.Outgoing(body, trigger="after_message"), headers or {}, count=count,
                              concurrency=concurrency, **plan)  # fmt: skip
    deliveries, _ = await sender.run(sending, lambda delivery: None, lean=lean)
    return deliveries


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Sig": "abc", "Authorization": "Basic dTpw"},
        {"user-agent": "mine/1", "Accept": "application/json", "content-type": "text/plain"},
    ],
)
async def test_the_lean_client_writes_the_very_request_aiohttp_writes(raw: Any, headers: dict[str, str]) -> None:
    server = await raw(OK)
    assert lean_client.request_head(server.url, sender.session_headers(headers)) is not None  # the lean client sends these
    lean = await deliver_run(server.url, True, headers=headers)
    plain = await deliver_run(server.url, False, headers=headers)
    assert lean[0].ok and plain[0].ok
    assert server.requests[0] == server.requests[1]


URLS = [
    "http://127.0.0.1:8000/webhook", "http://LocalHost:80/a b", "http://h/a/../b?x=1+2&y=%41", "http://h", "http://h./x",
    "http://[::1]:9/x?a", "http://[0:0::1]:9/x", "http://h:80/p?q=a/b?c#frag", "HTTP://h/x", "http://h/a;b=c/d:e@f!$&()*,~'",
    "http://h/x?a=b;c&d=e:f@g/h?i!$()*,~", "http://h/x?", "http://h?x=1", "http://cafe./x", "http://h:8080",
    "http://Ex-ample.COM:81/A/B", "http://h/a/./b", "http://h//x", "http://h/x?a=%20", "http://h/é", "http://u:p@h/x",
    "https://h/x", "http://h/x?#f", "http://h:0/x", "http://a..b/x", "http://-a/x",
]  # fmt: skip


@pytest.mark.parametrize("url", URLS)
def test_the_lean_client_targets_a_url_as_aiohttp_does_or_leaves_it_to_aiohttp(url: str) -> None:
    head = lean_client.request_head(url, [("User-Agent", "x")])
    if head is None:
        return  # aiohttp sends it
    request_line, host_line, *_ = head.prefix.decode().split("\r\n")
    parsed = yarl.URL(url)
    assert request_line == f"POST {parsed.raw_path_qs} HTTP/1.1" and host_line == f"Host: {parsed.host_port_subcomponent}"
    assert head.port == parsed.port


@pytest.mark.parametrize("name", ["Host", "Content-Length", "Transfer-Encoding", "Connection", "Expect", "Accept-Encoding"])
def test_headers_that_change_the_framing_leave_the_request_to_aiohttp(name: str) -> None:
    assert lean_client.request_head("http://h/x", [("User-Agent", "x"), (name, "1")]) is None
    assert lean_client.request_head("http://h/x", [("User-Agent", "x"), ("X-Bad", "a\r\nInjected: 1")]) is None
    assert lean_client.request_head("http://h/x", [("User-Agent", "x"), ("x-a", "1"), ("X-A", "2")]) is None


async def test_a_run_keeps_at_most_concurrency_connections_open(raw: Any) -> None:
    server = await raw(OK)
    deliveries = await deliver_run(server.url, True, count=200, concurrency=4)
    assert len(deliveries) == 200 and all(d.ok for d in deliveries)
    assert len(server.requests) == 200 and server.connections <= 4


async def test_one_bad_delivery_never_affects_the_others(raw: Any) -> None:
    def answer(n: int) -> bytes | None:
        if n % 5 == 0:
            return None  # hang up without answering
        if n % 7 == 0:
            return b"NOT HTTP\r\n\r\n"
        return OK

    server = await raw(answer)
    deliveries = await deliver_run(server.url, True, count=60, concurrency=3)
    failed = [d for d in deliveries if not d.ok]
    assert len(deliveries) == 60 and {d.failure for d in failed} == {"protocol"}
    assert len(failed) == len([n for n in range(1, 61) if n % 5 == 0 or n % 7 == 0])
    assert all(d.ok and d.response == {} for d in deliveries if d not in failed)


# --- the lean client: every kind of answer comes out as aiohttp's does --------------------------------------------


def http(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode() + b"\r\n\r\n" + body


BOMB = gzip.compress(b"0" * 5_000_000)
GZIPPED, ZLIBBED = gzip.compress(b'{"z": 1}'), zlib.compress(b"[1]")
RAW_DEFLATE = zlib.compressobj(wbits=-zlib.MAX_WBITS)
DEFLATED = RAW_DEFLATE.compress(b'{"raw": true}') + RAW_DEFLATE.flush()
ANSWERS: dict[str, Any] = {
    "chunked": http("HTTP/1.1 200 OK\nTransfer-Encoding: chunked", b'3;ext=1\r\n{"a\r\n5\r\n": 1}\r\n0\r\nX-Trailer: 1\r\n\r\n'),
    "gzip": http(f"HTTP/1.1 200 OK\nContent-Encoding: gzip\nContent-Length: {len(GZIPPED)}", GZIPPED),
    "deflate": http(f"HTTP/1.1 200 OK\nContent-Encoding: deflate\nContent-Length: {len(ZLIBBED)}", ZLIBBED),
    "raw deflate": http(f"HTTP/1.1 200 OK\nContent-Encoding: deflate\nContent-Length: {len(DEFLATED)}", DEFLATED),
    "gzip bomb": http(f"HTTP/1.1 200 OK\nContent-Encoding: gzip\nContent-Length: {len(BOMB)}", BOMB),
    "declared too large": http("HTTP/1.1 200 OK\nContent-Length: 5000", b"y" * 5000),
    "chunked too large": http("HTTP/1.1 200 OK\nTransfer-Encoding: chunked", b"800\r\n" + b"y" * 2048 + b"\r\n0\r\n\r\n"),
    "until close": [http("HTTP/1.0 200 OK\nContent-Type: text/plain", b"plain text"), None],
    "interim first": http("HTTP/1.1 100 Continue") + http("HTTP/1.1 201 Created\nContent-Length: 2", b"{}"),
    "no content": http("HTTP/1.1 204 No Content"),
    "server error": http("HTTP/1.1 503 Busy\nContent-Length: 4", b"busy"),
    "hang up": None,
    "garbage": b"\x00\xff\x1b[2J NOT HTTP AT ALL \r\n\r\n" * 20,
    "cut short": [http("HTTP/1.1 200 OK\nContent-Length: 100", b"{}"), None],
    "bad length": http("HTTP/1.1 200 OK\nContent-Length: abc", b"{}"),
    "long header": http("HTTP/1.1 200 OK\nX-Long: " + "a" * 9000 + "\nContent-Length: 2", b"{}"),
    "many headers": http("HTTP/1.1 200 OK\n" + "".join(f"X-{n}: v\n" for n in range(130)) + "Content-Length: 2", b"{}"),
    "silent": "silent",
}


@pytest.mark.parametrize("kind", list(ANSWERS))
async def test_every_kind_of_answer_comes_out_as_aiohttps_does(raw: Any, kind: str) -> None:
    answer = ANSWERS[kind]

    async def respond(n: int) -> bytes | None:
        if answer == "silent":
            await asyncio.sleep(30)
        return answer  # type: ignore[no-any-return]

    async def written_then_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer[0])
        await writer.drain()
        writer.close()

    # An answer framed by the close (or cut short by it) is written, then its connection ends.
    closing = await asyncio.start_server(written_then_closed, "127.0.0.1", 0) if isinstance(answer, list) else None
    url = f"http://127.0.0.1:{closing.sockets[0].getsockname()[1]}/hook" if closing else (await raw(respond)).url
    try:
        lean, plain = [(await deliver_run(url, flag, timeout=0.5, max_answer=1000))[0] for flag in (True, False)]
    finally:
        if closing is not None:
            closing.close()
    assert (lean.status, lean.ok, lean.failure, lean.response, lean.response_body) == (
        plain.status, plain.ok, plain.failure, plain.response, plain.response_body
    ), (lean, plain)  # fmt: skip
    if lean.failure != "protocol":  # the same words, except where they quote aiohttp's own parser
        assert lean.error == plain.error
    assert lean.failure is None or lean.error  # a delivery that got no usable answer says why


async def test_an_answer_dripped_a_byte_at_a_time_is_read_whole(raw: Any) -> None:
    answer = http("HTTP/1.1 200 OK\nContent-Type: application/json\nTransfer-Encoding: chunked", b'8\r\n{"a": 1}\r\n0\r\n\r\n')

    async def drip(n: int) -> bytes:
        assert server.writer is not None
        for byte in answer[:-1]:
            server.writer.write(bytes([byte]))
            await server.writer.drain()
            await asyncio.sleep(0)
        return answer[-1:]

    server = await raw(drip)
    lean = await deliver_run(server.url, True, count=3)
    assert [(d.status, d.response) for d in lean] == [(200, {"a": 1})] * 3


async def test_max_answer_bounds_what_the_lean_client_reads_from_an_endless_answer(raw: Any) -> None:
    chunk = b"x" * 65536

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sent = 0
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        try:
            while sent < 50 * 1024 * 1024:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
        except ConnectionError:
            pass
        streamed.append(sent)
        writer.close()

    streamed: list[int] = []
    server = await asyncio.start_server(endless, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
        (delivery,) = await deliver_run(url, True, timeout=10, max_answer=100_000)
        for _ in range(100):
            if streamed:
                break
            await asyncio.sleep(0.05)
    finally:
        server.close()
    assert delivery.failure == "too_large" and delivery.error == "answer larger than 100,000 bytes (--max-answer)"
    assert streamed and streamed[0] < 20 * 1024 * 1024  # the connection was dropped, not read to the end


@pytest.mark.parametrize(
    ("head", "piece", "failure"),
    [
        (b"HTTP/1.1 200 OK\r\nX-Endless: ", b"a" * 65536, "protocol"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Trailer: ", b"a" * 65536, "too_large"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=", b"a" * 65536, "too_large"),
    ],
    ids=["endless header", "endless trailer", "endless chunk extension"],
)
async def test_framing_that_never_ends_is_cut_off_without_reading_it_all(head: bytes, piece: bytes, failure: str) -> None:
    # llhttp keeps a header (or trailer) value until its line ends and sets no limit on a head's size: the lean client
    # bounds the head as aiohttp does, and what an answer may take on the wire, so a server cannot feed it for ever.
    streamed: list[int] = []

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sent = 0
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head)
        try:
            while sent < 50 * 1024 * 1024:
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
        except ConnectionError:
            pass
        streamed.append(sent)
        writer.close()

    server = await asyncio.start_server(endless, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
        (delivery,) = await deliver_run(url, True, timeout=20, max_answer=1000)
        for _ in range(100):
            if streamed:
                break
            await asyncio.sleep(0.05)
    finally:
        server.close()
    assert delivery.failure == failure, delivery
    assert delivery.error
    assert streamed and streamed[0] < 20 * 1024 * 1024  # the connection was dropped, not read to the end


async def test_a_second_answer_to_one_request_is_dropped_with_its_connection(raw: Any) -> None:
    # Bytes nobody asked for, right behind a whole answer in the same read: the answer counts, the connection does not.
    server = await raw(OK + OK)
    deliveries = await deliver_run(server.url, True, count=3)
    assert [(d.ok, d.response) for d in deliveries] == [(True, {})] * 3
    assert server.connections == 3

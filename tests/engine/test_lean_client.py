"""The lean HTTP/1.1 client (engine/lean_client.py, httptools' parser) that `send --count` runs over plain http instead of
aiohttp: the very request aiohttp writes, on at most --concurrency connections, every kind of answer read as aiohttp reads
it, its bounds, hostile raw servers, and the host names its resolver cannot encode."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import yarl

from comethook_cli.cometchat.payloads import BuildOptions, IdSource, build, catalog, encode
from comethook_cli.engine import lean_client, sender
from comethook_cli.models import Delivery

NOW = 1_750_000_000.0
Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Serve], Awaitable[str]]]:
    """Start a raw loopback server running `handler` on each connection; returns its URL."""
    servers: list[asyncio.Server] = []

    async def start(handler: Serve) -> str:
        async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(guarded, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"

    yield start
    for server in servers:
        server.close()


async def comethook(*args: str | bytes) -> subprocess.CompletedProcess[str]:
    """The real CLI in its own process (uvloop and all), bounded in time."""
    command = [sys.executable, "-m", "comethook_cli", *args]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"}
    )


async def deliver_run(
    url: str, lean: bool, count: int = 1, concurrency: int = 1, headers: dict[str, str] | None = None, **plan: Any
) -> list[Delivery]:
    body = encode(build(catalog()[0], BuildOptions(), IdSource(seed=5), NOW))
    sending = sender.SendPlan(url, lambda: sender.Outgoing(body, trigger="after_message"), headers or {}, count=count,
                              concurrency=concurrency, **plan)  # fmt: skip
    deliveries, _ = await sender.run(sending, lambda delivery: None, lean=lean)
    return deliveries


# --- engine/lean_client: a hostile server ----------------------------------------------------------------------------------


async def test_a_content_length_too_long_for_int_is_a_protocol_failure_without_a_traceback(serve: Any) -> None:
    # int() refuses more than 4,300 digits: the ValueError escaped data_received and asyncio printed its traceback.
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n{}")
        await writer.drain()
        await asyncio.sleep(5)

    url = await serve(answer)
    lean, plain = [(await deliver_run(url, flag, timeout=5))[0] for flag in (True, False)]
    assert lean.failure == plain.failure == "protocol"
    assert lean.error is not None and lean.error.startswith("the answer was not valid HTTP (Content-Length overflow")
    done = await comethook("send", "message_sent", "--to", url, "--count", "2", "--timeout", "5")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "ValueError" not in done.stderr, done.stderr
    assert "not valid HTTP" in done.stderr


async def test_a_server_that_speaks_before_it_is_asked_is_read_as_aiohttp_reads_it(serve: Any) -> None:
    # An SSH port greets first. When the banner came in before the request went out, exchange() asserted (a traceback
    # under uvloop, where it often does); the order is forced here by waiting between the connect and the exchange.
    async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    url = await serve(banner)
    head = lean_client.request_head(url, sender.session_headers({}))
    assert head is not None
    loop = asyncio.get_running_loop()
    connection = await lean_client.connect(head.host, head.port, 1000)
    await asyncio.sleep(0.3)  # the banner is in
    with pytest.raises(lean_client.NotHttp, match=r"SSH-2\.0"):
        await connection.exchange(head.request(b"{}"), loop.time() + 5)
    (plain,) = await deliver_run(url, False, timeout=5)
    assert plain.failure == "protocol" and plain.error is not None and "SSH-2.0" in plain.error


async def test_a_server_that_hangs_up_before_it_is_asked_fails_that_delivery_only(serve: Any) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    url = await serve(hang_up)
    head = lean_client.request_head(url, sender.session_headers({}))
    assert head is not None
    loop = asyncio.get_running_loop()
    connection = await lean_client.connect(head.host, head.port, 1000)
    await asyncio.sleep(0.3)  # the close is in
    with pytest.raises(lean_client.Hangup):
        await connection.exchange(head.request(b"{}"), loop.time() + 5)
    (plain,) = await deliver_run(url, False, timeout=5)
    assert plain.failure == "protocol" and plain.error == str(lean_client.Hangup())


async def test_a_server_whose_whole_answer_came_before_the_request_is_answered(serve: Any) -> None:
    async def eager(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)

    url = await serve(eager)
    head = lean_client.request_head(url, sender.session_headers({}))
    assert head is not None
    connection = await lean_client.connect(head.host, head.port, 1000)
    await asyncio.sleep(0.3)
    assert await connection.exchange(head.request(b"{}"), asyncio.get_running_loop().time() + 5) == (200, b"{}")
    connection.close()


async def test_a_header_name_that_is_not_utf8_is_sent_as_before_not_a_traceback(serve: Any) -> None:
    # On Linux a non-UTF-8 argument arrives as surrogate escapes: request_head's name.encode() raised UnicodeEncodeError.
    received: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        received.append(head)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        await writer.drain()

    url = await serve(answer)
    done = await comethook("send", "message_sent", "--to", url, "-H", os.fsdecode(b"X-\xff: v"), "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and len(received) == 1


@pytest.mark.parametrize(
    "answer",
    [
        b'HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: 8\n\n{"a": 1}',
        b'HTTP/1.1 200 OK\r\nContent-Length: 8\n\r\n{"a": 1}',
        b"HTTP/1.1 201 Created\nContent-Length: 6\n\n\r\n\r\n{}",  # the body holds the CRLF CRLF a CRLF head would end at
        b"HTTP/1.1 200 OK\n" + b"".join(b"X-%d: %s\n" % (n, b"v" * 100) for n in range(100)) + b"Content-Length: 2\n\n{}",
        b"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    ],
    ids=["bare LF", "mixed", "CRLF CRLF in the body", "100 bare-LF headers", "empty lines first"],
)
async def test_a_head_with_bare_lf_line_ends_or_empty_lines_first_is_read_as_aiohttp_reads_it(serve: Any, answer: bytes) -> None:
    # aiohttp takes a head whose lines end in a bare LF (toy servers write them); the lean client waited for a CRLF CRLF
    # that never came and called an answered delivery a timeout (exit 4, "is the endpoint running?"). aiohttp also skips
    # empty lines before the status line (a stray CRLF after the last body); the lean client called them not HTTP.
    async def answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            writer.write(answer)
            await writer.drain()

    url = await serve(answering)
    lean, plain = [await deliver_run(url, flag, count=3, timeout=2) for flag in (True, False)]
    assert [(d.status, d.ok, d.failure, d.response_body) for d in lean] == [
        (d.status, d.ok, d.failure, d.response_body) for d in plain
    ]
    assert plain[0].ok


@pytest.mark.parametrize("host", ["a" * 64 + ".example", "a..b"])
async def test_a_host_name_the_resolver_cannot_encode_is_a_usage_error(cli: Any, host: str) -> None:
    # getaddrinfo encodes the name with IDNA first: its UnicodeError came out of send as a traceback.
    result = await cli.run("send", "message_sent", "--to", f"http://{host}/x", "--count", "2", "--timeout", "3")
    assert result.exit_code == 2, result.output
    assert "Malformed URL" in result.output and "Hint" in result.output


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


async def endless_answer(head: bytes, piece: bytes, max_answer: int, timeout: float) -> tuple[Delivery, list[int]]:
    """Deliver once to a server that answers `head`, then `piece` over and over (up to 50 MB); the delivery, and how
    many bytes the server got to send before the connection was dropped."""
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
        (delivery,) = await deliver_run(url, True, timeout=timeout, max_answer=max_answer)
        for _ in range(100):
            if streamed:
                break
            await asyncio.sleep(0.05)
    finally:
        server.close()
    return delivery, streamed


async def test_max_answer_bounds_what_the_lean_client_reads_from_an_endless_answer() -> None:
    head = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
    delivery, streamed = await endless_answer(head, b"x" * 65536, max_answer=100_000, timeout=10)
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
    delivery, streamed = await endless_answer(head, piece, max_answer=1000, timeout=20)
    assert delivery.failure == failure, delivery
    assert delivery.error
    assert streamed and streamed[0] < 20 * 1024 * 1024  # the connection was dropped, not read to the end


async def test_a_second_answer_to_one_request_is_dropped_with_its_connection(raw: Any) -> None:
    # Bytes nobody asked for, right behind a whole answer in the same read: the answer counts, the connection does not.
    server = await raw(OK + OK)
    deliveries = await deliver_run(server.url, True, count=3)
    assert [(d.ok, d.response) for d in deliveries] == [(True, {})] * 3
    assert server.connections == 3

"""The lean HTTP client (engine/lean_client.py) against hostile raw servers, read as aiohttp reads them, and the
host names its resolver cannot encode."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

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


async def deliver_run(url: str, lean: bool, count: int = 1, **plan: Any) -> list[Delivery]:
    body = encode(build(catalog()[0], BuildOptions(), IdSource(seed=5), NOW))
    sending = sender.SendPlan(url, lambda: sender.Outgoing(body, trigger="after_message"), {}, count=count, **plan)
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

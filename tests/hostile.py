"""A hostile HTTP server on loopback: answers that never end, lie about their size, drip, or are not HTTP.

One server serves every behaviour; the request path picks it (`/endless`, `/huge`, ...), so a listener
that keeps CometChat's path when forwarding reaches each behaviour by posting to that path.
Written on raw asyncio streams: aiohttp's server would refuse to misbehave this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

CHUNK = b"x" * 65536
#: What /endless and /huge stream at most before giving up (so an unbounded reader fails a test, not the machine).
STREAM_LIMIT = 200 * 1024 * 1024


@dataclass
class Request:
    """What the hostile server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HostileServer:
    """Start with `await start()`; `url` is its base URL; `stop()` ends every connection it still holds."""

    stream_limit: int = STREAM_LIMIT
    received: list[Request] = field(default_factory=list)
    streamed: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> HostileServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=1024 * 1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {}
            for line in lines:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append(Request(method, path, headers, body))
            mode = path.strip("/").split("?")[0].split("/")[-1]
            await getattr(self, f"_{mode}", self._ok)(writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        sent = 0
        while sent < self.stream_limit:
            writer.write(CHUNK)
            await writer.drain()
            sent += len(CHUNK)
            self.streamed += len(CHUNK)

    async def _ok(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        await writer.drain()

    async def _endless(self, writer: asyncio.StreamWriter) -> None:
        """200, no length (read until close), and a body that goes on and on."""
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
        await self._stream(writer)

    async def _huge(self, writer: asyncio.StreamWriter) -> None:
        """200 that says it is 4 GiB long, and starts sending it."""
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4294967296\r\n\r\n")
        await self._stream(writer)

    async def _drip(self, writer: asyncio.StreamWriter) -> None:
        """Headers at once, then one byte every 0.2 s of a 1,000-byte body."""
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.2)

    async def _garbage(self, writer: asyncio.StreamWriter) -> None:
        """Bytes that are not HTTP, then a closed connection."""
        writer.write(b"\x00\xff\x1b[2J NOT HTTP AT ALL \r\n\r\n" * 20)
        await writer.drain()

    async def _silent(self, writer: asyncio.StreamWriter) -> None:
        """Reads the request and never answers."""
        await asyncio.sleep(3600)

    async def _cookies(self, writer: asyncio.StreamWriter) -> None:
        """Repeated Set-Cookie headers, and a header that its own Connection header marks hop-by-hop."""
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
            b"X-App: 1\r\nX-Internal: hop\r\nConnection: close, X-Internal\r\nContent-Length: 2\r\n\r\n{}"
        )
        await writer.drain()

    async def _nan(self, writer: asyncio.StreamWriter) -> None:
        """An answer with NaN in it: Python's json reads it, JSON.parse does not."""
        body = b'{"score": NaN, "tag": "x"}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()


# --- JSON read as strictly as CometChat's Node reads it (the server is conftest's `hostile` fixture) -------------------


def strict(line: str) -> Any:
    """Parse like Node's JSON.parse: NaN and Infinity are errors."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(line, parse_constant=refuse)

"""The lean client under `sender.run`: one POST at a time on a keep-alive connection, for plain http.

aiohttp's client costs about 0.2 s to import and about 100 µs of CPU a request; a `send --count 5000 -c 32`
through it reaches about 0.4 of hey's rate, against a floor of 0.6 (bench/NOTES.md). A webhook POST needs little
of it, so this module writes the very request aiohttp would (the same headers in the same order, see `request_head`) and
reads the answer with httptools, the llhttp parser uvicorn uses, under aiohttp's bounds: a status line and
headers within aiohttp's limits (8,190 bytes a line, 128 headers), gzip and deflate decoded, at most `limit`
bytes of body (TooLarge past that, the connection dropped unread; a Content-Length over the limit is refused
before reading). Whatever it does not write as aiohttp would (https, user info in the URL, a target aiohttp
would rewrite, headers that change the framing) gets None from `request_head`, and aiohttp sends it.
"""

from __future__ import annotations

import asyncio
import re
import socket
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

#: aiohttp's client limits: the longest status or header line, and the most headers, an answer may have.
MAX_LINE = 8190
MAX_HEADERS = 128
#: What aiohttp adds to every request unless the caller set it.
DEFAULT_HEADERS = (("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate"))
#: Headers that change how a request is framed or sent: with any of these, aiohttp sends the delivery.
_FRAMING = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "expect", "upgrade", "te", "keep-alive", "accept-encoding"}
)
#: What yarl leaves as it is in a path and a query (no `%`: yarl re-quotes escapes; no dot segments: it removes them).
_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*")
_QUERY = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?]*")
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|$)")
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|[0-9a-f.]*:[0-9a-f:.]*")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: The most a head (status line and headers) may hold, and the most a server may say before it is asked.
_HEAD_BOUND = MAX_LINE * (MAX_HEADERS + 1)
#: The most bytes an answer may take on the wire for each byte of body it may carry: framing (chunk sizes, trailers)
#: has no bound of its own in llhttp, and a server that drips one-byte chunks should not be read for ever.
_WIRE_PER_BODY_BYTE = 8


class Failure(Exception):
    """Why an exchange got no usable answer (sender calls it a protocol failure), said in sender's words."""


class NotHttp(Failure):
    """What came back is not HTTP."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the answer was not valid HTTP ({reason})")


class Hangup(Failure):
    """The connection closed before a byte of the answer came."""

    def __init__(self) -> None:
        super().__init__("the server closed the connection without answering")


class TooLarge(Exception):
    """The answer is longer than the limit (said by its Content-Length, `declared`, or found while reading)."""

    def __init__(self, status: int, limit: int, declared: int | None = None) -> None:
        super().__init__(status, limit, declared)
        self.status = status
        self.limit = limit
        self.declared = declared


@dataclass(frozen=True)
class RequestHead:
    """Where to connect, and the bytes of a request up to its Content-Length value."""

    host: str
    port: int
    prefix: bytes

    def request(self, body: bytes) -> bytes:
        """The whole request for `body`."""
        return b"%s%d\r\n\r\n%s" % (self.prefix, len(body), body)


def request_head(url: str, headers: Sequence[tuple[str, str]]) -> RequestHead | None:
    """The head aiohttp would write to POST to `url` with `headers` (in order; Host first, its defaults after, the
    length last), or None when this module does not write it the same way: then aiohttp sends the delivery."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = 80 if parts.port is None else parts.port
    except ValueError:
        return None
    if (
        parts.scheme != "http"
        or "@" in parts.netloc
        or not host.isascii()
        or not _HOST.fullmatch(host)
        or not _PATH.fullmatch(parts.path or "/")
        or _DOT_SEGMENT.search(parts.path)
        or not _QUERY.fullmatch(parts.query)
    ):
        return None
    if ":" in host and not _canonical_ipv6(host):  # yarl writes an IPv6 address in its shortest form
        return None
    names = {name.lower() for name, _ in headers}
    if (
        len(names) < len(headers)
        or names & _FRAMING
        or any(
            _FORBIDDEN.search(name + value) or not name.isascii() or not _TOKEN.fullmatch(name.encode())
            for name, value in headers
        )
    ):
        return None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    authority = f"[{host}]" if ":" in host else host
    lines = [f"POST {target} HTTP/1.1", f"Host: {authority}" + (f":{port}" if port != 80 else "")]
    lines += [f"{name}: {value}" for name, value in headers]
    lines += [f"{name}: {value}" for name, value in DEFAULT_HEADERS if name.lower() not in names]
    try:
        prefix = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("utf-8")
    except UnicodeEncodeError:
        return None
    return RequestHead(host, port, prefix)


def _canonical_ipv6(host: str) -> bool:
    import ipaddress

    try:
        return str(ipaddress.IPv6Address(host)) == host
    except ValueError:
        return False


async def connect(host: str, port: int, limit: int) -> Connection:
    """A connection to the first of `host`'s addresses that takes it (OSError, the last address's, when none does)."""
    loop = asyncio.get_running_loop()
    last: OSError | None = None
    for family, kind, proto, _, address in await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, address)
        except OSError as error:
            sock.close()
            last = error
            continue
        except BaseException:
            sock.close()
            raise
        try:
            _, connection = await loop.create_connection(lambda: Connection(limit), sock=sock)
        except BaseException:
            sock.close()
            raise
        return connection
    raise last or OSError(f"{host} has no address")


class Connection(asyncio.Protocol):
    """One keep-alive connection: `exchange(request)` writes a request and resolves to its answer (status, body)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        #: Whether another request may go on this connection.
        self.usable = False
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._parser = httptools.HttpResponseParser(self)
        # aiohttp reads a head whose lines end in a bare LF (toy servers write them): so does this client.
        self._parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)
        #: What the server said before it was asked (a banner, or a whole answer): read as the first answer, as aiohttp does.
        self._early = bytearray()
        #: No request has gone out yet.
        self._fresh = True
        self._reset()

    def _reset(self) -> None:
        """Ready to read a new answer (an interim 1xx one is followed by the real one)."""
        self._received = False
        self._in_head = True
        self._head_bytes = 0
        self._wire = 0
        self._headers = 0
        self._declared: int | None = None
        self._chunked = False
        self._encoding = b""
        self._interim = False
        self._final = False
        self._extra = False
        self._status = 0
        self._keep_alive = True
        self._body = bytearray()
        self._decoder: zlib._Decompress | None = None
        self._first = b""

    # --- asyncio's callbacks ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Ready for the first request."""
        self._transport = cast("asyncio.Transport", transport)
        self.usable = True

    def data_received(self, data: bytes) -> None:
        """Parse what came; bytes nobody asked for (between answers) end the connection's use."""
        if self._waiter is None or self._waiter.done():
            if self._fresh and len(self._early) + len(data) <= _HEAD_BOUND:
                self._early += data
            else:
                self.close()
            return
        self._feed(data)

    def eof_received(self) -> bool:
        """The server is done sending: an answer framed by the close is complete; any other one was cut short."""
        self._closed()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Gone: an answer still awaited fails."""
        self._transport = None
        self._closed()

    # --- the caller's side -----------------------------------------------------------------------
    def exchange(self, request: bytes, deadline: float) -> asyncio.Future[tuple[int, bytes]]:
        """Write `request`; the future resolves to the answer's (status, body), or raises Failure or TooLarge, or
        TimeoutError when the whole answer has not come by `deadline` (the loop's clock; the connection is dropped)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        self._waiter = waiter
        # One timer a request (cheaper than asyncio.timeout's context, which a run of thousands notices).
        self._timer = loop.call_at(deadline, self._expire)
        self._reset()
        self._fresh = False
        if self._transport is not None and self.usable:
            self._transport.write(request)
        if self._early:  # what the server said before it was asked (only a fresh connection keeps any)
            early, self._early = bytes(self._early), bytearray()
            self._feed(early)
        if not self.usable and not waiter.done():  # the server spoke and hung up, or hung up, between the connect and now
            self._closed()
        return waiter

    def close(self) -> None:
        """Drop the connection at once (unread bytes are never read)."""
        self.usable = False
        self._stop_timer()
        if self._transport is not None:
            self._transport.abort()
            self._transport = None

    # --- reading the answer (httptools calls the on_ methods from feed_data) -----------------------
    def _feed(self, data: bytes) -> None:
        if not self._received:
            self._first = data[:32]
        self._received = True
        self._wire += len(data)
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._keep_alive = False  # a 101: the answer is its head, and the connection is no longer HTTP
            self._final = True
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            if not isinstance(cause, _Stop):  # a second answer stopped the parser: the first one stands
                self._fail(cause if isinstance(cause, (Failure, TooLarge)) else NotHttp(str(cause or error)))
                return
        except httptools.HttpParserError as error:
            self._fail(NotHttp(f"{error}: {self._first!r}" if self._in_head else str(error)))
            return
        if self._final:
            try:
                self._finish()
            except Failure as failure:
                self._fail(failure)
        elif self._in_head and self._head_bytes > _HEAD_BOUND:
            self._fail(NotHttp("a header line or the header section is too long"))
        elif self._wire > self.limit * _WIRE_PER_BODY_BYTE + 2 * _HEAD_BOUND:
            self._fail(TooLarge(self._status, self.limit))

    def on_message_begin(self) -> None:
        """A new answer starts: a second one to a single request ends the connection's use once the first is read."""
        if self._final:
            self._extra = True
            raise _Stop

    def on_status(self, reason: bytes) -> None:
        """The status line's reason phrase: bounded as aiohttp bounds a line."""
        if len(reason) > MAX_LINE:
            raise NotHttp(f"a status line longer than {MAX_LINE:,} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        """One header (or trailer): bounded as aiohttp bounds them; the few that frame or encode the body are kept."""
        self._headers += 1
        if self._headers > MAX_HEADERS:
            raise NotHttp(f"more than {MAX_HEADERS} headers")
        if len(name) + len(value) + 2 > MAX_LINE:
            raise NotHttp(f"a header line longer than {MAX_LINE:,} bytes")
        if not self._in_head:
            return  # a trailer
        name = name.lower()
        if name == b"content-length":
            digits = value.strip().lstrip(b"0") or b"0"  # llhttp has checked them, and refused an overflow
            self._declared = int(digits) if len(digits) <= 20 and digits.isdigit() else None
        elif name == b"transfer-encoding":
            self._chunked = value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
        elif name == b"content-encoding":
            self._encoding = value.strip().lower()

    def on_headers_complete(self) -> None:
        """The head is in: refuse what cannot be read within the bounds before reading the body."""
        self._in_head = False
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._interim = True  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            return
        self._status, self._keep_alive = status, self._parser.should_keep_alive()
        if self._encoding in (b"br", b"zstd"):
            raise Failure(f"request failed: cannot decode content-encoding {self._encoding.decode()} (it was not asked for)")
        if self._declared is not None and not self._chunked and self._declared > self.limit:
            raise TooLarge(status, self.limit, self._declared)

    def on_body(self, data: bytes) -> None:
        """A piece of the body: decoded, and bounded by the limit."""
        if self._encoding in (b"gzip", b"deflate"):
            data = self._decode(data)
        self._body += data
        if len(self._body) > self.limit:
            raise TooLarge(self._status, self.limit)

    def on_message_complete(self) -> None:
        """The answer is whole (an interim one: the real one is read next)."""
        if self._interim:
            wire, head_bytes = self._wire, self._head_bytes
            self._reset()
            self._received, self._wire, self._head_bytes = True, wire, head_bytes
            return
        self._final = True

    def _decode(self, data: bytes) -> bytes:
        if self._decoder is None:
            if not data:
                return data
            # aiohttp's rule: "deflate" that does not start with a zlib header is raw deflate.
            wbits = (
                16 + zlib.MAX_WBITS if self._encoding == b"gzip" else zlib.MAX_WBITS if data[0] & 0xF == 8 else -zlib.MAX_WBITS
            )
            self._decoder = zlib.decompressobj(wbits)
        try:
            # Never more than one byte past the limit, however well the bytes compress.
            decoded = self._decoder.decompress(data, self.limit - len(self._body) + 1)
        except zlib.error:
            raise Failure(f"request failed: cannot decode content-encoding {self._encoding.decode()}") from None
        if self._decoder.unconsumed_tail:
            raise TooLarge(self._status, self.limit)
        return decoded

    def _finish(self) -> None:
        if self._decoder is not None and self._encoding == b"deflate" and not self._decoder.eof:
            raise Failure("request failed: cannot decode content-encoding deflate")
        waiter, self._waiter = self._waiter, None
        self._stop_timer()
        if self._extra or not self._keep_alive:
            self.usable = False
            if self._transport is not None:
                self._transport.close()
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, bytes(self._body)))

    def _fail(self, failure: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        self._stop_timer()
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(failure)

    def _expire(self) -> None:
        self._timer = None
        self._fail(TimeoutError())

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _closed(self) -> None:
        self.usable = False
        if self._waiter is None or self._waiter.done():
            return
        if not self._received:
            self._fail(Hangup())
        elif not self._in_head and not self._interim and self._declared is None and not self._chunked:
            try:  # an answer with no length ends when the connection does
                self._finish()
            except Failure as failure:
                self._fail(failure)
        else:
            self._fail(Failure("request failed: the connection closed before the answer ended"))


class _Stop(Exception):
    """Stops the parser at a second answer to one request."""

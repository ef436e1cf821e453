"""The lean HTTP/1.1 client under `sender.run`: one POST at a time on a keep-alive connection, for plain http.

aiohttp's client costs about 0.2 s to import and about 100 µs of CPU a request, most of what a `send --count
5000` spent. A webhook POST needs little of it, so this module writes the very request aiohttp would (the same
headers in the same order, see `request_head`) and reads the answer with the same bounds: a status line and
headers within aiohttp's limits (8,190 bytes a line, 128 headers), a body framed by Content-Length, chunked
encoding or the connection's close, gzip and deflate decoded, at most `limit` bytes of it (TooLarge past that,
the connection dropped unread; a Content-Length over the limit is refused before reading). Whatever it does not
speak as aiohttp would (https, user info in the URL, a target aiohttp would rewrite, headers that change the
framing) gets None from `request_head`, and those deliveries go through aiohttp.
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
_STATUS = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: [^\x00-\x08\x0a-\x1f\x7f]*)?")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
#: Where a head ends when its lines may end in a bare LF.
_LAX_END = re.compile(rb"\r?\n\r?\n")

#: The most a server may say before it is asked (more than a head may hold is not HTTP anyway).
_EARLY = MAX_LINE * (MAX_HEADERS + 1)
# Where the parser is in an answer.
_IDLE, _HEAD, _LENGTH, _UNTIL_CLOSE, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER = range(8)


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
        self._buffer = bytearray()
        self._state = _IDLE
        self._received = False
        self._status = 0
        self._keep_alive = True
        self._remaining = 0
        self._body = bytearray()
        self._decoder: zlib._Decompress | None = None
        self._encoding = b""
        self._trailers = 0
        self._scanned = 0
        #: No request has gone out yet: what the server says now (a banner) is kept for the first answer.
        self._fresh = True

    # --- asyncio's callbacks ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Ready for the first request."""
        self._transport = cast("asyncio.Transport", transport)
        self.usable = True

    def data_received(self, data: bytes) -> None:
        """Parse what came; bytes nobody asked for (between answers) end the connection's use."""
        if self._waiter is None or self._waiter.done():
            if self._fresh and len(self._buffer) + len(data) <= _EARLY:
                self._buffer += data  # a server that speaks first (an SSH banner): read as the answer, as aiohttp reads it
            else:
                self.close()
            return
        self._received = True
        self._buffer += data
        try:
            self._parse()
        except (Failure, TooLarge) as failure:
            self._fail(failure)

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
        self._state, self._received, self._body = _HEAD, bool(self._buffer), bytearray()
        self._decoder, self._trailers, self._scanned, self._fresh = None, 0, 0, False
        if self._transport is not None and self.usable:
            self._transport.write(request)
        if self._buffer:  # what the server said before it was asked (only a fresh connection keeps any)
            try:
                self._parse()
            except (Failure, TooLarge) as failure:
                self._fail(failure)
        if not self.usable:  # the server spoke and hung up, or hung up, between the connect and now
            self._closed()
        return waiter

    def close(self) -> None:
        """Drop the connection at once (unread bytes are never read)."""
        self.usable = False
        self._stop_timer()
        if self._transport is not None:
            self._transport.abort()
            self._transport = None

    # --- the parser ------------------------------------------------------------------------------
    def _parse(self) -> None:
        buffer = self._buffer
        while True:
            state = self._state
            if state == _HEAD:
                if buffer and buffer[0] in b"\r\n":
                    # Empty lines before the status line (a stray CRLF after the last answer's body): skipped, as aiohttp does.
                    del buffer[: len(buffer) - len(buffer.lstrip(b"\r\n"))]
                    if not buffer:
                        return
                end = buffer.find(b"\r\n\r\n", self._scanned)
                skip = end + 4
                lax = end < 0 or buffer.count(b"\n", 0, end) != buffer.count(b"\r\n", 0, end)
                if lax:  # lines that end in a bare LF, which aiohttp reads too (a slower search: only for a head not in yet)
                    found = _LAX_END.search(buffer, self._scanned)
                    end, skip = (found.start(), found.end()) if found else (-1, 0)
                if end < 0:
                    if len(buffer) >= 7 and not buffer.startswith(b"HTTP/1."):
                        raise NotHttp(f"invalid status line {bytes(buffer[:32])!r}")
                    if len(buffer) > MAX_LINE * (MAX_HEADERS + 1) or len(buffer) - buffer.rfind(b"\n") > MAX_LINE + 1:
                        raise NotHttp("a header line or the header section is too long")
                    self._scanned = max(
                        len(buffer) - 3, 0
                    )  # a head dripped a byte at a time is searched once, not again and again
                    return
                head = bytes(buffer[:end])
                del buffer[:skip]
                self._scanned = 0
                if lax:
                    head = head.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                self._head(head)
            elif state == _LENGTH:
                if not self._take(buffer):
                    return
                self._finish()
                return
            elif state == _UNTIL_CLOSE:
                if buffer:
                    self._append(bytes(buffer))
                    buffer.clear()
                return
            elif state == _CHUNK_SIZE:
                line = self._line()
                if line is None:
                    return
                size = line.split(b";", 1)[0].strip()
                if not _HEX.fullmatch(size):
                    raise NotHttp(f"invalid chunk size {line[:32]!r}")
                self._remaining = int(size, 16)
                self._state = _CHUNK_DATA if self._remaining else _TRAILER
            elif state == _CHUNK_DATA:
                if not self._take(buffer):
                    return
                self._state = _CHUNK_END
            elif state == _CHUNK_END:
                if len(buffer) < 2:
                    return
                if buffer[:2] != b"\r\n":
                    raise NotHttp("a chunk longer than its size")
                del buffer[:2]
                self._state = _CHUNK_SIZE
            elif state == _TRAILER:
                line = self._line()
                if line is None:
                    return
                if not line:
                    self._finish()
                    return
                self._trailers += 1
                if self._trailers > MAX_HEADERS:
                    raise NotHttp("too many trailers")
            else:
                return

    def _take(self, buffer: bytearray) -> bool:
        """Move what the body (or chunk) still lacks from the buffer into the body; whether it is complete now."""
        take = min(self._remaining, len(buffer))
        if take:
            self._append(bytes(buffer[:take]))
            del buffer[:take]
            self._remaining -= take
        return not self._remaining

    def _line(self) -> bytes | None:
        buffer = self._buffer
        end = buffer.find(b"\r\n")
        if end < 0:
            if len(buffer) > MAX_LINE:
                raise NotHttp("a chunk line is too long")
            return None
        line = bytes(buffer[:end])
        del buffer[: end + 2]
        return line

    def _head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        matched = _STATUS.fullmatch(lines[0])
        if matched is None or len(lines[0]) > MAX_LINE:
            raise NotHttp(f"invalid status line {lines[0][:32]!r}")
        if len(lines) - 1 > MAX_HEADERS:
            raise NotHttp(f"more than {MAX_HEADERS} headers")
        status = int(matched.group(2))
        keep_alive = matched.group(1) == b"1"
        length: int | None = None
        chunked = transfer_encoded = False
        encoding = b""
        for line in lines[1:]:
            if len(line) > MAX_LINE:
                raise NotHttp(f"a header line longer than {MAX_LINE:,} bytes")
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):
                raise NotHttp(f"invalid header line {line[:32]!r}")
            name = name.lower()
            if name == b"content-length":
                digits = value.strip()
                # Past 20 digits it is no length at all (and int() refuses over 4,300: a ValueError out of data_received).
                number = digits.lstrip(b"0") or b"0"
                if not digits.isdigit() or len(number) > 20 or (length is not None and int(number) != length):
                    raise NotHttp(f"invalid Content-Length {value.strip()[:32]!r}")
                length = int(number)
            elif name == b"transfer-encoding":
                transfer_encoded = True
                chunked = value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
            elif name == b"connection":
                tokens = {token.strip().lower() for token in value.split(b",")}
                if b"close" in tokens:
                    keep_alive = False
                elif b"keep-alive" in tokens:
                    keep_alive = True
            elif name == b"content-encoding":
                encoding = value.strip().lower()
        if 100 <= status < 200 and status != 101:
            return  # an interim answer (100 Continue, 103 Early Hints): the real one follows
        if transfer_encoded and length is not None:
            raise NotHttp("both Content-Length and Transfer-Encoding")
        self._status, self._keep_alive, self._encoding = status, keep_alive, encoding
        if encoding in (b"br", b"zstd"):
            raise Failure(f"request failed: cannot decode content-encoding {encoding.decode()} (it was not asked for)")
        if status in (101, 204, 304):
            self._keep_alive = keep_alive and status != 101
            self._finish()
        elif chunked:
            self._state = _CHUNK_SIZE
        elif length is not None and not transfer_encoded:
            if length > self.limit:
                raise TooLarge(status, self.limit, length)
            self._state, self._remaining = _LENGTH, length
            if not length:
                self._finish()
        else:  # no length: the answer ends when the connection does
            self._state, self._keep_alive = _UNTIL_CLOSE, False

    def _append(self, data: bytes) -> None:
        if self._encoding in (b"gzip", b"deflate"):
            data = self._decode(data)
        self._body += data
        if len(self._body) > self.limit:
            raise TooLarge(self._status, self.limit)

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
        waiter, self._waiter, self._state = self._waiter, None, _IDLE
        self._stop_timer()
        if self._buffer or not self._keep_alive:
            self._buffer.clear()
            self.usable = False
            if self._transport is not None:
                self._transport.close()
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, bytes(self._body)))

    def _fail(self, failure: Exception) -> None:
        waiter, self._waiter, self._state = self._waiter, None, _IDLE
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
        if self._waiter is None:
            return
        if self._state == _UNTIL_CLOSE:
            try:
                self._finish()
            except Failure as failure:
                self._fail(failure)
        elif not self._received:
            self._fail(Hangup())
        else:
            self._fail(Failure("request failed: the connection closed before the answer ended"))

"""The aiohttp server behind `listen`: receive, check auth, answer, hand each exchange to the hub.

It never prints: exchanges and refusals are published on the hub (engine/hub.py), after the history
has stored each exchange (one it could not store is answered 503, never acknowledged); warnings go to the hub too. Whoever answers is a callable
`Incoming -> Answer` (the canned responder, or the forwarder).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import errno
import heapq
import hmac
import ipaddress
import json
import logging
import os
import random
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from comethook_cli import __version__, jsonbody
from comethook_cli.cometchat.events import describe
from comethook_cli.cometchat.verdict import judge
from comethook_cli.engine.config import ListenerConfig
from comethook_cli.engine.sender import BudgetSpent, ByteBudget
from comethook_cli.errors import ListenerError
from comethook_cli.models import (
    SECRET_HEADERS,
    Answer,
    EventInfo,
    Exchange,
    Incoming,
    Rejection,
    has_surrogates,
    redact_header,
    replace_surrogates,
)

if TYPE_CHECKING:
    from comethook_cli.engine.hub import Hub

LOOPBACK = {"127.0.0.1", "localhost", "::1"}

Answerer = Callable[[Incoming], Awaitable[Answer]]

#: A connection may sit idle (before its first request, between requests, or while its headers trickle in)
#: this long before it is closed: aiohttp's keep-alive timer runs from the connection's start and from each answer.
IDLE_TIMEOUT = 15.0
#: After refusing a body, what is left of it is read (so the client sees the answer) for at most this long.
LINGER = 2.0
#: File descriptors kept free when the connection cap is derived (see fd_reserve): an idle `listen` holds 24 (stdio, the
#: history's database, WAL and shared memory, the event loop, the listening and inspector sockets), the tunnel adds
#: about 4; the rest is for forwards to your app (one per delivery being forwarded, plus copies), inspector tabs, and
#: the connections a flood queues up, which the loop accepts all at once (uvloop drops every queued connection, real
#: deliveries too, when accept() runs out). Under `ulimit -n 256` and a 256-connection slow-body flood, 96 (a cap of 160)
#: lost no delivery of 100 on either loop; 64 (192) lost 11 on asyncio's own loop in one run of two.
FD_RESERVE = (96, 256)
#: Past this share of the connection cap, each new connection closes the slowest other one: room to accept is kept.
EVICT_AT = 0.9
#: A body counts as stalled (the body budget may close it for a new one) once it is this many seconds behind the rate.
STALLED = 1.0
#: Why a body closed to make room got its 408; written at once (its descriptor is free at once, not once its handler runs).
EVICTED = "slow body closed to make room"
_EVICTED_BODY = json.dumps({"error": EVICTED}).encode()
EVICTED_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\n"
    b"Connection: close\r\n\r\n%s" % (len(_EVICTED_BODY), _EVICTED_BODY)
)
#: A connection idle for less than this (its request is likely on its way: under a flood the loop accepts faster than it
#: reads) is closed to make room only past the cap itself, not past EVICT_AT of it.
YOUNG = 2.0
#: At most one warning of a kind (connection cap, accept errors, aiohttp errors) per this many seconds.
WARN_EVERY = 30.0
#: Content-Encoding values the listener decodes (to read the JSON; the exact bytes are what it stores and forwards).
DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
#: What a body refused for the memory budget (--body-budget) is told to wait before trying again (seconds).
RETRY_AFTER = 5
#: How far a stored compressed body may inflate when it is read back (the listener took it at most --max-body decoded).
STORED_DECODE_LIMIT = 64 * 1024 * 1024
#: Errors accept() gives when the process or the system is out of file descriptors or memory.
ACCEPT_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def redact_headers(pairs: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """Headers with credentials replaced (the auth scheme is kept so you can tell what was sent)."""
    redacted = []
    for name, value in pairs:
        if name.lower() in SECRET_HEADERS:
            value = redact_header(name, value)
        # str(): aiohttp's header names are multidict's `istr`, which orjson refuses as a dict key (the `--json`
        # line would fall back to the stdlib encoder for every delivery).
        redacted.append((str(name), value if value.isascii() else replace_surrogates(value)))
    return tuple(redacted)


def fd_reserve(soft: int) -> int:
    """File descriptors left for everything but the listener's connections: a quarter of the limit, within FD_RESERVE."""
    low, high = FD_RESERVE
    return max(low, min(high, soft // 4))


def default_max_connections() -> int:
    """Connections to allow: the soft file-descriptor limit less a reserve, so accept() never runs out first
    (160 under macOS's default `ulimit -n 256`, 768 under 1024)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):  # no `resource` on Windows
        return 1024
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 10_000
    return min(10_000, max(soft - fd_reserve(soft), soft // 2))


def backlog(max_connections: int) -> int:
    """Connections the kernel queues for accept(): asyncio's loop accepts this many at once, each a descriptor before
    the cap can close anyone, so it stays within what the reserve leaves (32 at a cap of 160, aiohttp's 128 from 512)."""
    return max(16, min(128, max_connections // 4))


class UnsupportedEncoding(ValueError):
    """A Content-Encoding the listener cannot decode."""


class DecodedTooLarge(ValueError):
    """A compressed body that inflates past the limit."""


def decode_body(raw: bytes, content_encoding: str, limit: int) -> bytes:
    """The body with its Content-Encoding undone (gzip, deflate), never more than `limit` bytes out.

    Raises DecodedTooLarge past the limit (a decompression bomb stops there), UnsupportedEncoding for
    other codings, and ValueError for data that does not decode."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip().lower() not in ("", "identity")]
    if len(codings) > 2:
        raise UnsupportedEncoding(content_encoding)
    data = raw
    for coding in reversed(codings):
        if coding not in DECODERS:
            raise UnsupportedEncoding(coding)
        data = _inflate(data, DECODERS[coding], limit)
    return data


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    try:
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        if wbits == zlib.MAX_WBITS:  # "deflate" sent as raw deflate, without the zlib header: some clients do
            return _inflate(data, -zlib.MAX_WBITS, limit)
        raise ValueError("not valid compressed data") from None
    if len(out) > limit:
        raise DecodedTooLarge
    if not inflater.eof or inflater.unused_data:
        raise ValueError("truncated or trailing data")
    return out


def plain_body(exchange: Exchange, limit: int = STORED_DECODE_LIMIT) -> bytes:
    """The exchange's body with its Content-Encoding undone (the stored bytes when it has none); ValueError when it
    does not decode (UnsupportedEncoding, DecodedTooLarge are ValueErrors too)."""
    if not exchange.encoded:
        return exchange.body
    encoding = next(v for n, v in exchange.headers if n.lower() == "content-encoding")
    return decode_body(exchange.body, encoding, limit)


def clean_info(info: EventInfo, body: bytes | None = None) -> EventInfo:
    """The description with lone surrogates (a JSON body can carry "\\ud800") replaced, so it can be shown and stored.
    Given the (valid UTF-8) JSON `body` it was read from, a body with no `\\u` escape cannot hold one: no scan."""
    if body is not None and b"\\u" not in body:
        return info
    changes: dict[str, Any] = {f.name: replace_surrogates(value) for f in dataclasses.fields(info)
               if isinstance(value := getattr(info, f.name), str) and has_surrogates(value)}  # fmt: skip
    return dataclasses.replace(info, **changes) if changes else info


def is_loopback(address: str | None) -> bool:
    """Whether a peer address is this machine (IPv4-mapped IPv6 included)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return (mapped or ip).is_loopback


class RateLimitedWarnings:
    """One warning per kind per WARN_EVERY seconds, saying how many were held back."""

    def __init__(self, on_warning: Callable[[str], None]) -> None:
        self.on_warning = on_warning
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._message: dict[str, str] = {}

    def warn(self, kind: str, message: str) -> bool:
        """Warn now (True), or count it when this kind was warned about recently (False)."""
        now = time.monotonic()
        if now - self._last.get(kind, -WARN_EVERY) < WARN_EVERY:
            self._held[kind] = self._held.get(kind, 0) + 1
            return False
        held = self._held.pop(kind, 0)
        self._last[kind] = now
        self._message[kind] = message
        self.on_warning(message + (f" ({held} more like it since the last warning)" if held else ""))
        return True

    def flush(self) -> None:
        """Say how many were held back since each kind's last warning (at the end, so no count goes unsaid)."""
        for kind, held in self._held.items():
            self.on_warning(f"{self._message[kind]} ({held} more like it since the last warning)")
        self._held.clear()


class _Slot:
    """What the listener knows of one open connection, to pick which to close first when it is full."""

    __slots__ = ("answering", "deadline", "evicted", "held", "since", "timer")

    def __init__(self, now: float) -> None:
        #: When it last became idle: opened, or answered.
        self.since = now
        #: Loop time at which the listener would close it anyway unless it makes progress: IDLE_TIMEOUT from its start
        #: or its last answer while idle or while its headers trickle in; for a body, see Listener._chunks.
        self.deadline = now + IDLE_TIMEOUT
        #: Its request is being answered (the body is read; the app is being asked): never closed to make room.
        self.answering = False
        #: The body read's timer while a body is arriving: firing it early answers 408 and closes the connection.
        self.timer: asyncio.Timeout | None = None
        #: Bytes of its body taken from the body budget.
        self.held = 0
        #: Closed to make room (its 408 says so).
        self.evicted = False


class _Server(web.Server):
    """aiohttp's server with a cap on open connections: past EVICT_AT of it, each new connection closes the slowest other
    one (the one the listener would time out soonest: a body behind the rate, then whoever has waited longest for its
    headers or its next request), never one being answered. The body budget makes room the same way."""

    def __init__(
        self, handler: Any, *, max_connections: int, warnings: RateLimitedWarnings, budget: ByteBudget, grace: float,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(handler, **kwargs)
        self.max_connections = max_connections
        self.evict_at = max(int(max_connections * EVICT_AT), 1)
        self.slots: dict[Any, _Slot] = {}
        self.budget = budget
        self._grace = grace
        self._warnings = warnings
        self._evicting = 0  # closed to make room, not gone yet: they still count in self.slots

    def connection_made(self, handler: Any, transport: asyncio.Transport) -> None:
        """Track the connection; past EVICT_AT of the cap, close the slowest others to keep room for new ones."""
        super().connection_made(handler, transport)
        self.slots[handler] = _Slot(asyncio.get_running_loop().time())
        self.trim(spare=handler)

    def trim(self, spare: Any = None) -> None:
        """Past EVICT_AT of the cap, close the slowest connections (none younger than YOUNG); past the cap, the oldest
        young ones too. `spare` (the newest) never."""
        # The slots, not aiohttp's own count: it keeps a closed connection until its handler's task ends.
        live = len(self.slots) - self._evicting
        if live > self.evict_at:
            closed = self.make_room(live - self.evict_at, spare=spare)
            if live - closed > self.max_connections:
                closed += self.make_room(live - closed - self.max_connections, spare=spare, young=True)
            self._warnings.warn(
                "connections",
                f"{len(self.slots)} connections open, near the limit of {self.max_connections}: closing the slowest "
                f"(bodies behind the minimum rate, then the longest idle) to keep room for new ones ({closed} now).",
            )

    def connection_lost(self, handler: Any, exc: BaseException | None = None) -> None:
        """Forget the connection."""
        super().connection_lost(handler, exc)
        slot = self.slots.pop(handler, None)
        if slot is not None and slot.evicted:
            self._evicting -= 1

    def busy(self) -> int:
        """Connections receiving a body or being answered."""
        return sum(1 for slot in self.slots.values() if slot.answering or slot.timer is not None)

    def make_room(self, count: int, spare: Any = None, young: bool = False) -> int:
        """Close up to `count` connections, soonest deadline first, none being answered (nor `spare`, nor one idle for
        less than YOUNG unless `young`); how many."""
        settled = asyncio.get_running_loop().time() - YOUNG
        candidates = [(slot.deadline, n, handler) for n, (handler, slot) in enumerate(self.slots.items())
                      if not slot.answering and not slot.evicted and handler is not spare
                      and (young or slot.timer is not None or slot.since < settled)]  # fmt: skip
        victims = heapq.nsmallest(count, candidates)
        for _, _, handler in victims:
            self.evict(handler)
        return len(victims)

    def make_budget_room(self, size: int, spare: Any) -> bool:
        """Whether `size` more bytes fit in the body budget, once stalled bodies (STALLED behind the rate) are closed."""
        budget = self.budget
        if budget.used + size <= budget.limit:
            return True
        cutoff = asyncio.get_running_loop().time() + self._grace - STALLED
        stalled = sorted((slot.deadline, n, handler) for n, (handler, slot) in enumerate(self.slots.items())
                         if slot.held and slot.timer is not None and not slot.evicted and slot.deadline < cutoff
                         and handler is not spare)  # fmt: skip
        closed = 0
        for _, _, handler in stalled:
            if budget.used + size <= budget.limit:
                break
            self.evict(handler)
            closed += 1
        if closed:
            self._warnings.warn(
                "budget room",
                f"request bodies arriving at once fill the body budget ({budget.limit:,} bytes): closing the stalled ones "
                f"({closed} now) to make room for new ones.",
            )
        return budget.used + size <= budget.limit

    def evict(self, handler: Any) -> None:
        """Close one connection to make room: a body being received gets its 408 (and hands its bytes back now)."""
        slot = self.slots[handler]
        slot.evicted = True
        self._evicting += 1
        if slot.timer is not None:  # its handler records the 408 (what it answers goes nowhere: the 408 went already)
            self.budget.give(slot.held)
            slot.held = 0
            slot.timer.reschedule(asyncio.get_running_loop().time())
            if handler.transport is not None:
                handler.transport.write(EVICTED_ANSWER)
        handler.force_close()


class _ServerLog(logging.Handler):
    """aiohttp reports a malformed request as "Error handling request" with a traceback: make it one
    `rejected` line (or, for anything else aiohttp logs, one rate-limited warning)."""

    def __init__(self, listener: Listener) -> None:
        super().__init__(logging.DEBUG)
        self.listener = listener

    def emit(self, record: logging.LogRecord) -> None:
        """Route one aiohttp log record."""
        with contextlib.suppress(Exception):  # the display failing must not become logging's own traceback
            self._route(record)

    def _route(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            detail = " ".join(str(error.message or type(error).__name__).split())[:200]
            self.listener.hub.publish(Rejection(error.code or 400, f"malformed request: {detail}", "-", "-"))
        elif record.levelno >= logging.WARNING:
            detail = f": {type(error).__name__}: {error}" if error is not None else ""
            self.listener.warnings.warn("aiohttp", " ".join(f"{record.getMessage()}{detail}".split())[:300])


#: A generator of our own: code that seeds the global `random` (test tools do) must not make ids repeat.
_ids = random.Random(int.from_bytes(os.urandom(16), "big"))


def new_id() -> str:
    """A fresh exchange id: milliseconds since the epoch, then 32 random bits. Time-ordered ids keep the
    history's unique index appending at its end instead of touching a random page on every insert."""
    return f"evt_{time.time_ns() // 1_000_000:012x}{_ids.getrandbits(32):08x}"


async def bind(
    runner: web.BaseRunner, host: str, port: int, in_use: tuple[str, str], failed: tuple[str, str | None], backlog: int = 128
) -> None:
    """Set the runner up and listen on host:port; ListenerError (with `in_use` or `failed` as message and hint)
    when the address cannot be used, and nothing left half-open."""
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, backlog=backlog).start()
    except OSError as error:
        await runner.cleanup()
        if error.errno == errno.EADDRINUSE:
            raise ListenerError(*in_use) from None
        raise ListenerError(f"{failed[0]}: {error.strerror or error}.", failed[1]) from None


class Listener:
    """One aiohttp server: start(), then every exchange and refusal goes through the hub, then stop()."""

    def __init__(self, config: ListenerConfig, answer: Answerer, hub: Hub) -> None:
        self.config = config
        self.answer = answer
        self.hub = hub
        #: Exchanges answered so far (the status endpoint and --max-events read it).
        self.events = 0
        self.port = config.port
        #: Set by `listen` once a public tunnel points here: the status endpoint then never shows the version.
        self.tunnel_open = False
        self.warnings = RateLimitedWarnings(hub.warn)
        self._runner: web.ServerRunner | None = None
        self._server: _Server | None = None
        self._log = logging.Logger("comethook.aiohttp")
        self._log.addHandler(_ServerLog(self))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous_handler: Any = None
        self._expected = config.basic_auth.encode() if config.basic_auth else None
        #: Shared by every body being received: many slow connections cannot add up past it (see ListenerConfig.body_budget).
        self.budget = ByteBudget(config.body_budget)
        self._local_url = self.local_url

    @property
    def local_url(self) -> str:
        """http://host:port of the running server."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and start serving; ListenerError when the address cannot be used."""
        cap = self.config.max_connections or default_max_connections()
        server = _Server(
            self._handle, max_connections=cap, budget=self.budget,
            grace=self.config.body_grace, warnings=self.warnings, keepalive_timeout=IDLE_TIMEOUT, auto_decompress=False, logger=self._log,
            access_log=None, max_line_size=8190, max_field_size=8190, max_headers=128, lingering_time=LINGER,
        )  # fmt: skip
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=3)
        await bind(
            runner, self.config.host, self.config.port,
            in_use=(f"Port {self.config.port} is already in use on {self.config.host}.",
                    "Stop whatever uses it, or pick another port: --port 0 picks a free one."),
            failed=(f"Cannot listen on {self.config.host}:{self.config.port}", "Check --host and --port."),
            backlog=backlog(cap),
        )  # fmt: skip
        self._runner, self._server = runner, server
        self.port = int(runner.addresses[0][1])
        self._local_url = self.local_url
        self._loop = asyncio.get_running_loop()
        self._previous_handler = self._loop.get_exception_handler()
        self._loop.set_exception_handler(self._loop_error)

    async def stop(self) -> None:
        """Stop accepting, let in-flight answers finish (briefly), release the port."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = self._server = None
        self.warnings.flush()
        if self._loop is not None:
            self._loop.set_exception_handler(self._previous_handler)
            self._loop = None

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio reports a failed accept() (out of file descriptors) with a traceback, again every second:
        say it once in a while instead, and close the slowest connections to make room."""
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in ACCEPT_ERRORS:
            server = self._server
            open_ = len(server.slots) if server else 0
            busy = server.busy() if server else 0
            closed = server.make_room(max(open_ // 10, 1), young=True) if server else 0  # out of descriptors now
            # The count is of connections to the listener; forwards to your app and the history use descriptors too.
            self.warnings.warn(
                "accept",
                f"cannot accept connections: {error.strerror or error} ({open_} connections to the listener open, "
                f"{busy} busy; closed the {closed} slowest). Forwards to your app use descriptors too: raise the "
                "limit with `ulimit -n`.",
            )
        elif self._previous_handler is not None:
            self._previous_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    def _reject(
        self, request: web.BaseRequest, status: int, reason: str, headers: dict[str, str] | None = None, close: bool = False,
        counted: bool = False,
    ) -> web.Response:  # fmt: skip
        # The path as it arrived (still percent-encoded, so no CR/LF or ESC), without the query (it may carry a token).
        path = request.raw_path.partition("?")[0]
        path = path if path.isascii() else replace_surrogates(path)
        self.hub.publish(Rejection(status, reason, request.method, path, counted))
        response = web.json_response({"error": reason}, status=status, headers=headers)
        if close:  # the rest of the body is not worth waiting for
            response.force_close()
        return response

    def _authorized(self, request: web.BaseRequest) -> bool:
        if self._expected is None:
            return True
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self._expected)

    def _unauthorized(self, request: web.BaseRequest) -> web.Response:
        reason = "wrong Basic auth credentials" if "Authorization" in request.headers else "missing Basic auth credentials"
        return self._reject(request, 401, reason, {"WWW-Authenticate": 'Basic realm="comethook"'})

    def _status(self, request: web.BaseRequest) -> web.Response:
        """GET /: alive or not. The version only to this machine, and only when no tunnel relays the public's requests."""
        status: dict[str, Any] = {"status": "ok", "service": "comethook", "events": self.events}
        relayed = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
        if not self.tunnel_open and not relayed and is_loopback(request.remote):
            status["version"] = __version__
        return web.json_response(status)

    def _slot(self, request: web.BaseRequest) -> _Slot:
        server = self._server
        slot = server.slots.get(request.protocol) if server is not None else None
        return slot if slot is not None else _Slot(0.0)  # its connection is gone already: a slot nobody evicts

    async def _read(self, request: web.BaseRequest, slot: _Slot) -> bytes | None:
        """The body as it arrived, at most --max-body bytes (None past it), kept above the minimum rate (TimeoutError
        when it falls behind, or when it is closed to make room). Each chunk is taken from the shared budget first
        (BudgetSpent when it is spent); _handle gives it back."""
        if request.content.is_eof():  # all of it is here already (a webhook usually is): no timer to arm
            body = await self._chunks(request, slot, None)
        else:
            slot.deadline = asyncio.get_running_loop().time() + self.config.body_grace
            try:
                async with asyncio.timeout_at(slot.deadline) as timer:
                    slot.timer = timer
                    if self._server is not None:  # a slow body may now be closed to make room; it may be this one
                        self._server.trim()
                    body = await self._chunks(request, slot, timer)
            finally:
                slot.timer = None
        slot.answering = True
        return body

    async def _chunks(self, request: web.BaseRequest, slot: _Slot, timer: asyncio.Timeout | None) -> bytes | None:
        # The deadline moves on by each chunk's share of the minimum rate, but never more than the grace ahead of now:
        # a body keeps arriving at body_min_rate on average and never pauses longer than body_grace (bytes sent
        # early buy no more than that, so a burst followed by a trickle is cut like the trickle alone).
        chunks: list[bytes] = []
        size = 0
        grace, rate = self.config.body_grace, self.config.body_min_rate
        while chunk := await request.content.readany():
            size += len(chunk)
            if size > self.config.max_body:
                return None
            if not self.budget.take(len(chunk)):
                if not self._budget_room(len(chunk), request):
                    raise BudgetSpent(self.budget.limit)
                self.budget.take(len(chunk))
            slot.held += len(chunk)
            chunks.append(chunk)
            if timer is not None:
                now = asyncio.get_running_loop().time()
                slot.deadline = min(slot.deadline + len(chunk) / rate, now + grace)
                timer.reschedule(slot.deadline)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _budget_room(self, size: int, request: web.BaseRequest) -> bool:
        """Whether `size` more bytes fit in the body budget (stalled bodies closed to make room if need be)."""
        if self._server is None:
            return self.budget.used + size <= self.budget.limit
        return self._server.make_budget_room(size, request.protocol)

    def _too_slow(self, request: web.BaseRequest, slot: _Slot) -> web.Response:
        reason = EVICTED if slot.evicted else f"body slower than {self.config.body_min_rate:,} bytes/s"
        # Slow bodies come in floods: one warning per WARN_EVERY counts them (each keeps its `rejected` record).
        self.warnings.warn(
            "slow bodies",
            f"request bodies arriving slower than {self.config.body_min_rate:,} bytes/s (after {self.config.body_grace:g} s) "
            "get 408, and slow ones are closed first when the listener is full. A flood of slow senders looks like this.",
        )
        return self._reject(request, 408, reason, close=True, counted=True)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        slot = self._slot(request)
        try:
            return await self._exchange(request)
        finally:
            slot.answering = False
            slot.since = asyncio.get_running_loop().time()
            slot.deadline = slot.since + IDLE_TIMEOUT  # as aiohttp's keep-alive timer restarts
            self.budget.give(slot.held)
            slot.held = 0

    def _over_budget(self, request: web.BaseRequest) -> web.Response:
        self.warnings.warn(
            "budget",
            f"request bodies arriving at once hold {self.budget.limit:,} bytes, the listener's memory budget: new ones get "
            f"503 (Retry-After {RETRY_AFTER}) until some finish. CometChat retries; a flood of slow senders looks like this.",
        )
        return self._reject(
            request, 503, "too many bodies arriving at once (memory budget); try again", {"Retry-After": str(RETRY_AFTER)}, True
        )

    async def _exchange(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        received_at = time.time()
        raw_path, _, raw_query = request.raw_path.partition("?")
        # Credentials first, for every method and path: an unauthenticated caller learns nothing, not even a 405.
        if not self._authorized(request):
            return self._unauthorized(request)
        # CometChat sends no Origin; a web page does: without this, any page the developer opens could post forged deliveries.
        if "Origin" in request.headers and not self.config.allow_browser_origin:
            origin = request.headers["Origin"][:100]
            return self._reject(
                request, 403, f"sent by a web browser (Origin: {origin!r}), never by CometChat; --allow-browser-origin accepts it"
            )
        if request.method in ("GET", "HEAD") and raw_path == "/":
            return self._status(request)
        if request.method != "POST":
            return self._reject(request, 405, f"method {request.method} not allowed (CometChat POSTs)", {"Allow": "POST"})
        # Raw control characters never get past aiohttp's parser; only percent-escapes can decode to one.
        if "%" in raw_path and any(ord(c) < 0x20 or ord(c) == 0x7F for c in request.path):
            return self._reject(request, 400, "path holds control characters (CR, LF, ...) once decoded")
        too_large = f"body over the {self.config.max_body} byte limit (--max-body)"
        declared = request.content_length
        if declared is not None and declared > self.config.max_body:
            return self._reject(request, 413, too_large, close=True)
        slot = self._slot(request)
        if declared is not None and not self._budget_room(declared, request):
            return self._over_budget(request)
        headers = request.headers
        if "Expect" in headers and headers["Expect"].lower() == "100-continue" and request.version >= (1, 1):
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # as aiohttp's router would
            request.writer.output_size = 0
        try:
            raw = await self._read(request, slot)
        except TimeoutError:
            return self._too_slow(request, slot)
        except BudgetSpent:
            return self._over_budget(request)
        if raw is None:
            return self._reject(request, 413, too_large, close=True)
        encoding = headers.get("Content-Encoding", "")
        try:
            body = decode_body(raw, encoding, self.config.max_body) if encoding else raw
        except DecodedTooLarge:
            return self._reject(request, 413, too_large + " once decompressed")
        except UnsupportedEncoding:
            return self._reject(
                request, 415, f"Content-Encoding {encoding!r} not supported (gzip, deflate)", {"Accept-Encoding": "gzip, deflate"}
            )
        except ValueError:
            return self._reject(request, 400, f"body is not valid {encoding} data (Content-Encoding)")
        if not body or body.isspace():
            return self._reject(request, 400, "empty body (CometChat sends JSON)")
        try:
            payload = jsonbody.parse(body)
        except jsonbody.JsonBodyError as error:
            return self._reject(request, 400, "body is not valid UTF-8" if error.kind == "encoding" else "body is not JSON")
        info = clean_info(describe(payload), body)
        pairs = tuple(headers.items())
        # The path and query exactly as they arrived (%2F, %3F, %23 stay encoded): they are forwarded and stored as such.
        incoming = Incoming(request.method, raw_path, raw_query, pairs, raw, payload, info)
        answer = await self.answer(incoming)
        latency = (time.perf_counter() - started) * 1000
        exchange = Exchange(
            id=new_id(),
            received_at=received_at,
            method=request.method,
            path=raw_path,
            query=raw_query,
            headers=redact_headers(pairs),
            body=raw,
            info=info,
            response_status=answer.status,
            response_body=answer.body,
            latency_ms=answer.latency_ms if answer.latency_ms is not None else latency,
            verdict=judge(payload, answer.status, answer.body) if info.trigger == "before_message" else None,
            response_headers=answer.headers,
            forwarded_to=answer.forwarded_to,
            forward_error=answer.error,
            answered_by=answer.answered_by,
            listener=self._local_url,
            payload=payload,
            outcome=answer.outcome,
        )
        # Stored before it is answered (acknowledged means stored); then shown. What the history could not store is
        # not acknowledged: a 503 asks CometChat to send it again (where retryOnFailure is set), never the app's answer.
        refused = await self.hub.commit(exchange)
        if refused is not None:
            return self._not_stored(request, refused.reason)
        self.events += 1
        self.hub.publish(exchange)
        # The pairs, not a dict: aiohttp keeps them in a CIMultiDict, so repeated headers (Set-Cookie) all go back.
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)

    def _not_stored(self, request: web.BaseRequest, reason: str) -> web.Response:
        """503 with Retry-After for a delivery the history could not store: one rate-limited warning counts them, and
        each is published as a `rejected` record (which the displays leave to that warning)."""
        self.warnings.warn(
            "history",
            f"the history could not store a delivery ({reason}): refused with 503 (Retry-After {RETRY_AFTER}), so CometChat "
            "sends it again where retries are on. Deliveries are refused until the history can be written.",
        )
        path = request.raw_path.partition("?")[0]
        self.hub.publish(
            Rejection(503, f"not stored: {reason}", request.method, path if path.isascii() else replace_surrogates(path), True)
        )
        return web.json_response(
            {"error": "the delivery could not be stored; try again"}, status=503, headers={"Retry-After": str(RETRY_AFTER)}
        )

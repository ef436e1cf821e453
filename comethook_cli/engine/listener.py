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
import errno
import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from comethook_cli import __version__, jsonbody
from comethook_cli.cometchat.events import describe
from comethook_cli.engine import connections
from comethook_cli.engine.bodies import DecodedTooLarge, UnsupportedEncoding, decode_body
from comethook_cli.engine.budget import BudgetSpent, ByteBudget
from comethook_cli.engine.config import ListenerConfig
from comethook_cli.engine.connections import EVICTED, CappedServer, Slot, backlog, default_max_connections
from comethook_cli.engine.exchanges import clean_info, make_exchange
from comethook_cli.engine.serving import bind
from comethook_cli.engine.warnings import RateLimitedWarnings
from comethook_cli.models import Answer, Exchange, Incoming, Rejection, replace_surrogates

if TYPE_CHECKING:
    from comethook_cli.engine.hub import Hub

LOOPBACK = {"127.0.0.1", "localhost", "::1"}

Answerer = Callable[[Incoming], Awaitable[Answer]]

#: After refusing a body, what is left of it is read (so the client sees the answer) for at most this long.
LINGER = 2.0
#: What a body refused for the memory budget (--body-budget) is told to wait before trying again (seconds).
RETRY_AFTER = 5
#: Where the tunnel probe's private path starts (its per-run token follows).
PROBE_PREFIX = "/_comethook/probe/"
#: Errors accept() gives when the process or the system is out of file descriptors or memory.
ACCEPT_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


def is_loopback(address: str | None) -> bool:
    """Whether a peer address is this machine (IPv4-mapped IPv6 included)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return (mapped or ip).is_loopback


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
        self._server: CappedServer | None = None
        self._log = logging.Logger("comethook.aiohttp")
        self._log.addHandler(_ServerLog(self))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous_handler: Any = None
        self._expected = config.basic_auth.encode() if config.basic_auth else None
        #: Shared by every body being received: many slow connections cannot add up past it (see ListenerConfig.body_budget).
        self.budget = ByteBudget(config.body_budget)
        self._local_url = self.local_url
        #: The private path the tunnel probe (engine/health.py) asks for, with a per-run token: answered with
        #: `probe_reply` (a second secret, never in a request) and never recorded, published or counted.
        self.probe_path = f"{PROBE_PREFIX}{secrets.token_urlsafe(16)}"
        self.probe_reply = secrets.token_hex(16).encode()

    @property
    def local_url(self) -> str:
        """http://host:port of the running server."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and start serving; ListenerError when the address cannot be used."""
        cap = self.config.max_connections or default_max_connections()
        server = CappedServer(
            self._handle, max_connections=cap, budget=self.budget,
            grace=self.config.body_grace, warnings=self.warnings, keepalive_timeout=connections.IDLE_TIMEOUT, auto_decompress=False, logger=self._log,
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

    def in_flight(self) -> int:
        """Deliveries being received or answered now (what a second Ctrl-C drops)."""
        return self._server.busy() if self._server is not None else 0

    async def stop(self) -> None:
        """Stop accepting, let in-flight answers finish (briefly), release the port."""
        try:
            if self._runner is not None:
                await self._runner.cleanup()  # cancelled by Session.force_stop(): the answers in flight are dropped
        finally:
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

    def _slot(self, request: web.BaseRequest) -> Slot:
        server = self._server
        slot = server.slots.get(request.protocol) if server is not None else None
        return slot if slot is not None else Slot(0.0)  # its connection is gone already: a slot nobody evicts

    async def _read(self, request: web.BaseRequest, slot: Slot) -> bytes | None:
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

    async def _chunks(self, request: web.BaseRequest, slot: Slot, timer: asyncio.Timeout | None) -> bytes | None:
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

    def _too_slow(self, request: web.BaseRequest, slot: Slot) -> web.Response:
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
            return await self._exchange(request, slot)
        finally:
            slot.answering = False
            slot.since = asyncio.get_running_loop().time()
            slot.deadline = slot.since + connections.IDLE_TIMEOUT  # as aiohttp's keep-alive timer restarts
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

    def _refused(self, request: web.BaseRequest, raw_path: str) -> web.StreamResponse | None:
        """The answer to a request that is not a delivery (the status endpoint's among them), before its body is read;
        None for a delivery."""
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
        return None

    def _decoded(self, request: web.BaseRequest, raw: bytes, too_large: str) -> bytes | web.Response:
        """The body with its Content-Encoding undone, or the refusal of one that cannot be (or is empty)."""
        encoding = request.headers.get("Content-Encoding", "")
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
        return body

    async def _exchange(self, request: web.BaseRequest, slot: Slot) -> web.StreamResponse:
        started = time.perf_counter()
        received_at = time.time()
        raw_path, _, raw_query = request.raw_path.partition("?")
        if raw_path == self.probe_path:  # the tunnel probe: one comparison per request, and it is never a delivery
            return web.Response(body=self.probe_reply)
        refused = self._refused(request, raw_path)
        if refused is not None:
            return refused
        too_large = f"body over the {self.config.max_body} byte limit (--max-body)"
        declared = request.content_length
        if declared is not None and declared > self.config.max_body:
            return self._reject(request, 413, too_large, close=True)
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
        body = self._decoded(request, raw, too_large)
        if isinstance(body, web.Response):
            return body
        try:
            payload = jsonbody.parse(body)
        except jsonbody.JsonBodyError as error:
            return self._reject(request, 400, "body is not valid UTF-8" if error.kind == "encoding" else "body is not JSON")
        info = clean_info(describe(payload), body)
        pairs = tuple(headers.items())
        # The path and query exactly as they arrived (%2F, %3F, %23 stay encoded): they are forwarded and stored as such.
        incoming = Incoming(request.method, raw_path, raw_query, pairs, raw, payload, info)
        answer = await self.answer(incoming)
        exchange = self._recorded(incoming, answer, received_at, (time.perf_counter() - started) * 1000)
        # Stored before it is answered (acknowledged means stored); then shown. What the history could not store is
        # not acknowledged: a 503 asks CometChat to send it again (where retryOnFailure is set), never the app's answer.
        not_stored = await self.hub.commit(exchange)
        if not_stored is not None:
            return self._not_stored(request, not_stored.reason)
        self.events += 1
        self.hub.publish(exchange)
        # The pairs, not a dict: aiohttp keeps them in a CIMultiDict, so repeated headers (Set-Cookie) all go back.
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)

    def _recorded(self, incoming: Incoming, answer: Answer, received_at: float, latency: float) -> Exchange:
        """The exchange as the history stores it and the outputs show it (credentials redacted)."""
        return make_exchange(
            incoming.method, incoming.path, incoming.query, incoming.headers, incoming.body, incoming.payload, answer,
            received_at=received_at, latency_ms=latency, info=incoming.info, listener=self._local_url,
        )  # fmt: skip

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

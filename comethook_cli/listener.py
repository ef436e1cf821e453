"""The aiohttp server behind `listen`: receive, check auth, answer, hand each exchange on.

It never prints: `on_exchange`, `on_rejected` and `on_warning` are the callbacks the command wires
to the display. Whoever answers is a callable `Incoming -> Answer` (the responder, or the forwarder).
"""

from __future__ import annotations

import base64
import binascii
import errno
import hmac
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from comethook_cli import __version__, jsonbody
from comethook_cli.errors import ComethookError, ListenerError
from comethook_cli.events import describe
from comethook_cli.models import DEFAULT_MAX_BODY, DEFAULT_PORT, Answer, Exchange, Incoming, Rejection
from comethook_cli.verdict import judge

if TYPE_CHECKING:
    from comethook_cli.store import HistoryWriter

SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie"}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

Answerer = Callable[[Incoming], Awaitable[Answer]]


@dataclass(frozen=True)
class ListenerConfig:
    """Where to listen and what to accept."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_body: int = DEFAULT_MAX_BODY
    basic_auth: str | None = None


def redact_headers(pairs: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """Headers with credentials replaced (the auth scheme is kept so you can tell what was sent)."""
    redacted = []
    for name, value in pairs:
        if name.lower() in SECRET_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value and name.lower() != "cookie" else ""
            value = f"{scheme} [redacted]".strip()
        redacted.append((name, value))
    return tuple(redacted)


#: A generator of our own: code that seeds the global `random` (test tools do) must not make ids repeat.
_ids = random.Random(int.from_bytes(os.urandom(16), "big"))


def new_id() -> str:
    """A fresh exchange id: milliseconds since the epoch, then 32 random bits. Time-ordered ids keep the
    history's unique index appending at its end instead of touching a random page on every insert."""
    return f"evt_{time.time_ns() // 1_000_000:012x}{_ids.getrandbits(32):08x}"


class Listener:
    """One aiohttp server: start(), then deliveries flow through the callbacks, then stop()."""

    def __init__(
        self,
        config: ListenerConfig,
        answer: Answerer,
        on_exchange: Callable[[Exchange], None],
        on_rejected: Callable[[Rejection], None],
        on_warning: Callable[[str], None],
        history: HistoryWriter | None = None,
    ) -> None:
        self.config = config
        self.answer = answer
        self.on_exchange = on_exchange
        self.on_rejected = on_rejected
        self.on_warning = on_warning
        self.history = history
        self.events = 0
        self.port = config.port
        self._runner: web.AppRunner | None = None
        self._expected = config.basic_auth.encode() if config.basic_auth else None

    @property
    def local_url(self) -> str:
        """http://host:port of the running server."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}"

    def make_app(self) -> web.Application:
        """The aiohttp application (one catch-all route)."""
        app = web.Application(client_max_size=self.config.max_body)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start(self) -> None:
        """Bind and start serving; ListenerError when the address cannot be used."""
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False, shutdown_timeout=3)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError as error:
            await runner.cleanup()
            if error.errno == errno.EADDRINUSE:
                raise ListenerError(
                    f"Port {self.config.port} is already in use on {self.config.host}.",
                    "Stop whatever uses it, or pick another port: --port 0 picks a free one.",
                ) from None
            raise ListenerError(
                f"Cannot listen on {self.config.host}:{self.config.port}: {error.strerror or error}.",
                "Check --host and --port.",
            ) from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop accepting, let in-flight answers finish (briefly), release the port."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _reject(self, request: web.Request, status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
        self.on_rejected(Rejection(status, reason, request.method, request.path))
        return web.json_response({"error": reason}, status=status, headers=headers)

    def _authorized(self, request: web.Request) -> bool:
        assert self._expected is not None
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self._expected)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        received_at = time.time()
        if request.method in ("GET", "HEAD") and request.path == "/":
            return web.json_response({"status": "ok", "service": "comethook", "version": __version__, "events": self.events})
        if request.method != "POST":
            return self._reject(request, 405, f"method {request.method} not allowed (CometChat POSTs)", {"Allow": "POST"})
        if self._expected is not None and not self._authorized(request):
            reason = "wrong Basic auth credentials" if "Authorization" in request.headers else "missing Basic auth credentials"
            return self._reject(request, 401, reason, {"WWW-Authenticate": 'Basic realm="comethook"'})
        too_large = f"body over the {self.config.max_body} byte limit (--max-body)"
        if request.content_length is not None and request.content_length > self.config.max_body:
            return self._reject(request, 413, too_large)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._reject(request, 413, too_large)
        if not body.strip():
            return self._reject(request, 400, "empty body (CometChat sends JSON)")
        try:
            payload = jsonbody.parse(body)
        except jsonbody.JsonBodyError as error:
            return self._reject(request, 400, "body is not valid UTF-8" if error.kind == "encoding" else "body is not JSON")
        info = describe(payload)
        headers = tuple(request.headers.items())
        incoming = Incoming(request.method, request.path, request.query_string, headers, body, payload, info)
        answer = await self.answer(incoming)
        latency = (time.perf_counter() - started) * 1000
        exchange = Exchange(
            id=new_id(),
            received_at=received_at,
            method=request.method,
            path=request.path,
            query=request.query_string,
            headers=redact_headers(headers),
            body=body,
            info=info,
            response_status=answer.status,
            response_body=answer.body,
            latency_ms=answer.latency_ms if answer.latency_ms is not None else latency,
            verdict=judge(payload, answer.status, answer.body) if info.trigger == "before_message" else None,
            response_headers=answer.headers,
            forwarded_to=answer.forwarded_to,
            forward_error=answer.error,
            answered_by=answer.answered_by,
            payload=payload,
        )
        self.events += 1
        if self.history is not None:
            try:
                await self.history.record(exchange)
            except ComethookError as error:
                self.on_warning(error.message)
        try:
            self.on_exchange(exchange)
        except Exception as error:  # the display must never cost CometChat its answer
            self.on_warning(f"could not display event {exchange.id}: {error}")
        # The pairs, not a dict: aiohttp keeps them in a CIMultiDict, so repeated headers (Set-Cookie) all go back.
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)

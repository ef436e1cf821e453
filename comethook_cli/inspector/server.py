"""The inspector's web server: the page, the JSON API and the event stream, for this machine only.

The listener is public (a tunnel points at it); the inspector must not be. So it runs on a server of its own:

* bound to 127.0.0.1 only, never to the listener's port (the tunnel cannot reach it);
* the guard of engine/localguard.py (shared with `emulate`): a `Host` check (DNS rebinding: only
  `127.0.0.1:<port>`, `localhost:<port>` and `[::1]:<port>` get an answer); every state-changing request
  (replay, send, rules) carries the per-run token the page got on load (`X-Comethook-Token`) and a same-origin
  `Origin`; a read another site's page makes (`Sec-Fetch-Site: cross-site`/`same-site`, or a foreign `Origin`)
  needs the token too, so a no-cors flood of `/api/export.har` from another tab costs a 403, not a history scan;
* a strict Content-Security-Policy (scripts and styles from this origin only, no inline code, no eval), nosniff
  and no-store on every response, streamed ones included, and the page writes payload text with `textContent` only;
* at most MAX_CONNECTIONS connections (past it, the oldest idle one is closed) and MAX_STREAMS event streams
  (past it, the oldest is told to reload and closed).

Each event-stream client gets a bounded hub queue: a frozen browser tab is cut off (told to reload from the
API) instead of holding memory or delaying CometChat's answers.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from comethook_cli.engine.localguard import LocalGuard
from comethook_cli.engine.serving import bind
from comethook_cli.inspector.api import Api, json_response
from comethook_cli.models import Exchange, Health
from comethook_cli.outputs import wire

if TYPE_CHECKING:
    from comethook_cli.engine.history.reader import History
    from comethook_cli.engine.hub import BatchSubscription, Hub
    from comethook_cli.engine.session import Session

HOST = "127.0.0.1"
TOKEN_HEADER = "X-Comethook-Token"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: Records an event-stream client may fall behind by before it is cut off and told to reload.
STREAM_QUEUE = 256
#: At most this many missed exchanges are sent on a resume; further behind, the page reloads from the API.
#: `?after=start`: resume from the history's start (a page that loaded it empty).
RESUME_FROM_START = "start"
RESUME_LIMIT = 500
#: A comment line this often keeps proxies and the browser from timing the stream out.
KEEPALIVE_SECONDS = 15.0
#: A client that takes longer than this to accept one write is gone (or frozen): its stream is closed.
WRITE_TIMEOUT = 10.0
#: Encoded frames kept for the pages that have not sent a recent exchange yet.
FRAME_CACHE = 64
STATIC_FILES = {
    "/app.js": ("app.js", "text/javascript"),
    "/detail.js": ("detail.js", "text/javascript"),
    "/panels.js": ("panels.js", "text/javascript"),
    "/app.css": ("app.css", "text/css"),
}
#: Open event streams at most (a page holds one): past it, the oldest is told to reload and closed.
MAX_STREAMS = 32
#: Open connections at most (the inspector shares the process's file descriptors with the listener): past it,
#: the oldest idle connection is closed, or the new one when every connection is busy.
MAX_CONNECTIONS = 128
#: What every response carries, streamed ones (the HAR export, the event stream) included.
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class _ConnectionCap:
    """A cap on a server's open connections, independent of the listener's: simple, since the inspector
    serves one person's pages. Requests in progress (`busy`) are never cut; idle keep-alive ones go first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.busy: set[Any] = set()

    def attach(self, server: web.Server) -> None:
        """Trim the server's connections each time one opens."""
        made = server.connection_made

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self._trim(server, handler)

        server.connection_made = connection_made  # type: ignore[method-assign]

    def _trim(self, server: web.Server, newest: Any) -> None:
        connections = server._connections  # aiohttp's own record of the open ones, oldest first
        excess = len(connections) - self.limit
        if excess <= 0:
            return
        victims = [h for h in connections if h is not newest and h not in self.busy][:excess]
        for handler in victims:
            handler.force_close()
        if len(victims) < excess:  # every older one is busy: the newcomer is the one that goes
            asyncio.get_running_loop().call_soon(newest.force_close)


class _Runner(web.AppRunner):
    """An AppRunner whose server carries the connection cap."""

    def __init__(self, app: web.Application, cap: _ConnectionCap, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._cap = cap

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        self._cap.attach(server)
        return server


def _static(name: str) -> str:
    return (resources.files(__package__) / "static" / name).read_text(encoding="utf-8")


class Inspector:
    """The inspector's server: `start()`, then `url`, then `stop()`."""

    def __init__(
        self,
        hub: Hub,
        history: History | None,
        *,
        session: Session | None = None,
        port: int = 0,
        queue_size: int = STREAM_QUEUE,
        max_streams: int = MAX_STREAMS,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.hub = hub
        self.history = history
        self.session = session
        self.port = port
        self.queue_size = queue_size
        self.token = secrets.token_urlsafe(32)
        self.guard = LocalGuard(HOST, port, self.token, TOKEN_HEADER, changes_need_token=True)
        self.api = Api(self)
        self.max_streams = max_streams
        self._cap = _ConnectionCap(max_connections)
        self._runner: web.AppRunner | None = None
        #: Open streams, oldest first (a dict keeps insertion order); `_evicted`: those closed to make room.
        self._streams: dict[BatchSubscription, None] = {}
        self._evicted: set[BatchSubscription] = set()
        self._closing = False
        self._frames: collections.OrderedDict[str, bytes] = collections.OrderedDict()

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>/ of the running server."""
        return f"http://{HOST}:{self.port}/"

    def application(self) -> web.Application:
        """The aiohttp application: the guard, the page, the API."""
        app = web.Application(middlewares=[self._guard], client_max_size=2 * 1024 * 1024)
        app.on_response_prepare.append(self._secure)
        app.router.add_get("/", self._page)
        for path in STATIC_FILES:
            app.router.add_get(path, self._asset)
        app.router.add_get("/api/stream", self._stream)
        self.api.routes(app.router)
        return app

    async def start(self) -> None:
        """Bind 127.0.0.1:<port> (0: a free one); ListenerError when it is taken."""
        # aiohttp's own log lines (tracebacks of a broken connection) would reach the terminal: they go nowhere.
        quiet = logging.Logger("comethook.inspector")
        quiet.addHandler(logging.NullHandler())
        runner = _Runner(self.application(), self._cap, handle_signals=False, access_log=None, shutdown_timeout=1, logger=quiet)
        await bind(
            runner, HOST, self.port,
            in_use=(f"The inspector's port {self.port} is already in use.", "Pick another with --inspector-port (0: a free one)."),
            failed=(f"Cannot serve the inspector on port {self.port}", None),
        )  # fmt: skip
        self._runner = runner
        self.port = self.guard.port = int(runner.addresses[0][1])

    def drop_streams(self) -> None:
        """End every event stream now (its page reconnects, and resumes from its Last-Event-ID)."""
        for subscription in tuple(self._streams):
            subscription.close()  # wakes the stream so it ends now, not at the shutdown timeout

    async def stop(self) -> None:
        """Close every event stream and the server."""
        self._closing = True
        self.drop_streams()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.history is not None:
            self.history.close()
            self.history = None

    # --- the guard ---------------------------------------------------------------------------------
    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        refusal = self.guard.refusal(request)
        if refusal is not None:
            return json_response({"error": refusal}, 403)
        self._cap.busy.add(request.protocol)
        try:
            response = await handler(request)
        except web.HTTPException as error:
            response = json_response({"error": error.reason}, error.status)
        except Exception as error:  # a page's request must never print a traceback or stop the session
            self.hub.warn(f"inspector: {request.method} {request.path} failed: {type(error).__name__}: {error}")
            response = json_response(
                {"error": f"{type(error).__name__}: {error}", "hint": "See the warning where comethook runs."}, 500
            )
        finally:
            self._cap.busy.discard(request.protocol)
        return response

    @staticmethod
    async def _secure(request: web.BaseRequest, response: web.StreamResponse) -> None:
        """Every response's security headers, set as it is prepared: a streamed one is sent before its handler
        returns, so a middleware setting them afterwards would miss it."""
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault("Cache-Control", "no-store")

    # --- the page ----------------------------------------------------------------------------------
    async def _page(self, request: web.Request) -> web.Response:
        page = _static("index.html").replace("{{token}}", self.token)
        return web.Response(text=page, content_type="text/html", charset="utf-8")

    async def _asset(self, request: web.Request) -> web.Response:
        name, kind = STATIC_FILES[request.path]
        return web.Response(text=_static(name), content_type=kind, charset="utf-8")

    # --- the event stream --------------------------------------------------------------------------
    async def _stream(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: each new exchange as a wire `event` record, its id as the SSE id (and each change of the
        tunnel's or the app's health as a `tunnel` or `app` record, without an id). `Last-Event-ID`
        (or `?after=ID`) first sends what was stored after that exchange, then the live ones, each once."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})  # fmt: skip
        # Subscribe before reading the history: an exchange is stored before it is published, so each one is
        # either in the history read below or in the queue (or both: `sent` drops the second copy).
        subscription = self.hub.subscribe_batches(self.queue_size)
        self._streams[subscription] = None
        while len(self._streams) > self.max_streams:  # the oldest page goes: it is told to reload
            oldest = next(iter(self._streams))
            self._evicted.add(oldest)
            del self._streams[oldest]
            oldest.close()
        try:
            await response.prepare(request)
            await self._write(response, "retry: 1000\n\n")
            sent: set[str] = set()
            after = request.headers.get("Last-Event-ID") or request.query.get("after")
            if after and self.history is not None:
                missed: list[Exchange] | None
                if after == RESUME_FROM_START:  # the page loaded an empty history: everything stored since
                    missed, _ = await self.history.asince(0, RESUME_LIMIT + 1)
                else:
                    missed = await self.history.aafter(after, RESUME_LIMIT + 1)
                if missed is None or len(missed) > RESUME_LIMIT:
                    await self._send(response, wire.Reload("too far behind to resume: reload from the API"))
                    return response
                for exchange in missed:
                    await self._send(response, wire.Event(exchange))
                    sent.add(exchange.id)
            while not self._closing:
                try:
                    # A timeout context, not wait_for (which wraps the wait in a task of its own each time).
                    async with asyncio.timeout(KEEPALIVE_SECONDS):
                        batch = await subscription.batch()
                except TimeoutError:
                    await self._write(response, ": keep-alive\n\n")
                    continue
                # Everything that arrived meanwhile goes out in one write: under a flood, a wake-up and a write a
                # record for each open page cost the listener half its throughput with three pages open.
                frames = [self._frame(r) for r in batch if isinstance(r, Exchange) and r.id not in sent]
                frames += [f"data: {wire.encode(wire.health_record(r))}\n\n".encode() for r in batch if isinstance(r, Health)]
                if frames:
                    await self._write(response, b"".join(frames))
                if subscription.overflowed:
                    await self._send(response, wire.Reload("the page fell behind: reload from the API"))
                    break
                if subscription.closed:
                    if subscription in self._evicted:
                        await self._send(response, wire.Reload("too many pages open: reload from the API"))
                    break
        except (ConnectionError, TimeoutError, asyncio.CancelledError):
            pass  # the tab went away or froze: nothing to tell anyone
        finally:
            subscription.close()
            self._streams.pop(subscription, None)
            self._evicted.discard(subscription)
        return response

    async def _send(self, response: web.StreamResponse, record: wire.Record) -> None:
        if isinstance(record, wire.Event):
            await self._write(response, self._frame(record.exchange))
            return
        await self._write(response, f"data: {wire.encode(record)}\n\n")

    def _frame(self, exchange: Exchange) -> bytes:
        """An exchange's SSE message, encoded once however many pages are open (the same frame goes to each)."""
        frame = self._frames.get(exchange.id)
        if frame is None:
            # One line: the encoder escapes every newline inside strings, so the data field cannot be split.
            frame = f"id: {exchange.id}\ndata: {wire.encode(wire.Event(exchange))}\n\n".encode()
            self._frames[exchange.id] = frame
            if len(self._frames) > FRAME_CACHE:
                self._frames.popitem(last=False)
        return frame

    @staticmethod
    async def _write(response: web.StreamResponse, data: str | bytes) -> None:
        async with asyncio.timeout(WRITE_TIMEOUT):
            await response.write(data.encode("utf-8") if isinstance(data, str) else data)


def inspector_for(session: Session, port: int) -> Inspector:
    """An inspector over a running listen session: its hub, a reader of its history (if it keeps one)."""
    from comethook_cli.engine.history.reader import History

    history = History(session.history.path) if session.history is not None else None
    return Inspector(session.hub, history, session=session, port=port)


def default_port(requested: int | None, listener_port: int) -> int:
    """The inspector's port: the one asked for, else the listener's + 1 (with --port 0, a free one)."""
    if requested is not None:
        return requested
    if listener_port == 0 or listener_port >= 65535:
        return 0
    return listener_port + 1

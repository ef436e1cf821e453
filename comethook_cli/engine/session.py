"""A listening session: the listener, whoever answers, the tunnel and the history, from one ListenConfig.

Modelled on uvicorn's Config → Server: `startup()` binds and opens everything, `serve()` waits for a
reason to stop, `shutdown()` releases everything in reverse. Output is not its business: whoever runs
it subscribes to `session.hub`. A Python caller needs no Typer:

    async with Session(ListenConfig()) as session:
        records = session.hub.subscribe_queue()
        ...                      # deliveries arrive; records.get() returns each Exchange
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from comethook_cli.engine.config import ListenConfig
from comethook_cli.engine.hub import Hub
from comethook_cli.errors import Named, SettingText, UnreachableError
from comethook_cli.models import Exchange, RecordHandler

if TYPE_CHECKING:
    from comethook_cli.cometchat.rules import Action, Responder
    from comethook_cli.engine.health import Watch
    from comethook_cli.engine.history.writer import HistoryWriter
    from comethook_cli.engine.listener import Answerer, Listener
    from comethook_cli.engine.tunnel import Tunnel

#: The path the banner tells people to paste (the listener accepts any path).
WEBHOOK_PATH = "/webhook"
HistoryState = Literal["on", "off"]


class Session:
    """One `listen`, from start-up to shutdown."""

    def __init__(
        self,
        config: ListenConfig,
        on_warning: Callable[[str], None] | None = None,
        confirm_install: Callable[[str], bool] | None = None,
        on_tunnel_opening: Callable[[], None] | None = None,
        probe_interval: float | None = None,
        app_interval: float | None = None,
    ) -> None:
        self.config = config
        self.hub = Hub(on_warning=on_warning)
        self.confirm_install = confirm_install
        #: Called when the ngrok agent starts (a display shows progress until startup() returns).
        self.on_tunnel_opening = on_tunnel_opening
        #: Seconds between probes through the public URL, and between connects to the app (None: engine/health.py's).
        self.probe_interval = probe_interval
        self.app_interval = app_interval
        #: The public URL the last run announced, when this run's differs (the Dashboard may still call it).
        self.previous_public_url: str | None = None
        #: The tunnel probe and the app watches (engine/health.py), running while the session serves.
        self.watches: list[Watch] = []
        self.answerer: Answerer | None = None
        #: The canned answers (with --forward-to, what unrouted triggers get); `set_action()` switches them live.
        self.responder: Responder | None = None
        #: One line saying who answers (canned answers, rules, or the app forwarded to), for the banner.
        self.answering = ""
        self.history: HistoryWriter | None = None
        self.history_state: HistoryState = "off"
        self.listener: Listener | None = None
        self.tunnel: Tunnel | None = None
        self.started = False
        self._prepared = False
        self._close_answerer: Callable[[], Awaitable[None]] | None = None
        self._stop: asyncio.Event | None = None
        self._stopping: asyncio.Future[None] | None = None
        self._forced = False
        self._kept = 0

    # --- the three phases ------------------------------------------------------------------------
    def prepare(self) -> None:
        """Everything that can be done before a socket opens: the answerer (the forwarder's clients), the history file.
        The config's values were checked when it was made; a history that cannot be written stops it here, so nothing
        starts half-way. Called by startup() if not before."""
        if self._prepared:
            return
        from comethook_cli.engine.auth import basic_auth_header
        from comethook_cli.engine.listener import Listener

        listener = self.config.listener
        if listener.basic_auth:
            basic_auth_header(listener.basic_auth)  # validates USER:PASS
        self.answerer, self.answering, self._close_answerer = self._build_answerer()
        self.history, self.history_state = self._open_history()
        self.hub.sink = self.history
        self.hub.keep_secrets = self.config.history.keep_secrets
        if self.config.history.keep_secrets and self.history is not None:
            self.hub.warn(
                SettingText(
                    Named("keep_secrets"),
                    f": {self.history.path} stores the values of secret query parameters (?token= ...) in clear, for "
                    "replays. Anyone who can read that file can read them; `comethook history clear` removes them.",
                )
            )
        if self.config.events:
            self.hub.keep = lambda exchange: self.config.keeps(exchange.info.trigger, exchange.info.generation)
        self.listener = Listener(listener, self.answerer, self.hub)
        self._prepared = True

    async def startup(self) -> None:
        """Bind the listener and open the tunnel (ListenerError, TunnelError when they cannot be)."""
        from comethook_cli.engine.listener import LOOPBACK

        self.prepare()
        assert self.listener is not None
        self._stop = asyncio.Event()
        self._kept = 0
        self.hub.subscribe(_Counter(self))
        if self.config.listener.host not in LOOPBACK:
            self.hub.warn(f"listening on {self.config.listener.host}: anyone who can reach this machine can post to it.")
        try:
            await self.listener.start()
            self.tunnel = await self._open_tunnel()
            from comethook_cli.engine import health

            self.watches = await health.watches_for(self)
        except BaseException:
            await self.shutdown()  # whatever did open (the history, the app client) is released
            raise
        self.listener.tunnel_open = self.public_url is not None
        if self.public_url is not None:
            from comethook_cli.engine.public_url import remember

            self.previous_public_url = remember(self.public_url)
        for watch in self.watches:
            watch.start()
        self.started = True

    async def serve(self) -> None:
        """Wait for stop(), --max-events, --timeout (UnreachableError when events are still missing) or a
        dead tunnel (TunnelError)."""
        assert self._stop is not None, "startup() first"
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._stop.wait())]
        if self.tunnel is not None:
            waiters.append(asyncio.ensure_future(self.tunnel.watch()))
        try:
            done, _ = await asyncio.wait(waiters, timeout=self.config.timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        for waiter in done:
            waiter.result()  # a dead tunnel raises TunnelError here
        if not done and self.config.max_events is not None:
            raise UnreachableError(
                f"Only {self.events} of {self.config.max_events} events arrived within {self.config.timeout:g} s.",
                SettingText("Check the webhook URL and triggers in the CometChat Dashboard, or raise ", Named("timeout"), "."),
            )

    async def shutdown(self) -> None:
        """Stop accepting, let answers in flight finish (briefly), close the app client, the tunnel, the history."""
        try:
            for watch in self.watches:
                await watch.stop()
            if self.listener is not None:
                self._stopping = asyncio.ensure_future(self.listener.stop())
                if self._forced:  # Ctrl-C twice before the shutdown began: no waiting for the answers in flight
                    self._stopping.cancel()
                await asyncio.wait([self._stopping])  # force_stop() may cut it short; the rest still closes
                if not self._stopping.cancelled():
                    self._stopping.result()
            if self._close_answerer is not None:
                await self._close_answerer()
            if self.tunnel is not None:
                await self.tunnel.close()
        finally:
            if self.history is not None:
                self.history.close()
                self.history = None

    def force_stop(self) -> int:
        """Stop waiting for the answers in flight (a second Ctrl-C while shutting down); how many deliveries that drops."""
        if self.listener is None or (self._stopping is not None and self._stopping.done()):
            return 0
        dropped = self.listener.in_flight()
        self._forced = True
        if self._stopping is not None:
            self._stopping.cancel()
        return dropped

    def stop(self) -> None:
        """Ask serve() to return (signal handlers call this)."""
        if self._stop is not None:
            self._stop.set()

    async def __aenter__(self) -> Session:
        await self.startup()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    def set_action(self, action: Action, changed_in: str | None = None) -> str:
        """Switch the canned before_message answer while serving; returns the new banner line. Rules and the drop_if
        pattern still come first; the next delivery gets the new answer (one attribute swap, so none sees half a change).
        `changed_in` (e.g. "the inspector"): who changed it, said in a warning line, since the terminal's banner said
        otherwise. It has no effect while before_message is forwarded to an app (see forwarded_to)."""
        self.prepare()
        assert self.responder is not None
        self.responder.action = action
        if not self.config.forward.enabled:  # the forwarder's line names the app, which has not changed
            self.answering = self.responder.describe()
        if changed_in is not None:
            self.hub.warn(f"Answers changed in {changed_in}: before_message → {_shown(action)}")
        return self.answering

    def forwarded_to(self, trigger: str) -> str | None:
        """The app a trigger is relayed to (its password hidden), or None when comethook's canned answers answer it."""
        from comethook_cli.engine.urls import redact_url

        target = self.config.forward.target_for(trigger)
        return redact_url(target) if target is not None else None

    # --- what a caller may want to know ----------------------------------------------------------
    @property
    def events(self) -> int:
        """Events so far: exchanges answered and published as such (with --events, only those it keeps)."""
        return self._kept

    @property
    def local_url(self) -> str:
        """http://host:port of the listener."""
        assert self.listener is not None
        return self.listener.local_url

    @property
    def public_url(self) -> str | None:
        """The tunnel's public URL, or --public-url's (None when listening locally)."""
        return self.tunnel.public_url if self.tunnel is not None else self.config.tunnel.public_url

    def health(self) -> dict[str, dict[str, str]]:
        """What the watches last found, by subject ("tunnel", "app"): {"state": "up"|"down"|"checking", "url", "detail"}.
        A subject with several apps is down when any of them is."""
        found: dict[str, dict[str, str]] = {}
        for watch in self.watches:
            state = watch.state if watch.checks or watch.state == "down" else "checking"
            kept = found.get(watch.subject)
            if kept is None or (state == "down" and kept["state"] != "down"):
                found[watch.subject] = {"state": state, "url": watch.url, "detail": watch.detail}
        return found

    @property
    def webhook_url(self) -> str:
        """What to paste in the CometChat Dashboard."""
        return (self.public_url or self.local_url) + WEBHOOK_PATH

    # --- the parts -------------------------------------------------------------------------------
    def _count(self, exchange: Exchange) -> None:
        self._kept += 1
        if self.config.max_events is not None and self.events >= self.config.max_events:
            self.stop()

    def _build_answerer(self) -> tuple[Answerer, str, Callable[[], Awaitable[None]] | None]:
        """The canned responder, or the forwarder (which falls back to it for unrouted triggers)."""
        from comethook_cli.cometchat import rules

        answers = self.config.answers
        canned = self.responder = rules.Responder(answers.action, answers.drop_if, answers.rules, answers.delay, answers.status)
        forward = self.config.forward
        if not forward.enabled:
            return canned, canned.describe(), None
        from comethook_cli.engine.forwarder import Forwarder

        forwarder = Forwarder.from_config(forward, self.hub.warn, canned)
        return forwarder, forwarder.describe(), forwarder.close

    def _open_history(self) -> tuple[HistoryWriter | None, HistoryState]:
        """The history writer, with retention, once a real write reached its file (a damaged file is set aside by the
        writer). A history it cannot write (read-only, immutable, of the wrong shape, on a full disk, damaged and
        impossible to move) stops the start with an error: every delivery it acknowledged would be lost. `--no-history`
        is the way to listen without one."""
        history = self.config.history
        if not history.enabled:
            return None, "off"
        from comethook_cli.engine.history.files import HistoryDamaged, default_path
        from comethook_cli.engine.history.writer import HistoryWriter

        try:
            return HistoryWriter(default_path(), history.retention, self.hub.warn), "on"
        except HistoryDamaged as damaged:  # and it could not be set aside either
            damaged.hint = f"{damaged.hint} Or run `comethook listen --no-history` (deliveries answered, not stored)."
            raise

    async def _open_tunnel(self) -> Tunnel | None:
        """The ngrok tunnel when asked for (or when auto mode finds a token); None when listening locally."""
        if self.config.tunnel.mode == "off" or self.config.tunnel.public_url:
            return None
        from comethook_cli.engine import tunnel

        assert self.listener is not None
        return await tunnel.open_for(
            self.listener.port, self.config.tunnel, self.hub.warn, self.confirm_install, self.on_tunnel_opening
        )


#: The most of an injected object a line about a change of answers quotes.
SHOWN_ANSWER = 80


def _shown(action: Action) -> str:
    """An answer in a line: its label, and an injected object's JSON (cut at SHOWN_ANSWER characters)."""
    if action.label != "inject":
        return action.label
    text = action.body.decode("utf-8", errors="replace")
    return f"inject {text if len(text) <= SHOWN_ANSWER else text[: SHOWN_ANSWER - 1] + '…'}"


class _Counter(RecordHandler):
    """Counts the session's events for --max-events: exchanges only (a rejection, or a delivery --events leaves out,
    is not an event)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def on_exchange(self, exchange: Exchange) -> None:
        """One more event."""
        self.session._count(exchange)

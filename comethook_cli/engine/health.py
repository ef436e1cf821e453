"""What `listen` can reach, checked while it runs: the public URL (a probe sent through it) and the app behind
--forward-to (a TCP connect). Each change is a `models.Health` record on the hub, published once per change, so the
displays say "down" once and "back" once; the engine never prints.

The probe goes to a private path of the listener with a per-run random token (`Listener.probe_path`), which the
listener answers with a second per-run secret that never travels in a request: a 200 from anything else (another
listener behind the same URL, a proxy's error page) is a failure, and nobody without the token can make the
listener answer it. The listener never records a probe (not stored, not published, not counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

from comethook_cli.engine.urls import redact_url
from comethook_cli.errors import Named, SettingText
from comethook_cli.models import Health, HealthSubject

if TYPE_CHECKING:
    import aiohttp

    from comethook_cli.engine.hub import Hub
    from comethook_cli.engine.listener import Answerer, Listener

#: Seconds between probes through the public URL.
PROBE_INTERVAL = 30.0
#: Seconds between connects to the app behind --forward-to.
APP_INTERVAL = 3.0
#: After a failed check the next comes sooner (at most this many seconds later), so a failure is confirmed quickly
#: and a recovery is seen soon.
RETRY_INTERVAL = 5.0
#: Failures in a row before the state is "down": one lost probe (a blip of the network, a dev server reloading) is not news.
FAILURES_FOR_DOWN = 2
#: Bytes of a probe's answer read at most (the reply is 32 bytes; an error page is only scanned for ngrok's code).
PROBE_READ_LIMIT = 4096
_NGROK_CODE = re.compile(rb"ERR_NGROK_\d+")
#: Not a browser, and saying so to ngrok too: a free ngrok domain shows browsers a warning page instead of the app.
PROBE_HEADERS = {"User-Agent": "comethook-probe", "ngrok-skip-browser-warning": "1"}

Check = Callable[[], Awaitable[str | None]]


class Watch:
    """A check run every `interval` seconds; publishes a Health record when the state changes (down after
    FAILURES_FOR_DOWN failures in a row, up at the first success after that)."""

    def __init__(
        self,
        subject: HealthSubject,
        url: str,
        check: Check,
        hub: Hub,
        interval: float,
        hint: str,
        *,
        down: bool = False,
        retry: float = RETRY_INTERVAL,
    ) -> None:
        self.subject = subject
        self.url = url
        self.check = check
        self.hub = hub
        self.interval = interval
        self.retry = min(retry, interval)
        self.hint = hint
        #: The state last published (or, before any, what start-up found: `down=True` when it found nothing there).
        self.state: Literal["up", "down"] = "down" if down else "up"
        self.failures = 0
        #: Checks made so far, and what the last change of state said (for the inspector's session API).
        self.checks = 0
        self.detail = ""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run the checks in the background until stop()."""
        self._task = asyncio.ensure_future(self.run())

    async def stop(self) -> None:
        """Stop checking."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def run(self) -> None:
        """Check at once, then every interval (sooner after a failure), forever."""
        while True:
            failure = await self.check_once()
            await asyncio.sleep(self.interval if failure is None else self.retry)

    async def check_once(self) -> str | None:
        """One check; publish a change of state. Returns what failed (None when it worked)."""
        try:
            failure = await self.check()
        except Exception as error:  # a check must never end the watch
            failure = f"{type(error).__name__}: {error}"
        self.checks += 1
        if failure is None:
            self.failures = 0
            if self.state == "down":
                self.state = "up"
                self.detail = self._back()
                self.hub.publish(Health(self.subject, "up", self.detail, "", self.url))
            return None
        self.failures += 1
        if self.state == "up" and self.failures >= FAILURES_FOR_DOWN:
            self.state = "down"
            self.detail = failure
            self.hub.publish(Health(self.subject, "down", failure, self.hint, self.url))
        return failure

    def _back(self) -> str:
        if self.subject == "tunnel":
            return f"Tunnel up: {self.url} reaches this listener again."
        return f"App up: {self.url} accepts connections."


class TunnelProbe(Watch):
    """The public URL probed through itself: a GET of the listener's probe path, answered with its secret reply."""

    def __init__(
        self,
        public_url: str,
        probe_path: str,
        reply: bytes,
        hub: Hub,
        hint: str,
        interval: float = PROBE_INTERVAL,
        timeout: float = 10.0,
        retry: float = RETRY_INTERVAL,
    ) -> None:
        super().__init__("tunnel", public_url, self.probe, hub, interval, hint, retry=retry)
        self.probe_url = public_url.rstrip("/") + probe_path
        self.reply = reply
        self.timeout = timeout
        self._client: aiohttp.ClientSession | None = None

    async def probe(self) -> str | None:
        """One probe: None when this listener answered it, else what went wrong."""
        import aiohttp

        if self._client is None:
            # A new connection each time: a kept-alive one could outlive the path it proves.
            self._client = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=2))
        where = redact_url(self.url)
        try:
            async with (
                asyncio.timeout(self.timeout),
                self._client.get(self.probe_url, allow_redirects=False, headers=PROBE_HEADERS) as answer,
            ):
                body = b""
                while len(body) < PROBE_READ_LIMIT and (chunk := await answer.content.read(PROBE_READ_LIMIT - len(body))):
                    body += chunk  # a relay may deliver the body apart from the headers, and in pieces
        except TimeoutError:
            return (
                f"the probe sent through {where} got no answer within {self.timeout:g} s; CometChat's deliveries do not arrive."
            )
        except aiohttp.ClientError as error:
            # aiohttp names the URL in some errors: the probe's path (its token) stays out of what is shown and stored.
            text = str(error).replace(self.probe_url, where).replace(self.probe_url.split("://", 1)[-1], where)
            reason = " ".join(text.split())[:200] or type(error).__name__
            return f"the probe could not reach {where} ({reason}); CometChat's deliveries do not arrive."
        if answer.status == 200 and body == self.reply:
            return None
        code = _NGROK_CODE.search(body)
        said = f" ({code.group().decode()})" if code else ""
        if answer.status == 200:
            return f"{where} answers, but not from this listener: something else now serves that URL."
        return f"the probe sent through {where} got HTTP {answer.status}{said}; CometChat's deliveries do not arrive."

    async def stop(self) -> None:
        """Stop probing and close the client."""
        await super().stop()
        if self._client is not None:
            await self._client.close()
            self._client = None


def address(url: str) -> tuple[str, int]:
    """The host and port a URL's connections go to."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "localhost", port


async def connect_failure(url: str, timeout: float) -> str | None:
    """Whether something accepts a TCP connection at the URL's host and port (within `timeout`): None, or why not."""
    host, port = address(url)
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return f"no answer to a connection within {timeout:g} s"
    except OSError as error:
        return f"nothing listens there ({error.strerror or error})"
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return None


class AppWatch(Watch):
    """The app behind --forward-to: is anything accepting connections at its address? A cheap TCP connect, never a
    delivery (a failed delivery says so in its own line)."""

    def __init__(
        self, url: str, hub: Hub, fallback: str, interval: float = APP_INTERVAL, timeout: float = 2.0, *, down: bool = False
    ) -> None:
        shown = redact_url(url)
        hint = f"Start your app (or check --forward-to); until it is back, deliveries get the --fallback answer ({fallback})."
        super().__init__("app", shown, self._check, hub, interval, hint, down=down, retry=interval)
        self.target = url
        self.timeout = timeout

    async def _check(self) -> str | None:
        failure = await connect_failure(self.target, self.timeout)
        return None if failure is None else f"{self.url}: {failure}."


#: Seconds the start-up connect to the app may take (it holds up the banner, so it is short).
STARTUP_CONNECT_TIMEOUT = 1.0


class Watched(Protocol):
    """What watches_for() needs of a started session (engine/session.py's Session)."""

    hub: Hub
    listener: Listener | None
    tunnel: Any
    answerer: Answerer | None
    probe_interval: float | None
    app_interval: float | None

    @property
    def public_url(self) -> str | None:
        """The public URL, when there is one."""


async def watches_for(session: Watched) -> list[Watch]:
    """The watches of a session that has started its listener and tunnel: the probe through its public URL, and one
    per app it forwards to, each app tried once now (a warning when nothing listens there yet)."""
    from comethook_cli.engine.forwarder import Forwarder

    watches: list[Watch] = []
    listener = session.listener
    public = session.public_url
    if public is not None and listener is not None:
        if session.tunnel is not None:
            hint = (
                "The ngrok agent runs but its tunnel no longer reaches this listener (see https://dashboard.ngrok.com/agents). "
                "Restart `comethook listen`; add --domain to keep the URL CometChat calls."
            )
        else:
            hint = f"Check that your tunnel forwards {public} to {listener.local_url}, and that it is running."
        interval = session.probe_interval or PROBE_INTERVAL
        watches.append(TunnelProbe(public, listener.probe_path, listener.probe_reply, session.hub, hint, interval))
    answerer = session.answerer
    if isinstance(answerer, Forwarder):
        targets = [answerer.primary] if answerer.primary else []
        targets += [t for t in answerer.routes.values() if t not in targets]
        seen: set[tuple[str, int]] = set()
        for target in targets:
            if address(target) in seen:
                continue
            seen.add(address(target))
            failure = await connect_failure(target, STARTUP_CONNECT_TIMEOUT)
            if failure is not None:
                down = f" {redact_url(target)}: {failure}. Start your app; until then deliveries get the "
                then = f" answer ({answerer.fallback}). A line says when it is up."
                session.hub.warn(SettingText(Named("forward_to"), down, Named("fallback"), then))
            watch = AppWatch(
                target, session.hub, answerer.fallback, session.app_interval or APP_INTERVAL, down=failure is not None
            )
            watch.detail = f"{watch.url}: {failure}." if failure is not None else ""
            watches.append(watch)
    return watches

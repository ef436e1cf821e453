"""An in-process listener for tests: comethook's listening session on loopback, with the deliveries it received."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from comethook_cli.engine import values
from comethook_cli.engine.config import AnswerConfig, ForwardConfig, HistoryConfig, ListenConfig, ListenerConfig, TunnelConfig
from comethook_cli.models import (
    DEFAULT_ANSWER_BUDGET,
    DEFAULT_BODY_BUDGET,
    DEFAULT_MAX_BODY,
    Exchange,
    HubRecord,
    RecordHandler,
    Rejection,
)

if TYPE_CHECKING:
    from comethook_cli.engine.session import Session


class Listener:
    """`comethook listen` without the terminal: `async with Listener(port=0) as listener:` POST to `listener.url`.

    It answers as `listen` does: `respond` ("pass", "drop", "inject:JSON", or a dict to inject), `rules`
    (the entries of a --rules file), `drop_if`, `status`, `delay` (ms); or relays to your app with `forward_to`, and
    answers with `fallback` ("error", "pass" or "drop") when the app is down or too slow.
    A request with an Origin header (a web browser's, never CometChat's) is refused with 403 unless `allow_browser_origin`.
    No tunnel is opened, and nothing is stored in the history unless `history=True`; then, as `listen`, it does not start
    when the history cannot be written (ComethookError), and answers 503 to a delivery it could not store.
    The bounds `listen` sets itself can be set here: `max_connections` (open connections before the oldest idle one is
    closed; None: below the file-descriptor limit), `body_budget` (bytes of request bodies still arriving, over every
    connection; past it 503), `answer_budget` (bytes of answers being read from `forward_to` apps at once; past it
    the fallback answer), `body_grace` (seconds a request body may take to start arriving, and the longest it may pause;
    5) and `body_min_rate` (bytes per second a body must keep arriving at, on average, once the grace is spent; 1024):
    a body slower than that gets 408. A delivery's body arrives with its headers, so it never waits on either.

    A bad argument raises `comethook.InvalidSetting` at once, which names the keyword argument
    (`status=700 is not an HTTP status code.`, with a hint); it is both a `ValueError` and comethook's `UsageError`.
    A rule's error names it as `rules rule N`.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        respond: str | Mapping[str, Any] = "pass",
        rules: Sequence[Mapping[str, Any]] = (),
        drop_if: str | None = None,
        status: int = 200,
        delay: float = 0.0,
        basic_auth: str | None = None,
        forward_to: str | Sequence[str] = (),
        fallback: str = "error",
        max_body: int = DEFAULT_MAX_BODY,
        history: bool = False,
        allow_browser_origin: bool = False,
        max_connections: int | None = None,
        body_budget: int = DEFAULT_BODY_BUDGET,
        answer_budget: int = DEFAULT_ANSWER_BUDGET,
        body_grace: float = ListenerConfig.body_grace,  # the dataclass's own defaults: one home for each
        body_min_rate: int = ListenerConfig.body_min_rate,
    ) -> None:
        self.config = ListenConfig(
            ListenerConfig(
                host=host,
                port=port,
                max_body=max_body,
                basic_auth=basic_auth,
                allow_browser_origin=allow_browser_origin,
                max_connections=max_connections,
                body_budget=body_budget,
                body_grace=values.body_grace(body_grace),
                body_min_rate=values.body_min_rate(body_min_rate),
            ),
            AnswerConfig(
                values.action(respond),  # a dict is injected as it is: no round trip through "inject:" text
                values.drop_if(drop_if),
                values.rules([dict(rule) for rule in rules], "rules"),
                values.delay_seconds(delay),
                status,
            ),
            ForwardConfig(targets=values.targets(forward_to), fallback=values.fallback(fallback), answer_budget=answer_budget),
            TunnelConfig(mode="off"),
            HistoryConfig(enabled=history),
        )
        #: Every delivery answered so far, in the order they were answered.
        self.events: list[Exchange] = []
        #: Requests refused with a 4xx (not JSON, too large, wrong Basic auth ...), or a 503: with `history=True`, a
        #: delivery the history could not store is never acknowledged (it is answered 503 with Retry-After).
        self.rejections: list[Rejection] = []
        self.warnings: list[str] = []
        self._session: Session | None = None
        self._changed: asyncio.Event | None = None

    async def __aenter__(self) -> Listener:
        from comethook_cli.engine.session import Session

        self._changed = asyncio.Event()
        session = Session(self.config, on_warning=self.warnings.append)
        await session.startup()  # UsageError for a bad option, ListenerError when the port is taken
        session.hub.subscribe(_Recorder(self))
        self._session = session
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.shutdown()
            self._session = None

    @property
    def url(self) -> str:
        """The webhook URL to POST deliveries to (http://127.0.0.1:PORT/webhook; any path is accepted)."""
        return self._running().webhook_url

    @property
    def port(self) -> int:
        """The port it listens on (the free one picked for port=0)."""
        return int(self._running().local_url.rsplit(":", 1)[1])

    def _running(self) -> Session:
        if self._session is None:
            raise RuntimeError("The listener is not running: use `async with Listener(...) as listener:`.")
        return self._session

    async def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[Exchange]:
        """Wait until `count` deliveries have been answered in all; returns them. TimeoutError after `timeout` seconds."""
        self._running()
        assert self._changed is not None
        try:
            async with asyncio.timeout(timeout):
                while len(self.events) < count:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"{len(self.events)} of {count} deliveries arrived within {timeout:g} s.") from None
        return self.events[:count]


class _Recorder(RecordHandler):
    """The Listener's hub subscriber: it keeps the exchanges and the rejections, and wakes wait_for(). It runs inline on
    the listener's loop and must not block."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    def on_exchange(self, exchange: Exchange) -> None:
        """An answered delivery."""
        self.listener.events.append(exchange)

    def on_rejection(self, rejection: Rejection) -> None:
        """A refused request."""
        self.listener.rejections.append(rejection)

    def handle(self, record: HubRecord) -> None:
        """Keep the record by its kind, then wake whoever waits."""
        super().handle(record)
        if self.listener._changed is not None:
            self.listener._changed.set()

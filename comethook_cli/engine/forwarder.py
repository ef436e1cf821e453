"""Relay each delivery's exact bytes to the developer's app and bring its answer back unchanged.

The first --forward-to target is the primary: its answer goes back to CometChat. The others get
copies concurrently (fan-out) that never delay the answer: copies have a connection pool of their
own and a bound on how many are in flight. --route TRIGGER=URL gives a trigger a primary of its own.
When the primary is down, too slow, or answers more than --max-answer bytes, --fallback decides the answer.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from comethook_cli.cometchat.verdict import DROP_ACTION
from comethook_cli.engine.auth import basic_value
from comethook_cli.engine.budget import BudgetSpent, ByteBudget
from comethook_cli.engine.config import ForwardConfig
from comethook_cli.engine.sender import UNBOUNDED, AnswerTooLarge, read_answer
from comethook_cli.engine.urls import redact_url, take_credentials
from comethook_cli.engine.values import Fallback
from comethook_cli.engine.warnings import RateLimitedWarnings
from comethook_cli.models import (
    DEFAULT_ANSWER_BUDGET,
    DEFAULT_MAX_ANSWER,
    HOP_BY_HOP,
    Answer,
    AnsweredBy,
    Incoming,
    has_surrogates,
)

if TYPE_CHECKING:
    from comethook_cli.engine.listener import Answerer

#: Answer headers aiohttp sets itself on the way back.
ANSWER_SKIP = HOP_BY_HOP | {"date", "server"}
#: Request headers not relayed: `Expect: 100-continue` would make the client wait for a go-ahead
#: for a body comethook already holds (some apps never send one).
REQUEST_SKIP = HOP_BY_HOP | {"expect"}
#: Copies in flight at once; more are dropped with a warning, so a copy target that hangs cannot pile up
#: tasks, memory and connections.
MAX_COPIES_IN_FLIGHT = 64
#: Connections to the primaries at once (copies have a pool of their own, of MAX_COPIES_IN_FLIGHT).
MAX_PRIMARY_CONNECTIONS = 256
#: What HTTP forbids in a header (aiohttp refuses to write such an answer, so CometChat would get a closed connection).
FORBIDDEN_IN_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def connection_named(headers: Sequence[tuple[str, str]]) -> set[str]:
    """Header names a `Connection:` header lists: they are hop-by-hop too (RFC 9110, 7.6.1)."""
    return {token.strip().lower() for name, value in headers if name.lower() == "connection" for token in value.split(",")}


def destination(target: str, incoming: Incoming) -> str:
    """The URL a delivery goes to: the target's own path when it has one, else the path CometChat posted to.
    It comes out percent-encoded: the target encoded once, the delivery's raw path and query appended as they arrived."""
    target = str(URL(target))
    parts = urlsplit(target)
    if parts.path not in ("", "/"):
        return target if parts.query or not incoming.query else f"{target}?{incoming.query}"
    base = f"{parts.scheme}://{parts.netloc}"
    return base + incoming.path + (f"?{incoming.query}" if incoming.query else "")


class Forwarder:
    """An Answerer that asks the developer's app."""

    def __init__(
        self,
        primary: str | None,
        copies: Sequence[str],
        routes: dict[str, str],
        timeout: float,
        fallback: Fallback,
        on_warning: Callable[[str], None],
        unrouted: Answerer | None = None,
        max_answer: int = DEFAULT_MAX_ANSWER,
        max_copies: int = MAX_COPIES_IN_FLIGHT,
        answer_budget: int = DEFAULT_ANSWER_BUDGET,
        max_connections: int = MAX_PRIMARY_CONNECTIONS,
    ) -> None:
        self.primary = primary
        self.copies = list(copies)
        self.routes = routes
        self.timeout = timeout
        self.fallback = fallback
        self.on_warning = on_warning
        self.unrouted = unrouted
        self.max_answer = max_answer
        self.max_copies = max_copies
        self.max_connections = max_connections
        #: Shared by the primaries and the copies: many slow answers just under --max-answer cannot add up past it.
        self.budget = ByteBudget(answer_budget)
        self.warnings = RateLimitedWarnings(on_warning)
        #: Copies dropped so far (the warnings are rate-limited; close() says the total).
        self.copies_dropped = 0
        self._copies_dropped_said = 0
        self._session: aiohttp.ClientSession | None = None
        self._copy_session: aiohttp.ClientSession | None = None
        self._copies_in_flight: set[asyncio.Task[None]] = set()
        #: Each target with user info (http://user:pw@app): the target without it, and the Authorization made of it.
        self._credentials: dict[str, tuple[str, str]] = {}
        for target in {*self.copies, *self.routes.values(), *([primary] if primary else [])}:
            bare, credentials = take_credentials(target)
            if credentials is not None:
                self._credentials[target] = (bare, basic_value(credentials))

    @classmethod
    def from_config(cls, config: ForwardConfig, on_warning: Callable[[str], None], unrouted: Answerer | None = None) -> Forwarder:
        """A Forwarder for the (already parsed) targets and routes."""
        primary, copies = (config.targets[0], config.targets[1:]) if config.targets else (None, ())
        return cls(
            primary, copies, {route.trigger: route.url for route in config.routes}, config.timeout, config.fallback,
            on_warning, unrouted, config.max_answer, answer_budget=config.answer_budget,
        )  # fmt: skip

    def describe(self) -> str:
        """One line for the banner."""
        parts = [f"every trigger forwarded to {redact_url(self.primary)}" if self.primary else "canned answers (no --forward-to)"]
        if self.copies:
            parts.append(f"copies to {', '.join(redact_url(c) for c in self.copies)}")
        if self.routes:
            parts.append("routes " + ", ".join(f"{t} → {redact_url(u)}" for t, u in self.routes.items()))
        parts.append(f"fallback {self.fallback}, timeout {self.timeout:g} s")
        return "; ".join(parts)

    def _client(self, copy: bool = False) -> aiohttp.ClientSession:
        # Copies get a pool of their own: a copy target that hangs must not hold the connections the primary needs.
        session = self._copy_session if copy else self._session
        if session is None:
            session = aiohttp.ClientSession(
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                connector=aiohttp.TCPConnector(limit=self.max_copies if copy else self.max_connections),
            )
            if copy:
                self._copy_session = session
            else:
                self._session = session
        return session

    async def __call__(self, incoming: Incoming) -> Answer:
        """Forward to the primary (and copies), and answer with what the primary said."""
        primary = self.routes.get(incoming.info.trigger, self.primary)
        for copy in self.copies:
            if copy == primary:
                continue
            if len(self._copies_in_flight) >= self.max_copies:
                self._drop_copy(copy)
                continue
            task = asyncio.ensure_future(self._copy(copy, incoming))
            self._copies_in_flight.add(task)
            task.add_done_callback(self._copies_in_flight.discard)
        if primary is None:
            assert self.unrouted is not None
            return await self.unrouted(incoming)
        return await self._relay(primary, incoming)

    def _drop_copy(self, target: str) -> None:
        self.copies_dropped += 1
        said = self.warnings.warn(
            "copies",
            f"dropped a copy to {redact_url(target)}: {self.max_copies} copies already in flight, a copy target is slow "
            "or down. The primary's answers are not affected.",
        )
        if said:
            self._copies_dropped_said = self.copies_dropped

    def _headers(self, incoming: Incoming, authorization: str | None = None) -> list[tuple[str, str]]:
        """The delivery's headers to relay; with the target's own credentials (`authorization`, from the URL's user
        info) in place of its Authorization, which was CometChat's credential for comethook, not the app's."""
        skip = REQUEST_SKIP | connection_named(incoming.headers)
        if authorization is None:
            return [(n, v) for n, v in incoming.headers if n.lower() not in skip]
        kept = [(n, v) for n, v in incoming.headers if n.lower() not in skip and n.lower() != "authorization"]
        return [*kept, ("Authorization", authorization)]

    def _answer_headers(self, response: aiohttp.ClientResponse, shown: str) -> tuple[tuple[str, str], ...]:
        """The app's answer headers worth relaying: not hop-by-hop, and none HTTP cannot carry (a control character,
        or bytes that are not UTF-8), which would cost CometChat the whole answer."""
        skip = ANSWER_SKIP | connection_named(list(response.headers.items()))
        kept = []
        for name, value in response.headers.items():
            if name.lower() in skip:
                continue
            if FORBIDDEN_IN_HEADER.search(name + value) or has_surrogates(name + value):
                self.warnings.warn(
                    "header",
                    f"your app at {shown} answered a header HTTP cannot carry ({name!a}: control characters or "
                    "bytes that are not UTF-8); it was left out of the answer to CometChat.",
                )
                continue
            kept.append((name, value))
        return tuple(kept)

    async def _relay(self, target: str, incoming: Incoming, copy: bool = False) -> Answer:
        bare, authorization = self._credentials.get(target, (target, None))
        url = destination(bare, incoming)
        # A password in the target (http://user:pw@app) is sent to the app as Basic auth, never stored or shown; the
        # URL shown keeps `user:***@`, so the history says credentials were sent (and a replay asks for them).
        shown = redact_url(destination(target, incoming) if authorization else url)
        started = time.perf_counter()
        try:
            # One deadline for the whole exchange, reading the answer included: an app that drips cannot hold it.
            async with asyncio.timeout(self.timeout), self._client(copy).request(
                incoming.method, URL(url, encoded=True), data=incoming.body, headers=self._headers(incoming, authorization),
                timeout=UNBOUNDED, allow_redirects=False,
            ) as response:  # fmt: skip
                body = await read_answer(response, self.max_answer, self.budget)
                headers = self._answer_headers(response, shown)
                latency = (time.perf_counter() - started) * 1000
                return Answer(response.status, body, headers, "your app", shown, None, latency, AnsweredBy.APP)
        except BudgetSpent as spent:
            reason = str(spent)
            self.warnings.warn(
                "budget",
                f"answers being read from your app already hold {spent.limit:,} bytes, comethook's memory budget for "
                f"them; new deliveries get the --fallback {self.fallback} answer until some finish (latest: {shown}).",
            )
        except AnswerTooLarge as too_large:
            reason = str(too_large)
            if not copy:
                self.on_warning(
                    f"your app at {shown} answered more than {too_large.limit:,} bytes"
                    + (f" (Content-Length {too_large.declared:,})" if too_large.declared is not None else "")
                    + f"; CometChat gets the --fallback {self.fallback} answer. Raise --max-answer if the answer is meant to be that large."
                )
        except TimeoutError:
            reason = f"no answer within {self.timeout:g} s (--forward-timeout)"
        except aiohttp.ClientConnectorError as error:
            reason = f"connection refused ({error.os_error.strerror or error})".lower()
        except (
            Exception
        ) as error:  # aiohttp's own errors and any other (a ValueError ...): the fallback answers, and it is stored
            reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        return self._fallback_answer(shown, reason.replace(url, shown), (time.perf_counter() - started) * 1000)

    def _fallback_answer(self, url: str, reason: str, latency: float) -> Answer:
        if self.fallback == "pass":
            return Answer(
                200, b"{}", answered_by="comethook (fallback pass)", forwarded_to=url, error=reason, latency_ms=latency,
                outcome=AnsweredBy.FALLBACK_PASS,
            )  # fmt: skip
        if self.fallback == "drop":
            body = json.dumps({"action": DROP_ACTION}).encode()
            return Answer(
                200, body, answered_by="comethook (fallback drop)", forwarded_to=url, error=reason, latency_ms=latency,
                outcome=AnsweredBy.FALLBACK_DROP,
            )  # fmt: skip
        body = json.dumps({"error": f"comethook could not reach your app at {url}: {reason}"}).encode()
        return Answer(
            502, body, answered_by="comethook (fallback error)", forwarded_to=url, error=reason, latency_ms=latency,
            outcome=AnsweredBy.FALLBACK_ERROR,
        )  # fmt: skip

    async def _copy(self, target: str, incoming: Incoming) -> None:
        answer = await self._relay(target, incoming, copy=True)
        if answer.error:
            self.on_warning(f"copy to {answer.forwarded_to} failed: {answer.error}")

    async def close(self) -> None:
        """Let copies in flight finish (briefly), then close the client."""
        if self.copies_dropped > self._copies_dropped_said:
            self.on_warning(f"dropped {self.copies_dropped:,} copies in all this session (at most {self.max_copies} in flight).")
        if self._copies_in_flight:
            await asyncio.wait(self._copies_in_flight, timeout=2)
            for task in self._copies_in_flight:
                task.cancel()
        for session in (self._session, self._copy_session):
            if session is not None:
                await session.close()

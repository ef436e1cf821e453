"""Relay each delivery's exact bytes to the developer's app and bring its answer back unchanged.

The first --forward-to target is the primary: its answer goes back to CometChat. The others get
copies concurrently (fan-out) that never delay the answer. --route TRIGGER=URL gives a trigger a
primary of its own. When the primary is down or too slow, --fallback decides the answer.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from comethook_cli.commands import normalize_url
from comethook_cli.errors import UsageError
from comethook_cli.models import HOP_BY_HOP, Answer, Incoming
from comethook_cli.verdict import DROP_ACTION

if TYPE_CHECKING:
    from comethook_cli.listener import Answerer

FALLBACKS = ("error", "pass", "drop")
#: Answer headers aiohttp sets itself on the way back.
ANSWER_SKIP = HOP_BY_HOP | {"date", "server"}


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
        fallback: str,
        on_warning: Callable[[str], None],
        unrouted: Answerer | None = None,
    ) -> None:
        self.primary = primary
        self.copies = list(copies)
        self.routes = routes
        self.timeout = timeout
        self.fallback = fallback
        self.on_warning = on_warning
        self.unrouted = unrouted
        self._session: aiohttp.ClientSession | None = None
        self._copies_in_flight: set[asyncio.Task[None]] = set()

    @classmethod
    def from_options(
        cls,
        forward_to: Sequence[str],
        routes: Sequence[str],
        timeout: float,
        fallback: str,
        on_warning: Callable[[str], None],
        unrouted: Answerer | None = None,
    ) -> Forwarder:
        """Validate and normalise --forward-to, --route and --fallback."""
        if fallback not in FALLBACKS:
            raise UsageError(f"Unknown --fallback {fallback!r}.", f"Use one of: {', '.join(FALLBACKS)}.")
        targets = [normalize_url(t) for t in forward_to]
        routed: dict[str, str] = {}
        for spec in routes:
            trigger, sep, url = spec.partition("=")
            if not sep or not trigger.strip() or not url.strip():
                raise UsageError(
                    f"Malformed --route {spec!r}.", "Write it as TRIGGER=URL, e.g. --route before_message=:8001/moderate."
                )
            routed[trigger.strip()] = normalize_url(url)
        return cls(targets[0] if targets else None, targets[1:], routed, timeout, fallback, on_warning, unrouted)

    def describe(self) -> str:
        """One line for the banner."""
        parts = [f"forwarded to {self.primary}" if self.primary else "canned answers (no --forward-to)"]
        if self.copies:
            parts.append(f"copies to {', '.join(self.copies)}")
        if self.routes:
            parts.append("routes " + ", ".join(f"{t} → {u}" for t, u in self.routes.items()))
        parts.append(f"fallback {self.fallback}, timeout {self.timeout:g} s")
        return "; ".join(parts)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                connector=aiohttp.TCPConnector(limit=256),
            )
        return self._session

    async def __call__(self, incoming: Incoming) -> Answer:
        """Forward to the primary (and copies), and answer with what the primary said."""
        primary = self.routes.get(incoming.info.trigger, self.primary)
        for copy in self.copies:
            if copy != primary:
                task = asyncio.ensure_future(self._copy(copy, incoming))
                self._copies_in_flight.add(task)
                task.add_done_callback(self._copies_in_flight.discard)
        if primary is None:
            assert self.unrouted is not None
            return await self.unrouted(incoming)
        return await self._relay(primary, incoming)

    def _headers(self, incoming: Incoming) -> list[tuple[str, str]]:
        return [(n, v) for n, v in incoming.headers if n.lower() not in HOP_BY_HOP]

    async def _relay(self, target: str, incoming: Incoming) -> Answer:
        url = destination(target, incoming)
        started = time.perf_counter()
        try:
            async with self._client().request(
                incoming.method, URL(url, encoded=True), data=incoming.body, headers=self._headers(incoming),
                timeout=aiohttp.ClientTimeout(total=self.timeout), allow_redirects=False,
            ) as response:  # fmt: skip
                body = await response.read()
                headers = tuple((n, v) for n, v in response.headers.items() if n.lower() not in ANSWER_SKIP)
                return Answer(response.status, body, headers, "your app", url, None, (time.perf_counter() - started) * 1000)
        except TimeoutError:
            reason = f"no answer within {self.timeout:g} s (--forward-timeout)"
        except aiohttp.ClientConnectorError as error:
            reason = f"connection refused ({error.os_error.strerror or error})".lower()
        except (aiohttp.ClientError, OSError) as error:
            reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        return self._fallback_answer(url, reason, (time.perf_counter() - started) * 1000)

    def _fallback_answer(self, url: str, reason: str, latency: float) -> Answer:
        if self.fallback == "pass":
            return Answer(200, b"{}", answered_by="comethook (fallback pass)", forwarded_to=url, error=reason, latency_ms=latency)
        if self.fallback == "drop":
            body = json.dumps({"action": DROP_ACTION}).encode()
            return Answer(200, body, answered_by="comethook (fallback drop)", forwarded_to=url, error=reason, latency_ms=latency)
        body = json.dumps({"error": f"comethook could not reach your app at {url}: {reason}"}).encode()
        return Answer(502, body, answered_by="comethook (fallback error)", forwarded_to=url, error=reason, latency_ms=latency)

    async def _copy(self, target: str, incoming: Incoming) -> None:
        answer = await self._relay(target, incoming)
        if answer.error:
            self.on_warning(f"copy to {answer.forwarded_to} failed: {answer.error}")

    async def close(self) -> None:
        """Let copies in flight finish (briefly), then close the client."""
        if self._copies_in_flight:
            await asyncio.wait(self._copies_in_flight, timeout=2)
            for task in self._copies_in_flight:
                task.cancel()
        if self._session is not None:
            await self._session.close()

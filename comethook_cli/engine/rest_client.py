"""The HTTP client for CometChat's REST API (or `emulate`): calls bounded in bytes, and in time all together (one
budget for every call made through a client, 429 back-offs included, never slept past). The API key goes in the
`apikey` header and nowhere else: a RestCall never holds it."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import Any

import aiohttp

from comethook_cli import jsonbody
from comethook_cli.cometchat import rest
from comethook_cli.cometchat.rest import RestCall
from comethook_cli.engine.sender import UNBOUNDED, AnswerTooLarge, read_answer
from comethook_cli.errors import UsageError
from comethook_cli.models import DEFAULT_MAX_ANSWER

#: How often a 429 is waited out before the call counts as failed, and the longest single wait (a longer Retry-After
#: fails the call at once, saying how long CometChat asked for).
MAX_BACKOFFS = 3
MAX_BACKOFF_S = 60.0
USER_AGENT = "comethook-trigger"


def retry_after(headers: Any, now: float | None = None) -> float:
    """Seconds a 429 asks to wait: Retry-After (seconds), else X-Rate-Limit-Reset (unix time), else 1 (finite, >= 0)."""
    raw = headers.get("Retry-After")
    try:
        wait = float(raw) if raw is not None else None
    except ValueError:
        wait = None
    if wait is None:
        try:
            wait = float(headers.get("X-Rate-Limit-Reset", "")) - (time.time() if now is None else now)
        except ValueError:
            wait = 1.0
    if not math.isfinite(wait):
        wait = 1.0
    return max(wait, 0.0)


class RestClient:
    """Calls the REST API at `base` (…/v3) with `api_key`; `async with` opens and closes the connection pool.

    `timeout` is the budget in seconds of every call made through the client together: the answers and the 429
    back-offs in between. A call that would run past it ends as a timeout; a Retry-After longer than what is left
    ends the call with the 429 (its RestCall.retry_after_s says how long CometChat asked for).
    """

    def __init__(
        self,
        base: str,
        api_key: str,
        timeout: float = 15.0,
        max_answer: int = DEFAULT_MAX_ANSWER,
        on_backoff: Callable[[float, int], None] | None = None,
        max_backoffs: int = MAX_BACKOFFS,
    ) -> None:
        if not base.startswith(("http://", "https://")):
            raise UsageError(f"Unsupported --api-base {base!r}.", "Give an http(s) URL, e.g. http://127.0.0.1:8780/v3.")
        self.base = base.rstrip("/")
        self._key = api_key
        self.timeout = timeout
        self.max_answer = max_answer
        self.on_backoff = on_backoff or (lambda seconds, attempt: None)
        self.max_backoffs = max_backoffs
        self._session: aiohttp.ClientSession | None = None
        #: Seconds of the budget spent by the calls made so far.
        self.spent = 0.0

    async def __aenter__(self) -> RestClient:
        self._session = aiohttp.ClientSession(timeout=UNBOUNDED)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(
        self, action: str, params: dict[str, str], body: dict[str, Any] | None = None, on_behalf_of: str | None = None
    ) -> RestCall:
        """Make one call of the model's `action`; 429s are waited out (Retry-After) up to max_backoffs times, within the budget."""
        assert self._session is not None, "use `async with RestClient(...)`"
        spec = rest.action(action)
        url = spec.url(self.base, **params)
        headers = {"apikey": self._key, "Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if on_behalf_of:
            headers["onBehalfOf"] = on_behalf_of
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        began = time.monotonic()
        try:
            return await self._attempts(spec, url, headers, data, body, on_behalf_of, began)
        finally:
            self.spent += time.monotonic() - began

    def _left(self, began: float) -> float:
        return self.timeout - self.spent - (time.monotonic() - began)

    async def _attempts(
        self, spec: rest.Action, url: str, headers: dict[str, str], data: bytes | None, body: Any, actor: str | None,
        began: float,
    ) -> RestCall:  # fmt: skip
        waited = 0.0
        for attempt in range(1, self.max_backoffs + 2):
            started = time.perf_counter()
            result = await self._once(spec, url, headers, data, body, actor, attempt, waited, started, self._left(began))
            if result.status != 429 or attempt > self.max_backoffs or result.headers_wait is None:
                return result.call
            if result.headers_wait > min(MAX_BACKOFF_S, self._left(began)):  # never slept past the budget, nor in vain
                return replace(result.call, retry_after_s=result.headers_wait)
            self.on_backoff(result.headers_wait, attempt)
            await asyncio.sleep(result.headers_wait)
            waited += result.headers_wait
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self, spec: rest.Action, url: str, headers: dict[str, str], data: bytes | None, body: Any, actor: str | None,
        attempt: int, waited: float, started: float, left: float,
    ) -> _Answer:  # fmt: skip
        assert self._session is not None

        def failed(kind: rest.CallFailure, detail: str, status: int | None = None, answer: Any = None) -> _Answer:
            latency = (time.perf_counter() - started) * 1000
            call = RestCall(
                spec.name, spec.method, url, status, answer, latency, None, kind, detail, attempt, waited, body, actor
            )
            return _Answer(call, status, None)

        # The whole budget for a first call, else what earlier calls and back-offs left of it.
        if attempt == 1 and self.spent == 0:
            out_of_time = f"no answer within {self.timeout:g} s"
        else:
            out_of_time = f"no answer within the {max(left, 0):.2g} s left of the {self.timeout:g} s --timeout for all calls"
        if left <= 0:
            return failed("timeout", f"the {self.timeout:g} s --timeout for all calls ran out before this one was made")
        try:
            async with (
                asyncio.timeout(left),
                self._session.request(spec.method, url, data=data, headers=headers, allow_redirects=False) as response,
            ):
                status = response.status
                raw = await read_answer(response, self.max_answer)
                wait = retry_after(response.headers) if status == 429 else None
        except TimeoutError:
            return failed("timeout", out_of_time)
        except AnswerTooLarge as error:
            return failed("too_large", str(error))
        except aiohttp.InvalidURL:
            raise UsageError(f"Invalid URL {url!r}.", "Check --api-base.") from None
        except aiohttp.ClientConnectorCertificateError as error:
            return failed("tls", f"TLS certificate of {error.host} not trusted")
        except aiohttp.ClientConnectorError as error:
            reason = (error.os_error.strerror or str(error.os_error) or "refused").lower()
            return failed("unreachable", f"could not connect to {error.host}:{error.port}: {reason}")
        except aiohttp.ClientError as error:
            return failed("protocol", f"request failed: {error or type(error).__name__}")
        try:
            answer = jsonbody.parse(raw) if raw.strip() else None
        except jsonbody.JsonBodyError:
            text = raw[:200].decode("utf-8", errors="replace")
            return _Answer(
                failed("not_json", f"HTTP {status} with an answer that is not JSON: {text!r}", status, text).call, status, wait
            )
        latency = (time.perf_counter() - started) * 1000
        problem = rest.read_error(answer)
        call = RestCall(spec.name, spec.method, url, status, answer, latency, problem, None, None, attempt, waited, body, actor)
        return _Answer(call, status, wait)


class _Answer:
    """A call's result and, for a 429, how long to wait before trying again."""

    def __init__(self, call: RestCall, status: int | None, headers_wait: float | None) -> None:
        self.call = call
        self.status = status
        self.headers_wait = headers_wait

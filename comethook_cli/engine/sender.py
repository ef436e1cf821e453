"""The aiohttp client side: deliver like CometChat does, repeat with concurrency, simulate retries, assert."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from comethook_cli.cometchat.events import get
from comethook_cli.cometchat.verdict import judge
from comethook_cli.errors import AssertionFailed, ComethookError, UnreachableError, UsageError
from comethook_cli.models import DEFAULT_MAX_ANSWER, Delivery, Verdict, parse_body

#: What a delivery's error says when the server's TLS certificate could not be verified (the hint keys on it).
CERTIFICATE_PROBLEM = "TLS certificate not trusted"
#: CometChat's documented retry cadence when retryOnFailure is on: 10 s, then 30 s.
COMETCHAT_RETRY_DELAYS = (10.0, 30.0)
EXPECTATIONS = ("pass", "inject", "drop", "ok")
#: The casing live CometChat deliveries carry (its docs say application/json): receivers must accept both.
CONTENT_TYPE = "Application/json"


@dataclass(frozen=True)
class Outgoing:
    """One request body ready to POST, with what it was built from."""

    body: bytes
    payload: Any
    trigger: str | None


@dataclass(frozen=True)
class SendPlan:
    """Everything `send` needs: where, what (a fresh body per delivery), how many, how."""

    url: str
    make_body: Callable[[], Outgoing]
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    count: int = 1
    concurrency: int = 1
    retry_delays: tuple[float, ...] | None = None
    max_answer: int = DEFAULT_MAX_ANSWER
    insecure: bool = False


@dataclass(frozen=True)
class Summary:
    """What a run of deliveries came to."""

    count: int
    ok: int
    failed: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    rps: float


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass(frozen=True)
class RetryReport:
    """Whether the original delivery and its simulated retries all got the same answer."""

    attempts: int
    consistent: bool
    detail: str


@dataclass(frozen=True)
class Expectations:
    """CI assertions: --expect, --expect-json, --max-latency."""

    verdict: str | None = None
    json: Sequence[tuple[str, Any]] = ()
    max_latency_ms: float | None = None


def normalize_url(target: str) -> str:
    """`8000` → http://localhost:8000, `:8000/hook` → http://localhost:8000/hook, `/hook` → http://localhost:8000/hook."""
    target = target.strip()
    if not target:
        raise UsageError("No target URL given.", "Pass --to URL, e.g. --to http://localhost:8000/webhook.")
    if target.isdigit():
        return f"http://localhost:{target}"
    if target.startswith(":"):
        return f"http://localhost{target}"
    if target.startswith("/"):
        return f"http://localhost:8000{target}"
    if "://" not in target:
        return f"http://{target}"
    if not target.startswith(("http://", "https://")):
        raise UsageError(f"Unsupported URL {target!r}.", "Use an http:// or https:// URL.")
    return target


def basic_auth_header(credentials: str) -> str:
    """`USER:PASS` → the value of an `Authorization: Basic` header."""
    user, sep, password = credentials.partition(":")
    if not sep or not user:
        raise UsageError("Malformed Basic auth credentials.", "Write them as USER:PASS (--basic-auth or COMETHOOK_BASIC_AUTH).")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def parse_header(raw: str) -> tuple[str, str]:
    """`'Name: value'` → (name, value)."""
    name, sep, value = raw.partition(":")
    if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
        raise UsageError(f"Malformed header {raw!r}.", "Write it as -H 'Name: value'.")
    return name.strip(), value.strip()


def parse_delays(raw: str) -> tuple[float, ...]:
    """`'0.1,0.3'` → (0.1, 0.3)."""
    try:
        delays = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        delays = ()
    if not delays or any(d < 0 or not math.isfinite(d) for d in delays):
        raise UsageError(f"Malformed --retry-delays {raw!r}.", "Give seconds separated by commas, e.g. --retry-delays 0.1,0.3.")
    return delays


#: aiohttp's own limit (a session's default is 5 minutes) left out: asyncio.timeout bounds the whole exchange.
UNBOUNDED = aiohttp.ClientTimeout()


class AnswerTooLarge(Exception):
    """An answer longer than the cap (--max-answer): said by its Content-Length, or found while reading."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        self.limit = limit
        self.declared = declared
        size = f", Content-Length {declared:,}" if declared is not None else ""
        super().__init__(f"answer larger than {limit:,} bytes (--max-answer){size}")


async def read_answer(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The answer body, read in chunks and at most `limit` bytes of it; AnswerTooLarge past that.

    A Content-Length over the cap is refused before reading anything. The connection is closed
    on refusal, so the rest of the answer is never read."""
    declared = response.content_length
    if declared is not None and declared > limit:
        response.close()
        raise AnswerTooLarge(limit, declared)
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            response.close()
            raise AnswerTooLarge(limit)
    return bytes(body)


def connector(limit: int, insecure: bool) -> aiohttp.TCPConnector:
    """A connection pool of `limit` connections; `insecure` skips TLS certificate checks (--insecure)."""
    return aiohttp.TCPConnector(limit=limit, ssl=False) if insecure else aiohttp.TCPConnector(limit=limit)


async def deliver(
    session: aiohttp.ClientSession,
    url: str,
    outgoing: Outgoing,
    headers: dict[str, str],
    timeout: float,
    attempt: int = 1,
    content_type: str = CONTENT_TYPE,
    max_answer: int = DEFAULT_MAX_ANSWER,
) -> Delivery:
    """POST one body like CometChat (JSON, optional Basic auth) and read what came back (at most `max_answer` bytes).

    `timeout` bounds the whole exchange, reading the answer included: a server that drips its answer
    cannot hold `send` past it."""
    given = any(name.lower() == "content-type" for name in headers)  # -H or a replayed header wins, and is sent once
    request_headers = {**({} if given else {"Content-Type": content_type}), **headers}
    started = time.perf_counter()
    try:
        async with (
            asyncio.timeout(timeout),
            session.post(url, data=outgoing.body, headers=request_headers, timeout=UNBOUNDED, allow_redirects=False) as response,
        ):
            status = response.status
            raw = await read_answer(response, max_answer)
    except AnswerTooLarge as too_large:
        reason = str(too_large)
        verdict = Verdict("invalid", f"the {reason}") if outgoing.trigger == "before_message" else None
        latency = (time.perf_counter() - started) * 1000
        return Delivery(outgoing.trigger, url, status, latency, None, False, reason, verdict, attempt)
    except TimeoutError:
        return Delivery(
            outgoing.trigger,
            url,
            None,
            None,
            None,
            False,
            f"timed out after {timeout:g} s",
            _verdict(outgoing, None, b""),
            attempt,
        )
    except aiohttp.InvalidURL:
        raise UsageError(f"Invalid URL {url!r}.", "Give a full URL, e.g. http://localhost:8000/webhook.") from None
    except aiohttp.ClientError as failure:
        return Delivery(
            outgoing.trigger, url, None, None, None, False, _describe(failure), _verdict(outgoing, None, b""), attempt
        )
    latency = (time.perf_counter() - started) * 1000
    verdict = _verdict(outgoing, status, raw)
    ok = 200 <= status < 300 and (verdict is None or verdict.kind != "invalid")
    error = None if ok else (verdict.reason if verdict and 200 <= status < 300 else f"HTTP {status}")
    return Delivery(outgoing.trigger, url, status, latency, parse_body(raw), ok, error, verdict, attempt, raw)


def _verdict(outgoing: Outgoing, status: int | None, raw: bytes) -> Verdict | None:
    if outgoing.trigger != "before_message":
        return None
    return judge(outgoing.payload, status, raw)


def _describe(error: Exception) -> str:
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        why = getattr(error.certificate_error, "verify_message", None) or error.certificate_error
        return f"could not connect to {error.host}:{error.port}: {CERTIFICATE_PROBLEM} ({why})"
    if isinstance(error, aiohttp.ClientConnectorError):
        reason = error.os_error.strerror or str(error.os_error) or "refused"
        return f"could not connect to {error.host}:{error.port}: {reason.lower()}"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    return f"request failed: {error or type(error).__name__}"


async def run(plan: SendPlan, on_delivery: Callable[[Delivery], None]) -> tuple[list[Delivery], float]:
    """Deliver `plan.count` fresh bodies, at most `plan.concurrency` at once; returns (deliveries, elapsed seconds)."""
    results: list[Delivery] = []
    queue = iter(range(plan.count))
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector(max(plan.concurrency, 1), plan.insecure)) as session:

        async def worker() -> None:
            for _ in queue:
                delivery = await deliver(
                    session, plan.url, plan.make_body(), plan.headers, plan.timeout, max_answer=plan.max_answer
                )
                results.append(delivery)
                on_delivery(delivery)

        await asyncio.gather(*(worker() for _ in range(min(plan.concurrency, plan.count))))
    return results, time.perf_counter() - started


async def run_with_retries(
    plan: SendPlan, delays: Sequence[float], on_delivery: Callable[[Delivery], None]
) -> tuple[list[Delivery], RetryReport, float]:
    """Deliver one body, then the same bytes again after each delay (CometChat's retry cadence)."""
    outgoing = plan.make_body()
    deliveries: list[Delivery] = []
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector(100, plan.insecure)) as session:
        for attempt, delay in enumerate((0.0, *delays), start=1):
            if delay:
                await asyncio.sleep(delay)
            delivery = await deliver(session, plan.url, outgoing, plan.headers, plan.timeout, attempt, max_answer=plan.max_answer)
            deliveries.append(delivery)
            on_delivery(delivery)
    return deliveries, compare_attempts(deliveries), time.perf_counter() - started


def compare_attempts(deliveries: Sequence[Delivery]) -> RetryReport:
    """Same status and same answer body on every attempt?"""
    first = deliveries[0]
    for other in deliveries[1:]:
        if (other.status, other.response) != (first.status, first.response):
            return RetryReport(
                len(deliveries),
                False,
                f"attempt 1 got {first.status} {_short(first.response)}, "
                f"attempt {other.attempt} got {other.status} {_short(other.response)}",
            )
    return RetryReport(len(deliveries), True, f"{first.status} {_short(first.response)}")


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:79] + "…"


def unreachable_hint(error: str | None) -> str:
    """What to do when a delivery got no answer: about certificates when TLS failed, else about the endpoint."""
    if error and CERTIFICATE_PROBLEM in error:
        return (
            "Point SSL_CERT_FILE at the CA certificate that signed it (e.g. SSL_CERT_FILE=ca.pem comethook ...), "
            "or pass --insecure (-k) to skip the check for a test endpoint."
        )
    return "Is the endpoint running and the URL right? Raise --timeout for a slow endpoint."


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(deliveries: Sequence[Delivery], elapsed: float) -> Summary:
    """Count, ok, failed, p50/p95/p99 latency, requests per second."""
    latencies = sorted(d.latency_ms for d in deliveries if d.latency_ms is not None)
    ok = sum(1 for d in deliveries if d.ok)
    return Summary(
        count=len(deliveries),
        ok=ok,
        failed=len(deliveries) - ok,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        rps=len(deliveries) / elapsed if elapsed > 0 else 0.0,
    )


def check_expectations(deliveries: Sequence[Delivery], expect: Expectations) -> list[str]:
    """Every assertion that did not hold, as a sentence (empty when all held)."""
    failures: list[str] = []
    for d in deliveries:
        label = f"delivery {d.attempt}" if len(deliveries) == 1 or d.attempt > 1 else "a delivery"
        if expect.verdict == "ok" and not d.ok:
            failures.append(f"expected ok, {label} got {d.error or d.status}")
        elif expect.verdict in ("pass", "inject", "drop"):
            got = d.verdict.kind if d.verdict else None
            if got != expect.verdict:
                failures.append(f"expected verdict {expect.verdict}, {label} got {got}")
        for path, value in expect.json:
            actual = get(d.response, path)
            if actual != value:
                failures.append(f"expected answer {path} = {json.dumps(value)}, got {json.dumps(actual)}")
        if expect.max_latency_ms is not None and d.latency_ms is not None and d.latency_ms > expect.max_latency_ms:
            failures.append(f"expected latency <= {expect.max_latency_ms:g} ms, {label} took {d.latency_ms:.1f} ms")
    return list(dict.fromkeys(failures))


def outcome(deliveries: Sequence[Delivery], failures: Sequence[str], retries: RetryReport | None = None) -> None:
    """Raise the error that sets the honest exit code: 4 unreachable, 1 not ok, 3 assertion; return when all is well."""
    unreachable = [d for d in deliveries if d.status is None]
    if unreachable:
        raise UnreachableError(
            f"{len(unreachable)} of {len(deliveries)} deliveries got no answer: {unreachable[0].error}.",
            unreachable_hint(unreachable[0].error),
        )
    bad = [d for d in deliveries if not d.ok]
    if bad:
        hint = "CometChat needs a 2xx answer" + (" and, for before_message, a JSON object." if bad[0].verdict else ".")
        if bad[0].response is None and bad[0].error and bad[0].error.startswith("answer larger than"):
            hint = "CometChat's own messages stay under about 64 KB; raise --max-answer if this answer is meant to be so large."
        raise ComethookError(f"{len(bad)} of {len(deliveries)} deliveries failed: {bad[0].error}.", hint)
    problems = list(failures)
    if retries is not None and not retries.consistent:
        problems.append(f"simulated retries got different answers ({retries.detail})")
    if problems:
        raise AssertionFailed("; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""))

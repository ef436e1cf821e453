"""The aiohttp client side: deliver like CometChat does, repeat with concurrency, simulate retries.

Statistics and assertions over the deliveries live in `engine.runs`; parsing flags and deciding the exit
code belong to the command layer (`commands.send`).
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from comethook_cli import __version__
from comethook_cli.cometchat.verdict import judge
from comethook_cli.engine.budget import BudgetSpent, ByteBudget
from comethook_cli.engine.runs import RetryReport, compare_attempts
from comethook_cli.engine.urls import redact_url, url_authorization
from comethook_cli.errors import UsageError
from comethook_cli.models import DEFAULT_MAX_ANSWER, JSON, ORIGIN_HEADER, UNPARSED, Delivery, Failure, Verdict, parse_body

if TYPE_CHECKING:
    # aiohttp is imported where it is used: it takes about 0.2 s, which a `send` over plain http never pays.
    import aiohttp

    from comethook_cli.engine import lean_client

#: What a delivery's error says when the server's TLS certificate could not be verified (the hint keys on it).
CERTIFICATE_PROBLEM = "TLS certificate not trusted"
#: CometChat's documented retry cadence when retryOnFailure is on: 10 s, then 30 s.
COMETCHAT_RETRY_DELAYS = (10.0, 30.0)
#: Who is asking, on every request comethook makes (`check` adds `-check`, so a listener can tell its probes apart).
USER_AGENT = f"comethook/{__version__}"
CHECK_USER_AGENT = f"comethook-check/{__version__}"
#: The casing live CometChat deliveries carry (its docs say application/json): receivers must accept both.
CONTENT_TYPE = "Application/json"


#: An Outgoing whose payload is read from its body when first asked for.
_UNREAD: JSON = object()


class Outgoing:
    """One request body ready to POST, with what it was built from (parsed from the body when first asked for, if
    not given: most deliveries of a run never need it)."""

    __slots__ = ("_payload", "body", "trigger")

    def __init__(self, body: bytes, payload: JSON = _UNREAD, trigger: str | None = None) -> None:
        self.body = body
        self._payload = payload
        self.trigger = trigger

    @property
    def payload(self) -> JSON:
        """The JSON value the body holds (None when it holds none)."""
        if self._payload is _UNREAD:
            self._payload = parse_body(self.body)
        return self._payload

    def __repr__(self) -> str:
        return f"Outgoing({len(self.body)} bytes, trigger={self.trigger!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Outgoing):
            return NotImplemented
        return (self.body, self.trigger, self.payload) == (other.body, other.trigger, other.payload)

    __hash__ = None  # type: ignore[assignment]  # equal by value, and the payload may be a dict


@dataclass(frozen=True)
class SendPlan:
    """Everything `send` needs: where, what (a fresh body per delivery), how many, how."""

    url: str
    make_body: Callable[[], Outgoing]
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    count: int = 1
    concurrency: int = 1
    max_answer: int = DEFAULT_MAX_ANSWER
    insecure: bool = False
    #: Which of comethook's clients sends (models.ORIGINS): the mark a `comethook listen` sorts its history by.
    origin: str = "send"


def marked(headers: dict[str, str], origin: str) -> dict[str, str]:
    """`headers` with comethook's origin mark (models.ORIGIN_HEADER) set to `origin`, in place of any given one."""
    return {**{n: v for n, v in headers.items() if n.lower() != ORIGIN_HEADER.lower()}, ORIGIN_HEADER: origin}


@cache
def unbounded() -> aiohttp.ClientTimeout:
    """aiohttp's own limit (a session's default is 5 minutes) left out: asyncio.timeout bounds the whole exchange."""
    import aiohttp

    return aiohttp.ClientTimeout()


def __getattr__(name: str) -> aiohttp.ClientTimeout:
    """`UNBOUNDED` (see `unbounded()`), made on first use so that importing this module does not import aiohttp."""
    if name == "UNBOUNDED":
        return unbounded()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class AnswerTooLarge(Exception):
    """An answer longer than the cap (--max-answer): said by its Content-Length, or found while reading."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        self.limit = limit
        self.declared = declared
        size = f", Content-Length {declared:,}" if declared is not None else ""
        super().__init__(f"answer larger than {limit:,} bytes (--max-answer){size}")


async def read_answer(response: aiohttp.ClientResponse, limit: int, budget: ByteBudget | None = None) -> bytes:
    """The answer body, read in chunks and at most `limit` bytes of it; AnswerTooLarge past that.

    A Content-Length over the cap is refused before reading anything. The connection is closed
    on refusal, so the rest of the answer is never read. With a `budget`, each chunk is taken from it
    while it is read (BudgetSpent when it is spent) and the whole answer handed back once read."""
    declared = response.content_length
    if declared is not None and declared > limit:
        response.close()
        raise AnswerTooLarge(limit, declared)
    body = bytearray()
    try:
        async for chunk in response.content.iter_chunked(64 * 1024):
            if budget is not None and not budget.take(len(chunk)):
                response.close()
                raise BudgetSpent(budget.limit)
            body += chunk
            if len(body) > limit:
                response.close()
                raise AnswerTooLarge(limit)
    finally:
        if budget is not None:
            budget.give(len(body))
    return bytes(body)


def connector(limit: int, insecure: bool) -> aiohttp.TCPConnector:
    """A connection pool of `limit` connections; `insecure` skips TLS certificate checks (--insecure)."""
    import aiohttp

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
    import aiohttp

    # A password in the URL (http://user:pw@host) is sent, never shown: the Delivery carries the URL without it.
    shown = redact_url(url)
    url, headers = url_authorization(url, headers)
    started = time.perf_counter()
    try:
        async with (
            asyncio.timeout(timeout),
            session.post(
                url, data=outgoing.body, headers=request_headers(headers, content_type), timeout=unbounded(),
                allow_redirects=False,
            ) as response,
        ):  # fmt: skip
            status = response.status
            raw = await read_answer(response, max_answer)
    except AnswerTooLarge as too_large:
        return _too_large(outgoing, shown, status, str(too_large), started, attempt)
    except TimeoutError:
        return _timed_out(outgoing, shown, timeout, attempt)
    except aiohttp.InvalidURL:
        raise UsageError(f"Invalid URL {shown!r}.", "Give a full URL, e.g. http://localhost:8000/webhook.") from None
    except aiohttp.ClientError as client_error:
        kind, text = _describe(client_error)
        return _failed(outgoing, shown, kind, text, attempt)
    return _answered(outgoing, shown, status, raw, started, attempt)


def request_headers(headers: dict[str, str], content_type: str = CONTENT_TYPE) -> dict[str, str]:
    """The headers of a delivery: `content_type` unless `headers` (-H, a replayed header) name one, then `headers`."""
    given = any(name.lower() == "content-type" for name in headers)  # -H or a replayed header wins, and is sent once
    return {**({} if given else {"Content-Type": content_type}), **headers}


def session_headers(headers: dict[str, str]) -> list[tuple[str, str]]:
    """A delivery's headers in the order aiohttp's session sends them: its User-Agent first (a given one takes its place)."""
    merged = [("User-Agent", USER_AGENT)]
    for name, value in request_headers(headers).items():
        if name.lower() == "user-agent":
            merged[0] = (name, value)
        else:
            merged.append((name, value))
    return merged


def _answered(outgoing: Outgoing, shown: str, status: int, raw: bytes, started: float, attempt: int) -> Delivery:
    """A delivery the endpoint answered within the limits: ok for a 2xx (and, for before_message, a usable verdict)."""
    latency = (time.perf_counter() - started) * 1000
    verdict = _verdict(outgoing, status, raw)
    ok = 200 <= status < 300 and (verdict is None or verdict.kind != "invalid")
    error = None if ok else (verdict.reason if verdict and 200 <= status < 300 else f"HTTP {status}")
    answer = parse_body(raw, verdict.answer_json if verdict is not None else UNPARSED)  # judge() parsed it already
    return Delivery(outgoing.trigger, shown, status, latency, answer, ok, error, verdict, attempt, raw)


def _too_large(outgoing: Outgoing, shown: str, status: int, reason: str, started: float, attempt: int) -> Delivery:
    """An answer over --max-answer (for before_message, an invalid verdict)."""
    verdict = Verdict("invalid", f"the {reason}") if outgoing.trigger == "before_message" else None
    latency = (time.perf_counter() - started) * 1000
    return Delivery(outgoing.trigger, shown, status, latency, None, False, reason, verdict, attempt, failure="too_large")


def _timed_out(outgoing: Outgoing, shown: str, timeout: float, attempt: int) -> Delivery:
    """No whole answer within `timeout` seconds."""
    no_answer = _verdict(outgoing, None, b"")
    return Delivery(
        outgoing.trigger, shown, None, None, None, False, f"timed out after {timeout:g} s", no_answer, attempt, failure="timeout"
    )


def _failed(outgoing: Outgoing, shown: str, kind: Failure, text: str, attempt: int) -> Delivery:
    """No answer: unreachable, TLS refused, or not HTTP (`kind`), as `text` says."""
    return Delivery(outgoing.trigger, shown, None, None, None, False, text, _verdict(outgoing, None, b""), attempt, failure=kind)


def _verdict(outgoing: Outgoing, status: int | None, raw: bytes) -> Verdict | None:
    if outgoing.trigger != "before_message":
        return None
    return judge(outgoing.payload, status, raw)


def _describe(error: aiohttp.ClientError) -> tuple[Failure, str]:
    """What kind of failure a client error is, and the sentence that says it."""
    import aiohttp

    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        why = getattr(error.certificate_error, "verify_message", None) or error.certificate_error
        return "tls", f"could not connect to {error.host}:{error.port}: {CERTIFICATE_PROBLEM} ({why})"
    if isinstance(error, aiohttp.ClientConnectorError):
        return "unreachable", _unreachable(error.host, error.port, error.os_error)
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "protocol", "the server closed the connection without answering"
    if isinstance(error, aiohttp.ClientResponseError) and error.status == 400 and error.history == ():
        # aiohttp's parser refusing what came back: the status is its own, not the server's.
        return "protocol", f"the answer was not valid HTTP ({' '.join(str(error.message).split())[:160]})"
    return "protocol", f"request failed: {error or type(error).__name__}"


def _unreachable(host: str, port: int | None, os_error: OSError) -> str:
    """The sentence for a connection that could not be made."""
    refused = isinstance(os_error, ConnectionRefusedError) or os_error.errno == errno.ECONNREFUSED
    reason = "connection refused" if refused else os_error.strerror or str(os_error) or "refused"
    return f"could not connect to {host}:{port}: {reason.lower()}"


async def run(plan: SendPlan, on_delivery: Callable[[Delivery], None], lean: bool = True) -> tuple[list[Delivery], float]:
    """Deliver `plan.count` fresh bodies, at most `plan.concurrency` at once; returns (deliveries, elapsed seconds).

    Over plain http the lean client (`lean_client`) sends them, the same requests with a fraction of aiohttp's cost;
    aiohttp sends what it does not speak (https, user info, odd targets or headers), or all of them with `lean=False`."""
    from comethook_cli.engine import lean_client  # here: the forwarder, `check` and replays never need httptools

    results: list[Delivery] = []
    queue = iter(range(plan.count))
    started = time.perf_counter()
    headers = marked(plan.headers, plan.origin)
    head = lean_client.request_head(plan.url, session_headers(headers)) if lean else None
    if head is not None:
        await asyncio.gather(
            *(_lean_worker(plan, head, queue, results, on_delivery) for _ in range(min(plan.concurrency, plan.count)))
        )
        return results, time.perf_counter() - started
    import aiohttp

    pool = connector(max(plan.concurrency, 1), plan.insecure)
    async with aiohttp.ClientSession(connector=pool, headers={"User-Agent": USER_AGENT}) as session:

        async def worker() -> None:
            for _ in queue:
                delivery = await deliver(session, plan.url, plan.make_body(), headers, plan.timeout, max_answer=plan.max_answer)
                results.append(delivery)
                on_delivery(delivery)

        await asyncio.gather(*(worker() for _ in range(min(plan.concurrency, plan.count))))
    return results, time.perf_counter() - started


async def _lean_worker(
    plan: SendPlan,
    head: lean_client.RequestHead,
    queue: Iterator[int],
    results: list[Delivery],
    on_delivery: Callable[[Delivery], None],
) -> None:
    """Deliver bodies from the shared `queue` one after the other on one keep-alive connection (a new one whenever
    the last cannot be used again), each bounded by the plan's timeout and answer limit like `deliver`."""
    from comethook_cli.engine import lean_client

    shown = redact_url(plan.url)
    loop = asyncio.get_running_loop()
    connection: lean_client.Connection | None = None
    try:
        for _ in queue:
            outgoing = plan.make_body()
            started = time.perf_counter()
            deadline = loop.time() + plan.timeout  # one deadline for connecting, sending and reading the answer
            try:
                if connection is None or not connection.usable:
                    async with asyncio.timeout_at(deadline):
                        connection = await lean_client.connect(head.host, head.port, plan.max_answer)
                status, raw = await connection.exchange(head.request(outgoing.body), deadline)
            except TimeoutError:
                delivery = _timed_out(outgoing, shown, plan.timeout, 1)
            except lean_client.TooLarge as too_large:
                reason = str(AnswerTooLarge(too_large.limit, too_large.declared))
                delivery = _too_large(outgoing, shown, too_large.status, reason, started, 1)
            except lean_client.Failure as failure:
                delivery = _failed(outgoing, shown, "protocol", str(failure), 1)
            except OSError as error:  # the connection could not be made
                delivery = _failed(outgoing, shown, "unreachable", _unreachable(head.host, head.port, error), 1)
            else:
                delivery = _answered(outgoing, shown, status, raw, started, 1)
            if delivery.failure is not None and connection is not None:
                connection.close()  # a timed-out or refused exchange leaves the connection mid-answer
            results.append(delivery)
            on_delivery(delivery)
    finally:
        if connection is not None:
            connection.close()


async def run_with_retries(
    plan: SendPlan, on_delivery: Callable[[Delivery], None], delays: Sequence[float] = COMETCHAT_RETRY_DELAYS
) -> tuple[list[Delivery], RetryReport, float]:
    """Deliver one body, then the same bytes again after each delay (CometChat's retry cadence)."""
    import aiohttp

    outgoing = plan.make_body()
    headers = marked(plan.headers, plan.origin)
    deliveries: list[Delivery] = []
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector(100, plan.insecure), headers={"User-Agent": USER_AGENT}) as session:
        for attempt, delay in enumerate((0.0, *delays), start=1):
            if delay:
                await asyncio.sleep(delay)
            delivery = await deliver(session, plan.url, outgoing, headers, plan.timeout, attempt, max_answer=plan.max_answer)
            deliveries.append(delivery)
            on_delivery(delivery)
    return deliveries, compare_attempts(deliveries), time.perf_counter() - started

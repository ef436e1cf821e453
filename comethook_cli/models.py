"""Frozen values shared by every module: what an event is, what came back, what CometChat does with it."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final, Literal, assert_never

from comethook_cli import jsonbody

Generation = Literal["legacy", "current", "unknown"]
VerdictKind = Literal["pass", "inject", "drop", "invalid"]
#: A parsed JSON value (dict, list, str, int, float, bool or None): the bodies comethook sends and reads.
JSON = Any
#: Why a delivery got no usable answer: the connection was refused or the name did not resolve (unreachable), the
#: server's TLS certificate was not trusted (tls), no answer in time (timeout), an answer over --max-answer
#: (too_large), or the server broke HTTP (protocol: it closed the connection without answering ...).
Failure = Literal["unreachable", "tls", "timeout", "too_large", "protocol"]
#: The failures where the request never got to the endpoint (`check` says "could not be reached", exit 4).
NOT_REACHED: frozenset[Failure] = frozenset({"unreachable", "tls"})

#: CometChat's documented answer budget ("Respond within 2 seconds to prevent timeouts"). What the views and
#: `check` hold answers to unless they are given another (`budget_ms=`, so a test need not wait 2 s).
COMETCHAT_BUDGET_MS = 2000.0


def over_budget(latency_ms: float, budget_ms: float = COMETCHAT_BUDGET_MS) -> bool:
    """Whether an answer took longer than CometChat waits."""
    return latency_ms > budget_ms


#: Where `listen` listens, and the largest body it accepts, unless told otherwise.
DEFAULT_PORT = 8765
DEFAULT_MAX_BODY = 1024 * 1024
#: The most of an answer comethook reads (--max-answer): CometChat's own message limit is about 64 KB.
DEFAULT_MAX_ANSWER = 1024 * 1024
#: What the listener holds at most, in total, of request bodies still arriving, and the forwarder of answers it is
#: reading: per-request caps alone would let many slow connections add up (300 x 1 MiB is 300 MiB).
DEFAULT_BODY_BUDGET = 64 * 1024 * 1024
DEFAULT_ANSWER_BUDGET = 64 * 1024 * 1024
#: Headers that carry credentials: redacted before anything is stored or shown, never replayed or exported. The
#: standard ones, and the API-key and token headers in common use (CometChat's REST API takes `apikey`).
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "apikey", "api-key", "x-api-key",
                            "x-apikey", "x-auth-token", "x-access-token", "auth-token", "access-token"})  # fmt: skip
#: Query parameters whose values are credentials (compared lower-cased), with SECRET_QUERY_SUFFIXES: `?token=`,
#: `?access_token=`, `?client_secret=`, `?api_key=`, `?apikey=`, `?key=`, `?password=` ...
SECRET_QUERY_NAMES = frozenset({"key", "apikey", "auth", "password", "passwd", "pwd"})
SECRET_QUERY_SUFFIXES = ("token", "secret", "_key", "-key", "_password", "-password")
#: What stands in for a secret value wherever one was redacted (a header keeps its auth scheme before it).
REDACTED = "[redacted]"
#: Parts of a header name that mark a credential in headers the user gives (`config show` hides such values
#: whatever the name; the history redacts SECRET_HEADERS only, so a header like X-Session-Id stays readable there).
SECRET_HEADER_WORDS = ("auth", "token", "secret", "key", "cookie", "pass", "session", "signature")
#: Headers that belong to one connection, never copied when a request is relayed or replayed.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
                        "transfer-encoding", "upgrade", "host", "content-length"})  # fmt: skip


def is_secret_header(name: str) -> bool:
    """Whether a header's value is a credential to keep out of what comethook shows (`config show`)."""
    lowered = name.lower()
    return lowered in SECRET_HEADERS or any(word in lowered for word in SECRET_HEADER_WORDS)


#: How much history `listen` keeps unless told otherwise: the oldest exchanges go first.
DEFAULT_HISTORY_MAX_MB = 500
DEFAULT_HISTORY_MAX_AGE_DAYS = 30.0


class AnsweredBy(Enum):
    """Who made an answer, as a type: what code reads. `answered_by` is the same said for people (and the history's
    column), with the detail the type leaves out (which rule, which --respond)."""

    #: comethook's canned answer: --respond, --drop-if, or the 200 {} every other trigger gets.
    CANNED = "canned"
    #: A --rules entry (or an inline [[listen.rules]] one).
    RULE = "rule"
    #: The app forwarded to (--forward-to, --route), whatever its status.
    APP = "app"
    #: The app did not answer usably, and --fallback decided: 200 {}, 200 drop, or 502 with why.
    FALLBACK_PASS = "fallback pass"
    FALLBACK_DROP = "fallback drop"
    FALLBACK_ERROR = "fallback error"
    #: The inspector's replay of a stored delivery to another server (that server answered).
    REPLAY = "replay"

    @property
    def fallback(self) -> str | None:
        """The --fallback that answered (`pass`, `drop`, `error`), or None when this is not a fallback answer."""
        return _FALLBACK_KINDS.get(self)

    @classmethod
    def of(cls, answered_by: str) -> AnsweredBy:
        """The outcome an `answered_by` text names: for history rows written before the outcome had its own column."""
        if answered_by == "your app":
            return cls.APP
        if answered_by.startswith("replay of "):
            return cls.REPLAY
        if answered_by.startswith("comethook (rule "):
            return cls.RULE
        for outcome, kind in _FALLBACK_KINDS.items():
            if answered_by == f"comethook (fallback {kind})":
                return outcome
        return cls.CANNED


_FALLBACK_KINDS: Final = {AnsweredBy.FALLBACK_PASS: "pass", AnsweredBy.FALLBACK_DROP: "drop", AnsweredBy.FALLBACK_ERROR: "error"}
#: What a parsed answer holds until something parses it (see Verdict.answer_json, Exchange.answer).
UNPARSED: Final = object()
#: What `parse_strict` returns for bytes that are not strict JSON.
NOT_JSON: Final = object()


@dataclass(frozen=True)
class Verdict:
    """What CometChat does with a before_message answer."""

    kind: VerdictKind
    reason: str | None = None
    #: INJECT: the message's resulting data.metadata, with the answer under @injected.webhooks.<webhook id>.
    metadata: dict[str, Any] | None = None
    webhook_id: str | None = None

    @property
    def answer_json(self) -> Any:
        """The answer as `judge()` parsed it (`parse_strict`: NOT_JSON when it is not JSON); UNPARSED when judge decided
        without parsing (no 2xx, an empty body) or the verdict was read from the history. Exchange.answer uses it rather
        than parsing the same bytes again. Not a field: a public Verdict's fields, equality and repr are as they were."""
        return self.__dict__.get("_answer_json", UNPARSED)

    def carrying(self, answer_json: Any) -> Verdict:
        """This verdict, with the parsed answer it was judged on (see answer_json)."""
        object.__setattr__(self, "_answer_json", answer_json)  # a note on a frozen value, set once by whoever made it
        return self


@dataclass(frozen=True)
class EventInfo:
    """A CometChat delivery read for people: which trigger, of which generation, and one line saying who did what."""

    trigger: str
    generation: Generation
    family: str
    summary: str
    webhook: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One POST that `send`, `replay` or `check` made, and what came back."""

    trigger: str | None
    url: str
    status: int | None
    latency_ms: float | None
    response: JSON
    ok: bool
    error: str | None = None
    verdict: Verdict | None = None
    attempt: int = 1
    response_body: bytes = b""
    #: Why there was no usable answer (None when the endpoint answered within the limits, whatever its status).
    failure: Failure | None = None

    @property
    def reached(self) -> bool:
        """Whether the request got to the endpoint (a timeout did; a refused connection or an untrusted certificate did not)."""
        return self.failure not in NOT_REACHED


@dataclass(frozen=True)
class Exchange:
    """One request the listener received and the answer it gave."""

    id: str
    received_at: float
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    info: EventInfo
    response_status: int
    response_body: bytes
    latency_ms: float
    verdict: Verdict | None = None
    response_headers: tuple[tuple[str, str], ...] = ()
    forwarded_to: str | None = None
    forward_error: str | None = None
    answered_by: str = "comethook"
    #: http://host:port of the listener that received it (None in histories from before it was kept).
    listener: str | None = None
    #: Who sent it: LIVE (no comethook mark: CometChat, or anyone else), or one of comethook's own clients (ORIGINS);
    #: None in histories from before it was kept (`engine.exchanges.is_live` then judges by its headers).
    origin: str | None = None
    #: The body as the strict `jsonbody.parse` read it (no NaN, valid UTF-8), when the listener already has it: saves
    #: parsing it again for output, and tells `outputs.wire` the bytes are valid JSON. Not stored.
    payload: Any = field(default=None, compare=False, repr=False)
    #: Who made the answer, as a type (`answered_by` is the text shown and stored).
    outcome: AnsweredBy = AnsweredBy.CANNED
    #: The answer body as `parse_strict` read it (NOT_JSON when it is not), once something parsed it: `judge()` for a
    #: before_message (its verdict carries it), else the first output to show it (see `answer`). Not stored.
    answer_json: Any = field(default=UNPARSED, compare=False, repr=False)
    #: Its `event` line (outputs.wire), encoded once for every output that writes it (the NDJSON view, the inspector's
    #: event stream): a cache, neither stored nor copied by dataclasses.replace().
    event_line: str | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def answer(self) -> JSON:
        """The answer body as `parse_body` reads it, parsed once however many outputs (NDJSON, terminal, inspector) show it."""
        if not self.response_body:
            return None
        parsed = self.answer_json
        if parsed is UNPARSED:
            parsed = self.verdict.answer_json if self.verdict is not None else UNPARSED
            if parsed is UNPARSED:
                parsed = parse_strict(self.response_body)
            # A cache on a frozen value: the parse is a pure function of response_body, which never changes.
            object.__setattr__(self, "answer_json", parsed)
        return parse_body(self.response_body, parsed)

    @property
    def encoded(self) -> bool:
        """Whether the body arrived compressed (a Content-Encoding other than identity): `body` holds those bytes."""
        # Every `--json` line asks: the length is compared before a name is lowered.
        for name, value in self.headers:
            if len(name) == 16 and name.lower() == "content-encoding" and value.strip().lower() not in ("", "identity"):
                return True
        return False


#: The header comethook's own clients (send, replay, check, emulate) mark their requests with: it sorts evidence (a
#: delivery from CometChat or from comethook), and is never a security check: anyone can send it, or leave it out.
ORIGIN_HEADER = "X-Comethook-Origin"
#: An exchange without the mark: from CometChat, or from anyone else who is not comethook.
LIVE = "live"
ORIGINS = ("send", "replay", "check", "emulate")


@dataclass(frozen=True)
class Incoming:
    """A delivery the listener accepted, handed to whoever answers it."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    payload: Any
    info: EventInfo


@dataclass(frozen=True)
class Answer:
    """What the listener sends back: decided by the responder, or brought back from the developer's app."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    answered_by: str = "comethook"
    forwarded_to: str | None = None
    error: str | None = None
    latency_ms: float | None = None
    #: Who made it, as a type (`answered_by` says it for people).
    outcome: AnsweredBy = AnsweredBy.CANNED


@dataclass(frozen=True)
class Skipped:
    """A delivery `listen --events` leaves out: answered as usual, but neither stored nor shown as an event."""

    exchange: Exchange


@dataclass(frozen=True)
class Rejection:
    """A request the listener refused (4xx, or 503) without treating it as an event."""

    status: int
    reason: str
    method: str
    path: str
    #: A rate-limited warning already counts refusals like this one (a history that cannot be written): a display
    #: shows that warning instead of a line per refusal.
    counted: bool = False


#: What a Health record is about: the public URL (the probe through the tunnel) or the app behind --forward-to.
HealthSubject = Literal["tunnel", "app"]


@dataclass(frozen=True)
class Health:
    """A change in what the session can reach (engine/health.py): the public URL, probed through itself, or the app
    behind --forward-to, by a TCP connect. Published once per change of `state`, never once per check."""

    subject: HealthSubject
    state: Literal["up", "down"]
    #: What failed (or that it works again), for people.
    detail: str
    #: What to do about it ("" when it is up).
    hint: str = ""
    #: The URL probed (the public URL, or the app's address).
    url: str = ""


#: Everything the hub publishes (engine/hub.py), a closed set: an answered delivery, one `--events` leaves out, a
#: refused request, and a change of health. A subscriber takes them through `RecordHandler`, the one place that tells
#: them apart.
HubRecord = Exchange | Skipped | Rejection | Health


class RecordHandler:
    """A subscriber that takes each kind of record in a method of its own (each does nothing unless overridden):
    `hub.subscribe(handler)`. `handle` is the one place that tells the records apart."""

    def on_exchange(self, exchange: Exchange) -> None:
        """A delivery answered (and stored, when there is a history)."""

    def on_skipped(self, skipped: Skipped) -> None:
        """A delivery `--events` leaves out: answered, neither stored nor an event."""

    def on_rejection(self, rejection: Rejection) -> None:
        """A request refused (4xx, or 503) without being an event."""

    def on_health(self, health: Health) -> None:
        """The tunnel or the app behind --forward-to went down, or came back."""

    def handle(self, record: HubRecord) -> None:
        """Hand a record to the method for its kind."""
        match record:
            case Exchange():
                self.on_exchange(record)
            case Skipped():
                self.on_skipped(record)
            case Rejection():
                self.on_rejection(record)
            case Health():
                self.on_health(record)
            case _:
                assert_never(record)


def parse_body(raw: bytes, parsed: Any = UNPARSED) -> Any:
    """Bytes as parsed JSON when they are strict JSON (so a NaN answer shows as text), else as text (None when empty).
    `parsed` is `parse_strict(raw)` when something already made it (a verdict's `answer_json`): not parsed again."""
    if not raw:
        return None
    value = parse_strict(raw) if parsed is UNPARSED else parsed
    return raw.decode("utf-8", errors="replace") if value is NOT_JSON else value


def parse_strict(raw: bytes) -> Any:
    """Bytes as strict JSON (`jsonbody.parse`), or NOT_JSON: the one parse an answer gets (see Exchange.answer)."""
    if raw == b"{}":  # the canned answer to most deliveries: not worth a parse each time
        return {}
    try:
        return jsonbody.parse(raw)
    except jsonbody.JsonBodyError:
        return NOT_JSON


#: A UTF-16 surrogate on its own: JSON can carry one (\ud800), UTF-8 cannot encode it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_surrogates(text: str) -> bool:
    """Whether a string holds a lone surrogate (it cannot be written as UTF-8)."""
    if text.isascii():  # the common case, answered in C without a scan in Python's regex engine
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def replace_surrogates(text: str) -> str:
    """The string with each lone surrogate replaced by U+FFFD (the replacement character)."""
    return _SURROGATE.sub("\ufffd", text) if has_surrogates(text) else text


def iso_time(epoch: float) -> str:
    """An epoch as ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def secret_query_name(name: str) -> bool:
    """Whether a query parameter's name (as it arrived, percent-encoded or not) says its value is a credential."""
    from urllib.parse import unquote_plus

    lowered = unquote_plus(name).strip().lower()
    return lowered in SECRET_QUERY_NAMES or lowered.endswith(SECRET_QUERY_SUFFIXES)


#: A URL's scheme, user and password (up to the authority's last `@`, since a password may hold a raw one).
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#:@]*):([^/?#]*)@")


def redact_url(url: str) -> str:
    """The URL with the password of its user info (http://user:pw@host) replaced by `***`, and the values of its secret
    query parameters (`?token=`, see secret_query_name) by `[redacted]`: for display and storage only."""
    if "?" in url:
        base, _, rest = url.partition("?")
        query, hash_, fragment = rest.partition("#")
        url = f"{base}?{redact_query(query)}{hash_}{fragment}"
    return _USERINFO.sub(r"\1\2:***@", url) if "@" in url else url


def redact_query(query: str) -> str:
    """A raw query string with the value of each secret parameter (see secret_query_name) replaced by `[redacted]`;
    everything else, and its encoding, left exactly as it was."""
    if "=" not in query:
        return query
    parts = query.split("&")
    changed = False
    for n, part in enumerate(parts):
        name, sep, value = part.partition("=")
        if sep and value and value != REDACTED and secret_query_name(name):
            parts[n] = f"{name}={REDACTED}"
            changed = True
    return "&".join(parts) if changed else query


def without_redacted(url: str) -> tuple[str, list[str]]:
    """(the URL without the query parameters whose value was redacted, their names): a redacted value is never sent."""
    base, sep, rest = url.partition("?")
    if not sep or REDACTED not in rest:
        return url, []
    query, hash_, fragment = rest.partition("#")
    kept: list[str] = []
    dropped: list[str] = []
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if value == REDACTED:
            dropped.append(name)
        else:
            kept.append(part)
    return base + (f"?{'&'.join(kept)}" if kept else "") + hash_ + fragment, dropped


def redact_header(name: str, value: str) -> str:
    """A header's value, or `[redacted]` for a credential (see SECRET_HEADERS), its auth scheme kept (`Basic [redacted]`)."""
    if name.lower() not in SECRET_HEADERS:
        return value
    scheme = value.split(" ", 1)[0] if " " in value and name.lower() != "cookie" else ""
    return f"{scheme} {REDACTED}".strip()


def without_secrets(exchange: Exchange) -> Exchange:
    """The exchange with its credentials redacted (secret headers, secret query values, a password or secret query
    value in `forwarded_to`): what every display and export shows, and what the history stores unless asked to keep
    them. The same object when there is nothing to redact (the common case costs a few string tests)."""
    # Every delivery is shown and stored through here: the checks come first, and nothing is built when they pass.
    headers = exchange.headers
    for name, value in headers:
        if name.lower() in SECRET_HEADERS and not value.endswith(REDACTED):
            headers = tuple((name, redact_header(name, value)) for name, value in headers)
            break
    query = redact_query(exchange.query) if "=" in exchange.query else exchange.query
    forwarded = exchange.forwarded_to
    if forwarded and ("?" in forwarded or "@" in forwarded):
        forwarded = redact_url(forwarded)
    if headers is exchange.headers and query == exchange.query and forwarded == exchange.forwarded_to:
        return exchange
    return dataclasses.replace(exchange, headers=headers, query=query, forwarded_to=forwarded)

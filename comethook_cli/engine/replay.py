"""Deliver a stored exchange again: its exact bytes and headers, optionally changed first.

`plan()` decides what goes where (no I/O); `replay()` is the whole operation as one plain async
function, for a Python caller or the inspector. `comethook replay` shares `plan()` and hands the
result to `send`'s delivery loop, so its flags (--expect, --simulate-retries ...) work the same there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import aiohttp

from comethook_cli import jsonbody
from comethook_cli.cometchat.payloads import encode
from comethook_cli.cometchat.payloads.paths import apply as apply_overrides
from comethook_cli.engine.bodies import plain_body
from comethook_cli.engine.history.reader import History
from comethook_cli.engine.sender import USER_AGENT, Outgoing, connector, deliver, marked
from comethook_cli.engine.urls import normalize_url, url_authorization
from comethook_cli.errors import InvalidSetting, UsageError
from comethook_cli.models import (
    DEFAULT_MAX_ANSWER,
    HOP_BY_HOP,
    JSON,
    ORIGIN_HEADER,
    REDACTED,
    SECRET_HEADERS,
    Delivery,
    Exchange,
    redact_query,
    without_redacted,
)

#: Headers a replay or export must not copy: hop-by-hop, those the client sets itself, those the listener
#: redacted (it redacts by name, so the name is what tells them), and a browser's Origin (CometChat sends none, and
#: `listen` refuses a request with one unless --allow-browser-origin).
SKIP_HEADERS = HOP_BY_HOP | {"accept-encoding", "origin", ORIGIN_HEADER.lower()} | SECRET_HEADERS


@dataclass(frozen=True)
class Edits:
    """How to change the stored delivery: a whole new body (e.g. from $EDITOR), then `--set PATH=VALUE`s on top."""

    body: bytes | None = None
    sets: Sequence[tuple[str, JSON]] = ()
    #: `--add PATH=VALUE`s (paths made on purpose) and `--unset PATH`s, applied with the sets (adds, sets, unsets).
    adds: Sequence[tuple[str, JSON]] = ()
    unsets: Sequence[str] = ()


@dataclass(frozen=True)
class ReplayPlan:
    """What a replay sends, and where; `left_out` names what the history holds only redacted, which is not sent."""

    url: str
    outgoing: Outgoing
    headers: dict[str, str]
    left_out: tuple[str, ...] = ()

    def warning(self, given: Collection[str] = ()) -> str | None:
        """The sentence saying what was left out, and how to send it anyway; None when nothing was, or when the
        headers left out are all `given` again (their names, lower-cased: -H, --basic-auth)."""
        left_out = [name for name in self.left_out if name.lower() not in given]
        if not left_out:
            return None
        how = []
        if any(not name.startswith("?") for name in left_out):
            how.append("pass headers with -H (Authorization with --basic-auth)")
        if any(name.startswith("?") for name in left_out):
            how.append("give the query in --to (`listen --keep-secrets` keeps its values for replays)")
        return (
            f"the history holds only redacted values of {', '.join(left_out)}: left out of the replay. "
            f"To send them, {' and '.join(how)}."
        )


def replay_headers(exchange: Exchange) -> dict[str, str]:
    """The stored request headers worth sending again (see SKIP_HEADERS)."""
    return {name: value for name, value in exchange.headers if name.lower() not in SKIP_HEADERS}


def plain(exchange: Exchange) -> bytes:
    """The stored body with its Content-Encoding (gzip, deflate) undone, to change it; a UsageError when it does not decode."""
    try:
        return plain_body(exchange)
    except ValueError as error:
        raise UsageError(
            f"The stored body of {exchange.id} is compressed and does not decode ({error or type(error).__name__}), "
            "so it cannot be changed.",
            "Replay it without --set and --edit: the stored bytes are sent as they are.",
        ) from None


def apply_sets(body: bytes, edits: Edits, what: str = "the stored body") -> bytes:
    """The body with the edits' --add, --set and --unset applied (re-encoded); the exact bytes when there are none."""
    if not (edits.sets or edits.adds or edits.unsets):
        return body
    payload = parse(body, what)
    apply_overrides(payload, edits.sets, edits.adds, edits.unsets)
    return encode(payload)


def parse(body: bytes, what: str = "the body") -> JSON:
    """The body as strict JSON; a UsageError saying it cannot be changed or replayed when it is not."""
    try:
        return jsonbody.parse(body)
    except jsonbody.JsonBodyError as error:
        raise UsageError(
            f"{what.capitalize()} is not JSON ({error}), so it cannot be changed or replayed.", "Fix it, or replay without --set."
        ) from None


def target_of(exchange: Exchange, target: str | None = None, listener: str | None = None) -> str | None:
    """The one rule for where a stored exchange goes again: `target` when given (normalized); else the app it was
    forwarded to; else the listener (`listener`: its base URL) at the exchange's own path and query; else None.

    The URL as the history holds it: target_url() makes a forwarded one sendable. `comethook replay` passes no
    listener (none runs), the inspector the running one's, the exports the one that received the exchange."""
    if target and target != exchange.forwarded_to:
        return normalize_url(target)
    if exchange.forwarded_to:
        return exchange.forwarded_to
    if listener:
        return listener + exchange.path + (f"?{exchange.query}" if exchange.query else "")
    return None


def target_url(exchange: Exchange, target: str | None = None, listener: str | None = None) -> str:
    """Where a replay goes (target_of()), ready to send; a UsageError when there is no target, or when the app it was
    forwarded to had a password the history did not keep."""
    url = target_of(exchange, target, listener)
    if url is None:
        raise InvalidSetting(
            "to", f"{exchange.id} was not forwarded anywhere, so there is no default target.", "Pass {name} URL.", label=""
        )
    if exchange.forwarded_to and url == exchange.forwarded_to:
        if ":***@" in exchange.forwarded_to:
            raise InvalidSetting(
                "to",
                f"{exchange.id} was forwarded to {exchange.forwarded_to}, whose password was not stored.",
                "Pass {name} with the full URL (and its password) to replay it there.",
                label="",
            )
        base, sep, query = exchange.forwarded_to.partition("?")
        if sep and exchange.query and query == redact_query(exchange.query) != exchange.query:
            return f"{base}?{exchange.query}"  # the app got the delivery's query, which the history kept (--keep-secrets)
    return url


def plan(exchange: Exchange, target: str | None = None, edits: Edits = Edits()) -> ReplayPlan:
    """Where the exchange goes and the body and headers it goes with.

    Unchanged, the stored bytes go as they are, a compressed body with its Content-Encoding. Changed (`edits`), the
    body is decoded first and the edited plain JSON goes without Content-Encoding."""
    url, left_out = without_redacted(target_url(exchange, target))
    headers = replay_headers(exchange)
    left_out = [f"?{name}=" for name in left_out]
    left_out += [name for name, value in exchange.headers if value.endswith(REDACTED) and name.lower() in SECRET_HEADERS]
    if edits.body is None and not (edits.sets or edits.adds or edits.unsets):
        body = exchange.body
        try:
            payload = jsonbody.parse(plain_body(exchange))
        except (ValueError, jsonbody.JsonBodyError):
            payload = parse(body) if not exchange.encoded else None  # compressed and undecodable: the bytes still go
    else:
        body = apply_sets(edits.body if edits.body is not None else plain(exchange), edits)
        payload = parse(body)
        headers = {name: value for name, value in headers.items() if name.lower() != "content-encoding"}
    trigger = payload.get("trigger") if isinstance(payload, dict) else None
    return ReplayPlan(url, Outgoing(body, payload, trigger if isinstance(trigger, str) else None), headers, tuple(left_out))


async def replay(
    exchange_id: str,
    target: str | None = None,
    edits: Edits = Edits(),
    *,
    history: History | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    max_answer: int = DEFAULT_MAX_ANSWER,
    insecure: bool = False,
) -> Delivery:
    """Deliver the stored exchange `exchange_id` (an id, or a unique start or end of one) again, changed by `edits`.

    Reads the history off the event loop; `headers` are added to the stored ones (and win over them)."""
    if history is None:
        with await asyncio.to_thread(History) as opened:
            exchange = await opened.aget(exchange_id)
    else:
        exchange = await history.aget(exchange_id)
    chosen = plan(exchange, target, edits)
    extra = headers or {}
    # Header names are case-insensitive: a given header replaces the stored one of that name.
    given = {name.lower() for name in extra}
    sent = {**{n: v for n, v in chosen.headers.items() if n.lower() not in given}, **extra}
    url_authorization(chosen.url, sent, "the target", "an Authorization in `headers`")  # two credentials: a UsageError
    async with aiohttp.ClientSession(connector=connector(1, insecure), headers={"User-Agent": USER_AGENT}) as session:
        return await deliver(session, chosen.url, chosen.outgoing, marked(sent, "replay"), timeout, max_answer=max_answer)

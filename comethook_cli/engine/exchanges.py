"""The one way to build an Exchange (make_exchange), and what it is made of besides the request and the answer: a
fresh id, the headers with credentials redacted, the event's description fit to show and store, the verdict of a
before_message answer. The listener builds every exchange it receives with it, and the inspector its replays to
another server."""

from __future__ import annotations

import dataclasses
import enum
import os
import random
import time
from collections.abc import Iterable
from typing import Any

from comethook_cli.cometchat.events import describe
from comethook_cli.cometchat.verdict import judge
from comethook_cli.models import (
    LIVE,
    ORIGIN_HEADER,
    ORIGINS,
    SECRET_HEADERS,
    Answer,
    EventInfo,
    Exchange,
    Verdict,
    has_surrogates,
    redact_header,
    replace_surrogates,
)

#: A generator of our own: code that seeds the global `random` (test tools do) must not make ids repeat.
_ids = random.Random(int.from_bytes(os.urandom(16), "big"))


def new_id() -> str:
    """A fresh exchange id: milliseconds since the epoch, then 32 random bits. Time-ordered ids keep the
    history's unique index appending at its end instead of touching a random page on every insert."""
    return f"evt_{time.time_ns() // 1_000_000:012x}{_ids.getrandbits(32):08x}"


def redact_headers(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Headers with credentials replaced (the auth scheme is kept so you can tell what was sent)."""
    redacted = []
    for name, value in pairs:
        if name.lower() in SECRET_HEADERS:
            value = redact_header(name, value)
        # str(): aiohttp's header names are multidict's `istr`, which orjson refuses as a dict key (the `--json`
        # line would fall back to the stdlib encoder for every delivery).
        redacted.append((str(name), value if value.isascii() else replace_surrogates(value)))
    return tuple(redacted)


def clean_info(info: EventInfo, body: bytes | None = None) -> EventInfo:
    """The description with lone surrogates (a JSON body can carry "\\ud800") replaced, so it can be shown and stored.
    Given the (valid UTF-8) JSON `body` it was read from, a body with no `\\u` escape cannot hold one: no scan."""
    if body is not None and b"\\u" not in body:
        return info
    changes: dict[str, Any] = {f.name: replace_surrogates(value) for f in dataclasses.fields(info)
               if isinstance(value := getattr(info, f.name), str) and has_surrogates(value)}  # fmt: skip
    return dataclasses.replace(info, **changes) if changes else info


def origin_of(headers: Iterable[tuple[str, str]]) -> str:
    """Who sent a request, by comethook's mark (ORIGIN_HEADER; an older comethook's User-Agent): one of ORIGINS,
    "comethook" for a mark this version does not know, LIVE for none. It sorts evidence; it proves nothing."""
    agent = ""
    for name, value in headers:
        lowered = name.lower()
        if lowered == ORIGIN_HEADER.lower():
            said = value.strip().lower()
            return said if said in ORIGINS else "comethook"
        if lowered == "user-agent":
            agent = value
    if agent.startswith("comethook-check/"):
        return "check"
    if agent.startswith("comethook/"):
        return "send"
    return LIVE


def is_live(exchange: Exchange) -> bool:
    """Whether an exchange came from outside comethook (CometChat, as far as anyone can tell). One from a history older
    than the origin column is judged by its headers: unmarked, and not aiohttp's User-Agent (which `emulate` sent)."""
    if exchange.origin is not None:
        return exchange.origin == LIVE
    agent = next((value for name, value in exchange.headers if name.lower() == "user-agent"), "")
    return origin_of(exchange.headers) == LIVE and "aiohttp/" not in agent


class _Judged(enum.Enum):
    #: make_exchange's default: judge a before_message answer itself.
    HERE = "here"


JUDGE = _Judged.HERE


def make_exchange(
    method: str,
    path: str,
    query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    payload: Any,
    answer: Answer,
    *,
    received_at: float,
    latency_ms: float,
    info: EventInfo | None = None,
    verdict: Verdict | _Judged | None = JUDGE,
    listener: str | None = None,
    origin: str | None = None,
) -> Exchange:
    """The exchange as the history stores it and the outputs show it: a new id, credentials redacted, the description
    clean, a before_message answer judged (unless `verdict` is given: a delivery judged it already, or could not).

    `payload` is the body as jsonbody.parse read it; `info` its description when the caller has it (the listener
    does, before answering); `latency_ms` counts when the answer carries none of its own; `origin` who sent it (read
    from the headers' mark when not given)."""
    if info is None:
        info = clean_info(describe(payload), body)
    if verdict is JUDGE:
        verdict = judge(payload, answer.status, answer.body) if info.trigger == "before_message" else None
    kept = redact_headers(headers)
    return Exchange(
        id=new_id(),
        received_at=received_at,
        method=method,
        path=path,
        query=query,
        headers=kept,
        body=body,
        info=info,
        response_status=answer.status,
        response_body=answer.body,
        latency_ms=answer.latency_ms if answer.latency_ms is not None else latency_ms,
        verdict=verdict,
        response_headers=answer.headers,
        forwarded_to=answer.forwarded_to,
        forward_error=answer.error,
        answered_by=answer.answered_by,
        listener=listener,
        origin=origin or origin_of(kept),
        payload=payload,
        outcome=answer.outcome,
    )

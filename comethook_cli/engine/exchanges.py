"""What a stored Exchange is made of besides the request itself: a fresh id, the headers with credentials redacted,
and the event's description fit to show and store. The listener builds every exchange with these, and the inspector
its replays to another server."""

from __future__ import annotations

import dataclasses
import os
import random
import time
from typing import Any

from comethook_cli.models import SECRET_HEADERS, EventInfo, has_surrogates, redact_header, replace_surrogates

#: A generator of our own: code that seeds the global `random` (test tools do) must not make ids repeat.
_ids = random.Random(int.from_bytes(os.urandom(16), "big"))


def new_id() -> str:
    """A fresh exchange id: milliseconds since the epoch, then 32 random bits. Time-ordered ids keep the
    history's unique index appending at its end instead of touching a random page on every insert."""
    return f"evt_{time.time_ns() // 1_000_000:012x}{_ids.getrandbits(32):08x}"


def redact_headers(pairs: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
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

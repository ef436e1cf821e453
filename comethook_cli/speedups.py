"""The two optional speedups, each behind one seam with a stdlib fallback: orjson for JSON, uvloop for the loop.

Both are runtime dependencies where they exist (CPython; uvloop not on Windows), installed through
environment markers; where they are missing, or with COMETHOOK_NO_SPEEDUPS=1, comethook runs on `json`
and asyncio's own loop with the same results. They are imported on first use, never by `--help`.
Nothing outside this module imports either.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")


def enabled() -> bool:
    """False when COMETHOOK_NO_SPEEDUPS is set (to anything but 0 or an empty string)."""
    return os.environ.get("COMETHOOK_NO_SPEEDUPS", "") in ("", "0")


@cache
def _orjson() -> Any:
    if not enabled():
        return None
    try:
        import orjson
    except ImportError:
        return None
    return orjson


@cache
def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if not enabled():
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def active() -> dict[str, bool]:
    """Which speedups this process uses."""
    return {"orjson": _orjson() is not None, "uvloop": _loop_factory() is not None}


def dumps(value: Any) -> str | None:
    """Compact JSON text with orjson, or None when orjson is missing or cannot encode this value exactly
    as the stdlib would (a lone surrogate, a non-string key, an integer over 64 bits): then use `json`.
    orjson writes NaN and Infinity as null, the same as the stdlib path's fallback for them."""
    encoded = dumpb(value)
    return None if encoded is None else encoded.decode("utf-8")


def dumpb(value: Any) -> bytes | None:
    """`dumps()` as the UTF-8 bytes orjson writes."""
    orjson = _orjson()
    if orjson is None:
        return None
    try:
        encoded: bytes = orjson.dumps(value, default=str)
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        return None
    return encoded


#: What loads() returns when the caller must ask `json` instead.
MISSING: Any = object()


#: orjson reads an integer past 64 bits as a float (json keeps it exact): texts with a run of 19 digits or
#: more go to `json`. Found with translate + find, ten times faster than a regex scan of the body.
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_RUN = b"0" * 19


def loads(raw: bytes) -> Any:
    """Parse with orjson; `MISSING` when orjson is missing or refuses the text (the caller then asks `json`,
    which gives the precise reason, or accepts what orjson does not: lone surrogates), or when the text
    has a number orjson would read differently (19 digits or more: a float for json's exact integer)."""
    orjson = _orjson()
    if orjson is None or raw.translate(_DIGITS_AS_ZERO).find(_LONG_RUN) >= 0:
        return MISSING
    try:
        return orjson.loads(raw)
    except (ValueError, TypeError):  # orjson.JSONDecodeError is a ValueError
        return MISSING


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(), on uvloop when it is there."""
    import asyncio  # here, not at the top: `--help` imports this module and must not pay for asyncio

    factory = _loop_factory()
    if factory is None:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)

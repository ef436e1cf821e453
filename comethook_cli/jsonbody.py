"""The one parser for JSON bodies: the listener, `send --body`, `replay`, rule files and `--respond inject:` all use it.

Stricter than `json.loads`, so comethook accepts exactly what CometChat and a Node app (JSON.parse) accept:
NaN, Infinity and -Infinity are refused (they are not JSON); bytes must be UTF-8 (json.loads would guess
UTF-16 or UTF-32, and skip a byte order mark); nesting deeper than MAX_DEPTH is refused with a reason
instead of a RecursionError, at the same depth wherever the parser is called from.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any, Literal

from comethook_cli import speedups

#: Deeper than any real delivery and far below the interpreter's recursion limit, which the listener's
#: stack, rich and json.dumps all share.
MAX_DEPTH = 256
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}

Reason = Literal["encoding", "syntax", "constant", "depth"]


class JsonBodyError(ValueError):
    """Why a body is not JSON comethook accepts; `kind` for code, the message for people."""

    def __init__(self, kind: Reason, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _refuse_constant(name: str) -> Any:
    raise JsonBodyError("constant", f"{name} is not JSON (use null, a number or a string)")


def parse(raw: bytes | str) -> Any:
    """Strict JSON from UTF-8 bytes or text, or JsonBodyError saying why not."""
    if isinstance(raw, bytes):
        # orjson is as strict (UTF-8 only, no BOM, no NaN): what it accepts is taken at once; anything it
        # refuses goes through `json` below, which says why, or accepts what orjson cannot (lone surrogates).
        value = speedups.loads(raw)
        if value is not speedups.MISSING:
            if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and depth(raw.decode("utf-8")) > MAX_DEPTH:
                raise JsonBodyError("depth", f"nested deeper than {MAX_DEPTH} levels")
            return value
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise JsonBodyError("encoding", f"not valid UTF-8 (byte {error.start})") from None
    else:
        text = raw
    if text.startswith("\ufeff"):
        raise JsonBodyError("syntax", "it starts with a byte order mark (save it as UTF-8 without BOM)")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except JsonBodyError:
        raise
    except RecursionError:
        raise JsonBodyError("depth", f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:  # JSONDecodeError, and integers longer than Python's digit limit
        raise JsonBodyError("syntax", str(error)) from None
    # Only a body with many brackets can be too deep: most bodies pay for two counts, not a scan.
    if text.count("[") + text.count("{") > MAX_DEPTH and depth(text) > MAX_DEPTH:
        raise JsonBodyError("depth", f"nested deeper than {MAX_DEPTH} levels")
    return value


def depth(text: str) -> int:
    """How deeply a valid JSON text nests its arrays and objects."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)

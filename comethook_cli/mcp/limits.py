"""What every tool result of `comethook mcp` goes through: bounded in bytes (truncation said in the result), and
free of every secret the server read from the environment.

An agent reads each result into its context window, so a 5 MB body is a failure, not a result: a result over
MAX_RESULT_BYTES has its largest values cut to previews, and says so in `truncated`. Secrets reach the server only
through named environment variables (basic_auth_env, header_env, COMETCHAT_API_KEY); an endpoint may echo them
back (a handler that returns the request's headers), so each value read is also scrubbed from every result.
"""

from __future__ import annotations

import base64
from typing import Any

from comethook_cli.outputs.wire import dumps

#: The most bytes of JSON one tool result holds (an agent's context is the scarce thing).
MAX_RESULT_BYTES = 64 * 1024
#: The characters a cut value keeps as its preview.
PREVIEW_CHARS = 2000
#: What stands in for a secret.
HIDDEN = "***"
#: A secret shorter than this is not scrubbed from text (a 1-character "password" would blank every such letter);
#: it is still never returned as an argument or a header.
MIN_SECRET = 4


class Secrets:
    """The secret values this server has read from the environment, to scrub from results."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str) -> str:
        """Remember a secret (and, for USER:PASS, the password and its Basic header form); returns it."""
        forms = {value}
        if ":" in value:
            forms.add(value.partition(":")[2])
            forms.add(base64.b64encode(value.encode()).decode("ascii"))
        self._values |= {form for form in forms if len(form) >= MIN_SECRET}
        return value

    def scrub(self, value: Any) -> Any:
        """`value` with every remembered secret replaced by ***, in every string and key."""
        if not self._values:
            return value
        if isinstance(value, str):
            for secret in sorted(self._values, key=len, reverse=True):
                value = value.replace(secret, HIDDEN)
            return value
        if isinstance(value, dict):
            return {self.scrub(key): self.scrub(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub(item) for item in value]
        return value


def size(value: Any) -> int:
    """Bytes of `value` as JSON."""
    return len(dumps(value).encode("utf-8"))


def bound(document: dict[str, Any], limit: int = MAX_RESULT_BYTES) -> dict[str, Any]:
    """The document when it fits in `limit` bytes; else with its largest values cut to previews (and lists to their
    first items) until it does, and `truncated` saying what was cut."""
    if size(document) <= limit:
        return document
    cut: list[str] = []
    budget = max(limit // 4, PREVIEW_CHARS)
    result = document
    while size(result) > limit and budget >= 64:
        result = _shrink(document, budget, cut, ())
        budget //= 2
    if size(result) > limit:  # only the smallest parts are left, and too many of them
        result = {key: value for key, value in result.items() if not isinstance(value, (dict, list))}
        cut.append("everything but the top-level values")
    result["truncated"] = (
        f"The result was over {limit // 1024} KB: cut to fit ({', '.join(sorted(set(cut))[:10])}). "
        "Narrow the request (a smaller limit, one id) to see more."
    )
    return result


def _shrink(value: Any, budget: int, cut: list[str], at: tuple[str, ...]) -> Any:
    """A copy of `value` in which anything bigger than `budget` bytes becomes a preview (lists keep what fits)."""
    where = ".".join(at) or "the result"
    if isinstance(value, str):
        if len(value.encode("utf-8")) <= budget:
            return value
        cut.append(where)
        return value[: min(PREVIEW_CHARS, budget // 2)] + f"… [{len(value)} characters in all]"
    if isinstance(value, dict):
        if size(value) <= budget:
            return value
        return {key: _shrink(item, budget, cut, (*at, str(key))) for key, item in value.items()}
    if isinstance(value, list):
        if size(value) <= budget:
            return value
        kept: list[Any] = []
        used = 2
        for item in value:
            small = _shrink(item, budget, cut, (*at, "[]"))
            used += size(small) + 1
            if used > budget and kept:
                cut.append(f"{where} (first {len(kept)} of {len(value)})")
                break
            kept.append(small)
        return kept
    return value

"""`comethook check`: run the conformance suite, show it, write JUnit, exit honestly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

from comethook_cli.engine.sender import normalize_url
from comethook_cli.errors import AssertionFailed, UnreachableError, UsageError
from comethook_cli.models import DEFAULT_MAX_ANSWER


def run(
    to: str,
    basic_auth: str | None,
    triggers: str,
    junit: str | None,
    json_out: bool,
    timeout: float,
    content_type: str | None = None,
    volatile: Sequence[str] = (),
    max_answer: int = DEFAULT_MAX_ANSWER,
    insecure: bool = False,
) -> None:
    """Every check against one endpoint: exit 0 all pass, 3 any fails, 4 unreachable."""
    from comethook_cli.engine import checks
    from comethook_cli.engine.sender import CONTENT_TYPE
    from comethook_cli.outputs.views import view
    from comethook_cli.outputs.wire import CheckSummary

    url = normalize_url(to)
    suite = checks.Suite(
        url, basic_auth, checks.select(triggers), timeout, content_type or CONTENT_TYPE, volatile, max_answer, insecure
    )
    if insecure:
        from comethook_cli.commands.send import INSECURE_WARNING
        from comethook_cli.outputs.terminal import Renderer

        Renderer().warning(INSECURE_WARNING)
    started = time.perf_counter()
    results, reached = asyncio.run(suite.run())
    elapsed = time.perf_counter() - started
    summary = CheckSummary(*checks.summary(results, elapsed), elapsed)
    if junit:
        try:
            Path(junit).write_text(checks.junit_xml(results, url, elapsed), encoding="utf-8")
        except OSError as error:
            raise UsageError(f"Cannot write --junit {junit!r}: {error.strerror}.", "Check the directory exists.") from None
    view(json_out).checks(url, results, summary)
    if not reached:
        from comethook_cli.engine.sender import unreachable_hint

        first = next((r.detail for r in results if r.status == "fail"), "no answer")
        raise UnreachableError(f"{url} could not be reached: {first}.", unreachable_hint(first))
    failed = [r.name for r in results if r.status == "fail"]
    if failed:
        raise AssertionFailed(f"{len(failed)} check(s) failed: {', '.join(failed)}.")

"""`comethook check`: run the conformance suite, show it, write JUnit, exit honestly."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from comethook_cli import speedups
from comethook_cli.engine.urls import normalize_url
from comethook_cli.errors import AssertionFailed, UnreachableError, UsageError
from comethook_cli.models import DEFAULT_MAX_ANSWER

if TYPE_CHECKING:
    from comethook_cli.engine.checks import CheckResult
    from comethook_cli.outputs.wire import CheckSummary


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
    github: bool | None = None,
    concurrency: int | None = None,
) -> None:
    """Every check against one endpoint: exit 0 all pass, 3 any fails, 4 unreachable."""
    from comethook_cli.commands.send import INSECURE_WARNING, unreachable_hint
    from comethook_cli.engine import checks
    from comethook_cli.engine.history.files import write_private
    from comethook_cli.engine.sender import CONTENT_TYPE
    from comethook_cli.engine.urls import redact_url, take_credentials
    from comethook_cli.outputs.views import view
    from comethook_cli.outputs.wire import CheckSummary

    given = normalize_url(to)
    url, credentials = take_credentials(given)
    if credentials is not None and basic_auth:
        raise UsageError(
            f"Two sets of credentials: the user info in --to {redact_url(to)} and --basic-auth.",
            "Give one of them: drop the user:password@ from --to, or drop --basic-auth.",
        )
    # The URL's credentials are the endpoint's Basic auth: the checks send them, and test that wrong and missing
    # ones are refused.
    basic_auth = basic_auth or credentials
    templates = checks.select(triggers)
    shown = view(json_out)
    if insecure:
        shown.warning(INSECURE_WARNING)
    run = speedups.run(
        checks.run_checks(
            url, templates, basic_auth, timeout, content_type or CONTENT_TYPE, volatile, max_answer, insecure,
            concurrency or checks.DEFAULT_CONCURRENCY,
        )
    )  # fmt: skip
    results = run.results
    url = redact_url(given)  # a password in it (user:pw@) was for the requests, not for any output
    summary = CheckSummary(*checks.summary(results), run.seconds)
    if junit:
        try:
            write_private(junit, checks.junit_xml(results, url, run.seconds))
        except OSError as error:
            raise UsageError(f"Cannot write --junit {junit!r}: {error.strerror}.", "Check the directory exists.") from None
    shown.checks(url, results, summary)
    if run.wants_auth:
        shown.warning("the endpoint wants Basic auth (it answered 401); pass --basic-auth USER:PASS or set COMETHOOK_BASIC_AUTH.")
    if github if github is not None else os.environ.get("GITHUB_ACTIONS") == "true":
        report_to_github(url, results, summary, run.reached, shown.warning)
    if not run.reached:
        first = next((r.detail for r in results if r.status == "fail"), "no answer")
        raise UnreachableError(f"{url} could not be reached: {first}.", unreachable_hint(run.failure))
    failed = [r.name for r in results if r.status == "fail"]
    if failed:
        raise AssertionFailed(
            f"{len(failed)} check(s) failed: {', '.join(failed)}.",
            "The endpoint wants Basic auth: pass --basic-auth USER:PASS."
            if run.wants_auth
            else "The detail column above says why each one failed.",
        )


def report_to_github(
    url: str, results: Sequence[CheckResult], summary: CheckSummary, reached: bool, warn: Callable[[str], None]
) -> None:
    """`::error` annotations on stderr, and the Markdown summary appended to $GITHUB_STEP_SUMMARY (when set)."""
    import sys

    from comethook_cli.outputs import github

    for line in github.workflow_commands(url, results):
        sys.stderr.write(line + "\n")
    sys.stderr.flush()
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as file:
            file.write(github.summary_markdown(url, results, summary, reached))
    except OSError as error:  # the checks' outcome (and exit code) matters more than the summary
        warn(f"could not write the job summary to $GITHUB_STEP_SUMMARY ({path}): {error.strerror}")

"""`comethook check`: its options; run the conformance suite, show it, write JUnit, exit honestly.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from comethook_cli import speedups
from comethook_cli.cli import completion, options
from comethook_cli.cli.app import App, funnel
from comethook_cli.cli.options import BasicAuth, BasicAuthFile, ContentType, Insecure, JsonOut, MaxAnswer
from comethook_cli.engine.config import CHECK_TRIGGERS, Checking, default
from comethook_cli.engine.urls import normalize_url
from comethook_cli.errors import AssertionFailed, UnreachableError, UsageError
from comethook_cli.models import DEFAULT_MAX_ANSWER

if TYPE_CHECKING:
    from comethook_cli.engine.checks import CheckResult
    from comethook_cli.outputs.wire import CheckSummary


app = App()  # what the root group takes this command from


@app.command()
@funnel
def check(
    to: Annotated[str, typer.Option("--to", metavar="URL", help="The webhook endpoint to judge.")] = "",
    basic_auth: BasicAuth = None,
    basic_auth_file: BasicAuthFile = None,
    triggers: Annotated[
        str,
        typer.Option(
            "--triggers",
            metavar="legacy|current|all|NAME,NAME",
            help="Which canned deliveries to send.",
            autocompletion=completion.trigger_list,
        ),
    ] = ",".join(CHECK_TRIGGERS),
    junit: Annotated[
        str | None, typer.Option("--junit", metavar="FILE", help="Also write JUnit XML (one testcase per check).")
    ] = None,
    json_out: JsonOut = False,
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="SECONDS", min=0.001, help="Seconds to wait for each answer.")
    ] = default(Checking, "timeout"),
    content_type: ContentType = None,
    volatile: Annotated[
        list[str] | None,
        typer.Option("--volatile", metavar="PATH", help="A before_message answer field that may change on a retry. Repeatable."),
    ] = None,
    max_answer: MaxAnswer = DEFAULT_MAX_ANSWER,
    insecure: Insecure = False,
    github: Annotated[
        bool | None,
        typer.Option(
            "--github/--no-github",
            help="::error annotations and a $GITHUB_STEP_SUMMARY job summary (default: on when GITHUB_ACTIONS=true).",
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Requests in flight at once (a small server queues a burst).")
    ] = default(Checking, "concurrency"),
    fixtures: options.Fixtures = None,
) -> None:
    """Run a conformance suite against a webhook endpoint: the way CometChat will use it.

    \f
    Over 60 lines by its option declarations (its body is under 60). Exit 0 when every check passes, 3 when one
    fails, 4 when the endpoint cannot be reached."""
    from comethook_cli.cli.send import INSECURE_WARNING, unreachable_hint
    from comethook_cli.engine import checks, values
    from comethook_cli.engine.home import write_private
    from comethook_cli.engine.sender import CONTENT_TYPE
    from comethook_cli.engine.urls import redact_url, take_credentials
    from comethook_cli.outputs.views import view
    from comethook_cli.outputs.wire import CheckSummary

    basic_auth = options.basic_auth(basic_auth, basic_auth_file)
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
    templates = values.triggers(triggers, options.project_fixtures(fixtures))
    paths = tuple(values.volatile(path) for path in volatile or ())
    shown = view(json_out)
    if insecure:
        shown.warning(INSECURE_WARNING)
    done = speedups.run(
        checks.run_checks(
            url, templates, basic_auth, timeout, content_type or CONTENT_TYPE, paths, max_answer, insecure,
            concurrency,
        )
    )  # fmt: skip
    results = done.results
    url = redact_url(given)  # a password in it (user:pw@) was for the requests, not for any output
    summary = CheckSummary(*checks.summary(results), done.seconds)
    if junit:
        try:
            write_private(junit, checks.junit_xml(results, url, done.seconds))
        except OSError as error:
            raise UsageError(f"Cannot write --junit {junit!r}: {error.strerror}.", "Check the directory exists.") from None
    shown.checks(url, results, summary)
    if done.wants_auth:
        shown.warning("the endpoint wants Basic auth (it answered 401); pass --basic-auth USER:PASS or set COMETHOOK_BASIC_AUTH.")
    if github if github is not None else os.environ.get("GITHUB_ACTIONS") == "true":
        report_to_github(url, results, summary, done.reached, shown.warning)
    if not done.reached:
        first = next((r.detail for r in results if r.status == "fail"), "no answer")
        raise UnreachableError(f"{url} could not be reached: {first}.", unreachable_hint(done.failure))
    failed = [r.name for r in results if r.status == "fail"]
    if failed:
        raise AssertionFailed(
            f"{len(failed)} check(s) failed: {', '.join(failed)}.",
            "The endpoint wants Basic auth: pass --basic-auth USER:PASS."
            if done.wants_auth
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

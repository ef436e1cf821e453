"""`comethook check`: its options, handed to commands/check.py.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

from typing import Annotated

import typer

from comethook_cli.cli import funnel
from comethook_cli.commands import completion
from comethook_cli.commands.app import App
from comethook_cli.commands.options import BasicAuth, BasicAuthFile, ContentType, Insecure, JsonOut, MaxAnswer
from comethook_cli.engine.config import CHECK_TRIGGERS
from comethook_cli.models import DEFAULT_MAX_ANSWER

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
    ] = 5.0,
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
    ] = 4,
) -> None:
    """Run a conformance suite against a webhook endpoint: the way CometChat will use it."""
    from comethook_cli.commands import basic_auth as credentials
    from comethook_cli.commands import check as check_command

    check_command.run(
        to, credentials(basic_auth, basic_auth_file), triggers, junit, json_out, timeout, content_type, volatile or (),
        max_answer, insecure, github, concurrency,
    )  # fmt: skip

"""The Typer app: option declarations, and the one error funnel. Each command hands its options to commands/<name>.py."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from comethook_cli import __version__
from comethook_cli.cometchat.payloads import BuildOptions
from comethook_cli.commands.app import App
from comethook_cli.commands.options import (
    ANSWERS,
    BUILDER,
    DELIVERING,
    FORWARDING,
    HISTORY,
    LISTENER,
    TUNNEL,
    BasicAuth,
    BasicAuthFile,
    ContentType,
    Insecure,
    JsonOut,
    Legacy,
    MaxAnswer,
    Sets,
    answer_config,
    build_options,
    delivering,
    forward_config,
    history_config,
    listener_config,
    tunnel_config,
    with_options,
)
from comethook_cli.engine.config import (
    CHECK_TRIGGERS,
    AnswerConfig,
    Delivering,
    ForwardConfig,
    HistoryConfig,
    ListenerConfig,
    TunnelConfig,
)
from comethook_cli.errors import ComethookError, ExitCode
from comethook_cli.models import (
    DEFAULT_MAX_ANSWER,
)

app = App(
    name="comethook",
    help="Webhook development tool for CometChat: listen through ngrok, fire realistic events, assert in CI.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
payloads_app = App(help="List the canned CometChat payloads, or print one as JSON.", no_args_is_help=True)
app.add_typer(payloads_app, name="payloads")
history_app = App(help="List, show, export or clear what `listen` received.", no_args_is_help=True)
app.add_typer(history_app, name="history")

F = TypeVar("F", bound=Callable[..., Any])
#: The hint of an error that brings none of its own: every error says what to do next.
DEFAULT_HINTS = {
    ExitCode.USAGE: "Run the command with --help to see what each option takes.",
    ExitCode.ASSERTION: "The output above shows what came back; --json gives it as data.",
    ExitCode.UNREACHABLE: "Is the endpoint running and the URL right?",
    ExitCode.FAILURE: "Run the command with -v (where it has one) to see more.",
}


def funnel(command: F) -> F:
    """The one place that turns errors into a message, a hint and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ComethookError as error:
            from comethook_cli.outputs.terminal import Renderer

            Renderer().error(error.message, error.hint or DEFAULT_HINTS.get(error.exit_code, DEFAULT_HINTS[ExitCode.FAILURE]))
            raise typer.Exit(int(error.exit_code)) from None
        except KeyboardInterrupt:
            from comethook_cli.outputs.terminal import Renderer

            Renderer().note("Interrupted.", style="yellow")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"comethook {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Webhook development tool for CometChat."""


@app.command()
@funnel
@with_options(LISTENER, listener_config, into="listener")
@with_options(ANSWERS, answer_config, into="answers")
@with_options(FORWARDING, forward_config, into="forward")
@with_options(TUNNEL, tunnel_config, into="tunnel")
@with_options(HISTORY, history_config, into="history")
def listen(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also show headers (redacted) and bodies.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing per event.")] = False,
    json_out: JsonOut = False,
    max_events: Annotated[int | None, typer.Option("--max-events", min=1, help="Stop after N events (exit 0).")] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            min=0.001,
            help="Stop after SECONDS: exit 4 when --max-events were asked for and have not all arrived, else exit 0.",
        ),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option(
            "--events",
            metavar="NAME,NAME|legacy|current",
            help="Store and show only these triggers; others are still answered, shown as one dim line.",
        ),
    ] = None,
    listener: ListenerConfig | None = None,
    answers: AnswerConfig | None = None,
    forward: ForwardConfig | None = None,
    tunnel: TunnelConfig | None = None,
    history: HistoryConfig | None = None,
) -> None:
    """Listen for CometChat deliveries (through an ngrok tunnel), show each one, answer before_message."""
    from comethook_cli.commands import listen as listen_command
    from comethook_cli.engine.config import ListenConfig

    assert listener and answers and forward and tunnel and history
    from comethook_cli.outputs.terminal import Renderer

    chosen = listen_command.parse_events(events, Renderer().warning)
    config = ListenConfig(listener, answers, forward, tunnel, history, max_events, timeout, chosen)
    listen_command.run(config, json_out=json_out, quiet=quiet, verbose=verbose)


@payloads_app.command("list")
@funnel
def payloads_list(json_out: JsonOut = False) -> None:
    """List every canned payload: trigger, generation, family, description."""
    from comethook_cli.commands import payloads

    payloads.list_(json_out)


@payloads_app.command("show")
@funnel
@with_options(BUILDER, build_options, into="options")
def payloads_show(
    trigger: Annotated[str, typer.Argument(metavar="TRIGGER", help="Trigger name, e.g. before_message, message_sent.")],
    legacy: Legacy = False,
    options: BuildOptions | None = None,
) -> None:
    """Print the exact JSON body `send` would send for TRIGGER."""
    from comethook_cli.commands import payloads

    assert options is not None  # with_options fills it
    payloads.show(trigger, legacy, options)


@app.command()
@funnel
@with_options(DELIVERING, delivering, into="how")
@with_options(BUILDER, build_options, into="options")
def send(
    trigger: Annotated[str | None, typer.Argument(metavar="TRIGGER", help="Trigger to fire (optional with --body).")] = None,
    to: Annotated[str, typer.Option("--to", metavar="URL", help="Endpoint to deliver to.")] = "",
    legacy: Legacy = False,
    body: Annotated[str | None, typer.Option("--body", metavar="FILE|-", help="Send your own JSON body instead.")] = None,
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="How many deliveries (fresh ids each).")] = 1,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Deliveries in flight at once.")] = 1,
    options: BuildOptions | None = None,
    how: Delivering | None = None,
) -> None:
    """Fire a realistic CometChat delivery at an endpoint and show what CometChat would do with the answer."""
    from dataclasses import replace

    from comethook_cli.commands import send as send_command

    assert options is not None and how is not None  # with_options fills them
    how = replace(how, count=count, concurrency=concurrency)
    send_command.run(send_command.SendArgs(trigger, to, legacy, options, body, how))


@app.command()
@funnel
@with_options(DELIVERING, delivering, into="how")
def replay(
    exchange_id: Annotated[
        str | None, typer.Argument(metavar="ID", help="Stored exchange id (or a unique start or end of it).")
    ] = None,
    last: Annotated[bool, typer.Option("--last", help="Replay the newest stored exchange.")] = False,
    to: Annotated[
        str | None, typer.Option("--to", metavar="URL", help="Where to (default: the app it was forwarded to).")
    ] = None,
    set_: Sets = None,
    edit: Annotated[bool, typer.Option("--edit", help="Edit the body in $EDITOR first.")] = False,
    how: Delivering | None = None,
) -> None:
    """Deliver a stored exchange's exact bytes again (optionally changed) and show the answer like `send`."""
    from comethook_cli.commands import replay as replay_command

    assert how is not None  # with_options fills it
    replay_command.run(exchange_id, last, to, set_ or [], edit, how)


@app.command()
@funnel
def check(
    to: Annotated[str, typer.Option("--to", metavar="URL", help="The webhook endpoint to judge.")] = "",
    basic_auth: BasicAuth = None,
    basic_auth_file: BasicAuthFile = None,
    triggers: Annotated[
        str, typer.Option("--triggers", metavar="legacy|current|all|NAME,NAME", help="Which canned deliveries to send.")
    ] = ",".join(CHECK_TRIGGERS),
    junit: Annotated[
        str | None, typer.Option("--junit", metavar="FILE", help="Also write JUnit XML (one testcase per check).")
    ] = None,
    json_out: JsonOut = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.001, help="Seconds to wait for each answer.")] = 5.0,
    content_type: ContentType = None,
    volatile: Annotated[
        list[str] | None,
        typer.Option("--volatile", metavar="PATH", help="A before_message answer field that may change on a retry. Repeatable."),
    ] = None,
    max_answer: MaxAnswer = DEFAULT_MAX_ANSWER,
    insecure: Insecure = False,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Requests in flight at once (a small server queues a burst).")
    ] = 4,
) -> None:
    """Run a conformance suite against a webhook endpoint: the way CometChat will use it."""
    from comethook_cli.commands import basic_auth as credentials
    from comethook_cli.commands import check as check_command

    check_command.run(
        to, credentials(basic_auth, basic_auth_file), triggers, junit, json_out, timeout, content_type, volatile or (),
        max_answer, insecure, concurrency,
    )  # fmt: skip


@history_app.command("list")
@funnel
def history_list(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")] = 20,
    trigger: Annotated[str | None, typer.Option("--trigger", help="Only this trigger.")] = None,
    json_out: JsonOut = False,
) -> None:
    """List stored exchanges, newest first."""
    from comethook_cli.commands import history

    history.list_(limit, trigger, json_out)


@history_app.command("show")
@funnel
def history_show(
    exchange_id: Annotated[str, typer.Argument(metavar="ID", help="Exchange id (or a unique start or end of it).")],
    json_out: JsonOut = False,
) -> None:
    """Show one exchange in full: request, headers (redacted), body, answer, verdict."""
    from comethook_cli.commands import history

    history.show(exchange_id, json_out)


@history_app.command("export")
@funnel
def history_export(
    fmt: Annotated[str, typer.Option("--format", metavar="ndjson|curl|har", help="Export format.")] = "ndjson",
    output: Annotated[str | None, typer.Option("--output", "-o", metavar="FILE", help="Write here instead of stdout.")] = None,
    exchange_id: Annotated[
        str | None, typer.Option("--id", metavar="ID", help="Only this exchange (or a unique end of its id).")
    ] = None,
    trigger: Annotated[str | None, typer.Option("--trigger", help="Only this trigger.")] = None,
    since: Annotated[str | None, typer.Option("--since", metavar="30m|2h|7d|DATE", help="Only exchanges since then.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="Only the newest N (still oldest first).")] = None,
) -> None:
    """Export stored exchanges (all, or those the filters pick): NDJSON, curl commands, or a HAR file."""
    from comethook_cli.commands import history

    history.export(fmt, output, history.ExportFilter(exchange_id, trigger, since, limit))


@history_app.command("clear")
@funnel
def history_clear(yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False) -> None:
    """Delete every stored exchange."""
    from comethook_cli.commands import history
    from comethook_cli.outputs.terminal import Renderer

    removed = history.clear(yes, lambda prompt: typer.confirm(prompt, err=True))
    Renderer().note("Nothing deleted." if removed < 0 else f"Deleted {removed} exchange(s).", style="bold")


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:
        # Answered before Typer builds every command's parameters: scripts call this in loops.
        sys.stdout.write(f"comethook {__version__}\n")
        return
    app()

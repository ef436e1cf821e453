"""The Typer app: options, wiring, and the one error funnel. No logic lives here."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from comethook_cli import __version__
from comethook_cli.commands.options import (
    BUILDER,
    DELIVERING,
    BasicAuth,
    BasicAuthFile,
    ContentType,
    Insecure,
    JsonOut,
    Legacy,
    MaxAnswer,
    NgrokAuthtoken,
    Sets,
    build_options,
    delivering,
    with_options,
)
from comethook_cli.errors import ComethookError, ExitCode
from comethook_cli.models import (
    DEFAULT_HISTORY_MAX_AGE_DAYS,
    DEFAULT_HISTORY_MAX_MB,
    DEFAULT_MAX_ANSWER,
    DEFAULT_MAX_BODY,
    DEFAULT_PORT,
)

app = typer.Typer(
    name="comethook",
    help="Webhook development tool for CometChat: listen through ngrok, fire realistic events, assert in CI.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
payloads_app = typer.Typer(help="List the canned CometChat payloads, or print one as JSON.", no_args_is_help=True)
app.add_typer(payloads_app, name="payloads")
history_app = typer.Typer(help="List, show, export or clear what `listen` received.", no_args_is_help=True)
app.add_typer(history_app, name="history")

F = TypeVar("F", bound=Callable[..., Any])


def funnel(command: F) -> F:
    """The one place that turns errors into a message, a hint and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ComethookError as error:
            from comethook_cli.outputs.terminal import Renderer

            Renderer().error(error.message, error.hint)
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
def listen(
    host: Annotated[str, typer.Option("--host", help="Interface to bind (warns when not loopback).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port; 0 picks a free one.")] = DEFAULT_PORT,
    max_body: Annotated[
        int, typer.Option("--max-body", metavar="BYTES", help="Largest body accepted (413 above).")
    ] = DEFAULT_MAX_BODY,
    basic_auth: BasicAuth = None,
    basic_auth_file: BasicAuthFile = None,
    respond: Annotated[
        str, typer.Option("--respond", metavar="pass|drop|inject:JSON|inject:@FILE", help="Answer to before_message.")
    ] = "pass",
    drop_if: Annotated[
        str | None, typer.Option("--drop-if", metavar="REGEX", help="Drop before_message whose text matches.")
    ] = None,
    rules: Annotated[
        str | None, typer.Option("--rules", metavar="FILE", help="JSON list of match → action rules (first match wins).")
    ] = None,
    delay: Annotated[float, typer.Option("--delay", metavar="MS", min=0, help="Wait before every answer.")] = 0,
    status: Annotated[int, typer.Option("--status", metavar="CODE", help="HTTP status of every canned answer.")] = 200,
    forward_to: Annotated[
        list[str] | None,
        typer.Option(
            "--forward-to",
            "-f",
            metavar="URL",
            help="Relay to your app (8000, :8000/hook, /hook → localhost:8000). Repeatable: first is primary, others get copies.",
        ),
    ] = None,
    route: Annotated[
        list[str] | None,
        typer.Option("--route", metavar="TRIGGER=URL", help="Send one trigger to its own primary target. Repeatable."),
    ] = None,
    forward_timeout: Annotated[
        float, typer.Option("--forward-timeout", metavar="SECONDS", min=0.001, help="How long to wait for your app.")
    ] = 30.0,
    fallback: Annotated[
        str, typer.Option("--fallback", metavar="error|pass|drop", help="Answer when your app is down or times out.")
    ] = "error",
    max_answer: Annotated[
        int, typer.Option("--max-answer", metavar="BYTES", min=1, help="Largest answer read from your app (else --fallback).")
    ] = DEFAULT_MAX_ANSWER,
    tunnel: Annotated[
        bool | None,
        typer.Option(
            "--tunnel/--no-tunnel",
            help="Require an ngrok tunnel / never open one. Default: open one when an authtoken is available.",
        ),
    ] = None,
    ngrok_path: Annotated[
        str | None,
        typer.Option("--ngrok-path", metavar="PATH", envvar="COMETHOOK_NGROK_PATH", help="The ngrok agent executable."),
    ] = None,
    ngrok_authtoken: NgrokAuthtoken = None,
    domain: Annotated[
        str | None, typer.Option("--domain", help="Reserved ngrok domain, so the Dashboard URL survives restarts.")
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="ngrok region (us, eu, ap, au, sa, jp, in).")] = None,
    install_ngrok: Annotated[bool, typer.Option("--install-ngrok", help="Download the ngrok agent if it is missing.")] = False,
    tunnel_timeout: Annotated[
        float,
        typer.Option("--tunnel-timeout", metavar="SECONDS", min=1, help="How long the ngrok agent gets to open the tunnel."),
    ] = 10.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also show headers (redacted) and bodies.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing per event.")] = False,
    json_out: JsonOut = False,
    no_history: Annotated[bool, typer.Option("--no-history", help="Do not store exchanges.")] = False,
    history_max_mb: Annotated[
        int,
        typer.Option(
            "--history-max-mb", metavar="MiB", min=0, help="Keep the history under this size, oldest out first (0: no cap)."
        ),
    ] = DEFAULT_HISTORY_MAX_MB,
    history_max_age: Annotated[
        float,
        typer.Option("--history-max-age", metavar="DAYS", min=0, help="Delete exchanges older than this (0: keep them)."),
    ] = DEFAULT_HISTORY_MAX_AGE_DAYS,
    max_events: Annotated[int | None, typer.Option("--max-events", min=1, help="Stop after N events (exit 0).")] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", metavar="SECONDS", min=0.001, help="Give up (exit 4) if --max-events have not arrived by then."
        ),
    ] = None,
) -> None:
    """Listen for CometChat deliveries (through an ngrok tunnel), show each one, answer before_message."""
    from comethook_cli.commands import basic_auth as credentials
    from comethook_cli.commands import listen as listen_command

    basic_auth = credentials(basic_auth, basic_auth_file)
    listen_command.run(
        listen_command.ListenArgs(
            host=host, port=port, max_body=max_body, basic_auth=basic_auth, respond=respond, drop_if=drop_if, rules=rules,
            delay_ms=delay, status=status, verbose=verbose, quiet=quiet, json_out=json_out, history=not no_history,
            max_events=max_events, timeout=timeout, forward_to=tuple(forward_to or ()), routes=tuple(route or ()),
            forward_timeout=forward_timeout, fallback=fallback, tunnel={None: "auto", True: "on", False: "off"}[tunnel],
            ngrok_path=ngrok_path, ngrok_authtoken=ngrok_authtoken, domain=domain, region=region, install_ngrok=install_ngrok,
            tunnel_timeout=tunnel_timeout, max_answer=max_answer, history_max_mb=history_max_mb,
            history_max_age=history_max_age,
        )
    )  # fmt: skip


@payloads_app.command("list")
@funnel
def payloads_list(json_out: JsonOut = False) -> None:
    """List every canned payload: trigger, generation, family, description."""
    from comethook_cli import commands

    commands.payloads_list(json_out)


@payloads_app.command("show")
@funnel
@with_options(BUILDER, build_options, into="options")
def payloads_show(
    trigger: Annotated[str, typer.Argument(help="Trigger name, e.g. before_message, message_sent.")],
    legacy: Legacy = False,
    options: Any = None,
) -> None:
    """Print the exact JSON body `send` would send for TRIGGER."""
    from comethook_cli import commands

    commands.payloads_show(trigger, legacy, options)


@app.command()
@funnel
@with_options(DELIVERING, delivering, into="how")
@with_options(BUILDER, build_options, into="options")
def send(
    trigger: Annotated[str | None, typer.Argument(help="Trigger to fire (optional with --body).")] = None,
    to: Annotated[str, typer.Option("--to", metavar="URL", help="Endpoint to deliver to.")] = "",
    legacy: Legacy = False,
    body: Annotated[str | None, typer.Option("--body", metavar="FILE|-", help="Send your own JSON body instead.")] = None,
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="How many deliveries (fresh ids each).")] = 1,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Deliveries in flight at once.")] = 1,
    options: Any = None,
    how: Any = None,
) -> None:
    """Fire a realistic CometChat delivery at an endpoint and show what CometChat would do with the answer."""
    from dataclasses import replace

    from comethook_cli.commands import send as send_command

    how = replace(how, count=count, concurrency=concurrency)
    send_command.run(send_command.SendArgs(trigger, to, legacy, options, body, how))


@app.command()
@funnel
@with_options(DELIVERING, delivering, into="how")
def replay(
    exchange_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="Stored exchange id (or a unique start or end of it).")
    ] = None,
    last: Annotated[bool, typer.Option("--last", help="Replay the newest stored exchange.")] = False,
    to: Annotated[
        str | None, typer.Option("--to", metavar="URL", help="Where to (default: the app it was forwarded to).")
    ] = None,
    set_: Sets = None,
    edit: Annotated[bool, typer.Option("--edit", help="Edit the body in $EDITOR first.")] = False,
    how: Any = None,
) -> None:
    """Deliver a stored exchange's exact bytes again (optionally changed) and show the answer like `send`."""
    from comethook_cli.commands import replay as replay_command

    replay_command.run(exchange_id, last, to, set_ or [], edit, how)


@app.command()
@funnel
def check(
    to: Annotated[str, typer.Option("--to", metavar="URL", help="The webhook endpoint to judge.")] = "",
    basic_auth: BasicAuth = None,
    basic_auth_file: BasicAuthFile = None,
    triggers: Annotated[
        str, typer.Option("--triggers", metavar="legacy|current|all|NAME,NAME", help="Which canned deliveries to send.")
    ] = "before_message,after_message,message_sent",
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
) -> None:
    """Run a conformance suite against a webhook endpoint: the way CometChat will use it."""
    from comethook_cli.commands import basic_auth as credentials
    from comethook_cli.commands import check as check_command

    check_command.run(
        to, credentials(basic_auth, basic_auth_file), triggers, junit, json_out, timeout, content_type, volatile or (),
        max_answer, insecure,
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
) -> None:
    """Export every stored exchange: NDJSON, curl commands, or a HAR file."""
    from comethook_cli.commands import history

    history.export(fmt, output)


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

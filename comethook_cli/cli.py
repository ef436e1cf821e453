"""The Typer app: option declarations, and the one error funnel. Each command hands its options to commands/<name>.py."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from comethook_cli import __version__
from comethook_cli.cometchat.payloads import BuildOptions
from comethook_cli.commands import completion
from comethook_cli.commands.app import App
from comethook_cli.commands.options import (
    ANSWERS,
    BUILDER,
    DELIVERING,
    EMULATING,
    FORWARDING,
    HISTORY,
    LISTENER,
    TRIGGERING,
    TUNNEL,
    BasicAuth,
    BasicAuthFile,
    ContentType,
    Insecure,
    InspectorPort,
    JsonOut,
    Legacy,
    MaxAnswer,
    NoInspector,
    OpenBrowser,
    Sets,
    answer_config,
    build_options,
    delivering,
    emulating,
    forward_config,
    history_config,
    listener_config,
    triggering,
    tunnel_config,
    with_options,
)
from comethook_cli.engine.config import (
    CHECK_TRIGGERS,
    AnswerConfig,
    Delivering,
    EmulatorConfig,
    ForwardConfig,
    HistoryConfig,
    ListenerConfig,
    TriggerOptions,
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
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
payloads_app = App(help="List the canned CometChat payloads, or print one as JSON.", no_args_is_help=True)
app.add_typer(payloads_app, name="payloads")
history_app = App(help="List, show, export or clear what `listen` received.", no_args_is_help=True)
app.add_typer(history_app, name="history")
trigger_app = App(
    help="Make CometChat (or `emulate`) fire real webhooks through its REST API; --wait for them in `listen`.",
    no_args_is_help=True,
)
app.add_typer(trigger_app, name="trigger")
group_app = App(help="Create, update or delete a group.", no_args_is_help=True)
trigger_app.add_typer(group_app, name="group")
member_app = App(help="Add, kick, change the scope of, ban or unban a group member.", no_args_is_help=True)
trigger_app.add_typer(member_app, name="member")
config_app = App(help="The project file (comethook.toml): what is in effect, and from where.", no_args_is_help=True)
app.add_typer(config_app, name="config")

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
@funnel
def root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            metavar="FILE",
            envvar="COMETHOOK_CONFIG",
            help="Read settings from FILE (default: comethook.toml found upward).",
        ),
    ] = None,
    no_config: Annotated[bool, typer.Option("--no-config", help="Ignore every comethook.toml and [tool.comethook].")] = False,
) -> None:
    """Webhook development tool for CometChat."""
    from comethook_cli.commands import config as project

    project.apply(ctx, config, no_config)


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
    inspector_port: InspectorPort = None,
    no_inspector: NoInspector = False,
    open_browser: OpenBrowser = False,
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
    inspector = listen_command.InspectorChoice(not no_inspector, inspector_port, open_browser)
    listen_command.run(config, json_out=json_out, quiet=quiet, verbose=verbose, inspector=inspector)


@app.command()
@funnel
def inspect(
    inspector_port: Annotated[
        int | None,
        typer.Option(
            "--inspector-port", metavar="PORT", min=0, max=65535, help="Port of the page (default 8766; 0: a free one)."
        ),
    ] = None,
    open_browser: OpenBrowser = False,
) -> None:
    """Serve the inspector page on the stored history, without listening: browse, search, replay, export."""
    from comethook_cli.commands import inspect as inspect_command

    inspect_command.run(inspector_port, open_browser)


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
    trigger: Annotated[
        str,
        typer.Argument(
            metavar="TRIGGER", help="Trigger name, e.g. before_message, message_sent.", autocompletion=completion.triggers
        ),
    ],
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
    trigger: Annotated[
        str | None,
        typer.Argument(metavar="TRIGGER", help="Trigger to fire (optional with --body).", autocompletion=completion.triggers),
    ] = None,
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
        str | None,
        typer.Argument(
            metavar="ID",
            help="Stored exchange id (or a unique end of it, as `history list` shows).",
            autocompletion=completion.history_ids,
        ),
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


@history_app.command("list")
@funnel
def history_list(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")] = 20,
    trigger: Annotated[
        str | None, typer.Option("--trigger", help="Only this trigger.", autocompletion=completion.triggers)
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """List stored exchanges, newest first."""
    from comethook_cli.commands import history

    history.list_(limit, trigger, json_out)


@history_app.command("show")
@funnel
def history_show(
    exchange_id: Annotated[
        str,
        typer.Argument(
            metavar="ID",
            help="Exchange id (or a unique end of it, as `history list` shows).",
            autocompletion=completion.history_ids,
        ),
    ],
    json_out: JsonOut = False,
) -> None:
    """Show one exchange in full: request, headers (redacted), body, answer, verdict."""
    from comethook_cli.commands import history

    history.show(exchange_id, json_out)


@history_app.command("export")
@funnel
def history_export(
    fmt: Annotated[
        str, typer.Option("--format", metavar="ndjson|curl|har", help="Export format.", autocompletion=completion.export_formats)
    ] = "ndjson",
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


# --- trigger, emulate ---------------------------------------------------------------------------------------

From = Annotated[str | None, typer.Option("--from", metavar="UID", help="The acting user (onBehalfOf; default comethook-a).")]
Guid = Annotated[str | None, typer.Option("--guid", metavar="GUID", help="The group (default comethook-group).")]
Uid = Annotated[str | None, typer.Option("--uid", metavar="UID", help="The user acted on (default comethook-b).")]
MessageId = Annotated[str | None, typer.Argument(metavar="[ID]", help="The message id (or --last).")]
Last = Annotated[bool, typer.Option("--last", help="The last message `trigger message` sent.")]
TriggerHow = TriggerOptions | None


def _verb(name: str, how: TriggerHow, args: dict[str, object], last: bool = False) -> None:
    from comethook_cli.commands import trigger

    assert how is not None  # with_options fills it
    trigger.verb(name, args, how, last)


@trigger_app.command("setup")
@funnel
@with_options(TRIGGERING, triggering, into="how")
def trigger_setup(
    users: Annotated[str | None, typer.Option("--users", metavar="UID,UID", help="Users to create.")] = None,
    group: Annotated[str | None, typer.Option("--group", metavar="GUID", help="Group to create ('' for none).")] = None,
    how: TriggerHow = None,
) -> None:
    """Create the test users (and group) the other actions use; existing ones are reused."""
    _verb("setup", how, {"users": users, "group": group})


@trigger_app.command("message")
@funnel
@with_options(TRIGGERING, triggering, into="how")
def trigger_message(
    from_: From = None,
    to: Annotated[str | None, typer.Option("--to", metavar="UID", help="Receiving user (default comethook-b).")] = None,
    group: Annotated[str | None, typer.Option("--group", metavar="GUID", help="Send to a group instead.")] = None,
    text: Annotated[str | None, typer.Option("--text", help="Message text.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="text, image, video, audio, file or custom.")] = None,
    metadata: Annotated[str | None, typer.Option("--metadata", metavar="JSON", help="data.metadata, a JSON object.")] = None,
    mention: Annotated[list[str] | None, typer.Option("--mention", metavar="UID", help="Mention a user. Repeatable.")] = None,
    how: TriggerHow = None,
) -> None:
    """Send a message: fires message_sent (+ user_mentioned), or before_message/after_message (legacy)."""
    _verb(
        "message",
        how,
        {"from": from_, "to": to, "group": group, "text": text, "type": type_, "metadata": metadata, "mention": mention},
    )


@trigger_app.command("edit")
@funnel
@with_options(TRIGGERING, triggering, into="how")
def trigger_edit(
    message: MessageId = None, last: Last = False, from_: From = None,
    text: Annotated[str | None, typer.Option("--text", help="The new text.")] = None, how: TriggerHow = None,
) -> None:  # fmt: skip
    """Edit a message: fires message_edited."""
    _verb("edit", how, {"message": message, "from": from_, "text": text}, last)


@trigger_app.command("delete")
@funnel
@with_options(TRIGGERING, triggering, into="how")
def trigger_delete(message: MessageId = None, last: Last = False, from_: From = None, how: TriggerHow = None) -> None:
    """Delete a message: fires message_deleted."""
    _verb("delete", how, {"message": message, "from": from_}, last)


Reaction = Annotated[str | None, typer.Option("--reaction", metavar="EMOJI", help="The reaction (default 👍).")]


@trigger_app.command("react")
@funnel
@with_options(TRIGGERING, triggering, into="how")
def trigger_react(
    message: MessageId = None, last: Last = False, from_: From = None, reaction: Reaction = None, how: TriggerHow = None
) -> None:
    """React to a message: fires message_reaction_added."""
    _verb("react", how, {"message": message, "from": from_, "reaction": reaction}, last)


@trigger_app.command("unreact")
@funnel
@with_options(TRIGGERING, triggering, into="how")
def trigger_unreact(
    message: MessageId = None, last: Last = False, from_: From = None, reaction: Reaction = None, how: TriggerHow = None
) -> None:
    """Remove a reaction: fires message_reaction_removed."""
    _verb("unreact", how, {"message": message, "from": from_, "reaction": reaction}, last)


@group_app.command("create")
@funnel
@with_options(TRIGGERING, triggering, into="how")
def trigger_group_create(
    guid: Guid = None, name: Annotated[str | None, typer.Option("--name", help="Group name.")] = None,
    group_type: Annotated[str | None, typer.Option("--type", help="public, private or password.")] = None,
    from_: From = None, how: TriggerHow = None,
) -> None:  # fmt: skip
    """Create a group (owned by --from): fires group_created."""
    _verb("group-create", how, {"guid": guid, "name": name, "group_type": group_type, "from": from_})


@group_app.command("update")
@funnel
@with_options(TRIGGERING, triggering, into="how")
def trigger_group_update(
    guid: Guid = None, name: Annotated[str | None, typer.Option("--name", help="New name.")] = None,
    from_: From = None, how: TriggerHow = None,
) -> None:  # fmt: skip
    """Rename a group: fires group_updated."""
    _verb("group-update", how, {"guid": guid, "name": name, "from": from_})


@group_app.command("delete")
@funnel
@with_options(TRIGGERING, triggering, into="how")
def trigger_group_delete(guid: Guid = None, from_: From = None, how: TriggerHow = None) -> None:
    """Delete a group: fires group_deleted."""
    _verb("group-delete", how, {"guid": guid, "from": from_})


Scope = Annotated[str | None, typer.Option("--scope", help="admin, moderator or participant.")]


def _member_command(verb: str, summary: str, with_scope: bool) -> None:
    """Declare `trigger member VERB` (the five differ only in the verb and whether --scope applies)."""

    def scoped(guid: Guid = None, uid: Uid = None, from_: From = None, scope: Scope = None, how: TriggerHow = None) -> None:
        _verb(f"member-{verb}", how, {"guid": guid, "uid": uid, "from": from_, "scope": scope})

    def plain(guid: Guid = None, uid: Uid = None, from_: From = None, how: TriggerHow = None) -> None:
        _verb(f"member-{verb}", how, {"guid": guid, "uid": uid, "from": from_})

    command = scoped if with_scope else plain
    command.__doc__ = summary
    member_app.command(verb)(funnel(with_options(TRIGGERING, triggering, into="how")(command)))


_member_command("add", "Add a member (--scope, default participant): fires group_member_added.", True)
_member_command("scope", "Change a member's scope (default moderator): fires group_member_scope_changed.", True)
_member_command("kick", "Kick a member: fires group_member_kicked.", False)
_member_command("ban", "Ban a user from the group: fires group_member_banned.", False)
_member_command("unban", "Unban a user: fires group_member_unbanned.", False)


@trigger_app.command("block")
@funnel
@with_options(TRIGGERING, triggering, into="how")
def trigger_block(from_: From = None, uid: Uid = None, how: TriggerHow = None) -> None:
    """--from blocks --uid: fires user_blocked."""
    _verb("block", how, {"from": from_, "uid": uid})


@trigger_app.command("unblock")
@funnel
@with_options(TRIGGERING, triggering, into="how")
def trigger_unblock(from_: From = None, uid: Uid = None, how: TriggerHow = None) -> None:
    """--from unblocks --uid: fires user_unblocked."""
    _verb("unblock", how, {"from": from_, "uid": uid})


@trigger_app.command("run")
@funnel
@with_options(TRIGGERING, triggering, into="how")
def trigger_run(
    scenario: Annotated[str, typer.Argument(metavar="SCENARIO", help="conversation, group-lifecycle, or a TOML/JSON file.")],
    how: TriggerHow = None,
) -> None:
    """Run a scenario's steps in order; later steps refer to earlier ids as ${steps.ID.id}."""
    from comethook_cli.commands import trigger

    assert how is not None
    trigger.scenario(scenario, how)


@config_app.command(
    "show", context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "allow_interspersed_args": False}
)
@funnel
def config_show(
    ctx: typer.Context,
    command: Annotated[
        list[str] | None,
        typer.Argument(metavar="[COMMAND [FLAGS]]...", help="A command line, e.g. `listen --port 9000`: its settings only."),
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """Show each setting in effect and where it came from: flag, env, file:line or default (secrets redacted)."""
    from comethook_cli.commands import config as project

    project.show(ctx, [*(command or []), *ctx.args], json_out)


@app.command()
@funnel
@with_options(EMULATING, emulating, into="config")
def emulate(
    json_out: JsonOut = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing per call.")] = False,
    config: EmulatorConfig | None = None,
) -> None:
    """A local stand-in for CometChat's REST API that fires the webhooks each call causes (offline CI)."""
    from comethook_cli.commands import emulate as emulate_command

    assert config is not None
    emulate_command.run(config, json_out, quiet)


@app.command()
@funnel
def init() -> None:
    """Write a commented starter comethook.toml here (never overwrites one)."""
    from pathlib import Path

    from comethook_cli.commands import config as project
    from comethook_cli.outputs.terminal import Renderer

    path = project.init(Path.cwd())
    Renderer().note(f"Wrote {path.name}: uncomment what this project needs; `comethook config show` shows the result.")


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:
        # Answered before Typer builds every command's parameters: scripts call this in loops.
        sys.stdout.write(f"comethook {__version__}\n")
        return
    app()

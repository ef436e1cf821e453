"""`comethook trigger …`: the verbs (one table, one declaration each), the group and member actions and `run`; make
CometChat (or `emulate`) fire real webhooks through its REST API, optionally wait for the deliveries in a running
`listen`'s history, and decide the exit code like `send` (0/1/3/4).

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from comethook_cli.cli.app import App, funnel
from comethook_cli.cli.options import (
    ApiBase,
    ApiKey,
    AppId,
    JsonOut,
    Region,
    RestTimeout,
    RestVerbose,
    TriggerExpect,
    Wait,
    WaitTimeout,
)
from comethook_cli.engine.config import TriggerOptions, default
from comethook_cli.errors import UsageError

if TYPE_CHECKING:
    from comethook_cli.cometchat.rest import RestCall
    from comethook_cli.cometchat.scenarios import Call, Step
    from comethook_cli.outputs.views import View

app = App()  # what the root group takes this command from
trigger_app = App(
    help="Make CometChat (or `emulate`) fire real webhooks through its REST API; --wait for them in `listen`.",
    no_args_is_help=True,
)
app.add_typer(trigger_app, name="trigger")
group_app = App(help="Create, update or delete a group.", no_args_is_help=True)
trigger_app.add_typer(group_app, name="group")
member_app = App(help="Add, kick, change the scope of, ban or unban a group member.", no_args_is_help=True)
trigger_app.add_typer(member_app, name="member")

# --- the options every verb takes: how it reaches CometChat, what it waits for and asserts -------------------

#: A verb's option: (parameter name, Annotated type, default); the parameter name without a trailing _ is its key in
#: the verb's arguments (`from_` → "from").
Param = tuple[str, Any, Any]
#: Every verb's shared options, after its own (TriggerOptions' fields, defaults read from there).
TRIGGERING: list[Param] = [
    ("app_id", AppId, None),
    ("region", Region, default(TriggerOptions, "region").value),
    ("api_key", ApiKey, None),
    ("api_base", ApiBase, None),
    ("timeout", RestTimeout, default(TriggerOptions, "timeout")),
    ("json_out", JsonOut, False),
    ("verbose", RestVerbose, False),
    ("wait", Wait, False),
    ("wait_timeout", WaitTimeout, default(TriggerOptions, "wait_timeout")),
    ("expect", TriggerExpect, None),
]


def declare(
    on: App, name: str, summary: str, *own: Param, run_with: Callable[[dict[str, Any], TriggerOptions], None] | None = None
) -> None:
    """Register `trigger [group|member] NAME` with its own options, then TRIGGERING's: it runs `run_with`, or else the
    verb of its place (`group-create` for `trigger group create`) with its own options' values as the verb's arguments."""
    shared = [param for param, _, _ in TRIGGERING]
    key = name if on is trigger_app else f"{'group' if on is group_app else 'member'}-{name}"

    def command(**values: Any) -> None:
        from comethook_cli.engine.restvalues import trigger_expectation
        from comethook_cli.engine.values import region

        given = {param: values.pop(param) for param in shared}
        parsed = {"region": region(given["region"], also="COMETCHAT_REGION"), "expect": trigger_expectation(given["expect"])}
        how = TriggerOptions(**{**given, **parsed})
        if run_with is not None:
            run_with(values, how)
            return
        last = values.pop("last", False)
        verb(key, {param.rstrip("_"): value for param, value in values.items()}, how, last)

    params = [
        inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=value)
        for param, kind, value in [*own, *TRIGGERING]
    ]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {param.name: param.annotation for param in params}
    command.__doc__ = summary
    command.__name__ = command.__qualname__ = f"trigger_{key.replace('-', '_')}"
    on.command(name)(funnel(command))


Required = inspect.Parameter.empty
From: Param = (
    "from_",
    Annotated[str | None, typer.Option("--from", metavar="UID", help="The acting user (onBehalfOf; default comethook-a).")],
    None,
)
Guid: Param = (
    "guid",
    Annotated[str | None, typer.Option("--guid", metavar="GUID", help="The group (default comethook-group).")],
    None,
)
Uid: Param = (
    "uid",
    Annotated[str | None, typer.Option("--uid", metavar="UID", help="The user acted on (default comethook-b).")],
    None,
)
MessageId: Param = ("message", Annotated[str | None, typer.Argument(metavar="[ID]", help="The message id (or --last).")], None)
Last: Param = ("last", Annotated[bool, typer.Option("--last", help="The last message `trigger message` sent.")], False)
Reaction: Param = (
    "reaction",
    Annotated[str | None, typer.Option("--reaction", metavar="EMOJI", help="The reaction (default 👍).")],
    None,
)
Scope: Param = ("scope", Annotated[str | None, typer.Option("--scope", help="admin, moderator or participant.")], None)


def option(param: str, *names: str, help: str, metavar: str | None = None) -> Param:
    """A verb's own optional text option."""
    return (param, Annotated[str | None, typer.Option(*names, metavar=metavar, help=help)], None)


declare(
    trigger_app,
    "setup",
    "Create the test users (and group) the other actions use; existing ones are reused.",
    option("users", "--users", metavar="UID,UID", help="Users to create."),
    option("group", "--group", metavar="GUID", help="Group to create ('' for none)."),
)
declare(
    trigger_app,
    "message",
    "Send a message: fires message_sent (+ user_mentioned), or before_message/after_message (legacy).",
    From,
    option("to", "--to", metavar="UID", help="Receiving user (default comethook-b)."),
    option("group", "--group", metavar="GUID", help="Send to a group instead."),
    option("text", "--text", help="Message text."),
    option("type_", "--type", help="text, image, video, audio, file or custom."),
    option("metadata", "--metadata", metavar="JSON", help="data.metadata, a JSON object."),
    ("mention", Annotated[list[str] | None, typer.Option("--mention", metavar="UID", help="Mention a user. Repeatable.")], None),
)
declare(
    trigger_app,
    "edit",
    "Edit a message: fires message_edited.",
    MessageId,
    Last,
    From,
    option("text", "--text", help="The new text."),
)
declare(trigger_app, "delete", "Delete a message: fires message_deleted.", MessageId, Last, From)
declare(trigger_app, "react", "React to a message: fires message_reaction_added.", MessageId, Last, From, Reaction)
declare(trigger_app, "unreact", "Remove a reaction: fires message_reaction_removed.", MessageId, Last, From, Reaction)
declare(trigger_app, "pin", "Pin a message: fires message_pinned (seen live, not documented).", MessageId, Last, From)
declare(trigger_app, "unpin", "Unpin a message: fires message_unpinned (seen live, not documented).", MessageId, Last, From)
declare(
    group_app,
    "create",
    "Create a group (owned by --from): fires group_created.",
    Guid,
    option("name", "--name", help="Group name."),
    option("group_type", "--type", help="public, private or password."),
    From,
)
declare(group_app, "update", "Rename a group: fires group_updated.", Guid, option("name", "--name", help="New name."), From)
declare(group_app, "delete", "Delete a group: fires group_deleted.", Guid, From)
declare(
    group_app, "transfer-owner", "Make --uid (a member) the owner, without onBehalfOf: fires group_owner_transferred.",
    Guid, option("uid", "--uid", metavar="UID", help="The new owner (default comethook-b)."),
)  # fmt: skip
declare(member_app, "add", "Add a member (--scope, default participant): fires group_member_added.", Guid, Uid, From, Scope)
declare(
    member_app, "scope", "Change a member's scope (default moderator): fires group_member_scope_changed.", Guid, Uid, From, Scope
)
declare(member_app, "kick", "Kick a member: fires group_member_kicked.", Guid, Uid, From)
declare(member_app, "ban", "Ban a user from the group: fires group_member_banned.", Guid, Uid, From)
declare(member_app, "unban", "Unban a user: fires group_member_unbanned.", Guid, Uid, From)
declare(trigger_app, "block", "--from blocks --uid: fires user_blocked.", From, Uid)
declare(trigger_app, "unblock", "--from unblocks --uid: fires user_unblocked.", From, Uid)

# --- what SDK clients cause: `emulate` stands in for the client (a real app exits 2: no REST call causes these) ------
SDK_ONLY = " (an SDK client's action: `emulate` only)."
declare(
    trigger_app, "receipt", "A client marks a message delivered or read: fires the receipt (+ *_to_all)" + SDK_ONLY,
    ("receipt", Annotated[str, typer.Argument(metavar="delivered|read", help="The receipt.")], Required),
    MessageId, Last, option("from_", "--from", metavar="UID", help="Whose client sends it (default comethook-b)."),
)  # fmt: skip
Member = option("uid", "--uid", metavar="UID", help="The user (default comethook-b).")
declare(trigger_app, "join", "A user joins a group: fires group_member_joined" + SDK_ONLY, Guid, Member)
declare(trigger_app, "leave", "A member leaves a group: fires group_member_left" + SDK_ONLY, Guid, Member)
declare(
    trigger_app, "presence", "A user's client connects or disconnects: fires user_connection_status_changed" + SDK_ONLY,
    ("status", Annotated[str, typer.Argument(metavar="online|offline", help="Connect or disconnect.")], Required),
    option("uid", "--uid", metavar="UID", help="The user (default comethook-a)."),
)  # fmt: skip
declare(
    trigger_app, "call", "A whole call or meeting: fires its call_* or meeting_* lifecycle" + SDK_ONLY,
    ("outcome", Annotated[str | None, typer.Argument(
        metavar="[answered|rejected|busy|cancelled|unanswered|meeting]", help="How it goes (default answered).")], None),
    option("from_", "--from", metavar="UID", help="The caller (default comethook-a)."),
    option("to", "--to", metavar="UID", help="The callee (default comethook-b)."),
    option("type_", "--type", help="audio or video."),
)  # fmt: skip
declare(
    trigger_app, "run", "Run a scenario's steps in order; later steps refer to earlier ids as ${steps.ID.id}.",
    ("scenario", Annotated[str, typer.Argument(metavar="SCENARIO", help="conversation, group-lifecycle, or a TOML/JSON file.")], Required),
    run_with=lambda values, how: scenario(values["scenario"], how),
)  # fmt: skip


MISMATCH = (
    "trigger was built from CometChat's docs and not verified live: if CometChat answers differently, report it in "
    "comethook's issue tracker with this call's --json output (it never holds your key)."
)


def target(how: TriggerOptions) -> tuple[str, str]:
    """(the REST base URL, the API key), from the flags and COMETCHAT_* (UsageError with a hint when missing)."""
    from comethook_cli.cometchat import rest

    if how.api_base:
        base = how.api_base.rstrip("/")
    elif how.app_id:
        base = rest.api_base(how.app_id, how.region)
    else:
        raise UsageError(
            "No CometChat app to call.",
            "Set COMETCHAT_APP_ID and COMETCHAT_REGION (or --app-id/--region), or point --api-base at `comethook emulate`.",
        )
    if not how.api_key:
        raise UsageError(
            "No REST API key.", "Set COMETCHAT_API_KEY to the app's REST API key (the environment: argv shows in ps)."
        )
    return base, how.api_key


def verb(name: str, args: dict[str, Any], how: TriggerOptions, last: bool = False) -> None:
    """Run one verb (`trigger message`, `trigger group create` ...)."""
    from comethook_cli.cometchat.scenarios import Step

    args = {key: value for key, value in args.items() if value is not None}
    if last:
        from comethook_cli.engine.trigger import last_message

        if "message" in args:
            raise UsageError("Both a message id and --last.", "Give one.")
        found = last_message(target(how)[0])
        if found is None:
            raise UsageError("No message sent yet to remember for --last.", "Send one first: `comethook trigger message`.")
        args["message"] = found
    _run([Step(name, name, args)], how)


def scenario(source: str, how: TriggerOptions) -> None:
    """`trigger run NAME|FILE`: a built-in scenario, or a TOML / JSON file of steps."""
    from comethook_cli.cometchat.scenarios import BUILTIN, parse_scenario

    if source in BUILTIN:
        document: Any = BUILTIN[source]
    else:
        document = read_scenario(source)
    _run(parse_scenario(document, source), how)


def read_scenario(path: str) -> Any:
    """A scenario file: TOML, or JSON when it ends in .json."""
    import tomllib

    from comethook_cli import jsonbody
    from comethook_cli.cli.options import read_user_file
    from comethook_cli.cometchat.scenarios import BUILTIN

    hint = f"Give a file, or a built-in: {', '.join(BUILTIN)}."
    raw = read_user_file(path, "scenario", hint, too_large="A scenario is a short list of steps.")
    try:
        if path.endswith(".json"):
            return jsonbody.parse(raw)
        return tomllib.loads(raw.decode("utf-8"))
    except (jsonbody.JsonBodyError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"Scenario {path!r} does not parse: {error}.", "Fix the file (TOML, or JSON ending in .json).") from None


def _run(steps: list[Step], how: TriggerOptions) -> None:
    import asyncio

    from comethook_cli.cometchat.scenarios import SDK_VERBS, sdk_only
    from comethook_cli.outputs.views import view

    if how.expect is not None and how.expect.needs_deliveries and not how.wait:  # a combination of flags: said here
        from comethook_cli.engine.trigger import BLOCKED_ARRIVES

        why = f": {BLOCKED_ARRIVES}" if how.expect == "blocked" else ""
        raise UsageError(f"--expect {how.expect} needs --wait{why}.", "Add --wait (with `comethook listen` running).")

    sdk = next((step.verb for step in steps if step.verb in SDK_VERBS), None)
    if sdk is not None and not how.api_base:
        raise sdk_only(sdk, None)
    base, key = target(how)
    shown = view(how.json_out, verbose=how.verbose)
    if not how.api_base or not base.startswith(("http://127.", "http://localhost", "http://[::1]")):
        shown.note(MISMATCH)
    asyncio.run(_steps(steps, how, base, key, shown))


async def _steps(steps: list[Step], how: TriggerOptions, base: str, key: str, shown: View) -> None:
    from comethook_cli.cometchat import rest
    from comethook_cli.cometchat.scenarios import SDK_VERBS, StepResult, resolve, sdk_only
    from comethook_cli.engine import trigger
    from comethook_cli.engine.rest_client import MAX_BACKOFFS, RestClient
    from comethook_cli.outputs.wire import trigger_record as record

    watch = trigger.Watch.open() if how.wait else None

    def on_backoff(seconds: float, attempt: int) -> None:
        shown.warning(
            f"CometChat answered 429 (rate limited): waiting {seconds:g} s as Retry-After says (back-off {attempt} of {MAX_BACKOFFS})."
        )

    def on_call(call: RestCall, planned: Call) -> None:
        reused = call.error is not None and call.error.code in planned.reuse
        # A Retry-After not waited out is said by the error that ends the command, with its own hint.
        quiet = reused or call.retry_after_s is not None
        hint = None if quiet else rest.hint_for(call.error.code if call.error else None, call.status)
        shown.rest_call(call, hint, reused)

    results: dict[str, StepResult] = {}
    run_id = os.urandom(4).hex()
    try:
        async with RestClient(base, key, how.timeout, on_backoff=on_backoff) as client:
            for step in steps:
                args = resolve(step.args, results, run_id)
                if watch is not None:
                    watch.seq = await _head(watch)
                outcome = await trigger.perform(client, step.verb, args, on_call)
                if step.verb in SDK_VERBS and not all(rest.from_emulator(c.body) for c in outcome.calls if c.status):
                    raise sdk_only(step.verb, base)
                if outcome.failed is not None:
                    shown.trigger_result(record(step.verb, outcome, None))  # --json: a record for a refused call too
                    raise trigger.call_error(outcome.failed)
                if step.verb == "message" and outcome.main_id:
                    trigger.remember(outcome.main_id, base)
                arrived = None
                if watch is not None and (outcome.current or outcome.legacy):
                    arrived = await trigger.wait_for(watch, outcome, how.wait_timeout, shown.on_exchange)
                shown.trigger_result(record(step.verb, outcome, arrived))
                trigger.judge(outcome, arrived, how.expect, how.wait_timeout)
                results[step.id] = StepResult(outcome.main_id, outcome.answer)
    finally:
        if watch is not None:
            watch.close()


async def _head(watch: Any) -> int:
    import asyncio

    return int(await asyncio.to_thread(watch.history.head))

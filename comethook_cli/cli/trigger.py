"""`comethook trigger …`: the verbs, the group and member actions and `run`, handed to commands/trigger.py.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

from typing import Annotated

import typer

from comethook_cli.cli import funnel
from comethook_cli.commands.app import App
from comethook_cli.commands.options import TRIGGERING, triggering, with_options
from comethook_cli.engine.config import TriggerOptions

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

"""`comethook payloads list|show`: list the catalog, show the exact body `send` would send.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

from typing import Annotated

import typer

from comethook_cli.cli import completion
from comethook_cli.cli.app import App, funnel
from comethook_cli.cli.options import (
    JsonOut,
    Legacy,
    MessageType,
    PayloadAppId,
    PayloadRegion,
    Receiver,
    Sender,
    Sets,
    Text,
    ToGroup,
    WebhookId,
    build_options,
)
from comethook_cli.cometchat.payloads import BuildOptions
from comethook_cli.engine.config import default

app = App()  # what the root group takes this command from
payloads_app = App(help="List the canned CometChat payloads, or print one as JSON.", no_args_is_help=True)
app.add_typer(payloads_app, name="payloads")


@payloads_app.command("list")
@funnel
def payloads_list(json_out: JsonOut = False) -> None:
    """List every canned payload: trigger, generation, family, description."""
    from comethook_cli.cometchat.payloads import catalog
    from comethook_cli.outputs.views import view

    view(json_out).catalog(catalog())


@payloads_app.command("show")
@funnel
def payloads_show(
    trigger: Annotated[
        str,
        typer.Argument(
            metavar="TRIGGER", help="Trigger name, e.g. before_message, message_sent.", autocompletion=completion.triggers
        ),
    ],
    legacy: Legacy = False,
    type_: MessageType = default(BuildOptions, "type"),
    text: Text = default(BuildOptions, "text"),
    sender: Sender = default(BuildOptions, "sender"),
    receiver: Receiver = default(BuildOptions, "receiver"),
    group: ToGroup = default(BuildOptions, "group"),
    webhook_id: WebhookId = default(BuildOptions, "webhook_id"),
    app_id: PayloadAppId = default(BuildOptions, "app_id"),
    region: PayloadRegion = default(BuildOptions, "region"),
    set_: Sets = None,
) -> None:
    """Print the exact JSON body `send` would send for TRIGGER."""
    options = build_options(type_, text, sender, receiver, group, webhook_id, app_id, region, set_)
    from comethook_cli.cometchat.payloads import build, find_template
    from comethook_cli.outputs.terminal import Renderer

    template = find_template(trigger, legacy)
    renderer = Renderer()
    if template.note:
        # stderr, so stdout stays the exact body `send` would send.
        renderer.note(template.note)
    renderer.document(build(template, options))

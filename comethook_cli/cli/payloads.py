"""`comethook payloads list|show`: their options, handed to commands/payloads.py.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

from typing import Annotated

import typer

from comethook_cli.cli import funnel
from comethook_cli.cometchat.payloads import BuildOptions
from comethook_cli.commands import completion
from comethook_cli.commands.app import App
from comethook_cli.commands.options import BUILDER, JsonOut, Legacy, build_options, with_options

app = App()  # what the root group takes this command from
payloads_app = App(help="List the canned CometChat payloads, or print one as JSON.", no_args_is_help=True)
app.add_typer(payloads_app, name="payloads")


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

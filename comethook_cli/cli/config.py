"""`comethook config show`: its options, handed to commands/config.py.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

from typing import Annotated

import typer

from comethook_cli.cli import funnel
from comethook_cli.commands.app import App
from comethook_cli.commands.options import JsonOut

app = App()  # what the root group takes this command from
config_app = App(help="The project file (comethook.toml): what is in effect, and from where.", no_args_is_help=True)
app.add_typer(config_app, name="config")


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

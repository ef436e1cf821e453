"""`comethook trust [FILE] [--show | --revoke]`: its options, handed to commands/trust.py.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

from typing import Annotated

import typer

from comethook_cli.cli import funnel
from comethook_cli.commands.app import App

app = App()  # what the root group takes this command from


@app.command()
@funnel
def trust(
    ctx: typer.Context,
    file: Annotated[
        str | None,
        typer.Argument(metavar="FILE", help="The project file (default: the comethook.toml or pyproject.toml found here)."),
    ] = None,
    show: Annotated[bool, typer.Option("--show", help="Only list what the file asks for, and whether it is trusted.")] = False,
    revoke: Annotated[bool, typer.Option("--revoke", help="Forget the trust: its gated keys are refused again.")] = False,
) -> None:
    """Trust this project file as it is now: its keys that run a program, reach outside its directory or send data elsewhere.

    Without trust, such a key is refused (exit 2) and the rest of the file works. The trust is for the file's exact
    content: an edit asks again. In CI, CI=true with COMETHOOK_TRUST_PROJECT=1 trusts the checkout instead.
    """
    from comethook_cli.commands import trust as trust_command

    trust_command.run(ctx, file, show, revoke)

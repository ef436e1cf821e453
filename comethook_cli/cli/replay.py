"""`comethook replay`: its options, handed to commands/replay.py.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

from typing import Annotated

import typer

from comethook_cli.cli import funnel
from comethook_cli.commands import completion
from comethook_cli.commands.app import App
from comethook_cli.commands.options import DELIVERING, Sets, delivering, with_options
from comethook_cli.engine.config import Delivering

app = App()  # what the root group takes this command from


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

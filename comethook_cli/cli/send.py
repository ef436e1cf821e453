"""`comethook send`: its options, handed to commands/send.py.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

from typing import Annotated

import typer

from comethook_cli.cli import funnel
from comethook_cli.cometchat.payloads import BuildOptions
from comethook_cli.commands import completion
from comethook_cli.commands.app import App
from comethook_cli.commands.options import BUILDER, DELIVERING, Legacy, build_options, delivering, with_options
from comethook_cli.engine.config import Delivering

app = App()  # what the root group takes this command from


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

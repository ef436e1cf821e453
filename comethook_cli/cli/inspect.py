"""`comethook inspect`: its options, handed to commands/inspect.py.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

from typing import Annotated

import typer

from comethook_cli.cli import funnel
from comethook_cli.commands.app import App
from comethook_cli.commands.options import OpenBrowser

app = App()  # what the root group takes this command from


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

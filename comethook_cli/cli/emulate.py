"""`comethook emulate`: its options, turned into an EmulatorConfig for commands/emulate.py.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

from typing import Annotated

import typer

from comethook_cli.cli import funnel
from comethook_cli.commands.app import App
from comethook_cli.commands.options import EMULATING, JsonOut, emulating, with_options
from comethook_cli.engine.config import EmulatorConfig

app = App()  # what the root group takes this command from


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

"""`comethook init`: writes the starter project file (commands/config.py).

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

from comethook_cli.cli import funnel
from comethook_cli.commands.app import App

app = App()  # what the root group takes this command from


@app.command()
@funnel
def init() -> None:
    """Write a commented starter comethook.toml here (never overwrites one)."""
    from pathlib import Path

    from comethook_cli.commands import config as project
    from comethook_cli.outputs.terminal import Renderer

    path = project.init(Path.cwd())
    Renderer().note(f"Wrote {path.name}: uncomment what this project needs; `comethook config show` shows the result.")

"""The Typer app: the root command and the table of commands.

Each command (its options, its body and its exit code) is a module of this package named after it, imported only when
that command is used: `comethook --help`, `comethook` alone, a mistyped command and the completion
of command names read COMMANDS instead, so they pay for no command's options, config sections or payload catalog.
"""

from __future__ import annotations

from typing import Annotated

import typer

from comethook_cli import __version__
from comethook_cli.cli.app import App, funnel

#: Every command, in the order --help lists them, with the one-line help the root's --help shows for it: the first
#: paragraph of the help its module declares (a test keeps the two equal). `comethook_cli/cli/<name>.py` is the command.
COMMANDS = {
    "listen": "Listen for CometChat deliveries (through an ngrok tunnel), show each one, answer before_message.",
    "inspect": "Serve the inspector page on the stored history, without listening: browse, search, replay, export.",
    "send": "Fire a realistic CometChat delivery at an endpoint and show what CometChat would do with the answer.",
    "replay": "Deliver a stored exchange's exact bytes again (optionally changed) and show the answer like `send`.",
    "check": "Run a conformance suite against a webhook endpoint: the way CometChat will use it.",
    "emulate": "A local stand-in for CometChat's REST API that fires the webhooks each call causes (offline CI).",
    "init": "Write a commented starter comethook.toml here (never overwrites one).",
    "payloads": "List, show and save CometChat payloads (catalog and project fixtures); diff live deliveries.",
    "history": "List, show, export or clear what `listen` received.",
    "trigger": "Make CometChat (or `emulate`) fire real webhooks through its REST API; --wait for them in `listen`.",
    "config": "The project file (comethook.toml): what is in effect, and from where.",
    "mcp": "Serve comethook's tools to a coding agent (Claude Code, Cursor, VS Code) over stdio: the Model Context Protocol.",
    "trust": "Trust this project file as it is now: its keys that run a program, reach outside its directory or send data elsewhere.",
}

app = App(
    name="comethook",
    help="Webhook development tool for CometChat: listen through ngrok, fire realistic events, assert in CI.",
    no_args_is_help=True,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    lazy=COMMANDS,
    package=__name__,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"comethook {__version__}")
        raise typer.Exit()


@app.callback()
@funnel
def root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            metavar="FILE",
            envvar="COMETHOOK_CONFIG",
            help="Read settings from FILE (default: comethook.toml found upward).",
        ),
    ] = None,
    no_config: Annotated[bool, typer.Option("--no-config", help="Ignore every comethook.toml and [tool.comethook].")] = False,
) -> None:
    """Webhook development tool for CometChat."""
    from comethook_cli.cli import projectfile as project

    project.apply(ctx, config, no_config)


def main() -> None:
    """Run the Typer app (`comethook --version` alone is answered earlier, in __main__, before any import)."""
    app()

"""`comethook mcp`: serve comethook's tools to a coding agent over stdio (the Model Context Protocol).

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module, and this
module imports the SDK (the optional `mcp` extra) only once the command runs.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from comethook_cli.cli.app import App, funnel
from comethook_cli.errors import UsageError

app = App()  # what the root group takes this command from

INSTALL_HINT = "Install the extra: pip install 'comethook[mcp]' (in a pipx install: pipx inject comethook 'mcp>=2.3')."


@app.command()
@funnel
def mcp(
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Offer only the tools that send nothing (no send, check, replay, trigger).")
    ] = False,
) -> None:
    """Serve comethook's tools to a coding agent (Claude Code, Cursor, VS Code) over stdio: the Model Context Protocol.

    An agent lists the payloads, explains a before_message answer, fires deliveries at a handler, runs the checks,
    reads and replays what `comethook listen` received, and triggers real webhooks. Secrets are read only from the
    environment variables a tool is told to use. stdout carries the protocol: nothing else is written there.
    """
    try:
        from comethook_cli.mcp.server import serve
    except ImportError:  # the optional extra, missing or too old (mcp 1.x has no MCPServer): said, never a traceback
        raise UsageError(*missing_sdk()) from None

    # Ctrl-C is how a person stops a server they started by hand: exit 0, as `listen` does.
    with contextlib.suppress(KeyboardInterrupt):
        serve(read_only)


def missing_sdk() -> tuple[str, str]:
    """The message and hint when the MCP SDK cannot be imported: not installed, or a version before 2.3."""
    from importlib import metadata

    try:
        found = metadata.version("mcp")
    except metadata.PackageNotFoundError:
        return "`comethook mcp` needs the MCP SDK, which is not installed.", INSTALL_HINT
    return f"`comethook mcp` needs the MCP SDK 2.3 or later; mcp {found} is installed.", INSTALL_HINT.replace(
        "Install the extra", "Upgrade it"
    )

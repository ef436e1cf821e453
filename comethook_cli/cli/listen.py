"""`comethook listen`: its options, one group per config section, turned into a ListenConfig for commands/listen.py.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

from typing import Annotated

import typer

from comethook_cli.cli import funnel
from comethook_cli.commands.app import App
from comethook_cli.commands.options import (
    ANSWERS,
    FORWARDING,
    HISTORY,
    LISTENER,
    TUNNEL,
    InspectorPort,
    JsonOut,
    NoInspector,
    OpenBrowser,
    answer_config,
    forward_config,
    history_config,
    listener_config,
    tunnel_config,
    with_options,
)
from comethook_cli.engine.config import AnswerConfig, ForwardConfig, HistoryConfig, ListenerConfig, TunnelConfig

app = App()  # what the root group takes this command from


@app.command()
@funnel
@with_options(LISTENER, listener_config, into="listener")
@with_options(ANSWERS, answer_config, into="answers")
@with_options(FORWARDING, forward_config, into="forward")
@with_options(TUNNEL, tunnel_config, into="tunnel")
@with_options(HISTORY, history_config, into="history")
def listen(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also show headers (redacted) and bodies.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing per event.")] = False,
    json_out: JsonOut = False,
    max_events: Annotated[int | None, typer.Option("--max-events", min=1, help="Stop after N events (exit 0).")] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            min=0.001,
            help="Stop after SECONDS: exit 4 when --max-events were asked for and have not all arrived, else exit 0.",
        ),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option(
            "--events",
            metavar="NAME,NAME|legacy|current",
            help="Store and show only these triggers; others are still answered, shown as one dim line.",
        ),
    ] = None,
    inspector_port: InspectorPort = None,
    no_inspector: NoInspector = False,
    open_browser: OpenBrowser = False,
    listener: ListenerConfig | None = None,
    answers: AnswerConfig | None = None,
    forward: ForwardConfig | None = None,
    tunnel: TunnelConfig | None = None,
    history: HistoryConfig | None = None,
) -> None:
    """Listen for CometChat deliveries (through an ngrok tunnel), show each one, answer before_message."""
    from comethook_cli.commands import listen as listen_command
    from comethook_cli.engine.config import ListenConfig

    assert listener and answers and forward and tunnel and history
    from comethook_cli.outputs.terminal import Renderer

    chosen = listen_command.parse_events(events, Renderer().warning)
    config = ListenConfig(listener, answers, forward, tunnel, history, max_events, timeout, chosen)
    inspector = listen_command.InspectorChoice(not no_inspector, inspector_port, open_browser)
    listen_command.run(config, json_out=json_out, quiet=quiet, verbose=verbose, inspector=inspector)

"""`comethook history list|show|export|clear`: their options, handed to commands/history.py.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

from typing import Annotated

import typer

from comethook_cli.cli import funnel
from comethook_cli.commands import completion
from comethook_cli.commands.app import App
from comethook_cli.commands.options import JsonOut

app = App()  # what the root group takes this command from
history_app = App(help="List, show, export or clear what `listen` received.", no_args_is_help=True)
app.add_typer(history_app, name="history")


@history_app.command("list")
@funnel
def history_list(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")] = 20,
    trigger: Annotated[
        str | None, typer.Option("--trigger", help="Only this trigger.", autocompletion=completion.triggers)
    ] = None,
    json_out: JsonOut = False,
) -> None:
    """List stored exchanges, newest first."""
    from comethook_cli.commands import history

    history.list_(limit, trigger, json_out)


@history_app.command("show")
@funnel
def history_show(
    exchange_id: Annotated[
        str,
        typer.Argument(
            metavar="ID",
            help="Exchange id (or a unique end of it, as `history list` shows).",
            autocompletion=completion.history_ids,
        ),
    ],
    json_out: JsonOut = False,
) -> None:
    """Show one exchange in full: request, headers (redacted), body, answer, verdict."""
    from comethook_cli.commands import history

    history.show(exchange_id, json_out)


@history_app.command("export")
@funnel
def history_export(
    fmt: Annotated[
        str, typer.Option("--format", metavar="ndjson|curl|har", help="Export format.", autocompletion=completion.export_formats)
    ] = "ndjson",
    output: Annotated[str | None, typer.Option("--output", "-o", metavar="FILE", help="Write here instead of stdout.")] = None,
    exchange_id: Annotated[
        str | None, typer.Option("--id", metavar="ID", help="Only this exchange (or a unique end of its id).")
    ] = None,
    trigger: Annotated[str | None, typer.Option("--trigger", help="Only this trigger.")] = None,
    since: Annotated[str | None, typer.Option("--since", metavar="30m|2h|7d|DATE", help="Only exchanges since then.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="Only the newest N (still oldest first).")] = None,
) -> None:
    """Export stored exchanges (all, or those the filters pick): NDJSON, curl commands, or a HAR file."""
    from comethook_cli.commands import history

    history.export(fmt, output, history.ExportFilter(exchange_id, trigger, since, limit))


@history_app.command("clear")
@funnel
def history_clear(yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False) -> None:
    """Delete every stored exchange."""
    from comethook_cli.commands import history
    from comethook_cli.outputs.terminal import Renderer

    removed = history.clear(yes, lambda prompt: typer.confirm(prompt, err=True))
    Renderer().note("Nothing deleted." if removed < 0 else f"Deleted {removed} exchange(s).", style="bold")

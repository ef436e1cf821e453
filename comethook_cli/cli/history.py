"""`comethook history list|show|export|clear`: their options; list, show, export and clear what `listen` stored.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from comethook_cli.cli import completion
from comethook_cli.cli.app import App, funnel
from comethook_cli.cli.options import JsonOut
from comethook_cli.errors import UsageError
from comethook_cli.models import Exchange
from comethook_cli.outputs.exports import curl_command, encoding_note, readable, write_har
from comethook_cli.outputs.wire import Event, encode

if TYPE_CHECKING:
    from collections.abc import Callable

    from comethook_cli.engine.history.reader import History

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
    list_(limit, trigger, json_out)


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
    show(exchange_id, json_out)


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
    export(fmt, output, ExportFilter(exchange_id, trigger, since, limit))


@history_app.command("clear")
@funnel
def history_clear(yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False) -> None:
    """Delete every stored exchange."""
    from comethook_cli.outputs.terminal import Renderer

    removed = clear(yes, lambda prompt: typer.confirm(prompt, err=True))
    Renderer().note("Nothing deleted." if removed < 0 else f"Deleted {removed} exchange(s).", style="bold")


EXPORT_FORMATS = ("ndjson", "curl", "har")
#: `history list` reads this many rows at a time, so memory does not grow with --limit.
LIST_PAGE = 500
#: The most rows the human table shows (it is laid out as a whole); --json streams any number.
TABLE_MAX = 10_000


def open_history() -> History:
    """The history database (an error with a hint when there is none yet); close it (`with`) when done."""
    from comethook_cli.engine.history.reader import History

    return History()


def list_(limit: int, trigger: str | None, json_out: bool) -> None:
    """`history list`: the newest page."""
    from comethook_cli.engine.history.files import default_path
    from comethook_cli.outputs.views import view

    shown = view(json_out)
    if not default_path().exists():
        shown.exchanges([], "No history yet: `comethook listen` records every delivery.")
        return
    empty = "No exchanges stored yet." if not trigger else f"No {trigger} exchanges stored."
    with open_history() as history:
        if json_out:  # a line per exchange, a page at a time: any --limit in flat memory
            for page in pages(history, limit, trigger):
                shown.exchanges(page, empty)
        else:
            # The table is laid out as a whole: its rows without their bodies, and at most TABLE_MAX of them.
            rows = [dataclasses.replace(e, body=b"", response_body=b"", headers=(), response_headers=())
                    for page in pages(history, min(limit, TABLE_MAX), trigger) for e in page]  # fmt: skip
            shown.exchanges(rows, empty, history.short_ids([e.id for e in rows]))
            if limit > TABLE_MAX and len(rows) == TABLE_MAX:
                shown.note(f"Showing the newest {TABLE_MAX:,}; `history list --json` or `history export` give them all.")
        note = pruned_note(history)
    if note:
        shown.note(note)  # stderr: stdout stays pure NDJSON


def pages(history: History, limit: int, trigger: str | None) -> Iterator[list[Exchange]]:
    """The newest `limit` exchanges, newest first, LIST_PAGE at a time."""
    cursor: int | None = None
    while limit > 0:
        page, cursor = history.page(before_seq=cursor, limit=min(limit, LIST_PAGE), trigger=trigger)
        if page:
            yield page
        limit -= len(page)
        if cursor is None:
            return


def pruned_note(history: History) -> str | None:
    """One line saying that retention deleted older exchanges (None when it never did)."""
    import time

    pruned = history.pruned()
    if pruned is None:
        return None
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(pruned.at))
    return (
        f"Older exchanges were pruned: {pruned.rows:,} deleted so far, the last at {when} (history kept to {pruned.retention}; "
        "see `comethook listen --history-max-mb/--history-max-age`)."
    )


def show(key: str, json_out: bool) -> None:
    """`history show ID`."""
    from comethook_cli.outputs.views import view

    with open_history() as history:
        exchange = history.get(key)
    shown = view(json_out)
    shown.exchange(readable(exchange))
    note = encoding_note(exchange)
    if note:
        shown.note(note)


@dataclass(frozen=True)
class ExportFilter:
    """Which exchanges `history export` writes: one id, one trigger, since a time, the newest N (all when unset)."""

    id: str | None = None
    trigger: str | None = None
    since: str | None = None
    limit: int | None = None

    def select(self, history: History) -> Iterator[Exchange]:
        """The chosen exchanges, oldest first, streamed (--limit keeps only the newest N in memory)."""
        import collections

        if self.id is not None:
            yield history.get(self.id)
            return
        since = parse_since(self.since) if self.since else None
        chosen = (
            e
            for e in history.iter_all()
            if (self.trigger is None or e.info.trigger == self.trigger) and (since is None or e.received_at >= since)
        )
        if self.limit is None:
            yield from chosen
        else:
            yield from collections.deque(chosen, maxlen=self.limit)


def parse_since(text: str) -> float:
    """`--since 30m` / `2h` / `7d` / `90s` (ago) or `2024-05-01` / `2024-05-01T12:00` (local time) → epoch seconds."""
    import time
    from datetime import datetime

    ago = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if ago:
        return time.time() - float(ago.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[ago.group(2)]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise UsageError(
            f"Malformed --since {text!r}.", "Give a time ago (30m, 2h, 7d) or a date (2024-05-01, 2024-05-01T12:00)."
        ) from None


def export(fmt: str, output: str | None, only: ExportFilter | None = None) -> None:
    """`history export --format ndjson|curl|har [-o FILE]`: streamed, one stored row at a time."""
    from comethook_cli.engine.history.files import HistoryDamaged

    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"Unknown export format {fmt!r}.", f"Use one of: {', '.join(EXPORT_FORMATS)}.")
    only = only or ExportFilter()
    if only.since:
        parse_since(only.since)  # a malformed --since is said before the output file is opened
    written = 0

    def exchanges() -> Iterator[Exchange]:
        nonlocal written
        for exchange in only.select(history):
            yield exchange
            written += 1

    with open_history() as history, _output(output) as stream:
        try:
            if fmt == "har":
                write_har(stream, exchanges())
            else:
                for exchange in exchanges():
                    stream.write((encode(Event(readable(exchange))) if fmt == "ndjson" else curl_command(exchange)) + "\n")
        except HistoryDamaged as damaged:
            damaged.message += f" The export stopped after {written:,} exchange(s); {output or 'the output'} is incomplete."
            raise
    if output is not None and output != "-":
        from comethook_cli.outputs.terminal import Renderer

        Renderer().note(f"Wrote {written:,} exchange(s) to {output}.", style="bold")


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if path is None or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    from comethook_cli.engine.home import open_private

    try:
        stream = open_private(path)  # it holds chat bodies: 0600, whatever the umask
    except OSError as error:
        raise UsageError(f"Cannot write {path!r}: {error.strerror}.", "Check the directory exists and is writable.") from None
    with stream:
        yield stream


def clear(yes: bool, confirm: Callable[[str], bool]) -> int:
    """`history clear`: ask first unless --yes; returns how many were removed (-1 when the user said no)."""
    with open_history() as history:
        count = history.count()
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(f"Refusing to delete {count} stored exchange(s) without confirmation.", "Pass --yes.")
            if not confirm(f"Delete {count} stored exchange(s)?"):
                return -1
        return history.clear()

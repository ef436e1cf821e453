"""The tables of the human display: the catalog (`payloads list`), the history (`history list`) and the conformance
suite's results (`check`), each in fixed columns fitted to the console's width, the free text giving way first.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from comethook_cli.models import Exchange
from comethook_cli.outputs.escapes import safe
from comethook_cli.outputs.eventline import VERDICT_STYLE, is_probe, ms
from comethook_cli.outputs.layout import cut_at_word

if TYPE_CHECKING:
    from comethook_cli.cometchat.payloads import Template
    from comethook_cli.engine.checks import CheckResult
    from comethook_cli.outputs.wire import CheckSummary

STATUS_STYLE = {"pass": "bold green", "fail": "bold red", "warn": "bold yellow"}
#: `history list` keeps at least this much room for the summary before it drops the date and cuts long triggers.
TABLE_SUMMARY_MIN = 30
TABLE_SUMMARY_CUT = 16


def payload_table(console: Console, templates: Iterable[Template], shadowed: Collection[str] = ()) -> None:
    """The catalog as a table on stdout (`shadowed`: the project fixtures that take a catalog trigger's place)."""
    templates = [replace(t, description=_shadowing(t, shadowed)) for t in templates]
    columns: tuple[str, ...] = ("trigger", "generation", "family")
    # A trigger name never wraps: the description gives way, cut at a word; on a narrow terminal, family and generation too.
    while True:
        widths = [max([len(_cell(t, column)) for t in templates] + [len(column)]) for column in columns]
        room = console.width - sum(widths) - 2 * len(widths)
        if room >= 20 or len(columns) == 1:
            break
        columns = columns[:-1]
    room = max(room, 10)
    header = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + "  description"
    console.print(Text(header, style="bold"), no_wrap=True, overflow="ellipsis")
    for t in templates:
        cells = "  ".join(_cell(t, c).ljust(w) for c, w in zip(columns, widths, strict=True))
        line = Text(cells + "  ")
        line.append_text(cut_at_word(Text(t.description), room) or Text(""))
        console.print(line, no_wrap=True, overflow="ellipsis")


def _cell(template: Template, column: str) -> str:
    """A catalog table cell: the trigger column shows what a user types (a project fixture's name)."""
    return template.name if column == "trigger" else str(getattr(template, column))


def _shadowing(template: Template, shadowed: Collection[str]) -> str:
    if template.fixture in shadowed:
        return f"shadows the catalog's {template.fixture}: {template.description}"
    if template.fixture is not None:
        return f"{template.description} (a {template.trigger})"
    return template.description


# --- send -----------------------------------------------------------------------------------


def history_table(console: Console, exchanges: list[Exchange], short_ids: dict[str, str] | None = None) -> None:
    """The stored exchanges, newest first, one line each, in fixed aligned columns; the summary gets the width left.

    `short_ids` maps an id to the shortest end of it that names it alone (every command accepts it)."""
    short_ids = short_ids or {}
    ids = [short_ids.get(e.id, e.id) for e in exchanges]
    width = console.width
    id_width = max([len(i) for i in ids] + [2])
    answer_width = len("200 INVALID")
    trigger_width = max([cell_len(safe(e.info.trigger)) for e in exchanges] + [7])
    fixed = id_width + answer_width + 3 * 2
    received = fixed + 11 + 2 + trigger_width + TABLE_SUMMARY_MIN <= width  # the date goes before the trigger is cut
    if received:
        fixed += 11 + 2
    # Only on a very narrow terminal does a long trigger give up its end (…), so the summary keeps some room.
    trigger_width = max(min(trigger_width, width - fixed - 2 - TABLE_SUMMARY_CUT), len("trigger"))
    room = max(width - fixed - trigger_width - 2, 8)
    columns = [
        ("id", id_width),
        *([("received", 11)] if received else []),
        ("trigger", trigger_width),
        ("answer", answer_width),
    ]
    header = Text("  ".join(name.ljust(w) for name, w in columns) + "  summary", style="bold")
    console.print(header, no_wrap=True, overflow="ellipsis")
    for short, e in zip(ids, exchanges, strict=True):
        answer = Text(str(e.response_status), style="green" if 200 <= e.response_status < 300 else "red")
        if e.verdict:
            answer.append(" " + e.verdict.kind.upper(), style=VERDICT_STYLE[e.verdict.kind])
        answer.pad_right(answer_width - answer.cell_len)
        trigger = Text(safe(e.info.trigger))
        if trigger.cell_len > trigger_width:
            trigger = Text(safe(e.info.trigger)[: trigger_width - 1] + "…")
        trigger.pad_right(trigger_width - trigger.cell_len)
        summary = cut_at_word(Text(("check probe · " if is_probe(e) else "") + safe(e.info.summary)), room) or Text("")
        cells: list[Text | str] = [short.ljust(id_width)]
        if received:
            cells.append(Text(time.strftime("%m-%d %H:%M", time.localtime(e.received_at)), "dim"))
        cells += [trigger, answer, summary]
        console.print(Text("  ").join(Text(c) if isinstance(c, str) else c for c in cells), no_wrap=True, overflow="ellipsis")


#: This many checks failing (or warning) with one and the same detail are said once, their names listed after it.
SAME_CAUSE_MIN = 3


def check_table(console: Console, url: str, results: list[CheckResult], summary: CheckSummary) -> None:
    """The results on stdout, the summary after them. On a terminal, a table fitted to its width (the detail wraps at
    words); in a pipe or a CI log, one whole line per check. Many checks that fail for one cause are said once."""
    console.print(Text(f"comethook check {safe(url)}"))
    causes: dict[tuple[str, str], list[CheckResult]] = {}
    for r in results:
        if r.status != "pass":
            causes.setdefault((r.status, r.detail), []).append(r)
    grouped = {key: rs for key, rs in causes.items() if len(rs) >= SAME_CAUSE_MIN}
    single = [r for r in results if (r.status, r.detail) not in grouped]
    if console.is_terminal:
        table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
        table.add_column("check", ratio=2, overflow="fold")
        table.add_column("result", no_wrap=True)
        table.add_column("latency", justify="right", no_wrap=True)
        table.add_column("detail", ratio=3, min_width=24, overflow="fold")
        for r in single:
            # A plain str cell would be read as markup: the detail quotes the endpoint's answer, so it goes in as Text.
            table.add_row(
                Text(safe(r.name)), Text(r.status.upper(), style=STATUS_STYLE[r.status]), ms(r.latency_ms), Text(safe(r.detail))
            )
        console.print(table)
    else:
        width = max((len(r.name) for r in single), default=0)
        for r in single:
            console.print(
                Text.assemble((f"{r.status.upper():<4}", STATUS_STYLE[r.status]), f"  {safe(r.name).ljust(width)}  "),
                Text(f"{ms(r.latency_ms):>9}  {safe(r.detail)}".rstrip()),
                sep="",
                soft_wrap=True,
            )
    for (status, detail), rs in grouped.items():
        tail = " " + rs[0].name.rsplit(" ", 1)[-1]  # "… accepted": said once, before the names, not after each
        shared = tail if len(rs[0].name.split()) > 1 and all(r.name.endswith(tail) for r in rs) else ""
        label = f"  {len(rs)} checks, one cause: " if not shared else f"  {len(rs)} checks ({shared.strip()}), one cause: "
        head = Text.assemble((status.upper(), STATUS_STYLE[status]), label, Text(safe(detail)))
        names = Text(", ".join(safe(r.name.removesuffix(shared)) for r in rs), style="dim")
        _indented(console, head, first="")
        _indented(console, names, first="      ")
    style = "bold red" if summary.failed else "bold green"
    counts = f"{summary.passed} passed, {summary.failed} failed, {summary.warnings} warning(s)"
    console.print(Text(f"{counts} in {summary.seconds:.2f} s", style=style))


def _indented(console: Console, text: Text, first: str, indent: str = "      ") -> None:
    """`text` after `first`: on a terminal wrapped at words with the lines after the first indented; whole elsewhere."""
    if not console.is_terminal:
        console.print(Text(first) + text, soft_wrap=True)
        return
    for number, line in enumerate(text.wrap(console, max(console.width - len(indent), 20))):
        line.rstrip()
        console.print(Text(first if number == 0 else indent) + line)


# --- trigger, emulate ---------------------------------------------------------------------

"""A command's --help as comethook lays it out: panels of options, names beside their help when there is room and
above it when not, every line wrapped at words to the terminal's width (cli/app.py's Command and Group use it)."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text


def help_page(out: Console, usage: str, description: str, panels: list[tuple[str, list[tuple[str, str]]]]) -> None:
    """A command's --help on stdout: usage, description, then each panel's options, wrapped at words to the width.

    Names sit beside their help when they fit a third of the width, above it when they do not."""
    width = max(out.width, 40)
    out.print(Text.assemble(("Usage: ", "bold"), usage))
    if description:
        out.print()
        for line in Text(description).wrap(out, width - 2):
            line.rstrip()
            out.print(Text.assemble("  ", line))
    names = [n for _, rows in panels for n, _ in rows]
    column = min(max([len(n) for n in names] + [8]), max(width // 3, 20))
    for title, rows in panels:
        out.print()
        out.print(Text(title, style="bold"))
        for name, text in rows:
            wrapped: list[Text] = list(Text(text).wrap(out, max(width - column - 4, 20))) if text else []
            if len(name) > column:
                out.print(Text(f"  {name}", style="cyan"))
                first = []
            else:
                first = [Text.assemble((f"  {name.ljust(column)}  ", "cyan"), wrapped[0] if wrapped else "")]
                wrapped = wrapped[1:]
            for line in [*first, *(Text.assemble(" " * (column + 4), part) for part in wrapped)]:
                line.rstrip()
                out.print(line)

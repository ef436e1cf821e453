"""Fitting a line into a terminal's width: a line given as (text, style) spans is written as it is when it fits (the
listener's event line, for every delivery, builds no rich Text), else joined into a Text whose one part (the summary)
gives up its end first, cut after a word.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text

#: A run of text and its style (rich style syntax, "" for none): an event line is a list of them until it must be cut.
Span = tuple[str, str]


def cells(spans: list[Span]) -> int:
    """How many terminal cells the spans take."""
    return sum(cell_len(text) for text, _ in spans)


def fit_spans(pieces: list[list[Span]], width: int | None, cut: int = -1) -> list[Span] | Text:
    """`fit()` for pieces given as spans: the spans as they are when they fit (no Text is built: the common case,
    and the listener's per-delivery cost), else the fitted Text."""
    if width is None or sum(cells(piece) for piece in pieces) <= width:
        return [span for piece in pieces for span in piece]
    return fit([Text.assemble(*piece) for piece in pieces], width, cut)


def cut_at_word(text: Text, room: int) -> Text | None:
    """`text` in at most `room` cells: whole when it fits, else cut after a word with `…` (None when nothing fits)."""
    if text.cell_len <= room:
        return text
    if room < 2:
        return None
    plain = text.plain
    end = 0
    while end < len(plain) and cell_len(plain[: end + 1]) <= room - 1:
        end += 1
    space = plain.rfind(" ", 0, end + 1)
    if space <= 0 or not plain[:space].strip():
        return None  # not even the first word fits: leave it out rather than cut it in the middle
    end = len(plain[:space].rstrip())
    cut = text[:end]
    cut.rstrip()
    cut.append("…")
    return cut


def fit(parts: list[Text], width: int | None, cut: int = -1) -> Text:
    """Join `parts` into one line of at most `width` cells: part `cut` (the summary) gives up its end first, at a word."""
    line = Text().join(parts)
    if width is None or line.cell_len <= width:
        return line
    index = cut % len(parts)
    others = sum(p.cell_len for i, p in enumerate(parts) if i != index)
    shortened = cut_at_word(parts[index], width - others)
    if shortened is None and index > 0 and not parts[index - 1].plain.strip():
        parts = [*parts[: index - 1], Text(""), *parts[index:]]  # its separator goes with it
    kept = [p for p in (shortened if i == index else p for i, p in enumerate(parts)) if p is not None]
    return Text().join(kept)

"""The line `listen` shows for each delivery: clock, trigger, answer, summary and ids, fitted to a terminal's width
(on a narrow one the webhook id, the exchange id, the generation and the clock give way, in that order, and the summary
is cut at a word); whole in a log or a pipe.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from rich.text import Text

from comethook_cli.models import Exchange
from comethook_cli.outputs.escapes import safe
from comethook_cli.outputs.layout import Span, cells, fit_spans

VERDICT_STYLE = {"pass": "green", "inject": "cyan", "drop": "yellow", "invalid": "bold red"}
#: What the event line may drop, in this order, when the terminal is narrow (all of it is in -v and in history).
_DROPPABLE = ("webhook", "id", "generation", "clock")
#: The summary keeps at least this many cells before the ids and the generation are kept, and CLOCK_MIN before the clock.
SUMMARY_MIN = 40
CLOCK_MIN = 20


def is_probe(exchange: Exchange) -> bool:
    """Whether `comethook check` sent this delivery (its User-Agent says so), not CometChat."""
    # Every event line asks: the value's prefix is tested before a name is lowered.
    return any(value.startswith("comethook-check/") and name.lower() == "user-agent" for name, value in exchange.headers)


def answer_spans(exchange: Exchange) -> list[Span]:
    """Status, verdict and latency: the part of an event line that is always shown."""
    ok = 200 <= exchange.response_status < 300
    spans: list[Span] = [(str(exchange.response_status), "green" if ok else "red")]
    if exchange.verdict is not None:
        spans += [(" ", ""), (exchange.verdict.kind.upper(), VERDICT_STYLE[exchange.verdict.kind])]
    spans.append((f" {ms(exchange.latency_ms)}", "dim"))
    return spans


def event_spans(exchange: Exchange, width: int | None) -> list[list[Span] | Text]:
    """The event line (and the `<--` line of a forwarded delivery) for a terminal `width` cells wide (None: no limit),
    as spans where a line fits whole, else as a Text (see fit_spans).

    Status, verdict, latency and trigger always show; the summary gets the room that is left, cut at a
    word; on a narrow terminal the webhook id, the exchange id, the generation and the clock go first."""
    info = exchange.info
    forwarded = exchange.forwarded_to is not None
    reason = exchange.verdict.reason if exchange.verdict is not None else None
    fallback = exchange.outcome.fallback
    for dropped in range(len(_DROPPABLE) + 1):
        gone = _DROPPABLE[:dropped]
        clock: Span = ("" if "clock" in gone else now_clock(exchange.received_at) + " ", "dim")
        head: list[list[Span]] = [
            [clock],
            [("--> ", "bold")],
            [(safe(info.trigger), "bold cyan" if info.generation != "unknown" else "bold magenta")],
            [("" if "generation" in gone else f" [{info.generation}]", "dim")],
            [(" check probe" if is_probe(exchange) else "", "magenta")],
        ]
        if not forwarded:
            head += [[("  ", "")], answer_spans(exchange)]
        tail: list[list[Span]] = [
            [(f"  webhook {safe(info.webhook)}" if info.webhook and "webhook" not in gone else "", "dim")],
            [("" if "id" in gone else f"  {exchange.id}", "dim")],
        ]
        summary = _summary_spans(info.summary, reason if not forwarded else None, exchange)
        pieces = [*head, [("  ", "")], summary, *tail]
        if width is None:  # a log or a pipe: the whole line, and no cells to count (the listener's per-delivery cost)
            break
        summary_cells = cells(summary)
        fixed = sum(cells(piece) for piece in pieces) - summary_cells
        wanted = CLOCK_MIN if dropped < len(_DROPPABLE) and _DROPPABLE[dropped] == "clock" else SUMMARY_MIN
        if fixed + min(summary_cells, wanted) <= width or dropped == len(_DROPPABLE):
            break
    if width is not None and fixed + cells(summary) > width:
        for shorter in shorter_summaries(info.summary):  # names and the message id give way before the text is cut
            summary = _summary_spans(shorter, reason if not forwarded else None, exchange)
            if fixed + cells(summary) <= width:
                break
        pieces = [*head, [("  ", "")], summary, *tail]
    first = fit_spans(pieces, width, cut=len(head) + 1)
    if not forwarded:
        return [first]
    back: list[list[Span]] = [[clock], [("<-- ", "bold")], answer_spans(exchange)]
    if reason:
        back.append([(f"  {safe(reason)}", "red")])
    if fallback is not None:
        # comethook answered, not the app: say so, and why the app did not.
        back.append([(f"  fallback {fallback}", "bold yellow")])
        back.append([(f": {safe(exchange.forwarded_to or '')} {safe(exchange.forward_error or 'did not answer')}", "red")])
    else:
        back.append([(f"  from {safe(exchange.forwarded_to or '')}", "dim")])
        if exchange.forward_error:
            back.append([(f"  app unreachable: {safe(exchange.forward_error)}", "bold red")])
    return [first, fit_spans(back, width, cut=-1)]


def _summary_spans(summary: str, reason: str | None, exchange: Exchange) -> list[Span]:
    """The summary, after the verdict's reason when there is one (red for INVALID, yellow for an acknowledgement)."""
    if not reason:
        return [(safe(summary), "")]
    style = "red" if exchange.verdict is not None and exchange.verdict.kind == "invalid" else "yellow"
    return [(safe(reason), style), (" · ", ""), (safe(summary), "")]


def shorter_summaries(summary: str) -> Iterator[str]:
    """Shorter forms of a summary, for a narrow terminal: first names for `Andrew Joseph → George Alan`, then without
    its trailing `message ID`, since the text is what tells two deliveries apart."""
    parts = summary.split(" · ")
    if " → " in parts[0]:
        parts[0] = " → ".join(side.split(" ", 1)[0] for side in parts[0].split(" → "))
        yield " · ".join(parts)
    if len(parts) > 2 and (parts[-1].startswith("message ") or parts[-1] == "id not yet assigned"):
        yield " · ".join(parts[:-1])


def ms(value: float | None) -> str:
    """A latency for people: "12.3 ms", "2.50 s", "-" when there is none."""
    if value is None:
        return "-"
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def now_clock(epoch: float) -> str:
    """HH:MM:SS local time for an event line."""
    return time.strftime("%H:%M:%S", time.localtime(epoch))

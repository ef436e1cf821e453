"""The only module that talks to rich: human output on a terminal or a pipe.

Data goes to stdout, everything else (banners, progress, warnings, errors) to stderr. User data
only ever enters rich as `Text`, never as markup, so `[bold]` in a chat message stays literal, and
it passes through `safe()` on the way in, so a delivery cannot drive the terminal (see `safe`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.highlighter import JSONHighlighter
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from comethook_cli.models import (
    COMETCHAT_BUDGET_MS,
    Delivery,
    EventInfo,
    Exchange,
    Health,
    Rejection,
    Verdict,
    over_budget,
    parse_body,
    without_secrets,
)
from comethook_cli.outputs.wire import INVISIBLE, dumps, json_safe

if TYPE_CHECKING:
    from comethook_cli.cometchat.payloads import Template
    from comethook_cli.cometchat.rest import RestCall
    from comethook_cli.engine.checks import CheckResult
    from comethook_cli.engine.runs import RetryReport, Summary
    from comethook_cli.outputs.wire import CheckSummary, TriggerRecord

#: How much of an answer `send` shows (characters); -v shows up to VERBOSE_BODY_CHARS, --json all of it.
BODY_CHARS = 2_000
VERBOSE_BODY_CHARS = 100_000
STATUS_STYLE = {"pass": "bold green", "fail": "bold red", "warn": "bold yellow"}
VERDICT_STYLE = {"pass": "green", "inject": "cyan", "drop": "yellow", "invalid": "bold red"}

# What a terminal must never receive raw from the network: C0 controls (ESC starts CSI/OSC sequences,
# CR rewrites the line), DEL, C1 controls (0x9b is a one-byte CSI on some terminals), the bidi
# controls that reorder what is shown (U+202E ...), the line/paragraph separators, and lone
# surrogates (which cannot even be encoded). Zero-width joiners and variation selectors stay:
# emoji need them, and they cannot move the cursor or reorder text.
_UNSAFE_LINE = re.compile(f"[\x00-\x1f{INVISIBLE}]")
_UNSAFE_BLOCK = re.compile(f"[\x00-\x08\x0b-\x1f{INVISIBLE}]")  # newline and tab keep their meaning
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def safe(text: str, multiline: bool = False) -> str:
    """Text from the network made inert for a terminal: control and bidi characters shown escaped (`\\x1b`).

    One-line layouts escape newline and tab too; `multiline` (bodies) keeps them. A backslash is left
    as it is (doubling every one would garble paths and regexes): `--json` is the exact form."""
    return (_UNSAFE_BLOCK if multiline else _UNSAFE_LINE).sub(_escape, text)


class _Console(Console):
    """rich's Console, except that a reader gone from stdout (`| head -5`) is left to the command layer, which ends
    quietly with exit 0 (cli/app.py's reader_may_leave), instead of rich's own exit 1."""

    def on_broken_pipe(self) -> None:
        """Print nothing more, and let the BrokenPipeError reach the command layer."""
        self.quiet = True
        raise BrokenPipeError


class Renderer:
    """Human output: `out` is stdout (data), `err` is stderr (everything else)."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None, budget_ms: float = COMETCHAT_BUDGET_MS) -> None:
        self.out = _Console(file=stream, highlight=False, soft_wrap=True)
        self.err = _Console(stderr=True, highlight=False, soft_wrap=True)
        # On a terminal, messages and long data lines wrap at words to its width (the event line, tables and
        # JSON set their own layout); in a log or a pipe they stay whole lines.
        self.err.soft_wrap = not self.err.is_terminal
        self.out.soft_wrap = not self.out.is_terminal
        self.quiet = quiet
        #: An answer slower than this gets a warning (CometChat's budget; a test passes a shorter one).
        self.budget_ms = budget_ms

    # --- messages -----------------------------------------------------------------------------
    def error(self, message: str, hint: str | None = None) -> None:
        """An error line (and a hint line: what to do next) on stderr."""
        self.err.print(Text.assemble(("Error: ", "bold red"), safe(message)))
        if hint:
            self.err.print(Text.assemble(("Hint: ", "bold"), safe(hint)))

    def warning(self, message: str) -> None:
        """A warning line on stderr."""
        # Warnings quote what the network sent (a rejected path, an app's error): escaped here, once.
        self.err.print(Text.assemble(("Warning: ", "bold yellow"), safe(message)))

    def note(self, message: str, style: str = "dim") -> None:
        """An informational line on stderr."""
        self.err.print(Text(safe(message), style=style))

    def confirm(self, prompt: str) -> bool:
        """A yes/no question on stderr (default no)."""
        from rich.prompt import Confirm

        return Confirm.ask(Text(prompt), console=self.err, default=False)

    def secret(self, prompt: str) -> str:
        """Ask for a password on the terminal (stderr), without echo."""
        from rich.prompt import Prompt

        return Prompt.ask(Text(prompt), console=self.err, password=True)

    def document(self, value: Any) -> None:
        """A JSON document on stdout: highlighted on a TTY, exact plain JSON otherwise."""
        # json.dumps escapes what is below 0x20 but passes DEL, C1 and bidi controls: json_safe takes them.
        encoded = json_safe(json.dumps(value, indent=2, ensure_ascii=False))
        if self.out.is_terminal:
            highlighted = JSONHighlighter()(Text(encoded, no_wrap=True))  # what rich's JSON does, minus its re-encoding
            self.out.print(highlighted)
        else:
            self.out.file.write(encoded + "\n")
            self.out.file.flush()

    def body(self, value: Any, limit: int | None = None, cut_hint: str = "") -> None:
        """A request or answer body: JSON as a document, anything else as text, nothing when empty.

        With `limit`, at most that many characters, then a line saying how many more were cut."""
        if limit is not None and isinstance(value, (str, dict, list)):
            text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
            if len(text) > limit:
                self.body(text[:limit])
                self.out.print(
                    Text(f"… {len(text) - limit:,} more characters" + (f"; {cut_hint}" if cut_hint else ""), style="dim")
                )
                return
        if isinstance(value, (dict, list)):
            self.document(value)
        elif value is not None:
            self.out.print(Text(safe(str(value), multiline=True)))

    def help_page(self, usage: str, description: str, panels: list[tuple[str, list[tuple[str, str]]]]) -> None:
        """A command's --help on stdout: usage, description, then each panel's options, wrapped at words to the width.

        Names sit beside their help when they fit a third of the width, above it when they do not."""
        width = max(self.out.width, 40)
        self.out.print(Text.assemble(("Usage: ", "bold"), usage))
        if description:
            self.out.print()
            for line in Text(description).wrap(self.out, width - 2):
                line.rstrip()
                self.out.print(Text.assemble("  ", line))
        names = [n for _, rows in panels for n, _ in rows]
        column = min(max([len(n) for n in names] + [8]), max(width // 3, 20))
        for title, rows in panels:
            self.out.print()
            self.out.print(Text(title, style="bold"))
            for name, text in rows:
                wrapped: list[Text] = list(Text(text).wrap(self.out, max(width - column - 4, 20))) if text else []
                if len(name) > column:
                    self.out.print(Text(f"  {name}", style="cyan"))
                    first = []
                else:
                    first = [Text.assemble((f"  {name.ljust(column)}  ", "cyan"), wrapped[0] if wrapped else "")]
                    wrapped = wrapped[1:]
                for line in [*first, *(Text.assemble(" " * (column + 4), part) for part in wrapped)]:
                    line.rstrip()
                    self.out.print(line)

    # --- payloads -----------------------------------------------------------------------------
    def lines(self, lines: Iterable[tuple[str, str]]) -> None:
        """Lines of a report on stdout, each (text, style): escaped, never wrapped mid-word by a markup reading."""
        for text, style in lines:
            self.out.print(Text(safe(text), style=style))

    def payload_table(self, templates: Iterable[Template], shadowed: Collection[str] = ()) -> None:
        """The catalog as a table on stdout (`shadowed`: the project fixtures that take a catalog trigger's place)."""
        templates = [replace(t, description=_shadowing(t, shadowed)) for t in templates]
        columns: tuple[str, ...] = ("trigger", "generation", "family")
        # A trigger name never wraps: the description gives way, cut at a word; on a narrow terminal, family and generation too.
        while True:
            widths = [max([len(_cell(t, column)) for t in templates] + [len(column)]) for column in columns]
            room = self.out.width - sum(widths) - 2 * len(widths)
            if room >= 20 or len(columns) == 1:
                break
            columns = columns[:-1]
        room = max(room, 10)
        header = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + "  description"
        self.out.print(Text(header, style="bold"), no_wrap=True, overflow="ellipsis")
        for t in templates:
            cells = "  ".join(_cell(t, c).ljust(w) for c, w in zip(columns, widths, strict=True))
            line = Text(cells + "  ")
            line.append_text(cut_at_word(Text(t.description), room) or Text(""))
            self.out.print(line, no_wrap=True, overflow="ellipsis")

    # --- send -----------------------------------------------------------------------------------
    def delivery(self, delivery: Delivery, info: EventInfo | None, verbose: bool = False) -> None:
        """One delivery in full: request line, status and latency, the answer, the verdict."""
        line = Text.assemble(("--> ", "bold"), "POST ", safe(delivery.url))
        if info is not None:
            line.append(f"  {safe(info.trigger)}", style="bold")
            line.append(f" ({info.generation})", style="dim")
        if delivery.attempt > 1:
            line.append(f"  attempt {delivery.attempt}", style="magenta")
        self.out.print(line)
        if delivery.status is None:
            self.out.print(Text.assemble(("<-- ", "bold"), ("no answer: ", "bold red"), safe(delivery.error or "?")))
            return
        style = "green" if 200 <= delivery.status < 300 else "red"
        back = Text.assemble(("<-- ", "bold"), (str(delivery.status), style), f"  {_ms(delivery.latency_ms)}")
        self.out.print(back)
        if verbose or delivery.attempt == 1:
            self.body(
                delivery.response, *((VERBOSE_BODY_CHARS, "--json shows it all") if verbose else (BODY_CHARS, "-v shows more"))
            )
        if delivery.verdict is not None:
            self.verdict(delivery.verdict)
        self.budget_warning(delivery.latency_ms)

    def verdict(self, verdict: Verdict) -> None:
        """What CometChat would do with a before_message answer."""
        text = Text.assemble(("Verdict: ", "bold"), (verdict.kind.upper(), VERDICT_STYLE[verdict.kind]))
        explanation = {
            "pass": "  CometChat delivers the message unchanged.",
            "drop": "  CometChat drops the message (do_not_propagate).",
            "inject": f'  CometChat stores the answer at metadata["@injected"]["webhooks"]["{safe(verdict.webhook_id or "")}"]:',
            "invalid": f"  {safe(verdict.reason or '')}",
        }[verdict.kind]
        text.append(explanation)
        self.out.print(text)
        if verdict.kind == "inject" and verdict.metadata is not None:
            self.out.print(Text("  resulting data.metadata:", style="dim"))
            self.document(verdict.metadata)
        if verdict.kind == "inject" and verdict.reason:
            self.warning(safe(verdict.reason))

    def budget_warning(self, latency_ms: float | None) -> None:
        """Warn (stderr) when an answer took longer than CometChat's 2 s budget."""
        if latency_ms is not None and over_budget(latency_ms, self.budget_ms):
            self.warning(f"the answer took {_ms(latency_ms)}, over CometChat's 2 s budget: CometChat may time out.")

    def delivery_line(self, delivery: Delivery) -> None:
        """One compact line for a delivery among many (used for failures in a --count run)."""
        status = str(delivery.status) if delivery.status is not None else "---"
        self.out.print(
            Text.assemble(
                (f"{status:>3} ", "red" if not delivery.ok else "green"),
                f"{_ms(delivery.latency_ms):>10}  ",
                (delivery.verdict.kind.upper() + "  " if delivery.verdict else ""),
                safe(delivery.error or (delivery.verdict.reason if delivery.verdict and delivery.verdict.reason else "")),
            )
        )

    def same_answer(self, delivery: Delivery) -> None:
        """A simulated retry that got the first attempt's answer again: one line, not the whole answer again."""
        self.out.print(
            Text.assemble(
                ("--> ", "bold"), "POST again", (f"  attempt {delivery.attempt}", "magenta"), "  ",
                ("<-- ", "bold"), (str(delivery.status or "no answer"), "green" if delivery.ok else "red"),
                f"  {_ms(delivery.latency_ms)}", ("  same answer", "dim"),
            )
        )  # fmt: skip

    def request_body(self, body: Any) -> None:
        """-v: the request body, under a heading (the answer follows)."""
        self.out.print(Text("request body:", style="bold"))
        self.body(body, VERBOSE_BODY_CHARS, "--json shows it all")

    def compared(self, original: Exchange, again: Delivery) -> None:
        """`replay`: what the stored exchange was answered, beside what came back now, and how the bodies differ."""
        import difflib

        def said(status: int | None, verdict: Verdict | None) -> str:
            return (str(status) if status is not None else "no answer") + (f" {verdict.kind.upper()}" if verdict else "")

        before, now = said(original.response_status, original.verdict), said(again.status, again.verdict)
        line = Text.assemble(("Original: ", "bold"), before, f" in {_ms(original.latency_ms)}", ("  now: ", "bold"), now)
        same = before == now and original.response_body == again.response_body
        line.append("  same answer" if same else "  the answer changed", style="dim" if same else "bold yellow")
        self.out.print(line)
        if not same and original.response_body != again.response_body:
            pretty = [_pretty(original.answer), _pretty(again.response)]
            diff = difflib.unified_diff(pretty[0], pretty[1], "original answer", "new answer", lineterm="", n=1)
            for row in list(diff)[:60]:
                style = "green" if row.startswith("+") else "red" if row.startswith("-") else "dim"
                self.out.print(Text(safe(row), style=style))

    def failures(self, failed: list[Delivery], total: int) -> None:
        """The first failed deliveries of a run, under a heading (after the progress bar is gone)."""
        shown = f"the first {len(failed)} of {total}" if total > len(failed) else f"{total}"
        self.out.print(Text(f"Failed deliveries ({shown}):", style="bold red"))
        for delivery in failed:
            self.delivery_line(delivery)

    def assertion_passed(self, asserted: Iterable[str]) -> None:
        """One short line: every assertion held."""
        self.out.print(Text.assemble(("✓ ", "bold green"), f"assertions held: {safe(', '.join(asserted))}"))

    def summary(self, summary: Summary) -> None:
        """The count / ok / failed / latency percentiles / rate summary of a run."""
        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        for column in ("count", "ok", "failed", "p50", "p95", "p99", "req/s"):
            table.add_column(column, justify="right")
        table.add_row(
            str(summary.count),
            Text(str(summary.ok), style="green"),
            Text(str(summary.failed), style="red" if summary.failed else ""),
            _ms(summary.p50_ms),
            _ms(summary.p95_ms),
            _ms(summary.p99_ms),
            f"{summary.rps:.1f}",
        )
        self.out.print(table)

    def retries(self, report: RetryReport) -> None:
        """Whether every simulated retry got the same answer."""
        if report.consistent:
            self.out.print(Text.assemble(("Retries: ", "bold"), (f"same answer on all {report.attempts} attempts", "green")))
        else:
            self.out.print(Text.assemble(("Retries: ", "bold"), ("answers differ: ", "bold red"), safe(report.detail)))

    @contextmanager
    def progress(self, total: int) -> Iterator[Callable[[], None]]:
        """A progress bar on stderr when it is a TTY; yields a callable that advances it."""
        if not self.err.is_terminal or total <= 1:
            yield lambda: None
            return
        bar = Progress(
            TextColumn("[bold]sending"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.err,
            transient=True,
        )
        with bar:
            task = bar.add_task("send", total=total)
            yield lambda: bar.advance(task)

    def ticker(self, label: str) -> Ticker:
        """Progress of something slow on stderr: a live line on a terminal, else a line now and one at the end."""
        return Ticker(self.err, label)

    def banner(self, lines: list[tuple[str, str]], title: str) -> None:
        """The start-up banner on stderr: label/value rows under a title, wrapped at words to the width."""
        self.err.print(Text(title, style="bold green"))
        width = max((len(label) for label, _ in lines), default=0)
        indent = 2 + width + 2
        for label, value in lines:
            text = Text(safe(value), style="" if label else "dim")
            # Wrapped at words (a word longer than the room, a URL or a path, is folded), each line under the last.
            room = max(self.err.width - indent, 20) if self.err.is_terminal else 1 << 20  # a log keeps whole lines
            wrapped = text.wrap(self.err, room, overflow="fold")
            for number, part in enumerate(wrapped):
                part.rstrip()
                shown = label if number == 0 else ""
                self.err.print(Text.assemble((f"  {shown.ljust(width)}  ", "bold"), part))

    def event(self, exchange: Exchange, verbose: bool = False) -> None:
        """One line per delivery (two when forwarded), fitted to a terminal's width; whole on a pipe."""
        if self.quiet:
            return
        exchange = without_secrets(exchange)
        width = self.out.width if self.out.is_terminal else None
        for line in event_spans(exchange, width):
            self.print_line(line)
        verdict = exchange.verdict
        if verdict is not None and verdict.kind == "inject" and verdict.metadata is not None and exchange.forwarded_to:
            injected = verdict.metadata.get("@injected", {}).get("webhooks", {})
            self.out.print(fit([Text("    @injected.webhooks = " + safe(dumps(injected)), style="cyan")], width, cut=0))
        if verbose:
            self.details(exchange)

    def print_line(self, line: Text | list[Span]) -> None:
        """`self.out.print(line)` for a line already fitted to the width. On a console without colours (a log, a pipe)
        that is the line's text and a newline, written as it is: rich's print pipeline (measuring, wrapping, buffering)
        would write the same bytes and cost the listener more than everything else it does for a delivery (bench/NOTES.md).
        Colours, and a recording console, take the ordinary way."""
        console = self.out
        if console.color_system is None and not console.record:
            console.file.write((line.plain if isinstance(line, Text) else "".join(text for text, _ in line)) + "\n")
            return
        console.print(line if isinstance(line, Text) else Text.assemble(*line))

    def skipped(self, exchange: Exchange) -> None:
        """A delivery `listen --events` leaves out: answered, not stored, one dim line."""
        if self.quiet:
            return
        width = self.out.width if self.out.is_terminal else None
        parts = [
            Text(now_clock(exchange.received_at) + " ", "dim"),
            Text(f"--- {safe(exchange.info.trigger)} (not in --events; answered {exchange.response_status})", "dim"),
        ]
        self.out.print(fit(parts, width, cut=-1))

    def slow_answer(self, exchange: Exchange) -> None:
        """Warn when an answer took longer than CometChat's 2 s budget."""
        who = "your app" if exchange.forwarded_to and not exchange.forward_error else "the answer"
        self.warning(f"{exchange.id}: {who} took {_ms(exchange.latency_ms)}, over CometChat's 2 s budget.")

    def details(self, exchange: Exchange) -> None:
        """-v: headers (redacted), the highlighted body, and the answer body."""
        exchange = without_secrets(exchange)
        for name, value in exchange.headers:
            self.out.print(Text.assemble((f"    {safe(name)}: ", "bold"), safe(value)))
        self.body(exchange.payload if exchange.payload is not None else parse_body(exchange.body))
        if exchange.response_body:
            self.out.print(Text("    answer:", style="bold"))
            self.body(exchange.answer)

    def rejected(self, rejection: Rejection) -> None:
        """One warning line for a refused request."""
        if not self.quiet and not rejection.counted:
            self.warning(f"rejected {rejection.method} {rejection.path} with {rejection.status}: {rejection.reason}")

    def health(self, health: Health) -> None:
        """The tunnel or the app went down: a loud warning and what to do (even with -q); back up: one line."""
        what = "TUNNEL DOWN" if health.subject == "tunnel" else "APP DOWN"
        if health.state == "down":
            self.err.print(Text.assemble((f"{what}: ", "bold white on red"), (safe(health.detail), "bold red")))
            if health.hint:
                self.err.print(Text.assemble(("Hint: ", "bold"), safe(health.hint)))
        else:
            self.err.print(Text(safe(health.detail), style="bold green"))

    def stopped(self, events: int) -> None:
        """The last line on stderr."""
        self.err.print(Text(f"Stopped after {events} event{'s' if events != 1 else ''}.", style="bold"))

    def table(self, exchanges: list[Exchange], short_ids: dict[str, str] | None = None) -> None:
        """The stored exchanges, newest first, one line each, in fixed aligned columns; the summary gets the width left.

        `short_ids` maps an id to the shortest end of it that names it alone (every command accepts it)."""
        short_ids = short_ids or {}
        ids = [short_ids.get(e.id, e.id) for e in exchanges]
        width = self.out.width
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
        self.out.print(header, no_wrap=True, overflow="ellipsis")
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
            self.out.print(
                Text("  ").join(Text(c) if isinstance(c, str) else c for c in cells), no_wrap=True, overflow="ellipsis"
            )

    def exchange(self, exchange: Exchange) -> None:
        """One exchange in full."""
        exchange = without_secrets(exchange)
        rows = [
            ("id", exchange.id),
            ("received", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(exchange.received_at))),
            ("request", f"{exchange.method} {exchange.path}" + (f"?{exchange.query}" if exchange.query else "")),
            ("trigger", f"{exchange.info.trigger} ({exchange.info.generation})"),
            ("summary", exchange.info.summary),
            ("answer", f"{exchange.response_status} in {_ms(exchange.latency_ms)} by {exchange.answered_by}"),
        ]
        if exchange.forwarded_to:
            rows.append(
                ("forwarded to", exchange.forwarded_to + (f" ({exchange.forward_error})" if exchange.forward_error else ""))
            )
        if exchange.verdict:
            rows.append(
                ("verdict", exchange.verdict.kind.upper() + (f": {exchange.verdict.reason}" if exchange.verdict.reason else ""))
            )
        for label, value in rows:
            self.out.print(Text.assemble((f"{label:>13}  ", "bold"), safe(value)))
        self.out.print(Text("      headers", style="bold"))
        for name, value in exchange.headers:
            self.out.print(Text(safe(f"    {name}: {value}")))
        self.out.print(Text("         body", style="bold"))
        self.body(exchange.payload if exchange.payload is not None else parse_body(exchange.body))
        self.out.print(Text("  answer body", style="bold"))
        self.body(exchange.answer)

    def results(self, url: str, results: list[CheckResult], summary: CheckSummary) -> None:
        """The table on stdout, the summary after it."""
        title = Text(f"comethook check {safe(url)}")
        table = Table(title=title, title_justify="left", box=None, header_style="bold", pad_edge=False)
        table.add_column("check", no_wrap=True)
        table.add_column("result", no_wrap=True)
        table.add_column("latency", justify="right", no_wrap=True)
        table.add_column("detail", overflow="fold")
        for r in results:
            # A plain str cell would be read as markup: the detail quotes the endpoint's answer, so it goes in as Text.
            status = Text(r.status.upper(), style=STATUS_STYLE[r.status])
            table.add_row(r.name, status, _ms(r.latency_ms), Text(safe(r.detail)))
        self.out.print(table)
        style = "bold red" if summary.failed else "bold green"
        counts = f"{summary.passed} passed, {summary.failed} failed, {summary.warnings} warning(s)"
        self.out.print(Text(f"{counts} in {summary.seconds:.2f} s", style=style))

    # --- trigger, emulate ---------------------------------------------------------------------
    def rest_call(self, call: RestCall, hint: str | None, verbose: bool = False) -> None:
        """A REST call `trigger` made: request line, status, the answer (or CometChat's error and what to do)."""
        line = Text.assemble(("--> ", "bold"), f"{call.method} ", safe(call.url))
        if call.on_behalf_of:
            line.append(f"  as {safe(call.on_behalf_of)}", style="dim")
        self.out.print(line)
        if call.waited_s:
            self.out.print(Text(f"    waited {call.waited_s:g} s on 429 Retry-After ({call.attempts} attempts)", style="yellow"))
        if call.status is None:
            self.out.print(Text.assemble(("<-- ", "bold"), ("no answer: ", "bold red"), safe(call.failure_detail or "?")))
            return
        style = "green" if call.ok else "yellow" if call.dropped else "red"
        self.out.print(Text.assemble(("<-- ", "bold"), (str(call.status), style), f"  {_ms(call.latency_ms)}"))
        if call.error is not None:
            code = Text.assemble(
                ("    ", ""), (safe(call.error.code or "no error code"), f"bold {style}"), f"  {safe(call.error.message or '')}"
            )
            self.out.print(code)
            if call.error.details:
                self.out.print(Text("    " + safe(json.dumps(call.error.details, ensure_ascii=False)), style="dim"))
        elif call.failure is not None:
            self.out.print(Text("    " + safe(call.failure_detail or call.failure), style="red"))
        elif verbose or call.action in ("send_message", "create_group"):
            self.body(call.body, *((VERBOSE_BODY_CHARS, "--json shows it all") if verbose else (BODY_CHARS, "-v shows more")))
        if hint and not call.ok:
            self.out.print(Text.assemble(("    Hint: ", "bold"), safe(hint)))

    def trigger_result(self, record: TriggerRecord) -> None:
        """What a step should fire, what is inferred, and (with --wait) what arrived."""
        if record.dropped:
            self.out.print(Text("Dropped by your webhook (or an extension): the message was not stored.", style="bold yellow"))
        for generation, names in record.expected.items():
            if names:
                self.out.print(Text.assemble(("Expect ", "bold"), f"({generation} webhooks): ", ", ".join(names)))
        for note in record.notes:
            self.out.print(Text(f"  note: {safe(note)}", style="dim"))
        if record.waited and record.missing:
            self.out.print(Text(f"Not arrived: {', '.join(record.missing)}", style="bold red"))
        elif record.waited:
            self.out.print(Text(f"Arrived: {len(record.deliveries or [])} delivery(ies), all expected.", style="bold green"))

    def served(self, call: RestCall) -> None:
        """One line per REST call `emulate` answered."""
        style = "green" if call.ok else "yellow" if call.dropped else "red"
        code = f"  {call.error.code}" if call.error and call.error.code else ""
        who = f"  as {call.on_behalf_of}" if call.on_behalf_of else ""
        self.out.print(Text.assemble(("REST ", "bold"), (f"{call.status} ", style), safe(f"{call.method} {call.url}{who}{code}")))

    def webhook(self, delivery: Delivery) -> None:
        """One line per webhook `emulate` delivered."""
        status = str(delivery.status) if delivery.status is not None else "---"
        verdict = f"  {delivery.verdict.kind.upper()}" if delivery.verdict else ""
        attempt = f"  attempt {delivery.attempt}" if delivery.attempt > 1 else ""
        error = f"  {delivery.error}" if delivery.error else ""
        line = Text.assemble(
            ("HOOK ", "bold"), (f"{status} ", "green" if delivery.ok else "red"), safe(f"{delivery.trigger} → {delivery.url}")
        )
        line.append(safe(f"{verdict}{attempt}{error}"), style="dim" if delivery.ok else "red")
        self.out.print(line)


#: What the event line may drop, in this order, when the terminal is narrow (all of it is in -v and in history).
_DROPPABLE = ("webhook", "id", "generation", "clock")
#: The summary keeps at least this many cells before the ids and the generation are kept, and CLOCK_MIN before the clock.
SUMMARY_MIN = 40
CLOCK_MIN = 20


#: `history list` keeps at least this much room for the summary before it drops the date and cuts long triggers.
class Ticker:
    """ "opening the ngrok tunnel… 2.1 s": on a terminal a live line that counts the seconds (gone at the end); in a
    pipe or a log, one line at the start. finish() says how it ended and how long it took, in both."""

    def __init__(self, console: Console, label: str) -> None:
        self.console = console
        self.label = label
        self.started = time.monotonic()
        self._live: Any = None
        if console.is_terminal:
            from rich.live import Live

            self._live = Live(
                get_renderable=self._line, console=console, transient=True, refresh_per_second=10,
                redirect_stdout=False, redirect_stderr=False,
            )  # fmt: skip
            self._live.start()
        else:
            console.print(Text(f"{label}…", style="dim"))

    def _line(self) -> Text:
        return Text(f"{self.label}… {time.monotonic() - self.started:.1f} s", style="dim")

    def finish(self, outcome: str) -> None:
        """Stop the live line and say the outcome, with the time it took."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.console.print(Text(f"{outcome} ({time.monotonic() - self.started:.1f} s)", style="dim"))


TABLE_SUMMARY_MIN = 30
TABLE_SUMMARY_CUT = 16


def is_probe(exchange: Exchange) -> bool:
    """Whether `comethook check` sent this delivery (its User-Agent says so), not CometChat."""
    return any(n.lower() == "user-agent" and v.startswith("comethook-check/") for n, v in exchange.headers)


#: A run of text and its style (rich style syntax, "" for none): an event line is a list of them until it must be cut.
Span = tuple[str, str]


def answer_spans(exchange: Exchange) -> list[Span]:
    """Status, verdict and latency: the part of an event line that is always shown."""
    ok = 200 <= exchange.response_status < 300
    spans: list[Span] = [(str(exchange.response_status), "green" if ok else "red")]
    if exchange.verdict is not None:
        spans += [(" ", ""), (exchange.verdict.kind.upper(), VERDICT_STYLE[exchange.verdict.kind])]
    spans.append((f" {_ms(exchange.latency_ms)}", "dim"))
    return spans


def _cells(spans: list[Span]) -> int:
    return sum(cell_len(text) for text, _ in spans)


def fit_spans(pieces: list[list[Span]], width: int | None, cut: int = -1) -> list[Span] | Text:
    """`fit()` for pieces given as spans: the spans as they are when they fit (no Text is built: the common case,
    and the listener's per-delivery cost), else the fitted Text."""
    if width is None or sum(_cells(piece) for piece in pieces) <= width:
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
        summary: list[Span] = [(safe(info.summary), "")]
        if reason and not forwarded:
            summary = [
                (safe(reason), "red" if exchange.verdict and exchange.verdict.kind == "invalid" else "yellow"),
                (" · ", ""),
                *summary,
            ]
        pieces = [*head, [("  ", "")], summary, *tail]
        summary_cells = _cells(summary)
        fixed = sum(_cells(piece) for piece in pieces) - summary_cells
        wanted = CLOCK_MIN if dropped < len(_DROPPABLE) and _DROPPABLE[dropped] == "clock" else SUMMARY_MIN
        if width is None or fixed + min(summary_cells, wanted) <= width or dropped == len(_DROPPABLE):
            break
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


def _pretty(value: Any) -> list[str]:
    """A body as lines to diff: indented JSON, or its text."""
    if value is None:
        return []
    return (json.dumps(value, indent=2, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)).splitlines()


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def now_clock(epoch: float) -> str:
    """HH:MM:SS local time for an event line."""
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def _cell(template: Template, column: str) -> str:
    """A catalog table cell: the trigger column shows what a user types (a project fixture's name)."""
    return template.name if column == "trigger" else str(getattr(template, column))


def _shadowing(template: Template, shadowed: Collection[str]) -> str:
    if template.fixture in shadowed:
        return f"shadows the catalog's {template.fixture}: {template.description}"
    if template.fixture is not None:
        return f"{template.description} (a {template.trigger})"
    return template.description

"""The human display: the Renderer, which writes everything comethook says for people on a terminal or a pipe.

Data goes to stdout, everything else (banners, progress, warnings, errors) to stderr. User data
only ever enters rich as `Text`, never as markup, so `[bold]` in a chat message stays literal, and
it passes through `safe()` (outputs/escapes.py) on the way in, so a delivery cannot drive the terminal.
Only the display talks to rich: this module and the parts it draws with, the event line (eventline.py), the
fitting of a line to the width (layout.py) and the tables (tables.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

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
from comethook_cli.outputs.escapes import safe
from comethook_cli.outputs.eventline import VERDICT_STYLE, event_spans, ms, now_clock
from comethook_cli.outputs.layout import Span, fit
from comethook_cli.outputs.tables import check_table, history_table, payload_table
from comethook_cli.outputs.ticker import Ticker
from comethook_cli.outputs.wire import dumps, json_safe

if TYPE_CHECKING:
    from comethook_cli.cometchat.payloads import Template
    from comethook_cli.cometchat.rest import RestCall
    from comethook_cli.engine.checks import CheckResult
    from comethook_cli.engine.runs import RetryReport, Summary
    from comethook_cli.outputs.wire import CheckSummary, TriggerRecord

#: How much of an answer `send` shows (characters); -v shows up to VERBOSE_BODY_CHARS, --json all of it.
BODY_CHARS = 2_000
VERBOSE_BODY_CHARS = 100_000


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
        self._terminal: tuple[Console, bool] = (self.out, not self.out.soft_wrap)
        self.quiet = quiet
        #: An answer slower than this gets a warning (CometChat's budget; a test passes a shorter one).
        self.budget_ms = budget_ms

    @property
    def out_is_terminal(self) -> bool:
        """`self.out.is_terminal`, asked once per console: rich asks the environment and the stream (a system call)
        every time, and the event line asks for every delivery."""
        console, terminal = self._terminal
        if console is not self.out:
            self._terminal = (self.out, self.out.is_terminal)
            terminal = self._terminal[1]
        return terminal

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

    # --- payloads -----------------------------------------------------------------------------
    def lines(self, lines: Iterable[tuple[str, str]]) -> None:
        """Lines of a report on stdout, each (text, style): escaped, never wrapped mid-word by a markup reading."""
        for text, style in lines:
            self.out.print(Text(safe(text), style=style))

    def payload_table(self, templates: Iterable[Template], shadowed: Collection[str] = ()) -> None:
        """The catalog as a table on stdout (`shadowed`: the project fixtures that take a catalog trigger's place)."""
        payload_table(self.out, templates, shadowed)

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
        back = Text.assemble(("<-- ", "bold"), (str(delivery.status), style), f"  {ms(delivery.latency_ms)}")
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
            self.warning(f"the answer took {ms(latency_ms)}, over CometChat's 2 s budget: CometChat may time out.")

    def delivery_line(self, delivery: Delivery) -> None:
        """One compact line for a delivery among many (used for failures in a --count run)."""
        status = str(delivery.status) if delivery.status is not None else "---"
        self.out.print(
            Text.assemble(
                (f"{status:>3} ", "red" if not delivery.ok else "green"),
                f"{ms(delivery.latency_ms):>10}  ",
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
                f"  {ms(delivery.latency_ms)}", ("  same answer", "dim"),
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
        line = Text.assemble(("Original: ", "bold"), before, f" in {ms(original.latency_ms)}", ("  now: ", "bold"), now)
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
            ms(summary.p50_ms),
            ms(summary.p95_ms),
            ms(summary.p99_ms),
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
        width = self.out.width if self.out_is_terminal else None
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
        width = self.out.width if self.out_is_terminal else None
        parts = [
            Text(now_clock(exchange.received_at) + " ", "dim"),
            Text(f"--- {safe(exchange.info.trigger)} (not in --events; answered {exchange.response_status})", "dim"),
        ]
        self.out.print(fit(parts, width, cut=-1))

    def slow_answer(self, exchange: Exchange) -> None:
        """Warn when an answer took longer than CometChat's 2 s budget."""
        who = "your app" if exchange.forwarded_to and not exchange.forward_error else "the answer"
        self.warning(f"{exchange.id}: {who} took {ms(exchange.latency_ms)}, over CometChat's 2 s budget.")

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
        """The stored exchanges, newest first, one line each (`short_ids`: the shortest end of each id that names it)."""
        history_table(self.out, exchanges, short_ids)

    def exchange(self, exchange: Exchange) -> None:
        """One exchange in full."""
        exchange = without_secrets(exchange)
        rows = [
            ("id", exchange.id),
            ("received", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(exchange.received_at))),
            ("request", f"{exchange.method} {exchange.path}" + (f"?{exchange.query}" if exchange.query else "")),
            ("trigger", f"{exchange.info.trigger} ({exchange.info.generation})"),
            ("summary", exchange.info.summary),
            ("answer", f"{exchange.response_status} in {ms(exchange.latency_ms)} by {exchange.answered_by}"),
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
        check_table(self.out, url, results, summary)

    def rest_call(self, call: RestCall, hint: str | None, verbose: bool = False, reused: bool = False) -> None:
        """A REST call `trigger` made, on one line (request, status, time); then, for a refused call, CometChat's error and
        what to do; the answer's body only with -v."""
        line = Text.assemble(("--> ", "bold"), f"{call.method} ", safe(call.url))
        if call.on_behalf_of:
            line.append(f"  as {safe(call.on_behalf_of)}", style="dim")
        style = "green" if call.ok else "yellow" if call.dropped else "red"
        if call.status is None:
            line.append_text(Text.assemble(("  no answer: ", "bold red"), safe(call.failure_detail or "?")))
        else:
            line.append_text(Text.assemble(("  <-- ", "bold"), (str(call.status), style), f"  {ms(call.latency_ms)}"))
        if reused and call.error is not None:
            line.append(f"  {safe(call.error.code or '')}: already there, reused", style="dim")
        self.out.print(line)
        if call.waited_s:
            self.out.print(Text(f"    waited {call.waited_s:g} s on 429 Retry-After ({call.attempts} attempts)", style="yellow"))
        if call.status is None or reused:
            return
        if call.error is not None:
            code = Text.assemble(
                ("    ", ""), (safe(call.error.code or "no error code"), f"bold {style}"), f"  {safe(call.error.message or '')}"
            )
            self.out.print(code)
            if call.error.details:
                self.out.print(Text("    " + safe(json.dumps(call.error.details, ensure_ascii=False)), style="dim"))
        elif call.failure is not None:
            self.out.print(Text("    " + safe(call.failure_detail or call.failure), style="red"))
        elif verbose:
            self.body(call.body, VERBOSE_BODY_CHARS, "--json shows it all")
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


def _pretty(value: Any) -> list[str]:
    """A body as lines to diff: indented JSON, or its text."""
    if value is None:
        return []
    return (json.dumps(value, indent=2, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)).splitlines()

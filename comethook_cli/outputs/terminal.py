"""The only module that talks to rich: human output on a terminal or a pipe.

Data goes to stdout, everything else (banners, progress, warnings, errors) to stderr. User data
only ever enters rich as `Text`, never as markup, so `[bold]` in a chat message stays literal, and
it passes through `safe()` on the way in, so a delivery cannot drive the terminal (see `safe`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.highlighter import JSONHighlighter
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from comethook_cli.models import (
    Delivery,
    EventInfo,
    Exchange,
    Rejection,
    Verdict,
    budget_ms,
    parse_body,
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


class Renderer:
    """Human output: `out` is stdout (data), `err` is stderr (everything else)."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.out = Console(file=stream, highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        self.quiet = quiet

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
    def payload_table(self, templates: Iterable[Template]) -> None:
        """The catalog as a table on stdout."""
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for column in ("trigger", "generation", "family", "description"):
            table.add_column(column, overflow="fold")
        for t in templates:
            table.add_row(t.trigger, t.generation, t.family, t.description)
        self.out.print(table)

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

    def budget_warning(self, latency_ms: float | None) -> None:
        """Warn (stderr) when an answer took longer than CometChat's 2 s budget."""
        if latency_ms is not None and latency_ms > budget_ms():
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

    def banner(self, lines: list[tuple[str, str]], title: str) -> None:
        """The start-up banner on stderr: label/value rows under a title."""
        self.err.print(Text(title, style="bold green"))
        width = max((len(label) for label, _ in lines), default=0)
        for label, value in lines:
            if label:
                self.err.print(Text.assemble((f"  {label.ljust(width)}  ", "bold"), safe(value)))
            else:
                self.err.print(Text(f"  {safe(value)}", style="dim"))

    def event(self, exchange: Exchange, verbose: bool = False) -> None:
        """One line per delivery: time, trigger, generation, who → whom, preview, id, webhook, answer."""
        if self.quiet:
            return
        info = exchange.info
        line = Text.assemble(
            (now_clock(exchange.received_at) + " ", "dim"),
            ("--> ", "bold"),
            (safe(info.trigger), "bold cyan" if info.generation != "unknown" else "bold magenta"),
            (f" [{info.generation}]", "dim"),
            " ",
            safe(info.summary),
        )
        if info.webhook:
            line.append(f"  webhook {safe(info.webhook)}", style="dim")
        if exchange.forwarded_to is None:
            line.append("  ")
            line.append_text(self._answer(exchange))
            self.out.print(line)
        else:
            self.out.print(line)
            back = Text.assemble((now_clock(exchange.received_at) + " ", "dim"), ("<-- ", "bold"))
            back.append_text(self._answer(exchange))
            back.append(f"  from {safe(exchange.forwarded_to)}", style="dim")
            if exchange.forward_error:
                back.append(f"  app unreachable: {safe(exchange.forward_error)}", style="bold red")
            self.out.print(back)
            if exchange.verdict is not None and exchange.verdict.kind == "inject" and exchange.verdict.metadata is not None:
                injected = exchange.verdict.metadata.get("@injected", {}).get("webhooks", {})
                self.out.print(Text("    @injected.webhooks = " + dumps(injected), style="cyan"))
        if verbose:
            self.details(exchange)

    def slow_answer(self, exchange: Exchange) -> None:
        """Warn when an answer took longer than CometChat's 2 s budget."""
        who = "your app" if exchange.forwarded_to and not exchange.forward_error else "the answer"
        self.warning(f"{exchange.id}: {who} took {_ms(exchange.latency_ms)}, over CometChat's 2 s budget.")

    def _answer(self, exchange: Exchange) -> Text:
        ok = 200 <= exchange.response_status < 300
        text = Text.assemble((str(exchange.response_status), "green" if ok else "red"))
        if exchange.verdict is not None:
            text.append(" ")
            text.append(exchange.verdict.kind.upper(), style=VERDICT_STYLE[exchange.verdict.kind])
            if exchange.verdict.reason:
                text.append(f" ({safe(exchange.verdict.reason)})", style="red")
        text.append(f" {_ms(exchange.latency_ms)}", style="dim")
        text.append(f"  {exchange.id}", style="dim")
        return text

    def details(self, exchange: Exchange) -> None:
        """-v: headers (redacted), the highlighted body, and the answer body."""
        for name, value in exchange.headers:
            self.out.print(Text.assemble((f"    {safe(name)}: ", "bold"), safe(value)))
        self.body(exchange.payload if exchange.payload is not None else parse_body(exchange.body))
        if exchange.response_body:
            self.out.print(Text("    answer:", style="bold"))
            self.body(parse_body(exchange.response_body))

    def rejected(self, rejection: Rejection) -> None:
        """One warning line for a refused request."""
        if not self.quiet:
            self.warning(f"rejected {rejection.method} {rejection.path} with {rejection.status}: {rejection.reason}")

    def stopped(self, events: int) -> None:
        """The last line on stderr."""
        self.err.print(Text(f"Stopped after {events} event{'s' if events != 1 else ''}.", style="bold"))

    def table(self, exchanges: list[Exchange]) -> None:
        """The stored exchanges, newest first, one line each; the summary gets the width that is left."""
        widths = [
            max([len(e.id) for e in exchanges] + [2]),
            11,
            max([len(safe(e.info.trigger)) for e in exchanges] + [7]),
            10,
        ]
        room = max(self.out.width - sum(widths) - 2 * len(widths), 8)
        header = Text(
            "  ".join(h.ljust(w) for h, w in zip(("id", "received", "trigger", "answer"), widths, strict=True)), style="bold"
        )
        header.append("  summary")
        self.out.print(header, no_wrap=True, overflow="ellipsis")
        for e in exchanges:
            answer = Text(str(e.response_status), style="green" if 200 <= e.response_status < 300 else "red")
            if e.verdict:
                answer.append(" " + e.verdict.kind.upper(), style=VERDICT_STYLE[e.verdict.kind])
            answer.pad_right(widths[3] - len(answer))
            received = time.strftime("%m-%d %H:%M", time.localtime(e.received_at))
            summary, trigger = Text(safe(e.info.summary)), safe(e.info.trigger)
            summary.truncate(room, overflow="ellipsis")
            line = Text.assemble(
                e.id.ljust(widths[0]), "  ", (received, "dim"), "  ", trigger.ljust(widths[2]), "  ", answer, "  ", summary
            )
            self.out.print(line, no_wrap=True, overflow="ellipsis")

    def exchange(self, exchange: Exchange) -> None:
        """One exchange in full."""
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
        self.body(parse_body(exchange.response_body))

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


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def now_clock(epoch: float) -> str:
    """HH:MM:SS local time for an event line."""
    return time.strftime("%H:%M:%S", time.localtime(epoch))

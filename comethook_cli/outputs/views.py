"""The one output interface every command talks to, with a human and an NDJSON implementation.

A command picks its view once (`view(json_out)`) and then only says what happened; the choice
between the terminal and the wire format is made here and nowhere else. Messages (warnings, notes,
the banner, progress) always go to stderr as human text, in both views, so stdout carries data only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, TextIO

from comethook_cli.models import COMETCHAT_BUDGET_MS, RecordHandler, over_budget
from comethook_cli.outputs import wire
from comethook_cli.outputs.stream import NdjsonWriter

if TYPE_CHECKING:
    from comethook_cli.cometchat.payloads import Template
    from comethook_cli.cometchat.rest import RestCall
    from comethook_cli.engine.checks import CheckResult
    from comethook_cli.engine.runs import RetryReport, Summary
    from comethook_cli.models import JSON, Delivery, EventInfo, Exchange, Health, Rejection, Skipped
    from comethook_cli.outputs.terminal import Renderer

#: How many failed deliveries of a `--count` run are shown one by one before the summary.
FAILURES_SHOWN = 5


class View(RecordHandler):
    """What every command says. Subclasses decide how stdout shows it; stderr is shared. `listen` subscribes it to its
    session's hub as it is: the hub's records arrive in on_exchange, on_skipped and on_rejection."""

    def __init__(
        self, quiet: bool = False, verbose: bool = False, stream: TextIO | None = None, budget_ms: float = COMETCHAT_BUDGET_MS
    ) -> None:
        self._quiet = quiet
        #: Whether the ready line (the banner) was shown: a session that never served says no "Stopped" line.
        self.announced = False
        #: An answer slower than this gets a warning on stderr (CometChat's budget; a test passes a shorter one).
        self.budget_ms = budget_ms
        self._stream = stream
        self._human: Renderer | None = None
        self.verbose = verbose

    @property
    def human(self) -> Renderer:
        """The terminal side (rich), made when first needed: a `--json` run with nothing to say on stderr never imports rich."""
        if self._human is None:
            from comethook_cli.outputs.terminal import Renderer

            self._human = Renderer(quiet=self._quiet, stream=self._stream, budget_ms=self.budget_ms)
        return self._human

    # --- messages on stderr (both views) ---------------------------------------------------------
    def warning(self, message: str) -> None:
        """A warning line on stderr."""
        self.human.warning(message)

    def note(self, message: str, style: str = "dim") -> None:
        """An informational line on stderr."""
        self.human.note(message, style)

    @property
    def interactive(self) -> bool:
        """Whether a person at a terminal can answer a question."""
        return False

    def confirm(self, prompt: str) -> bool:
        """Ask a yes/no question on the terminal."""
        return self.human.confirm(prompt)

    # --- listen -----------------------------------------------------------------------------------
    def ready(self, ready: wire.Ready, banner: list[tuple[str, str]], title: str | None = None) -> None:
        """The listener (or the emulator) is serving: the banner on stderr, under `title`."""
        self.announced = True
        self.human.banner(banner, title or f"comethook listening on {ready.local_url}")

    def on_exchange(self, exchange: Exchange) -> None:
        """One delivery the listener answered."""
        if over_budget(exchange.latency_ms, self.budget_ms):
            self.human.slow_answer(exchange)

    def on_rejection(self, rejection: Rejection) -> None:
        """A request the listener refused."""
        self.human.rejected(rejection)

    def on_skipped(self, skipped: Skipped) -> None:
        """A delivery `--events` leaves out (answered, not stored): nothing in NDJSON."""

    def on_health(self, health: Health) -> None:
        """The tunnel or the app went down (a loud warning on stderr) or came back (one line)."""
        self.human.health(health)

    def fatal(self, message: str, exit_code: int | None = None, hint: str | None = None) -> None:
        """Something ends the session (the error funnel says it on stderr)."""

    def stopped(self, events: int) -> None:
        """The session is over."""
        self.human.stopped(events)

    def overflow_note(self, dropped: int) -> str:
        """The line that says how many lines the output skipped when its reader fell behind."""
        return f"… {dropped} line(s) not shown: the output fell behind (every event is in the history)\n"

    # --- send, replay -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def progress(self, total: int) -> Iterator[Callable[[], None]]:
        """A progress bar while a run of deliveries goes out; yields the function that advances it."""
        yield lambda: None

    def delivery(self, delivery: Delivery, info: EventInfo | None, count: int = 1) -> None:
        """One delivery of a run of `count`, and what came back."""
        raise NotImplementedError

    def retries(self, report: RetryReport) -> None:
        """Whether simulated retries got the same answer."""
        raise NotImplementedError

    def request(self, body: JSON) -> None:
        """The body about to be sent (-v shows it)."""

    def compared(self, original: Exchange, again: Delivery) -> None:
        """`replay`: the stored answer beside the new one (the NDJSON view's delivery line already holds the new one)."""

    def assertion(self, record: wire.Assertion) -> None:
        """What the CI assertions came to (said only when some were asked for)."""
        raise NotImplementedError

    def summary(self, summary: Summary, count: int) -> None:
        """What a run of deliveries came to."""
        raise NotImplementedError

    # --- check ------------------------------------------------------------------------------------
    def checks(self, url: str, results: Sequence[CheckResult], summary: wire.CheckSummary) -> None:
        """The conformance suite's results."""
        raise NotImplementedError

    # --- history, payloads ------------------------------------------------------------------------
    def exchanges(self, exchanges: Sequence[Exchange], empty: str, short_ids: dict[str, str] | None = None) -> None:
        """Stored exchanges, newest first (`empty` is said when there are none; `short_ids`: the ends of ids to show)."""
        raise NotImplementedError

    def exchange(self, exchange: Exchange) -> None:
        """One stored exchange in full."""
        raise NotImplementedError

    def catalog(self, templates: Iterable[Template], shadowed: Collection[str] = ()) -> None:
        """The canned payloads and project fixtures (`shadowed`: the fixtures named like a catalog trigger)."""
        raise NotImplementedError

    # --- trigger, emulate -------------------------------------------------------------------------
    def rest_call(self, call: RestCall, hint: str | None, reused: bool = False) -> None:
        """A REST call `trigger` made and its answer (`hint`: what to do about an error; `reused`: its error means the
        thing is there already, which `setup` takes as done)."""
        raise NotImplementedError

    def trigger_result(self, record: wire.TriggerRecord) -> None:
        """What a `trigger` step should fire and, with --wait, what arrived."""
        raise NotImplementedError

    def served(self, call: RestCall) -> None:
        """A REST call `emulate` answered."""
        raise NotImplementedError

    def webhook(self, delivery: Delivery) -> None:
        """A webhook `emulate` delivered."""
        raise NotImplementedError


class HumanView(View):
    """Lines and tables for people: colour on a terminal, plain text on a pipe."""

    def __init__(
        self, quiet: bool = False, verbose: bool = False, stream: TextIO | None = None, budget_ms: float = COMETCHAT_BUDGET_MS
    ) -> None:
        super().__init__(quiet, verbose, stream, budget_ms)
        self._failures: list[Delivery] = []
        self._first: Delivery | None = None

    @property
    def interactive(self) -> bool:
        """Whether a person at a terminal can answer a question."""
        import sys

        return sys.stdin.isatty() and self.human.err.is_terminal

    def on_exchange(self, exchange: Exchange) -> None:
        """The event line (and -v details)."""
        self.human.event(exchange, self.verbose)
        super().on_exchange(exchange)

    def on_skipped(self, skipped: Skipped) -> None:
        """One dim line (none with -q)."""
        self.human.skipped(skipped.exchange)

    @contextlib.contextmanager
    def progress(self, total: int) -> Iterator[Callable[[], None]]:
        """A progress bar on stderr when it is a terminal."""
        if total <= 1:
            yield lambda: None
            return
        with self.human.progress(total) as advance:
            yield advance

    def delivery(self, delivery: Delivery, info: EventInfo | None, count: int = 1) -> None:
        """One delivery in full (a retry that got the first answer again: one line); in a run of many, the failures
        are kept and shown after the progress bar, under the summary."""
        if count == 1:
            first = self._first
            if delivery.attempt == 1:
                self._first = delivery
            same = first is not None and delivery.attempt > 1 and self._same_answer(first, delivery)
            if same and not self.verbose:
                self.human.same_answer(delivery)
            else:
                self.human.delivery(delivery, info if delivery.attempt == 1 else None, self.verbose)
        elif not delivery.ok:
            self._failures.append(delivery)

    @staticmethod
    def _same_answer(first: Delivery, again: Delivery) -> bool:
        return (first.status, first.response_body, first.failure) == (again.status, again.response_body, again.failure)

    def compared(self, original: Exchange, again: Delivery) -> None:
        """The original answer (status, verdict) beside the new one, and a diff of the bodies when they differ."""
        self.human.compared(original, again)

    def request(self, body: JSON) -> None:
        """-v: the request body, before the answer."""
        if self.verbose:
            self.human.request_body(body)

    def retries(self, report: RetryReport) -> None:
        """`Retries: same answer …` or what differed."""
        self.human.retries(report)

    def summary(self, summary: Summary, count: int) -> None:
        """The summary table (only for a run of more than one), then the first failures under a heading."""
        if count > 1:
            self.human.summary(summary)
            if self._failures:
                self.human.failures(self._failures[:FAILURES_SHOWN], len(self._failures))

    def assertion(self, record: wire.Assertion) -> None:
        """A `✓` line when the assertions held (a failure is the error line the funnel prints)."""
        if record.ok:
            self.human.assertion_passed(record.asserted)

    def checks(self, url: str, results: Sequence[CheckResult], summary: wire.CheckSummary) -> None:
        """The table and the summary line."""
        self.human.results(url, list(results), summary)

    def exchanges(self, exchanges: Sequence[Exchange], empty: str, short_ids: dict[str, str] | None = None) -> None:
        """The history table."""
        if not exchanges:
            self.human.note(empty)
            return
        self.human.table(list(exchanges), short_ids)

    def exchange(self, exchange: Exchange) -> None:
        """One exchange in full."""
        self.human.exchange(exchange)

    def catalog(self, templates: Iterable[Template], shadowed: Collection[str] = ()) -> None:
        """The catalog table."""
        self.human.payload_table(templates, shadowed)

    def rest_call(self, call: RestCall, hint: str | None, reused: bool = False) -> None:
        """The call and its answer."""
        self.human.rest_call(call, hint, self.verbose, reused)

    def trigger_result(self, record: wire.TriggerRecord) -> None:
        """Expected webhooks and what arrived."""
        self.human.trigger_result(record)

    def served(self, call: RestCall) -> None:
        """One line per call."""
        self.human.served(call)

    def webhook(self, delivery: Delivery) -> None:
        """One line per delivery."""
        self.human.webhook(delivery)


class WireView(View):
    """NDJSON on stdout: one wire record per line (the human messages still go to stderr)."""

    def __init__(
        self,
        quiet: bool = False,
        verbose: bool = False,
        stream: TextIO | None = None,
        writer: NdjsonWriter | None = None,
        budget_ms: float = COMETCHAT_BUDGET_MS,
    ) -> None:
        super().__init__(quiet, verbose, stream, budget_ms)
        self.writer = writer or NdjsonWriter(stream)

    def write(self, record: wire.Record, soon: bool = False) -> None:
        """One record, one line."""
        self.writer.write(record, soon)

    def ready(self, ready: wire.Ready, banner: list[tuple[str, str]], title: str | None = None) -> None:
        """The `ready` line, then the banner on stderr."""
        self.write(ready)
        super().ready(ready, banner, title)

    def on_exchange(self, exchange: Exchange) -> None:
        """The `event` line (flushed once per loop iteration under load)."""
        self.writer.write_line(wire.Event(exchange).encode(), soon=True)
        super().on_exchange(exchange)

    def on_rejection(self, rejection: Rejection) -> None:
        """The `rejected` line, and the warning on stderr."""
        self.write(wire.Rejected(rejection))
        super().on_rejection(rejection)

    def on_health(self, health: Health) -> None:
        """The `tunnel` or `app` line, and the warning on stderr."""
        self.write(wire.health_record(health))
        super().on_health(health)

    def fatal(self, message: str, exit_code: int | None = None, hint: str | None = None) -> None:
        """The `error` line."""
        self.write(wire.Error(message, exit_code, hint))

    def stopped(self, events: int) -> None:
        """The `stopped` line, and the human last line on stderr."""
        self.write(wire.Stopped(events))
        super().stopped(events)

    def overflow_note(self, dropped: int) -> str:
        """The `overflow` line."""
        return wire.encode(wire.Overflow(dropped)) + "\n"

    def delivery(self, delivery: Delivery, info: EventInfo | None, count: int = 1) -> None:
        """The `delivery` line."""
        self.write(wire.DeliveryRecord(delivery), soon=True)

    def retries(self, report: RetryReport) -> None:
        """The `retries` line."""
        self.write(wire.Retries(report))

    def assertion(self, record: wire.Assertion) -> None:
        """The `assertion` line, passed or failed."""
        self.write(record)

    def summary(self, summary: Summary, count: int) -> None:
        """The `summary` line (always, even for one delivery)."""
        self.write(wire.SendSummary(summary))

    def checks(self, url: str, results: Sequence[CheckResult], summary: wire.CheckSummary) -> None:
        """A `check` line per check, then the `summary` line."""
        for result in results:
            self.write(wire.Check(result))
        self.write(summary)

    def exchanges(self, exchanges: Sequence[Exchange], empty: str, short_ids: dict[str, str] | None = None) -> None:
        """An `event` line per stored exchange."""
        for exchange in exchanges:
            self.write(wire.Event(exchange))

    def exchange(self, exchange: Exchange) -> None:
        """The `event` line with the stored body as `raw` text."""
        self.write(wire.Event(exchange, raw=True))

    def catalog(self, templates: Iterable[Template], shadowed: Collection[str] = ()) -> None:
        """A `payload` line per template."""
        for template in templates:
            self.write(wire.Payload(template, template.fixture in shadowed))

    def rest_call(self, call: RestCall, hint: str | None, reused: bool = False) -> None:
        """The `rest` line."""
        self.write(wire.RestCallRecord(call))

    def trigger_result(self, record: wire.TriggerRecord) -> None:
        """The `trigger` line."""
        self.write(record)

    def served(self, call: RestCall) -> None:
        """The `rest` line (flushed once per loop iteration under load)."""
        self.write(wire.RestCallRecord(call), soon=True)

    def webhook(self, delivery: Delivery) -> None:
        """The `delivery` line."""
        self.write(wire.DeliveryRecord(delivery), soon=True)


def view(
    json_out: bool, quiet: bool = False, verbose: bool = False, stream: TextIO | None = None, writer: NdjsonWriter | None = None
) -> View:
    """The view a command asked for with --json (or not); `writer` is the NDJSON view's line writer."""
    if json_out:
        return WireView(quiet=quiet, verbose=verbose, stream=stream, writer=writer)
    return HumanView(quiet=quiet, verbose=verbose, stream=stream)

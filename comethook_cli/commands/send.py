"""`comethook send`: build, deliver, show, assert."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from comethook_cli.commands import encode, normalize_url, read_body
from comethook_cli.errors import UsageError
from comethook_cli.payloads import BuildOptions, parse_set


@dataclass(frozen=True)
class SendArgs:
    """The parsed flags of `comethook send`."""

    trigger: str | None
    to: str
    legacy: bool
    options: BuildOptions
    body: str | None
    basic_auth: str | None
    headers: Sequence[str]
    timeout: float
    count: int
    concurrency: int
    json_out: bool
    expect: str | None
    expect_json: Sequence[str]
    max_latency: float | None
    simulate_retries: bool
    retry_delays: str | None
    verbose: bool


def run(args: SendArgs) -> None:
    """Build, deliver, show, assert."""
    from comethook_cli import sender
    from comethook_cli.events import describe
    from comethook_cli.payloads import IdSource, build, find_template, set_path

    url = normalize_url(args.to)
    headers: dict[str, str] = {}
    if args.basic_auth:
        headers["Authorization"] = sender.basic_auth_header(args.basic_auth)
    for line in args.headers:
        name, value = sender.parse_header(line)
        headers[name] = value
    if args.expect is not None and args.expect not in sender.EXPECTATIONS:
        raise UsageError(f"Unknown --expect {args.expect!r}.", f"Use one of: {', '.join(sender.EXPECTATIONS)}.")
    expectations = sender.Expectations(args.expect, tuple(parse_set(e) for e in args.expect_json), args.max_latency)
    delays = sender.parse_delays(args.retry_delays) if args.retry_delays else sender.COMETCHAT_RETRY_DELAYS
    if args.simulate_retries and args.count > 1:
        raise UsageError("--simulate-retries sends one delivery and its retries.", "Drop --count, or drop --simulate-retries.")

    if args.body is not None:
        raw = read_body(args.body)
        payload = json.loads(raw)
        trigger = args.trigger or (payload.get("trigger") if isinstance(payload, dict) else None)
        if args.options.sets:
            for path, value in args.options.sets:
                set_path(payload, path, value)
            raw = encode(payload)
        fixed = sender.Outgoing(raw, payload, trigger if isinstance(trigger, str) else None)

        def make_body() -> sender.Outgoing:
            return fixed
    else:
        if not args.trigger:
            raise UsageError("No trigger given.", "Name one (e.g. `comethook send before_message --to URL`) or pass --body FILE.")
        template = find_template(args.trigger, args.legacy)
        ids = IdSource()

        def make_body() -> sender.Outgoing:
            payload = build(template, args.options, ids)
            return sender.Outgoing(encode(payload), payload, template.trigger)

    first = make_body()
    if expectations.verdict in ("pass", "inject", "drop") and first.trigger != "before_message":
        raise UsageError(
            f"--expect {expectations.verdict} needs a before_message delivery (this is {first.trigger}).",
            "Use --expect ok for other triggers.",
        )
    pending = [first]

    def next_body() -> sender.Outgoing:
        return pending.pop() if pending else make_body()

    plan = sender.SendPlan(url, next_body, headers, args.timeout, args.count, args.concurrency)
    info = describe(first.payload)
    shown = _SendView(args, info)
    if args.simulate_retries:
        deliveries, report, elapsed = asyncio.run(sender.run_with_retries(plan, delays, shown.on_delivery))
        shown.retries(report)
    else:
        report = None
        with shown.progress(args.count):
            deliveries, elapsed = asyncio.run(sender.run(plan, shown.on_delivery))
    summary = sender.summarize(deliveries, elapsed)
    shown.finish(summary)
    sender.outcome(deliveries, sender.check_expectations(deliveries, expectations), report)


class _SendView:
    """Shows deliveries as they come: full view for one, compact failures and a summary for many, or NDJSON."""

    def __init__(self, args: SendArgs, info: Any) -> None:
        from comethook_cli.render import NdjsonWriter, Renderer

        self.args = args
        self.info = info
        self.renderer = Renderer()
        self.writer = NdjsonWriter() if args.json_out else None
        self.failures_shown = 0
        self.advance: Any = lambda: None

    def progress(self, total: int) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def bar() -> Any:
            if self.writer is not None or total == 1:
                yield
                return
            with self.renderer.progress(total) as advance:
                self.advance = advance
                yield

        return bar()

    def on_delivery(self, delivery: Any) -> None:
        self.advance()
        if self.writer is not None:
            self.writer.write(delivery.to_json())
        elif self.args.count == 1:
            self.renderer.delivery(delivery, self.info if delivery.attempt == 1 else None, self.args.verbose)
        elif not delivery.ok and self.failures_shown < 5:
            self.failures_shown += 1
            self.renderer.delivery_line(delivery)

    def retries(self, report: Any) -> None:
        if self.writer is not None:
            self.writer.write(report.to_json())
        else:
            self.renderer.retries(report)

    def finish(self, summary: Any) -> None:
        if self.writer is not None:
            self.writer.write(summary.to_json())
        elif self.args.count > 1:
            self.renderer.summary(summary)

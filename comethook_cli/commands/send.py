"""`comethook send` (and the delivery half of `replay`): build, deliver, show, assert."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from comethook_cli.cometchat.payloads import BuildOptions, encode, parse_set
from comethook_cli.commands import read_body
from comethook_cli.engine.config import Delivering
from comethook_cli.engine.sender import Outgoing, normalize_url
from comethook_cli.errors import UsageError
from comethook_cli.models import Delivery

INSECURE_WARNING = "--insecure: TLS certificates are not verified, so anyone on the way can read and change this traffic."


@dataclass(frozen=True)
class SendArgs:
    """The parsed flags of `comethook send`."""

    trigger: str | None
    to: str
    legacy: bool
    options: BuildOptions
    body: str | None
    delivering: Delivering = field(default_factory=Delivering)


def run(args: SendArgs) -> None:
    """Build the body (a canned template, or --body), then deliver and report."""
    from comethook_cli.cometchat.payloads import IdSource, build, find_template, set_path

    url = normalize_url(args.to)
    if args.body is not None:
        raw, payload = read_body(args.body)
        trigger = args.trigger or (payload.get("trigger") if isinstance(payload, dict) else None)
        if args.options.sets:
            for path, value in args.options.sets:
                set_path(payload, path, value)
            raw = encode(payload)
        fixed = Outgoing(raw, payload, trigger if isinstance(trigger, str) else None)
        execute(url, lambda: fixed, args.delivering)
        return
    if not args.trigger:
        raise UsageError("No trigger given.", "Name one (e.g. `comethook send before_message --to URL`) or pass --body FILE.")
    template = find_template(args.trigger, args.legacy)
    ids = IdSource()

    def make_body() -> Outgoing:
        payload = build(template, args.options, ids)
        return Outgoing(encode(payload), payload, template.trigger)

    execute(url, make_body, args.delivering)


def execute(url: str, make_body: Callable[[], Outgoing], how: Delivering, extra_headers: dict[str, str] | None = None) -> None:
    """Deliver (--count at --concurrency, or once plus simulated retries), show, and raise for the exit code."""
    from comethook_cli.cometchat.events import describe
    from comethook_cli.engine import sender

    headers: dict[str, str] = dict(extra_headers or {})
    if how.content_type is not None:
        # --content-type beats a replayed exchange's own header; -H below still beats both.
        headers = {name: value for name, value in headers.items() if name.lower() != "content-type"}
        headers["Content-Type"] = how.content_type
    if how.basic_auth:
        headers["Authorization"] = sender.basic_auth_header(how.basic_auth)
    for line in how.headers:
        name, value = sender.parse_header(line)
        # Header names are case-insensitive: -H replaces any header of that name instead of adding a second one.
        headers = {n: v for n, v in headers.items() if n.lower() != name.lower()}
        headers[name] = value
    if how.expect is not None and how.expect not in sender.EXPECTATIONS:
        raise UsageError(f"Unknown --expect {how.expect!r}.", f"Use one of: {', '.join(sender.EXPECTATIONS)}.")
    expectations = sender.Expectations(how.expect, tuple(parse_set(e) for e in how.expect_json), how.max_latency)
    delays = sender.parse_delays(how.retry_delays) if how.retry_delays else sender.COMETCHAT_RETRY_DELAYS
    if how.simulate_retries and how.count > 1:
        raise UsageError("--simulate-retries sends one delivery and its retries.", "Drop --count, or drop --simulate-retries.")
    first = make_body()
    if expectations.verdict in ("pass", "inject", "drop") and first.trigger != "before_message":
        raise UsageError(
            f"--expect {expectations.verdict} needs a before_message delivery (this is {first.trigger}).",
            "Use --expect ok for other triggers.",
        )
    pending = [first]

    def next_body() -> Outgoing:
        return pending.pop() if pending else make_body()

    from comethook_cli.outputs.views import view

    shown = view(how.json_out, verbose=how.verbose)
    if how.insecure:
        shown.warning(INSECURE_WARNING)
    info = describe(first.payload)
    plan = sender.SendPlan(
        url, next_body, headers, how.timeout, how.count, how.concurrency, max_answer=how.max_answer, insecure=how.insecure
    )
    report = None
    if how.simulate_retries:
        deliveries, report, elapsed = asyncio.run(
            sender.run_with_retries(plan, delays, lambda delivery: shown.delivery(delivery, info))
        )
        shown.retries(report)
    else:
        with shown.progress(how.count) as advance:

            def on_delivery(delivery: Delivery) -> None:
                advance()
                shown.delivery(delivery, info, how.count)

            deliveries, elapsed = asyncio.run(sender.run(plan, on_delivery))
    shown.summary(sender.summarize(deliveries, elapsed), how.count)
    sender.outcome(deliveries, sender.check_expectations(deliveries, expectations), report)

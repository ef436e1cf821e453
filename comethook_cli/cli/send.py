"""`comethook send` (and the delivery half of `replay`): its options; flags in, build, deliver, show, and the exit code.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

from comethook_cli import speedups
from comethook_cli.cli import completion
from comethook_cli.cli.app import App, funnel
from comethook_cli.cli.options import (
    Adds,
    AnswerTimeout,
    BasicAuth,
    BasicAuthFile,
    ContentType,
    DeliveryVerbose,
    Expect,
    ExpectJson,
    Fixtures,
    Headers,
    Insecure,
    JsonOut,
    Legacy,
    MaxAnswer,
    MaxLatency,
    MessageType,
    PayloadAppId,
    PayloadRegion,
    Receiver,
    RetryDelays,
    Sender,
    Sets,
    SimulateRetries,
    Text,
    ToGroup,
    Unsets,
    WebhookId,
    build_options,
    delivering,
    project_fixtures,
    read_body,
)
from comethook_cli.cometchat.payloads import BuildOptions, Template, encode
from comethook_cli.engine.config import Delivering, default
from comethook_cli.engine.runs import Expectations
from comethook_cli.engine.sender import Outgoing
from comethook_cli.engine.urls import normalize_url
from comethook_cli.errors import AssertionFailed, ComethookError, UnreachableError, UsageError
from comethook_cli.models import Delivery, Exchange, Failure

if TYPE_CHECKING:
    from comethook_cli.engine.runs import RetryReport

app = App()  # what the root group takes this command from


@app.command()
@funnel
def send(
    trigger: Annotated[
        str | None,
        typer.Argument(metavar="TRIGGER", help="Trigger to fire (optional with --body).", autocompletion=completion.triggers),
    ] = None,
    to: Annotated[str, typer.Option("--to", metavar="URL", help="Endpoint to deliver to.")] = "",
    legacy: Legacy = False,
    body: Annotated[str | None, typer.Option("--body", metavar="FILE|-", help="Send your own JSON body instead.")] = None,
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="How many deliveries (fresh ids each).")] = 1,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Deliveries in flight at once.")] = 1,
    # The help lists them in this order.
    type_: MessageType = default(BuildOptions, "type"),
    text: Text = default(BuildOptions, "text"),
    sender: Sender = default(BuildOptions, "sender"),
    receiver: Receiver = default(BuildOptions, "receiver"),
    group: ToGroup = default(BuildOptions, "group"),
    webhook_id: WebhookId = default(BuildOptions, "webhook_id"),
    app_id: PayloadAppId = default(BuildOptions, "app_id"),
    region: PayloadRegion = default(BuildOptions, "region"),
    set_: Sets = None,
    add: Adds = None,
    unset: Unsets = None,
    fixtures: Fixtures = None,
    basic_auth: BasicAuth = None,
    basic_auth_file: BasicAuthFile = None,
    header: Headers = None,
    timeout: AnswerTimeout = default(Delivering, "timeout"),
    content_type: ContentType = None,
    json_out: JsonOut = False,
    expect: Expect = None,
    expect_json: ExpectJson = None,
    max_latency: MaxLatency = None,
    simulate_retries: SimulateRetries = False,
    retry_delays: RetryDelays = None,
    verbose: DeliveryVerbose = False,
    max_answer: MaxAnswer = default(Delivering, "max_answer"),
    insecure: Insecure = False,
) -> None:
    """Fire a realistic CometChat delivery at an endpoint and show what CometChat would do with the answer."""
    from dataclasses import replace

    how = delivering(
        basic_auth=basic_auth, basic_auth_file=basic_auth_file, header=header, timeout=timeout, content_type=content_type,
        json_out=json_out, expect=expect, expect_json=expect_json, max_latency=max_latency,
        simulate_retries=simulate_retries, retry_delays=retry_delays, verbose=verbose, max_answer=max_answer,
        insecure=insecure,
    )  # fmt: skip
    options = build_options(type_, text, sender, receiver, group, webhook_id, app_id, region, set_, add, unset)
    found = project_fixtures(fixtures) if body is None else {}
    run(SendArgs(trigger, to, legacy, options, body, replace(how, count=count, concurrency=concurrency), found))


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
    #: The project's fixtures by name: `send NAME` finds them before the catalog.
    fixtures: Mapping[str, Template] = field(default_factory=dict)


def run(args: SendArgs) -> None:
    """Build the body (a canned template, or --body), then deliver and report."""
    from comethook_cli.cometchat.payloads import Bodies, IdSource, find_template
    from comethook_cli.cometchat.payloads.paths import apply as apply_overrides

    url = normalize_url(args.to)
    if args.body is not None:
        raw, payload = read_body(args.body)
        said = payload.get("trigger") if isinstance(payload, dict) else None
        if args.trigger and isinstance(said, str) and said.lower() != args.trigger.strip().lower():
            from comethook_cli.outputs.terminal import Renderer

            Renderer().warning(
                f"the body says trigger {said!r}, not {args.trigger!r}: it is sent as it is, and judged as {args.trigger}."
            )
        trigger = args.trigger or said
        if args.options.sets or args.options.adds or args.options.unsets:
            apply_overrides(payload, args.options.sets, args.options.adds, args.options.unsets)
            raw = encode(payload)
        fixed = Outgoing(raw, payload, trigger if isinstance(trigger, str) else None)
        execute(url, lambda: fixed, args.delivering)
        return
    if not args.trigger:
        raise UsageError("No trigger given.", "Name one (e.g. `comethook send before_message --to URL`) or pass --body FILE.")
    template = find_template(args.trigger, args.legacy, args.fixtures)
    # Each body is built as build() would, but spliced into a pre-encoded template: a run of thousands pays for one build a tick.
    bodies = Bodies(template, args.options, IdSource())
    execute(url, lambda: Outgoing(bodies.next(), trigger=template.trigger), args.delivering)


def request_headers(url: str, how: Delivering, extra_headers: dict[str, str] | None) -> dict[str, str]:
    """The headers of every delivery: a replayed exchange's own, then --content-type, --basic-auth and -H, each beating
    the one before; a second source of credentials beside the URL's is a usage error, said before anything is sent."""
    from comethook_cli.engine.auth import basic_auth_header
    from comethook_cli.engine.urls import url_authorization

    headers: dict[str, str] = dict(extra_headers or {})
    if how.content_type is not None:
        # --content-type beats a replayed exchange's own header; -H below still beats both.
        headers = {name: value for name, value in headers.items() if name.lower() != "content-type"}
        headers["Content-Type"] = how.content_type
    if how.basic_auth:
        headers["Authorization"] = basic_auth_header(how.basic_auth)
    for name, value in how.headers:
        # Header names are case-insensitive: -H replaces any header of that name instead of adding a second one.
        headers = {n: v for n, v in headers.items() if n.lower() != name.lower()}
        headers[name] = value
    # Credentials in the URL (http://user:pw@host) are sent as Basic auth (by deliver(), which shows the URL as
    # user:***@); with a second Authorization, which to send would be a guess: said now, before anything is sent.
    given_by = "-H Authorization" if any(name.lower() == "authorization" for name, _ in how.headers) else "--basic-auth"
    url_authorization(url, headers, "--to", given_by)
    return headers


def execute(
    url: str,
    make_body: Callable[[], Outgoing],
    how: Delivering,
    extra_headers: dict[str, str] | None = None,
    original: Exchange | None = None,
) -> None:
    """Deliver (--count at --concurrency, or once plus simulated retries), show, and raise for the exit code. Long
    because it is one straight sequence (headers, checks said before anything is sent, the run, the report) that
    `send` and `replay` share; split, each part would need most of the others' locals."""
    from comethook_cli.cometchat.events import describe
    from comethook_cli.engine import runs, sender
    from comethook_cli.engine.urls import take_credentials

    headers = request_headers(url, how, extra_headers)
    expectations = how.expectations or Expectations()
    delays = how.retry_delays or sender.COMETCHAT_RETRY_DELAYS
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
        url,
        next_body,
        headers,
        how.timeout,
        how.count,
        how.concurrency,
        max_answer=how.max_answer,
        insecure=how.insecure,
        origin="send" if original is None else "replay",
    )
    report = None
    if how.count == 1:
        shown.request(first.payload if first.payload is not None else first.body.decode("utf-8", errors="replace"))
    if how.simulate_retries:
        deliveries, report, elapsed = speedups.run(
            sender.run_with_retries(plan, lambda delivery: shown.delivery(delivery, info), delays)
        )
        shown.retries(report)
    else:
        done: list[Delivery] = []
        started = time.perf_counter()
        with shown.progress(how.count) as advance:

            def on_delivery(delivery: Delivery) -> None:
                done.append(delivery)
                advance()
                shown.delivery(delivery, info, how.count)

            try:
                deliveries, elapsed = speedups.run(sender.run(plan, on_delivery))
            except KeyboardInterrupt:
                if how.count > 1:  # Ctrl-C mid-run: what was sent is still worth its summary (then exit 130)
                    shown.summary(runs.summarize(done, time.perf_counter() - started), how.count)
                raise
    shown.summary(runs.summarize(deliveries, elapsed), how.count)
    if original is not None and deliveries:
        shown.compared(original, deliveries[0])
    failures = runs.check_expectations(deliveries, expectations)
    asserted = asserted_by(how)
    if asserted:
        retried = [] if report is None or report.consistent else [f"simulated retries got different answers ({report.detail})"]
        from comethook_cli.outputs.wire import Assertion

        shown.assertion(Assertion(not failures and not retried, tuple(asserted), tuple([*failures, *retried])))
    credentials = any(name.lower() == "authorization" for name in headers) or take_credentials(url)[1] is not None
    outcome(deliveries, failures, report, credentials)


def asserted_by(how: Delivering) -> list[str]:
    """The CI assertions a run was asked to hold, as the flags that asked for them."""
    expected = how.expectations or Expectations()
    asserted = [f"--expect {expected.verdict}"] if expected.verdict else []
    asserted += [f"--expect-json {e}" for e in expected.json_text]
    if expected.max_latency_ms is not None:
        asserted.append(f"--max-latency {expected.max_latency_ms:g}")
    if how.simulate_retries:
        asserted.append("same answer on every retry")
    return asserted


def unreachable_hint(failure: Failure | None) -> str:
    """What to do when a delivery got no answer: about certificates when TLS failed, else about the endpoint."""
    if failure == "tls":
        return (
            "Point SSL_CERT_FILE at the CA certificate that signed it (e.g. SSL_CERT_FILE=ca.pem comethook ...), "
            "or pass --insecure (-k) to skip the check for a test endpoint."
        )
    return "Is the endpoint running and the URL right? Raise --timeout for a slow endpoint."


#: The failures where no answer came back at all: exit 4, like an endpoint that cannot be reached. A `protocol` failure
#: is not one: something was reached and answered, only not with HTTP (exit 1, like a bad answer).
NO_ANSWER: frozenset[Failure] = frozenset({"unreachable", "tls", "timeout"})
#: The hint for a server that took the connection but did not speak HTTP back.
PROTOCOL_HINT = (
    "The server took the connection but did not answer with HTTP (it hung up, or speaks something else, e.g. TLS on an "
    "http:// URL): check its logs and the URL's scheme and port."
)


def outcome(
    deliveries: Sequence[Delivery], failures: Sequence[str], retries: RetryReport | None = None, credentials: bool = False
) -> None:
    """Raise the error that sets the honest exit code: 4 no answer, 1 not ok, 3 assertion; return when all is well."""
    unanswered = [d for d in deliveries if d.failure in NO_ANSWER]
    if unanswered:
        raise UnreachableError(
            f"{len(unanswered)} of {len(deliveries)} deliveries got no answer: {unanswered[0].error}.",
            unreachable_hint(unanswered[0].failure),
        )
    bad = [d for d in deliveries if not d.ok]
    if bad:
        hint = "CometChat needs a 2xx answer" + (" and, for before_message, a JSON object." if bad[0].verdict else ".")
        if bad[0].failure == "protocol":
            hint = PROTOCOL_HINT
        if bad[0].failure == "too_large":
            hint = "CometChat's own messages stay under about 64 KB; raise --max-answer if this answer is meant to be so large."
        if bad[0].status == 401:
            hint = (
                "The credentials sent were refused: give the user and password set for this webhook in the CometChat Dashboard."
                if credentials
                else "The endpoint wants Basic auth: pass --basic-auth USER:PASS (or COMETHOOK_BASIC_AUTH), as set for "
                "this webhook in the CometChat Dashboard."
            )
        raise ComethookError(f"{len(bad)} of {len(deliveries)} deliveries failed: {bad[0].error}.", hint)
    problems = list(failures)
    if retries is not None and not retries.consistent:
        problems.append(f"simulated retries got different answers ({retries.detail})")
    if problems:
        raise AssertionFailed(
            "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""),
            "The answers above show what came back; -v shows every answer in full, --json as data.",
        )

"""`comethook listen`: wire the listener to the responder, history and display, and run until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from comethook_cli.errors import TunnelError, UnreachableError, UsageError
from comethook_cli.models import (
    DEFAULT_HISTORY_MAX_AGE_DAYS,
    DEFAULT_HISTORY_MAX_MB,
    DEFAULT_MAX_ANSWER,
    DEFAULT_MAX_BODY,
    DEFAULT_PORT,
)
from comethook_cli.outputs.wire import Ready

if TYPE_CHECKING:
    from comethook_cli.engine.listener import Answerer, Listener
    from comethook_cli.engine.store import HistoryWriter
    from comethook_cli.models import Exchange, Rejection
    from comethook_cli.outputs.views import View

WEBHOOK_PATH = "/webhook"


@dataclass(frozen=True)
class ListenArgs:
    """The parsed flags of `comethook listen`."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_body: int = DEFAULT_MAX_BODY
    basic_auth: str | None = None
    respond: str = "pass"
    drop_if: str | None = None
    rules: str | None = None
    delay_ms: float = 0
    status: int = 200
    verbose: bool = False
    quiet: bool = False
    json_out: bool = False
    history: bool = True
    history_max_mb: int = DEFAULT_HISTORY_MAX_MB
    history_max_age: float = DEFAULT_HISTORY_MAX_AGE_DAYS
    max_events: int | None = None
    timeout: float | None = None
    forward_to: Sequence[str] = field(default_factory=tuple)
    routes: Sequence[str] = field(default_factory=tuple)
    forward_timeout: float = 30.0
    fallback: str = "error"
    tunnel: str = "auto"
    ngrok_path: str | None = None
    ngrok_authtoken: str | None = None
    domain: str | None = None
    region: str | None = None
    install_ngrok: bool = False
    tunnel_timeout: float = 10.0
    max_answer: int = DEFAULT_MAX_ANSWER


class ListenView:
    """Turns listener callbacks into output: NDJSON lines, or the human display."""

    def __init__(self, args: ListenArgs, view: View) -> None:
        self.args = args
        self.view = view
        self.events = 0
        self.started = False
        self.done = asyncio.Event()
        self.interactive = view.interactive

    def confirm(self, prompt: str) -> bool:
        """Ask a yes/no question on the terminal (only when interactive)."""
        return self.view.confirm(prompt)

    def on_exchange(self, exchange: Exchange) -> None:
        """Show one delivery, and stop once --max-events have arrived."""
        self.events += 1
        self.view.event(exchange)
        if self.args.max_events is not None and self.events >= self.args.max_events:
            self.done.set()

    def output_closed(self) -> None:
        """Whoever read the NDJSON went away (`| head -1`): nobody sees what arrives, so stop."""
        self.view.note("The reader of the output went away; stopping.", style="yellow")
        self.done.set()

    def on_rejected(self, rejection: Rejection) -> None:
        """One line for a refused request (not an event)."""
        self.view.rejected(rejection)

    def on_warning(self, message: str) -> None:
        """A warning on stderr."""
        self.view.warning(message)

    def on_fatal(self, message: str) -> None:
        """Something ends the session (the tunnel died): an NDJSON error line; the error funnel says it on stderr."""
        self.view.fatal(message)


def build_answerer(args: ListenArgs, view: ListenView) -> tuple[Answerer, str, Any]:
    """The responder (canned answers) or the forwarder (the developer's app); returns (answerer, banner line, closer)."""
    from comethook_cli.cometchat import rules as responder

    respond = responder.parse_respond(args.respond)
    drop_if = responder.compile_regex(args.drop_if, "--drop-if") if args.drop_if else None
    rules = responder.load_rules(args.rules) if args.rules else []
    if not 100 <= args.status <= 599:
        raise UsageError(f"--status {args.status} is not an HTTP status code.", "Use 100-599, e.g. --status 503.")
    canned = responder.Responder(respond, drop_if, rules, args.delay_ms, args.status)
    if not args.forward_to and not args.routes:
        return canned, canned.describe(), None
    from comethook_cli.engine.forwarder import Forwarder

    forwarder = Forwarder.from_options(
        args.forward_to, args.routes, args.forward_timeout, args.fallback, view.on_warning, canned, args.max_answer
    )
    return forwarder, forwarder.describe(), forwarder.close


def open_history(args: ListenArgs, view: ListenView) -> HistoryWriter | None:
    """The history writer, with retention; a damaged file is set aside, and if even that fails, the
    session runs without history (loudly) rather than not at all."""
    from comethook_cli.engine.store import HistoryDamaged, HistoryWriter, Retention, default_path

    if args.history_max_mb < 0 or args.history_max_age < 0:
        raise UsageError("--history-max-mb and --history-max-age cannot be negative.", "Use 0 to turn a cap off.")
    retention = Retention.from_options(args.history_max_mb, args.history_max_age)
    try:
        return HistoryWriter(default_path(), retention, view.on_warning)
    except HistoryDamaged as damaged:  # and it could not be set aside either
        view.on_warning(f"HISTORY IS OFF for this session: {damaged.message} {damaged.hint}")
        return None


def run(args: ListenArgs) -> None:
    """Listen until Ctrl-C, --max-events, or --timeout."""
    from comethook_cli.engine.listener import LOOPBACK, Listener, ListenerConfig
    from comethook_cli.engine.sender import basic_auth_header
    from comethook_cli.outputs.views import WireView, view

    if args.basic_auth:
        basic_auth_header(args.basic_auth)  # validates USER:PASS
    if args.max_body < 1:
        raise UsageError("--max-body must be at least 1 byte.", "The default is 1048576 (1 MiB).")
    shown = view(args.json_out, quiet=args.quiet, verbose=args.verbose)
    listen_view = ListenView(args, shown)
    if isinstance(shown, WireView):
        shown.writer.on_closed = listen_view.output_closed
    answerer, answering, close_answerer = build_answerer(args, listen_view)
    history = open_history(args, listen_view) if args.history else None
    listener = Listener(
        ListenerConfig(args.host, args.port, args.max_body, args.basic_auth),
        answerer,
        listen_view.on_exchange,
        listen_view.on_rejected,
        listen_view.on_warning,
        history,
    )
    if args.host not in LOOPBACK:
        shown.warning(f"listening on {args.host}: anyone who can reach this machine can post to it.")
    try:
        asyncio.run(_serve(listener, args, listen_view, answering, close_answerer))
    except KeyboardInterrupt:
        pass  # Ctrl-C is the normal way to stop a listener: exit 0
    finally:
        if history is not None:
            history.close()
        if listen_view.started:
            shown.stopped(listen_view.events)


async def _serve(listener: Listener, args: ListenArgs, view: ListenView, answering: str, close_answerer: Any) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signum, view.done.set)
    await listener.start()
    tunnel = None
    try:
        tunnel = await _open_tunnel(listener, args, view)
        listener.tunnel_open = tunnel is not None
        public_url = tunnel.public_url if tunnel is not None else None
        _announce(listener, args, view, answering, public_url)
        waiters = [asyncio.ensure_future(view.done.wait())]
        if tunnel is not None:
            waiters.append(asyncio.ensure_future(tunnel.watch()))
        done, pending = await asyncio.wait(waiters, timeout=args.timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()
        for waiter in done:
            try:
                waiter.result()  # a dead tunnel raises TunnelError here
            except TunnelError as error:
                view.on_fatal(error.message)
                raise
        if not done and args.max_events is not None:
            raise UnreachableError(
                f"Only {view.events} of {args.max_events} events arrived within {args.timeout:g} s.",
                "Check the webhook URL and triggers in the CometChat Dashboard, or raise --timeout.",
            )
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                loop.remove_signal_handler(signum)
        await listener.stop()
        if close_answerer is not None:
            await close_answerer()
        if tunnel is not None:
            await tunnel.close()


async def _open_tunnel(listener: Listener, args: ListenArgs, view: ListenView) -> Any:
    """Open the ngrok tunnel when asked (or when auto finds a token); None when listening locally."""
    if args.tunnel == "off":
        return None
    from comethook_cli.engine import tunnel

    options = tunnel.TunnelOptions(
        ngrok_path=args.ngrok_path, authtoken=args.ngrok_authtoken, domain=args.domain, region=args.region,
        install=args.install_ngrok, required=args.tunnel == "on", startup_timeout=args.tunnel_timeout,
        confirm_install=view.confirm if view.interactive else None,
    )  # fmt: skip
    return await tunnel.open_for(listener.port, options, view.on_warning)


def _announce(listener: Listener, args: ListenArgs, view: ListenView, answering: str, public_url: str | None) -> None:
    view.started = True
    local = listener.local_url
    webhook_url = (public_url or local) + WEBHOOK_PATH
    lines = [("Local", local), ("Public", public_url or "none (listening locally; see below)")]
    lines.append(("Webhook URL", webhook_url))
    lines.append(("", "Paste it in the CometChat Dashboard: your app → Settings → Webhooks (current triggers),"))
    lines.append(("", "or Settings → Legacy Webhooks for before_message / after_message. Tick the triggers you want;"))
    lines.append(("", "receipts, reactions, group and call events each need their own checkbox."))
    if public_url is None:
        lines.append(("", "CometChat cannot reach a local URL: set NGROK_AUTHTOKEN (or --ngrok-authtoken) for a tunnel."))
    lines.append(("Basic auth", "on (credentials required)" if args.basic_auth else "off (anyone with the URL can post)"))
    lines.append(("before_message", answering))
    if listener.history is not None:
        lines.append(("History", f"{listener.history.path} (keeps {listener.history.retention.describe()})"))
    else:
        lines.append(("History", "off (--no-history)" if not args.history else "OFF (damaged; see the warning above)"))
    lines.append(("", "Press Ctrl-C to stop."))
    view.view.ready(Ready(local, public_url, webhook_url), lines)

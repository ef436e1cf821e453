"""`comethook listen`: a ListenConfig from the flags, a view on the session's hub, and run until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO, cast

from comethook_cli import speedups
from comethook_cli.errors import TunnelError

if TYPE_CHECKING:
    from comethook_cli.engine.config import ListenConfig
    from comethook_cli.engine.session import Session
    from comethook_cli.inspector.server import Inspector
    from comethook_cli.outputs.stream import BackgroundStream
    from comethook_cli.outputs.views import View


@dataclass(frozen=True)
class InspectorChoice:
    """--no-inspector, --inspector-port, --open."""

    enabled: bool = True
    port: int | None = None
    open: bool = False


def run(
    config: ListenConfig,
    json_out: bool = False,
    quiet: bool = False,
    verbose: bool = False,
    inspector: InspectorChoice = InspectorChoice(),
) -> None:
    """Listen until Ctrl-C, --max-events, or --timeout."""
    from comethook_cli.engine.session import Session
    from comethook_cli.outputs.stream import BackgroundStream
    from comethook_cli.outputs.views import view

    # stdout is written by a thread of its own: a terminal or a reader that stops reading never holds up an answer.
    stream = BackgroundStream(sys.stdout)
    shown = view(json_out, quiet=quiet, verbose=verbose, stream=cast(TextIO, stream))  # a text stream, as far as writers go
    stream.overflow_note = shown.overflow_note
    session = Session(
        config, on_warning=shown.warning, confirm_install=_interruptible(shown.confirm) if shown.interactive else None
    )
    session.hub.subscribe(shown)  # the view takes the hub's records itself (View is a models.RecordHandler)
    try:
        session.prepare()  # a bad option is a usage error before anything opens
        speedups.run(_serve(session, shown, stream, inspector))
    except StartInterrupted:
        raise KeyboardInterrupt from None  # the funnel says "Interrupted.", exit 130
    except KeyboardInterrupt:
        if not session.started:
            raise  # Ctrl-C before the listener served (a question, a tunnel still opening): interrupted, exit 130
        # Ctrl-C is the normal way to stop a listener: exit 0
    finally:
        if session.started:
            shown.stopped(session.events)
        stream.close()


class StartInterrupted(Exception):
    """Ctrl-C before the listener served: a plain exception, so it leaves the event loop like any other."""


def _interruptible(confirm: Callable[[str], bool]) -> Callable[[str], bool]:
    """The question with Python's own Ctrl-C handling back for its duration: the event loop's handler only sets a
    flag, which a blocking read of the answer never sees, so Ctrl-C would hang there."""

    def ask(prompt: str) -> bool:
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return confirm(prompt)
        except KeyboardInterrupt:
            raise StartInterrupted from None
        finally:
            signal.signal(signal.SIGINT, previous)

    return ask


async def _serve(session: Session, shown: View, stream: BackgroundStream, choice: InspectorChoice = InspectorChoice()) -> None:
    loop = asyncio.get_running_loop()
    page: Inspector | None = None

    def reader_gone() -> None:  # on the writer thread
        loop.call_soon_threadsafe(_reader_gone, session, shown)

    stream.on_broken = reader_gone
    starting = asyncio.ensure_future(session.startup())
    # While starting (a tunnel that is still opening), Ctrl-C cancels the start-up at once: the agent is killed.
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signum, starting.cancel)
    try:
        try:
            await starting
        except asyncio.CancelledError:
            raise StartInterrupted from None
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                loop.add_signal_handler(signum, session.stop)
        from comethook_cli.outputs.wire import Ready

        if choice.enabled:
            from comethook_cli.commands.inspect import open_browser, start_for_session

            page = await start_for_session(session, choice.port, shown.note)
        inspector_url = page.url if page is not None else None
        shown.ready(
            Ready(session.local_url, session.public_url, session.webhook_url, inspector_url), banner(session, inspector_url)
        )
        if page is not None and choice.open:
            open_browser(page.url)
        try:
            await session.serve()
        except TunnelError as error:
            shown.fatal(error.message)
            raise
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                loop.remove_signal_handler(signum)
        if page is not None:
            await page.stop()
        await session.shutdown()


def _reader_gone(session: Session, shown: View) -> None:
    """Whoever read the output went away (`| head -1`): nobody sees what arrives, so stop."""
    shown.note("The reader of the output went away; stopping.", style="yellow")
    session.stop()


def parse_events(spec: str | None, warn: Callable[[str], None]) -> tuple[str, ...]:
    """`--events before_message,message_sent` / `legacy` / `current` / `all` → what ListenConfig.events holds."""
    from comethook_cli.cometchat.payloads import known_trigger
    from comethook_cli.errors import UsageError

    if spec is None:
        return ()
    chosen: list[str] = []
    for part in (p.strip().lower() for p in spec.split(",")):
        if not part:
            continue
        if part == "all":
            return ()
        if part in ("legacy", "current"):
            chosen.append(part)
            continue
        name, known = known_trigger(part, "--events")
        if not known:
            warn(f"--events {part}: not a trigger comethook knows; kept anyway (CometChat adds triggers).")
        chosen.append(name)
    if not chosen:
        raise UsageError("--events is empty.", "Name triggers separated by commas, or legacy, current or all.")
    return tuple(dict.fromkeys(chosen))


def local_only_advice(session: Session) -> str:
    """Why there is no public URL, and what to do: advice that fits the reason (no token, --no-tunnel, a failure)."""
    tunnel = session.config.tunnel
    if tunnel.tunnel == "off":
        return "CometChat cannot reach a local URL: --no-tunnel keeps it local (drop it to open an ngrok tunnel)."
    from comethook_cli.engine.tunnel import find_authtoken

    if find_authtoken(tunnel) is None:
        return (
            "CometChat cannot reach a local URL. For a public one: get an ngrok authtoken (free) at "
            "https://dashboard.ngrok.com/get-started/your-authtoken, set NGROK_AUTHTOKEN, and run again "
            "(add --install-ngrok if the ngrok agent is not installed)."
        )
    # A token is there, so the tunnel failed: the warning above says why (agent missing, offline, too slow ...).
    return "CometChat cannot reach a local URL: the tunnel did not open (see the warning above); fix that and restart."


def banner(session: Session, inspector_url: str | None = None) -> list[tuple[str, str]]:
    """The start-up banner's rows: where to point CometChat, who answers, where the history goes."""
    config = session.config
    public = session.public_url
    lines = [("Local", session.local_url), ("Public", public or "none: listening locally")]
    if public is None:
        lines.append(("", local_only_advice(session)))
    lines.append(("Webhook URL", session.webhook_url))
    lines.append(
        (
            "",
            "Paste it in the CometChat Dashboard: your app → Settings → Webhooks (current triggers), "
            "or Settings → Legacy Webhooks for before_message / after_message. Tick the triggers you want; "
            "receipts, reactions, group and call events each need their own checkbox.",
        )
    )
    if inspector_url is not None:
        lines.append(("Inspector", f"{inspector_url} (this machine only)"))
    basic_auth = "on (credentials required)" if config.listener.basic_auth else "off (anyone with the URL can post)"
    lines.append(("Basic auth", basic_auth))
    if config.events:
        lines.append(("Events", f"only {', '.join(config.events)} (others are answered, not stored or shown)"))
    forwarded = config.forward.enabled
    lines.append(
        ("Answers", session.answering if forwarded else f"before_message: {session.answering}; other triggers: 2xx {{}}")
    )
    if session.history is not None:
        lines.append(("History", f"{session.history.path} (keeps {session.history.retention.describe()})"))
    else:
        lines.append(("History", "off (--no-history)"))
    lines.append(("", "Press Ctrl-C to stop."))
    return lines

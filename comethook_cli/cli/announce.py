"""What `listen` tells the person who runs it around serving: the banner's rows (where CometChat must point, and a
public URL that changed since the last run), progress while the ngrok agent starts, and what a second Ctrl-C dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from comethook_cli.engine.session import Session
    from comethook_cli.outputs.views import View


def second_ctrl_c(loop: asyncio.AbstractEventLoop, session: Session, shown: View) -> None:
    """Ctrl-C again while the answers in flight finish: stop now, and say how many deliveries that drops."""
    dropped = session.force_stop()
    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
        loop.remove_signal_handler(signal.SIGINT)  # a third Ctrl-C interrupts whatever is left
    if dropped:
        shown.warning(
            f"Stopped without waiting: {dropped} deliver{'y' if dropped == 1 else 'ies'} in flight dropped unanswered "
            f"(CometChat sends {'it' if dropped == 1 else 'them'} again where retryOnFailure is on)."
        )
    else:
        shown.note("Stopped without waiting (no delivery was in flight).")


class Opening:
    """Progress on stderr while the ngrok agent starts (the session calls start(); finish() when startup ends)."""

    def __init__(self, shown: View, session: Session) -> None:
        self.shown = shown
        self.session = session
        self.ticker: Any = None

    def start(self) -> None:
        """The agent is starting."""
        self.ticker = self.shown.human.ticker("opening the ngrok tunnel")

    def finish(self, starting: asyncio.Future[None]) -> None:
        """Startup ended: the tunnel opened, failed, or the start was interrupted."""
        if self.ticker is None:
            return
        ticker, self.ticker = self.ticker, None
        if not starting.done() or starting.cancelled():
            ticker.finish("interrupted while opening the ngrok tunnel")
        else:
            ticker.finish("ngrok tunnel open" if self.session.tunnel is not None else "the ngrok tunnel did not open")


def local_only_advice(session: Session) -> str:
    """Why there is no public URL, and how to get one: advice that fits the reason (no token, --no-tunnel, a failure)."""
    tunnel = session.config.tunnel
    own = "or run your own tunnel to this listener and pass its address with --public-url"
    if tunnel.mode == "off":
        return f"CometChat cannot reach a local URL. For a public one, drop --no-tunnel (an ngrok tunnel), {own}."
    from comethook_cli.engine.tunnel import find_authtoken

    if find_authtoken(tunnel) is None:
        return (
            "CometChat cannot reach a local URL. For a public one: get an ngrok authtoken (free) at "
            "https://dashboard.ngrok.com/get-started/your-authtoken, set NGROK_AUTHTOKEN (or run `ngrok config "
            f"add-authtoken TOKEN`), and run again (add --install-ngrok if the ngrok agent is not installed); {own}."
        )
    # A token is there, so the tunnel failed: the warning above says why (agent missing, offline, too slow ...).
    return f"CometChat cannot reach a local URL: the tunnel did not open (see the warning above); fix that and restart, {own}."


PASTE = (
    "Paste it in the CometChat Dashboard: your app → Settings → Webhooks (current triggers), or Settings → Legacy "
    "Webhooks for before_message / after_message. Tick the triggers you want; receipts, reactions, group and call "
    "events each need their own checkbox."
)


def public_rows(session: Session) -> list[tuple[str, str]]:
    """The banner's rows about the public URL: where it comes from, what to paste, and a URL that changed since last run."""
    public = session.public_url
    if public is None:
        return [
            ("Public", "none: listening locally"),
            ("", local_only_advice(session)),
            ("Webhook URL", session.webhook_url),
            ("", "On this machine only: for `comethook send` and your tests, not for the CometChat Dashboard."),
        ]
    tunnel = session.tunnel
    origin = tunnel.origin if tunnel is not None else "your own tunnel (--public-url), probed through itself"
    lines = [("Public", public), ("Tunnel", origin), ("Webhook URL", session.webhook_url), ("", PASTE)]
    previous = session.previous_public_url
    if previous is not None:
        lines.append(
            (
                "URL changed",
                f"the last run announced {previous}: CometChat still calls that one until you paste the new URL in the "
                "Dashboard. To keep one URL across restarts, claim ngrok's free static domain "
                "(https://dashboard.ngrok.com/domains) and pass it with --domain, or use --public-url with a tunnel of your own.",
            )
        )
    return lines


def banner(session: Session, inspector_url: str | None = None) -> list[tuple[str, str]]:
    """The start-up banner's rows: where to point CometChat, who answers, where the history goes."""
    config = session.config
    lines = [("Local", session.local_url), *public_rows(session)]
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

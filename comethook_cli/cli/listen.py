"""`comethook listen`: its options (one group per config section), a ListenConfig from them, a view on the session's
hub, and run until told to stop.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, TextIO, cast

from comethook_cli import speedups
from comethook_cli.errors import ComethookError, TunnelError

if TYPE_CHECKING:
    from comethook_cli.engine.config import ListenConfig
    from comethook_cli.engine.session import Session
    from comethook_cli.inspector.server import Inspector
    from comethook_cli.outputs.stream import BackgroundStream
    from comethook_cli.outputs.views import View


import typer

from comethook_cli.cli import completion, options
from comethook_cli.cli.app import App, flag_warnings, funnel, said
from comethook_cli.cli.options import (
    BasicAuth,
    BasicAuthFile,
    InspectorPort,
    JsonOut,
    NgrokAuthtoken,
    NoInspector,
    OpenBrowser,
    warn_password_on_argv,
)
from comethook_cli.engine.config import AnswerConfig, ForwardConfig, HistoryConfig, ListenerConfig, TunnelConfig, default
from comethook_cli.models import DEFAULT_HISTORY_MAX_AGE_DAYS, DEFAULT_HISTORY_MAX_MB

app = App()  # what the root group takes this command from

# --- the options: one group per section of its config (engine/config.py), defaults read from there ---------

Host = Annotated[str, typer.Option("--host", help="Interface to bind (warns when not loopback).", rich_help_panel="Listener")]
Port = Annotated[
    int, typer.Option("--port", "-p", min=0, max=65535, help="Port; 0 picks a free one.", rich_help_panel="Listener")
]
MaxBody = Annotated[
    int,
    typer.Option("--max-body", metavar="BYTES", min=1, help="Largest body accepted (413 above).", rich_help_panel="Listener"),
]
AllowBrowserOrigin = Annotated[
    bool,
    typer.Option(
        "--allow-browser-origin",
        help="Accept requests with an Origin header (sent by web browsers, never by CometChat; refused with 403 otherwise).",
        rich_help_panel="Listener",
    ),
]
Respond = Annotated[
    str,
    typer.Option(
        "--respond",
        metavar="pass|drop|inject:JSON|inject:@FILE",
        help="Answer to before_message.",
        rich_help_panel="Answers",
        autocompletion=completion.answers,
    ),
]
DropIf = Annotated[
    str | None,
    typer.Option("--drop-if", metavar="REGEX", help="Drop before_message whose text matches.", rich_help_panel="Answers"),
]
Rules = Annotated[
    str | None,
    typer.Option(
        "--rules", metavar="FILE", help="JSON list of match → action rules (first match wins).", rich_help_panel="Answers"
    ),
]
Delay = Annotated[
    float, typer.Option("--delay", metavar="MS", min=0, help="Wait before every answer.", rich_help_panel="Answers")
]
Status = Annotated[
    int, typer.Option("--status", metavar="CODE", help="HTTP status of every canned answer.", rich_help_panel="Answers")
]
ForwardTo = Annotated[
    list[str] | None,
    typer.Option(
        "--forward-to",
        "-f",
        metavar="URL",
        callback=warn_password_on_argv,
        help="Relay to your app (8000, :8000/hook, /hook → localhost:8000). Repeatable: first is primary, others get copies.",
        rich_help_panel="Forwarding",
    ),
]
Route = Annotated[
    list[str] | None,
    typer.Option(
        "--route",
        metavar="TRIGGER=URL",
        callback=warn_password_on_argv,
        help="Send one trigger to its own primary target. Repeatable.",
        rich_help_panel="Forwarding",
    ),
]
ForwardTimeout = Annotated[
    float,
    typer.Option(
        "--forward-timeout",
        metavar="SECONDS",
        min=0.001,
        help="How long to wait for your app.",
        rich_help_panel="Forwarding",
    ),
]
Fallback = Annotated[
    str,
    typer.Option(
        "--fallback",
        metavar="error|pass|drop",
        help="Answer when your app is down or times out.",
        rich_help_panel="Forwarding",
        autocompletion=completion.fallbacks,
    ),
]
ForwardMaxAnswer = Annotated[
    int,
    typer.Option(
        "--max-answer",
        metavar="BYTES",
        min=1,
        help="Largest answer read from your app (else --fallback).",
        rich_help_panel="Forwarding",
    ),
]
Tunnel = Annotated[
    bool | None,
    typer.Option(
        "--tunnel/--no-tunnel",
        help="Require an ngrok tunnel / never open one. Default: open one when an authtoken is available.",
        rich_help_panel="Tunnel",
    ),
]
NgrokPath = Annotated[
    str | None,
    typer.Option(
        "--ngrok-path",
        metavar="PATH",
        envvar="COMETHOOK_NGROK_PATH",
        help="The ngrok agent executable.",
        rich_help_panel="Tunnel",
    ),
]
Domain = Annotated[
    str | None,
    typer.Option("--domain", help="Reserved ngrok domain, so the Dashboard URL survives restarts.", rich_help_panel="Tunnel"),
]
TunnelRegion = Annotated[
    str | None, typer.Option("--region", help="ngrok region (us, eu, ap, au, sa, jp, in).", rich_help_panel="Tunnel")
]
InstallNgrok = Annotated[
    bool,
    typer.Option(
        "--install-ngrok",
        "--yes",
        "-y",
        help="Download the ngrok agent if it is missing, without asking (listen's only question; never asked off a terminal).",
        rich_help_panel="Tunnel",
    ),
]
TunnelTimeout = Annotated[
    float,
    typer.Option(
        "--tunnel-timeout",
        metavar="SECONDS",
        min=1,
        help="How long the ngrok agent gets to open the tunnel.",
        rich_help_panel="Tunnel",
    ),
]
PublicUrl = Annotated[
    str | None,
    typer.Option(
        "--public-url",
        metavar="URL",
        help="The public URL of your own tunnel (cloudflared, Tailscale Funnel, a proxy) to this listener: no ngrok tunnel "
        "is opened; this URL is shown, probed and remembered.",
        rich_help_panel="Tunnel",
    ),
]
NoHistory = Annotated[bool, typer.Option("--no-history", help="Do not store exchanges.", rich_help_panel="History")]
HistoryMaxMb = Annotated[
    float,
    typer.Option(
        "--history-max-mb",
        metavar="MiB",
        min=0,
        help="Keep the history under this size, oldest out first (0: no cap).",
        rich_help_panel="History",
    ),
]
HistoryMaxAge = Annotated[
    float,
    typer.Option(
        "--history-max-age",
        metavar="DAYS",
        min=0,
        help="Delete exchanges older than this (0: keep them).",
        rich_help_panel="History",
    ),
]
KeepSecrets = Annotated[
    bool,
    typer.Option(
        "--keep-secrets",
        help="Store secret query values (?token=, ?api_key=) exactly, so replays send them. Displays and exports "
        "still redact them.",
        rich_help_panel="History",
    ),
]


@app.command()
@funnel
def listen(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also show headers (redacted) and bodies.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing per event.")] = False,
    json_out: JsonOut = False,
    max_events: Annotated[int | None, typer.Option("--max-events", min=1, help="Stop after N events (exit 0).")] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            min=0.001,
            help="Stop after SECONDS: exit 4 when --max-events were asked for and have not all arrived, else exit 0.",
        ),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option(
            "--events",
            metavar="NAME,NAME|legacy|current",
            help="Store and show only these triggers; others are still answered, shown as one dim line.",
        ),
    ] = None,
    inspector_port: InspectorPort = None,
    no_inspector: NoInspector = False,
    open_browser: OpenBrowser = False,
    # Each panel of the help lists its options in this order.
    no_history: NoHistory = not default(HistoryConfig, "enabled"),
    history_max_mb: HistoryMaxMb = DEFAULT_HISTORY_MAX_MB,
    history_max_age: HistoryMaxAge = DEFAULT_HISTORY_MAX_AGE_DAYS,
    keep_secrets: KeepSecrets = default(HistoryConfig, "keep_secrets"),
    tunnel: Tunnel = None,
    ngrok_path: NgrokPath = default(TunnelConfig, "ngrok_path"),
    ngrok_authtoken: NgrokAuthtoken = default(TunnelConfig, "ngrok_authtoken"),
    domain: Domain = default(TunnelConfig, "domain"),
    region: TunnelRegion = default(TunnelConfig, "region"),
    install_ngrok: InstallNgrok = default(TunnelConfig, "install_ngrok"),
    tunnel_timeout: TunnelTimeout = default(TunnelConfig, "timeout"),
    public_url: PublicUrl = default(TunnelConfig, "public_url"),
    forward_to: ForwardTo = None,
    route: Route = None,
    forward_timeout: ForwardTimeout = default(ForwardConfig, "timeout"),
    fallback: Fallback = default(ForwardConfig, "fallback").value,
    max_answer: ForwardMaxAnswer = default(ForwardConfig, "max_answer"),
    respond: Respond = "pass",  # AnswerConfig's default action
    drop_if: DropIf = None,
    rules: Rules = None,
    delay: Delay = default(AnswerConfig, "delay") * 1000,
    status: Status = default(AnswerConfig, "status"),
    host: Host = default(ListenerConfig, "host"),
    port: Port = default(ListenerConfig, "port"),
    max_body: MaxBody = default(ListenerConfig, "max_body"),
    basic_auth: BasicAuth = default(ListenerConfig, "basic_auth"),
    basic_auth_file: BasicAuthFile = None,
    allow_browser_origin: AllowBrowserOrigin = default(ListenerConfig, "allow_browser_origin"),
) -> None:
    """Listen for CometChat deliveries (through an ngrok tunnel), show each one, answer before_message.

    \f
    Over 60 lines only by its 40 option declarations: the body is the config sections built from them."""
    from comethook_cli.engine import values
    from comethook_cli.engine.config import ListenConfig
    from comethook_cli.outputs.terminal import Renderer

    warn = flag_warnings(Renderer().warning)
    # Built in this order, as each can stop with a usage error (or ask for a password): the order in which a user with
    # several bad values has always been told of them.
    listener = ListenerConfig(
        host=host, port=port, max_body=max_body, basic_auth=options.basic_auth(basic_auth, basic_auth_file),
        allow_browser_origin=allow_browser_origin,
    )  # fmt: skip
    tunnel_section = tunnel_config(
        tunnel, ngrok_path=ngrok_path, ngrok_authtoken=ngrok_authtoken, domain=domain, region=region,
        install_ngrok=install_ngrok, timeout=tunnel_timeout, public_url=public_url,
    )  # fmt: skip
    chosen = values.events(events, warn)
    answers = answer_config(respond=respond, drop_if=drop_if, rules=rules, delay=delay, status=status)
    forward = ForwardConfig(
        fallback=values.fallback(fallback), targets=values.targets(forward_to or ()), routes=values.routes(route or (), warn),
        timeout=forward_timeout, max_answer=max_answer,
    )  # fmt: skip
    history_section = HistoryConfig(not no_history, values.retention(history_max_mb, history_max_age), keep_secrets)
    config = ListenConfig(listener, answers, forward, tunnel_section, history_section, max_events, timeout, chosen)
    inspector = InspectorChoice(not no_inspector, inspector_port, open_browser)
    run(config, json_out=json_out, quiet=quiet, verbose=verbose, inspector=inspector)


def answer_config(respond: str, drop_if: str | None, rules: str | None, delay: float, status: int) -> AnswerConfig:
    """The Answers panel's values → AnswerConfig: the rules of the --rules file, else [[listen.rules]] of the project
    file. The files (--rules, --respond inject:@FILE) are read here, by the adapter; engine/values.py parses the rest."""
    from comethook_cli.cli.project import active
    from comethook_cli.engine import values

    action = options.respond_action(respond)
    if rules is not None:
        loaded = options.load_rules(rules)
    else:
        project = active()  # [[listen.rules]], parsed where the file was read
        loaded = project.inline_rules if project is not None and project.inline_rules else ()
    return AnswerConfig(action, values.drop_if(drop_if), loaded, values.delay_seconds(delay), status)


def tunnel_config(
    tunnel: bool | None, *, domain: str | None, region: str | None, public_url: str | None, **rest: Any
) -> TunnelConfig:
    """TUNNEL's values → TunnelConfig (--tunnel/--no-tunnel/neither → on/off/auto). --domain needs the ngrok tunnel and
    --public-url replaces it: the combinations that cannot both hold are usage errors."""
    from comethook_cli.engine import values
    from comethook_cli.errors import UsageError

    name = values.domain(domain)
    ngrok_region = values.ngrok_region(region)
    if name and tunnel is False:
        raise UsageError(
            "--domain names the ngrok domain of a tunnel, and --no-tunnel opens none.",
            "Drop --no-tunnel to open the tunnel on that domain, or drop --domain to listen locally.",
        )
    url = values.public_url(public_url) if public_url is not None else None
    if url is not None and (tunnel or name):
        raise UsageError(
            f"--public-url is your own tunnel, and {'--tunnel' if tunnel else '--domain'} asks for an ngrok one.",
            "Use one or the other.",
        )
    mode: Literal["auto", "on", "off"] = "auto" if tunnel is None else "on" if tunnel else "off"
    return TunnelConfig(mode=mode, domain=name, region=ngrok_region, public_url=url, **rest)


# --- the command's body ------------------------------------------------------------------------------------


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
    confirm = _interruptible(shown.confirm) if shown.interactive else None
    session = Session(config, on_warning=flag_warnings(shown.warning), confirm_install=confirm)
    session.hub.subscribe(shown)  # the view takes the hub's records itself (View is a models.RecordHandler)
    try:
        session.prepare()  # a bad option is a usage error before anything opens
        speedups.run(_serve(session, shown, stream, inspector))
    except StartInterrupted:
        raise KeyboardInterrupt from None  # the funnel says "Interrupted.", exit 130
    except ComethookError as error:
        if shown.announced and not error.reported:  # its `error` record goes before `stopped`, the last line
            shown.fatal(said(error)[0], int(error.exit_code), said(error)[1])
            error.reported = True
        raise
    except KeyboardInterrupt:
        if not session.started:
            raise  # Ctrl-C before the listener served (a question, a tunnel still opening): interrupted, exit 130
        # Ctrl-C is the normal way to stop a listener: exit 0
    finally:
        if shown.announced:  # no "Stopped after 0 events." before the error of a listener that never served
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
    """Start (Ctrl-C cancels a tunnel still opening), say `ready`, serve until stopped, shut down (Ctrl-C says what drops)."""
    loop = asyncio.get_running_loop()
    page: Inspector | None = None

    def reader_gone() -> None:  # on the writer thread; after Ctrl-C on `| jq` (jq stopped too), the loop may be closed
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_reader_gone, session, shown)

    stream.on_broken = reader_gone
    from comethook_cli.cli.announce import Opening, second_ctrl_c
    from comethook_cli.engine import runtime

    opening = Opening(shown, session)
    session.on_tunnel_opening = opening.start
    starting = asyncio.ensure_future(session.startup())
    _on_signals(loop, (signal.SIGINT, signal.SIGTERM), starting.cancel)  # a start-up is cancelled at once: no agent left
    try:
        try:
            await starting
        except asyncio.CancelledError:
            raise StartInterrupted from None
        finally:
            opening.finish(starting)
        _on_signals(loop, (signal.SIGINT, signal.SIGTERM), session.stop)
        page = await _announce(session, shown, choice)
        runtime.follow(session, page.url if page is not None else None)
        try:
            await session.serve()
        except TunnelError as error:
            shown.fatal(said(error)[0], int(error.exit_code), said(error)[1])
            error.reported = True  # written now, in order before `stopped`: the funnel writes no second one
            raise
    finally:
        _on_signals(loop, (signal.SIGTERM,), None)
        _on_signals(loop, (signal.SIGINT,), second_ctrl_c, loop, session, shown)
        try:
            runtime.withdraw()
            if page is not None:
                await page.stop()
            await session.shutdown()
        finally:
            _on_signals(loop, (signal.SIGINT,), None)


def _on_signals(loop: asyncio.AbstractEventLoop, signums: tuple[int, ...], callback: Any, *args: Any) -> None:
    """`signums` call `callback(*args)` on the loop, or (None) have no handler; nothing where the loop cannot (Windows)."""
    for signum in signums:
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            if callback is None:
                loop.remove_signal_handler(signum)
            else:
                loop.add_signal_handler(signum, callback, *args)


async def _announce(session: Session, shown: View, choice: InspectorChoice) -> Inspector | None:
    """The inspector started (when it is on), then the `ready` record and the banner; the browser opened on request."""
    from comethook_cli.cli.announce import banner
    from comethook_cli.cli.inspect import open_browser, start_for_session
    from comethook_cli.outputs.wire import Ready

    page = await start_for_session(session, choice.port, shown.note) if choice.enabled else None
    url = page.url if page is not None else None
    shown.ready(Ready(session.local_url, session.public_url, session.webhook_url, url), banner(session, url))
    if page is not None and choice.open:
        open_browser(page.url)
    return page


def _reader_gone(session: Session, shown: View) -> None:
    """Whoever read the output went away (`| head -1`): nobody sees what arrives, so stop."""
    shown.note("The reader of the output went away; stopping.", style="yellow")
    session.stop()

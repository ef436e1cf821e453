"""`comethook inspect`: its options; and the inspector's start next to `listen`: the port, its fallback, --open.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from comethook_cli.cli.app import App, funnel
from comethook_cli.cli.options import OpenBrowser
from comethook_cli.errors import ListenerError
from comethook_cli.models import DEFAULT_PORT, Exchange

if TYPE_CHECKING:
    from comethook_cli.engine.history.writer import HistoryWriter
    from comethook_cli.engine.session import Session
    from comethook_cli.inspector.server import Inspector


app = App()  # what the root group takes this command from


@app.command()
@funnel
def inspect(
    inspector_port: Annotated[
        int | None,
        typer.Option(
            "--inspector-port", metavar="PORT", min=0, max=65535, help="Port of the page (default 8766; 0: a free one)."
        ),
    ] = None,
    open_browser: OpenBrowser = False,
) -> None:
    """Serve the inspector page on the stored history, without listening: browse, search, replay, export."""
    run(inspector_port, open_browser)


async def start(inspector: Inspector, requested: int | None, default: int, note: Callable[[str], None]) -> Inspector:
    """Start the inspector on the port asked for (taken: ListenerError), else on `default`, else on a free port."""
    inspector.port = requested if requested is not None else default
    try:
        await inspector.start()
    except ListenerError:
        if requested is not None or default == 0:
            raise
        inspector.port = 0  # the default port is taken (a second listen?): the inspector is not worth failing for
        await inspector.start()
        note(f"Port {default} is taken: the inspector is on port {inspector.port}.")
    return inspector


async def start_for_session(session: Session, requested: int | None, note: Callable[[str], None]) -> Inspector:
    """The inspector of a running `listen`: on the listener's port + 1 by default (with --port 0, a free one)."""
    from comethook_cli.inspector.server import default_port, inspector_for

    assert session.listener is not None
    inspector = inspector_for(session, 0)
    try:
        return await start(inspector, requested, default_port(None, session.config.listener.port), note)
    except BaseException:
        await inspector.stop()
        raise


def open_browser(url: str) -> None:
    """Open the page in the user's browser (stdlib webbrowser), off the event loop."""
    import webbrowser

    asyncio.get_running_loop().run_in_executor(None, webbrowser.open, url)


class _ReplaySink:
    """Where `inspect` stores the exchanges its replays make: the history writer, opened on the first one (so
    merely looking at the history never writes to it)."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn = warn
        self.writer: HistoryWriter | None = None

    async def record(self, exchange: Exchange) -> None:
        """Store one exchange (opening the writer first)."""
        from comethook_cli.engine.history.files import default_path
        from comethook_cli.engine.history.writer import HistoryWriter

        if self.writer is None:
            self.writer = HistoryWriter(default_path(), on_warning=self.warn)
        await self.writer.record(exchange)

    def close(self) -> None:
        """Close the writer if it was opened."""
        if self.writer is not None:
            self.writer.close()


def run(port: int | None, open_page: bool) -> None:
    """Serve the inspector on the stored history until Ctrl-C."""
    from comethook_cli.outputs.views import view

    shown = view(False)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the normal way to stop: exit 0
        asyncio.run(_serve(port, open_page, shown.note, shown.warning))


async def _serve(port: int | None, open_page: bool, note: Callable[..., None], warn: Callable[[str], None]) -> None:
    from comethook_cli.engine.history.reader import History
    from comethook_cli.engine.hub import Hub
    from comethook_cli.inspector.server import Inspector

    history = await asyncio.to_thread(History)
    sink = _ReplaySink(warn)
    inspector = Inspector(Hub(sink, warn), history)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await start(inspector, port, DEFAULT_PORT + 1, note)
        note(f"Inspector  {inspector.url}", style="bold")
        note(f"Reading the history at {history.path}. Press Ctrl-C to stop.")
        if open_page:
            open_browser(inspector.url)
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                loop.remove_signal_handler(signum)
        await inspector.stop()
        sink.close()

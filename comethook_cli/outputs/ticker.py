"""A line that shows a wait as it happens ("opening the ngrok tunnel… 2.1 s"): live on a terminal, one line in a log."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.text import Text


class Ticker:
    """ "opening the ngrok tunnel… 2.1 s": on a terminal a live line that counts the seconds (gone at the end); in a
    pipe or a log, one line at the start. finish() says how it ended and how long it took, in both."""

    def __init__(self, console: Console, label: str) -> None:
        self.console = console
        self.label = label
        self.started = time.monotonic()
        self._live: Any = None
        if console.is_terminal:
            from rich.live import Live

            self._live = Live(
                get_renderable=self._line, console=console, transient=True, refresh_per_second=10,
                redirect_stdout=False, redirect_stderr=False,
            )  # fmt: skip
            self._live.start()
        else:
            console.print(Text(f"{label}…", style="dim"))

    def _line(self) -> Text:
        return Text(f"{self.label}… {time.monotonic() - self.started:.1f} s", style="dim")

    def finish(self, outcome: str) -> None:
        """Stop the live line and say the outcome, with the time it took."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        self.console.print(Text(f"{outcome} ({time.monotonic() - self.started:.1f} s)", style="dim"))

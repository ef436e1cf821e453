"""Waking a worker thread from the event loop at most once per loop iteration, however much work the iteration queued.

Each wake-up hands the GIL to the worker thread, which stalls the loop; a worker that is busy takes whatever is queued
on its next round anyway, so only an idle one is woken, and only once. The history's writer thread
(engine/history/writer.py) and the output streams' writer thread (outputs/stream.py) both sleep on one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable


class LoopKick:
    """Wakes one worker thread that sleeps on `condition` (see `wait`) when `has_work()`.

    Its owner keeps its own state (a queue, a stopping flag) under the condition's lock, and calls every method with
    that lock held; only the callback `soon()` schedules takes the lock itself. Stopping is the owner's: it sets its
    flag and notifies the condition directly."""

    def __init__(self, condition: threading.Condition, has_work: Callable[[], bool]) -> None:
        self.condition = condition
        self._has_work = has_work
        #: The worker sleeps in wait(). Another thread may read it without the lock as a hint (the history's
        #: maintenance thread does: "no delivery is being written").
        self.idle = False
        self._scheduled = False

    def wait(self, ready: Callable[[], bool]) -> None:
        """In the worker: sleep until `ready()` (at once when it is), marked idle meanwhile so that work wakes it."""
        if ready():
            return
        self.idle = True
        try:
            self.condition.wait_for(ready)
        finally:
            self.idle = False

    def soon(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """After queuing work: wake an idle worker once this loop iteration ends (at once when no loop runs here)."""
        if not self.idle or self._scheduled:
            return
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # queued from outside an event loop: nobody would run the callback
                self.now()
                return
        self._scheduled = True
        loop.call_soon(self._kick)

    def now(self) -> None:
        """Wake the worker at once if it sleeps while work waits for it."""
        if self.idle and self._has_work():
            self.idle = False
            self.condition.notify()

    def _kick(self) -> None:
        with self.condition:
            self._scheduled = False
            self.now()

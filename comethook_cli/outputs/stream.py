"""Output streams: NdjsonWriter (one record a line, plainly), and a text stream whose blocking writes happen on a thread of their own, behind a bounded buffer.

The listener's outputs write here, so a terminal or a pipe reader that stops reading can never block
the event loop (and with it CometChat's answers). Each `write()` call is kept whole (callers write a
line at a time); past `limit` characters waiting, writes are dropped and counted, and once the reader
catches up one line (`overflow_note(dropped)`) says how many were lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from comethook_cli.engine.worker import LoopKick
from comethook_cli.outputs.wire import Record, encode

DEFAULT_LIMIT = 8 * 1024 * 1024


def silence(stream: TextIO) -> None:
    """The reader of `stream` is gone (`| head -1`): point its descriptor at /dev/null, so that what is still buffered,
    and the interpreter's last flush, are written nowhere instead of failing again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


class BackgroundStream(io.TextIOBase):
    """Wraps a real stream; `close()` (or `drain()`) writes out whatever is still waiting."""

    def __init__(
        self,
        stream: TextIO,
        limit: int = DEFAULT_LIMIT,
        overflow_note: Callable[[int], str] | None = None,
        on_broken: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.stream = stream
        self.limit = limit
        self.overflow_note = overflow_note
        self.on_broken = on_broken
        self.dropped = 0
        self.broken = False
        self._isatty: bool | None = None
        self._pending: list[str] = []
        self._size = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._writing = False
        #: Wakes the writer thread once per event-loop iteration, however many lines the iteration wrote.
        self._kick = LoopKick(self._wake, lambda: bool(self._pending))
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="comethook-output", daemon=True)
        self._thread.start()

    def writable(self) -> bool:
        """Always: writes never block."""
        return True

    def isatty(self) -> bool:
        """Whether the real stream is a terminal (rich decides colour and width from this). Asked of the real stream
        once: it does not change, and the answer costs a system call."""
        if self._isatty is None:
            self._isatty = False
            with contextlib.suppress(ValueError, OSError):
                self._isatty = self.stream.isatty()
        return self._isatty

    def fileno(self) -> int:
        """The real stream's descriptor."""
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The real stream's encoding."""
        return getattr(self.stream, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        """Queue `text` for the writer thread (dropped and counted when the buffer is full)."""
        if not text or self.broken:
            return len(text)
        with self._lock:
            if self._size + len(text) > self.limit:
                self.dropped += max(text.count("\n"), 1)
                return len(text)
            if self.dropped and self.overflow_note is not None:
                note, self.dropped = self.overflow_note(self.dropped), 0
                self._pending.append(note)
                self._size += len(note)
            self._pending.append(text)
            self._size += len(text)
            # A busy writer takes what is pending on its next round; an idle one is woken when this loop iteration
            # ends (at once when written from outside an event loop).
            self._kick.soon()
        return len(text)

    def flush(self) -> None:
        """Nothing to do: the writer thread flushes after every batch."""

    def drain(self, timeout: float | None = 5.0) -> None:
        """Wait until everything queued so far has been written (or the reader is gone)."""
        with self._lock:
            self._kick.now()  # its wake-up may still wait for an event-loop iteration
            self._idle.wait_for(lambda: (not self._pending and not self._writing) or self.broken, timeout)

    def close(self) -> None:
        """Write out what is waiting, then stop the thread."""
        if self.closed:
            return
        self.drain()
        with self._lock:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=5)
        super().close()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._kick.wait(lambda: bool(self._pending) or self._stopping)
                if not self._pending and self._stopping:
                    return
                batch, self._pending, self._size = self._pending, [], 0
                self._writing = True
            try:
                self.stream.write("".join(batch))
                self.stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                self._reader_gone()
            finally:
                with self._lock:
                    self._writing = False
                    self._idle.notify_all()
            if self.broken:
                return

    def _reader_gone(self) -> None:
        with self._lock:
            self.broken = True
            self._pending = []
            self._idle.notify_all()
        silence(self.stream)
        if self.on_broken is not None:
            self.on_broken()


class NdjsonWriter:
    """One JSON object per line on stdout, written plainly (never through rich), so `| jq` works.

    Inside a running event loop, `soon=True` batches the flush: one per loop iteration however many
    lines it wrote, so lines stay whole and prompt without a system call per line. When the reader
    goes away (`| head -1`), writing stops quietly and `on_closed` is called."""

    def __init__(self, stream: TextIO | None = None, on_closed: Callable[[], None] | None = None) -> None:
        self._stream = stream
        self._flush_scheduled = False
        self.on_closed = on_closed
        self.closed = False

    def write(self, record: Record, soon: bool = False) -> None:
        """Write one record as one line."""
        self.write_line(encode(record), soon)

    def write_line(self, line: str, soon: bool = False) -> None:
        """Write one already-encoded JSON object (no newline inside) as one line."""
        if self.closed:
            return
        try:
            (self._stream or sys.stdout).write(line + "\n")
        except BrokenPipeError:
            self._reader_gone()
            return
        if not soon:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Flush what was written."""
        self._flush_scheduled = False
        if self.closed:
            return
        try:
            (self._stream or sys.stdout).flush()
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self) -> None:
        self.closed = True
        silence(self._stream or sys.stdout)
        if self.on_closed is not None:
            self.on_closed()

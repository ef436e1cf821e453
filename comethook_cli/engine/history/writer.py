"""Writing the history: SQLite (stdlib sqlite3, WAL), in group commits.

The listener awaits `HistoryWriter.record()` before it answers, so an acknowledged delivery is
committed (it survives the process being killed); one that could not be committed is answered 503, not
acknowledged. The writer makes a real write when it opens (`check_writable`), so a history that cannot be
written stops `listen` at start rather than losing every delivery. Under load, every exchange of one event-loop
iteration shares one transaction; with `synchronous=NORMAL` in WAL mode a commit is a write to the
OS, not an fsync, so it costs microseconds. A power cut may lose the last commits; a process crash does not.

A thread of the writer's own keeps the history bounded (see `Retention`) and the WAL short, so anyone who can post to
the URL cannot fill the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from comethook_cli.engine.history.files import HistoryDamaged, is_damaged, set_aside
from comethook_cli.engine.history.retention import MIB, Retention
from comethook_cli.engine.history.rows import INSERT, open_checked, row_size, to_row
from comethook_cli.engine.worker import LoopKick
from comethook_cli.errors import ComethookError
from comethook_cli.models import Exchange

CHECKPOINT_SECONDS = 0.5
#: Pruning deletes the oldest rows in transactions this small, so the event loop's writer never waits long for the lock.
PRUNE_CHUNK_ROWS = 500
PRUNE_CHUNK_BYTES = 8 * MIB
WAL_FRAME_HEADER = 24
#: How long a TRUNCATE checkpoint may wait for readers; it holds the write lock meanwhile, so keep it short.
TRUNCATE_WAIT_MS = 50
#: How long the writer thread waits for the maintenance thread's checkpoint (or a reader) when the WAL is past
#: WAL_STUCK_FACTOR times its limit under a flood: the deliveries wait meanwhile, which is what slows the flood down.
KEEP_UP_WAIT_MS = 250
#: Past this many times its limit, the WAL has not restarted by itself (a reader holds an old snapshot): TRUNCATE it.
WAL_STUCK_FACTOR = 2
PAGE_PRAGMAS = ("page_size", "page_count", "freelist_count")
#: PRAGMA auto_vacuum's value for INCREMENTAL.
INCREMENTAL = 2
#: Below this much free space beside the history, `listen` refuses to start: a few deliveries would fill the disk.
MIN_FREE_BYTES = 8 * MIB


class HistoryUnwritable(ComethookError):
    """`listen` cannot write its history (a read-only or immutable file, a full disk): it does not start, since
    every delivery it acknowledged would be lost."""

    def __init__(
        self, path: Path, reason: str, fix: str = "Make it writable (check `ls -l`, `lsattr`, `df` on its directory)"
    ) -> None:
        super().__init__(
            f"Cannot write the history database {path}: {reason}.",
            f"{fix}, set COMETHOOK_HOME to another directory, or run `comethook listen --no-history` (deliveries are "
            "then answered but not stored).",
        )
        self.path = path


class HistoryWriteFailed(ComethookError):
    """One exchange could not be stored (the disk is full, the file became read-only ...): it must not be acknowledged."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"Could not write history to {path}: {reason}.")
        self.path = path
        self.reason = reason


def check_writable(connection: sqlite3.Connection, path: Path, retention: Retention) -> str | None:
    """HistoryUnwritable unless a real write reaches the file (a committed row in `meta`) and at least MIN_FREE_BYTES
    are free beside it; a warning (else None) when the disk has less room than the size cap lets the history take."""
    try:
        with connection:
            connection.execute(
                "INSERT INTO meta (key, value) VALUES ('opened_at', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (time.time(),),
            )
    except sqlite3.Error as error:
        if is_damaged(error):
            raise HistoryDamaged(path, str(error)) from None
        raise HistoryUnwritable(path, str(error)) from None
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return None  # nothing to measure with: the write above has to do
    if free < MIN_FREE_BYTES:
        raise HistoryUnwritable(
            path, f"only {free / MIB:.1f} MiB free on its disk ({MIN_FREE_BYTES // MIB} MiB needed)", "Free some space there"
        )
    if retention.max_bytes is None:
        return None
    held = sum(os.path.getsize(f"{path}{suffix}") for suffix in ("", "-wal", "-shm") if os.path.exists(f"{path}{suffix}"))
    if free < retention.max_bytes - held:
        return (
            f"the disk holding {path} has {free / MIB:,.0f} MiB free, less than the history may take "
            f"(--history-max-mb {retention.max_bytes / MIB:g}): "
            "once it is full, deliveries are refused with 503 until there is room. Free some space, or lower --history-max-mb."
        )
    return None


def _used_bytes(connection: sqlite3.Connection) -> int:
    """The bytes of the database's pages in use (pages pruning freed are reused by the next rows, so they do not count)."""
    page_size, pages, free = (connection.execute(f"PRAGMA {name}").fetchone()[0] for name in PAGE_PRAGMAS)
    return int((pages - free) * page_size)


class HistoryWriter:
    """Commits exchanges in group commits on a thread of its own: everything recorded while the previous
    commit ran goes into the next transaction. SQLite does its work without the GIL, so the event loop
    goes on answering meanwhile; it is woken at most once per loop iteration, and hears back once per commit."""

    def __init__(self, path: Path, retention: Retention | None = None, on_warning: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.retention = retention or Retention()
        try:
            self._connection = open_checked(path, on_warning)
        except HistoryDamaged as damaged:
            # Never overwrite it, never stop listening because of it: set it aside and start afresh.
            try:
                moved = set_aside(path)
            except OSError as error:
                raise HistoryDamaged(path, f"{damaged.reason}; moving it aside failed: {error.strerror}") from None
            if on_warning:
                on_warning(f"{damaged.message} Moved it to {moved}; this session starts a fresh history.")
            self._connection = open_checked(path)
        try:
            warning = check_writable(self._connection, path, self.retention)
        except ComethookError:
            self._connection.close()
            raise
        if warning and on_warning:
            on_warning(warning)
        # Checkpoints (copying the WAL into the database, with an fsync) and pruning run on a thread of
        # their own, so the event loop only ever appends to the WAL.
        self._connection.execute("PRAGMA wal_autocheckpoint=0")
        self._connection.execute(f"PRAGMA journal_size_limit={self.retention.wal_limit}")
        self._closing = threading.Event()
        # Under a flood, the maintenance thread is woken every few MiB written, not only every CHECKPOINT_SECONDS.
        self._wake = threading.Event()
        database_bytes = self.retention.database_bytes
        caps = [self.retention.wal_limit // 4] + ([database_bytes // 8] if database_bytes else [])
        self._wake_after = max(min(caps), 64 * 1024)
        self._written = 0
        #: Bytes committed since the last pruning round; past _prune_slack, the writer thread prunes itself (_keep_up).
        self._unpruned = 0
        self._prune_slack = max((database_bytes or 0) // 4, MIB)
        #: After a catch-up checkpoint a reader kept from finishing: the WAL size at which the writer tries again.
        self._wal_retry_at = 0
        #: Set by the maintenance thread when the WAL is past its limit; the writer thread then finishes a checkpoint.
        self._restart_due = False
        self._checkpointer = threading.Thread(target=self._maintain_loop, name="comethook-checkpoint", daemon=True)
        # Whose turn it is to write: the writer thread's connection is used by one thread at a time (tests write
        # directly), and the maintenance thread takes it too for the pruning's deletes.
        self._database = threading.Lock()
        self._checkpointer.start()
        # The group commits: record() queues, the writer thread takes the whole queue per transaction.
        self._queue: list[tuple[Exchange, asyncio.Future[None]]] = []
        self._queued = threading.Condition(threading.Lock())
        #: Wakes the writer thread once per event-loop iteration; `.idle` while it sleeps (no delivery being written).
        self._kick = LoopKick(self._queued, lambda: bool(self._queue))
        self._stopping = False
        self._writer = threading.Thread(target=self._write_loop, name="comethook-history", daemon=True)
        self._writer.start()

    def _maintain_loop(self) -> None:
        connection = sqlite3.connect(self.path, timeout=10)
        try:
            while True:
                self._wake.wait(CHECKPOINT_SECONDS)
                self._wake.clear()
                if self._closing.is_set():
                    break
                # While the WAL waits to start over, this thread reads nothing: a read on the WAL at the wrong moment
                # keeps it from starting over (the writer thread prunes meanwhile when it must, see _keep_up).
                with contextlib.suppress(sqlite3.Error):  # busy or full: the next round tries again
                    if not self._restart_due or self._kick.idle:
                        self._unpruned = 0
                        self._prune(connection)
                with contextlib.suppress(sqlite3.Error):
                    self._checkpoint(connection)
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        """Copy the WAL into the database; past wal_limit, leave the last of the copy to the writer thread, so the
        WAL starts over.

        A PASSIVE checkpoint never waits, but under constant writes it never reaches the WAL's end (the writer
        appends while it copies), so SQLite never starts the WAL over and it would grow without bound. Past the
        limit, this thread stands back and the writer thread runs one PASSIVE checkpoint between two group
        commits: nothing is appended meanwhile, so it reaches the end, copying only what came since this
        thread's last one (a TRUNCATE checkpoint held the write lock for 15 to 55 ms instead), and the next
        commit starts the WAL over. Only when the WAL keeps growing anyway (a reader holding an old snapshot)
        does a TRUNCATE wait for the readers."""
        if self._restart_due and self._kick.idle:
            # The writer sleeps (no delivery came since the WAL passed its limit): nothing is being appended, so
            # this checkpoint reaches the end itself and the next commit starts the WAL over.
            self._finish_checkpoint(connection)
            return
        if self._restart_due:
            with contextlib.suppress(OSError):
                if os.path.getsize(f"{self.path}-wal") > WAL_STUCK_FACTOR * self.retention.wal_limit:
                    connection.execute(f"PRAGMA busy_timeout={TRUNCATE_WAIT_MS}")
                    try:
                        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    finally:
                        connection.execute("PRAGMA busy_timeout=10000")
            return
        [(_, frames, _)] = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        # What the WAL holds now (its frames), not the size of its file: SQLite reuses the file from the start once
        # a checkpoint has copied every frame, so the file stays as large as it once was (journal_size_limit trims it).
        [(page_size,)] = connection.execute("PRAGMA page_size").fetchall()
        if max(frames, 0) * (page_size + WAL_FRAME_HEADER) > self.retention.wal_limit:
            self._restart_due = True

    def _finish_checkpoint(self, connection: sqlite3.Connection) -> None:
        """Copy the rest of the WAL while nothing is appended (the writer thread between group commits, or the
        maintenance thread while the writer sleeps), so the next commit restarts it. While another checkpoint runs,
        this one is refused at once and the flag stays: it is tried again after the next commit."""
        [(busy, frames, copied)] = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        if not busy and frames == copied:
            self._restart_due = False

    def _prune(self, connection: sqlite3.Connection, final: bool = False) -> int:
        """Delete the oldest exchanges past the age cap, and, once the database passes its share of the size cap, down
        to 90% of it; in small transactions; the size cap always keeps the newest exchange. Returns how many were
        deleted. `final`: the last round, at close, for the size cap only, which runs to the end (the others stop when
        closing begins; the age cap is theirs).

        What the rows take is measured, not estimated from some of their columns: the pages in use (every column, the
        headers too, which can outweigh the body, and SQLite's own overhead), again after each transaction. Rows of the
        average size tell how many the next transaction deletes. Only the sequence numbers and times are read, so a
        round is short and never keeps the WAL from starting over for long."""
        max_bytes, max_age = self.retention.database_bytes, self.retention.max_age
        cutoff = time.time() - max_age if max_age is not None and not final else None
        used = _used_bytes(connection)
        target = max_bytes * 9 // 10 if max_bytes is not None and used > max_bytes else None
        if target is None:
            oldest = connection.execute("SELECT received_at FROM exchanges ORDER BY seq LIMIT 1").fetchone()
            if cutoff is None or oldest is None or oldest[0] >= cutoff:
                return 0
        removed = 0
        while final or not self._closing.is_set():
            rows = connection.execute(
                "SELECT seq, received_at FROM exchanges ORDER BY seq LIMIT ?", (PRUNE_CHUNK_ROWS,)
            ).fetchall()
            newest = connection.execute("SELECT MAX(seq) FROM exchanges").fetchone()[0]
            too_many = 0
            if target is not None and rows and used > target:
                average = max(used // max(newest - rows[0][0] + 1, 1), 1)  # sequence numbers have no gaps but the pruned
                too_many = min((used - target) // average + 1, max(PRUNE_CHUNK_BYTES // average, 1))
            last = None
            for index, (seq, received_at) in enumerate(rows):
                too_old = cutoff is not None and received_at < cutoff
                too_big = index < too_many and seq != newest
                if not (too_old or too_big):
                    break
                last = seq
            if last is None:
                break
            # The writer thread's turn taken in Python: waiting on SQLite's lock, it starved behind a writer that commits
            # without a pause (seconds), while this thread's checkpoints waited and the WAL grew by hundreds of MiB.
            with self._database, connection:
                count = connection.execute("DELETE FROM exchanges WHERE seq <= ?", (last,)).rowcount
                connection.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = "
                    "CASE WHEN key = 'pruned_rows' THEN value + excluded.value ELSE excluded.value END",
                    [("pruned_rows", count), ("pruned_at", time.time()), ("retention", self.retention.describe())],
                )
            removed += count
            used = _used_bytes(connection)
        return removed

    async def record(self, exchange: Exchange) -> None:
        """Store one exchange; returns once it is committed (raises HistoryWriteFailed if it cannot be)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        with self._queued:
            if self._stopping:
                raise HistoryWriteFailed(self.path, "the history is closed")
            self._queue.append((exchange, done))
            self._kick.soon(loop)  # one wake-up per loop iteration, however many exchanges it recorded
        await done

    def _write_loop(self) -> None:
        while True:
            with self._queued:
                self._kick.wait(lambda: bool(self._queue) or self._stopping)
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
            failures = self._commit([exchange for exchange, _ in batch])
            loop = batch[0][1].get_loop()
            with contextlib.suppress(RuntimeError):  # the loop is gone (shutdown): nobody waits for the answers
                loop.call_soon_threadsafe(_settle, batch, failures)
            if self._restart_due:
                with contextlib.suppress(sqlite3.Error), self._database:
                    self._finish_checkpoint(self._connection)
            # Sized here, on the writer's thread, once per exchange: the event loop pays nothing for the estimate.
            size = sum(row_size(exchange) for exchange, _ in batch)
            self._written += size
            if self._written >= self._wake_after:
                self._written = 0
                self._wake.set()
            self._keep_up(size)

    def _keep_up(self, written: int) -> None:
        """When the maintenance thread falls behind a flood (busy with a long checkpoint, or short of CPU), do its work
        here, between two group commits: the next deliveries wait for it (their answers come later), and the files on
        disk stay within reach of the cap instead of growing with the flood."""
        self._unpruned += written
        if self.retention.database_bytes is not None and self._unpruned > self._prune_slack:
            self._unpruned = 0
            with contextlib.suppress(sqlite3.Error):
                self._prune(self._connection)
        try:
            size = os.path.getsize(f"{self.path}-wal")
        except OSError:
            return
        if size <= max(WAL_STUCK_FACTOR * self.retention.wal_limit, self._wal_retry_at):
            return
        # Nothing is appended meanwhile, so the copy reaches the WAL's end and the next commit starts it over; a reader
        # on an old snapshot (or the maintenance thread's own checkpoint) is waited for briefly. When that was not
        # enough (a long `history export` reads), the next try waits until the WAL has grown by its limit again, so the
        # reader costs the deliveries one short wait per limit's worth of WAL, not one per group commit.
        with contextlib.suppress(sqlite3.Error), self._database:
            self._connection.execute(f"PRAGMA busy_timeout={KEEP_UP_WAIT_MS}")
            try:
                [(busy, frames, copied)] = self._connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
                done = not busy and frames == copied
                self._restart_due = self._restart_due and not done
                self._wal_retry_at = 0 if done else size + self.retention.wal_limit
            finally:
                self._connection.execute("PRAGMA busy_timeout=10000")

    def _commit(self, exchanges: list[Exchange]) -> list[ComethookError | None]:
        try:
            return self._write(exchanges)
        except Exception:
            # Something _write did not see coming: one by one, so it costs only the exchange it belongs to,
            # not every exchange that happened to share its group commit.
            return [self._write_alone(exchange) for exchange in exchanges]

    def _write_alone(self, exchange: Exchange) -> ComethookError | None:
        try:
            return self._write([exchange])[0]
        except Exception as error:
            return HistoryWriteFailed(self.path, str(error))

    def _write(self, exchanges: list[Exchange]) -> list[ComethookError | None]:
        """Insert in one transaction; each exchange's failure (None when stored). Any error (a database
        error, a value SQLite cannot take) costs only the exchange it belongs to."""
        try:
            rows = [to_row(e) for e in exchanges]
            with self._database, self._connection:
                self._connection.executemany(INSERT, rows)
        except (sqlite3.Error, ValueError, TypeError, OverflowError) as error:
            if len(exchanges) == 1:
                return [HistoryWriteFailed(self.path, str(error))]
            # One bad row must not cost the others their place: write them one by one.
            return [self._write([exchange])[0] for exchange in exchanges]
        return [None] * len(exchanges)

    def close(self) -> None:
        """Write anything still pending, checkpoint, then close the database."""
        with self._queued:
            self._stopping = True
            self._queued.notify()
        self._writer.join()  # it commits what is queued first
        self._closing.set()
        self._wake.set()
        self._checkpointer.join()
        # What is left on disk keeps to the cap: what arrived since the last round is pruned, and the pages pruning
        # freed are given back (the file keeps the size it once grew to otherwise).
        with contextlib.suppress(sqlite3.Error):
            self._prune(self._connection, final=True)
        with contextlib.suppress(sqlite3.Error):
            self._shrink(self._connection)
        with contextlib.suppress(sqlite3.Error):
            self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._connection.close()

    def _shrink(self, connection: sqlite3.Connection) -> None:
        """Give the database's free pages back to the disk. A database made before auto_vacuum was set is rebuilt once
        (VACUUM, which also turns auto_vacuum on), and only when its file is past the size cap."""
        [(mode,)] = connection.execute("PRAGMA auto_vacuum").fetchall()
        page_size, pages, free = (connection.execute(f"PRAGMA {name}").fetchone()[0] for name in PAGE_PRAGMAS)
        if not free:
            return
        if mode == INCREMENTAL:
            connection.executescript("PRAGMA incremental_vacuum;")  # execute() would take one step: one page
        elif self.retention.max_bytes is not None and pages * page_size > self.retention.max_bytes:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # VACUUM copies the database through the WAL
            connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
            connection.execute("VACUUM")


def _settle(batch: list[tuple[Exchange, asyncio.Future[None]]], failures: list[ComethookError | None]) -> None:
    """On the event loop: tell each recorder how its commit went."""
    for (_, done), failure in zip(batch, failures, strict=True):
        if done.cancelled():
            continue
        if failure is None:
            done.set_result(None)
        else:
            done.set_exception(failure)

"""History of exchanges: SQLite (stdlib sqlite3, WAL), written in group commits.

The listener awaits `HistoryWriter.record()` before it answers, so an acknowledged delivery is
committed (it survives the process being killed); one that could not be committed is answered 503, not
acknowledged. The writer makes a real write when it opens (`check_writable`), so a history that cannot be
written stops `listen` at start rather than losing every delivery. Under load, every exchange of one event-loop
iteration shares one transaction; with `synchronous=NORMAL` in WAL mode a commit is a write to the
OS, not an fsync, so it costs microseconds. A power cut may lose the last commits; a process crash does not.

The files hold chat bodies, so they are private: the directory is created 0700, the database 0600, and
SQLite gives its -wal and -shm files the database's own mode. `open_private`/`write_private` and
`make_private_directory` are the one home for every other file and directory comethook writes. A thread of the writer's own keeps the
history bounded (see `Retention`) and the WAL short, so anyone who can post to the URL cannot fill the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import sqlite3
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TextIO, TypeVar

from comethook_cli import speedups
from comethook_cli.errors import ComethookError, UsageError
from comethook_cli.models import (
    DEFAULT_HISTORY_MAX_AGE_DAYS,
    DEFAULT_HISTORY_MAX_MB,
    AnsweredBy,
    EventInfo,
    Exchange,
    Verdict,
    replace_surrogates,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS exchanges (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    received_at REAL NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    query TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    trigger TEXT NOT NULL,
    generation TEXT NOT NULL,
    family TEXT NOT NULL,
    summary TEXT NOT NULL,
    webhook TEXT,
    response_status INTEGER NOT NULL,
    response_headers TEXT NOT NULL,
    response_body BLOB NOT NULL,
    verdict TEXT,
    verdict_reason TEXT,
    verdict_metadata TEXT,
    latency_ms REAL NOT NULL,
    answered_by TEXT NOT NULL,
    forwarded_to TEXT,
    forward_error TEXT,
    listener TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value NOT NULL);
"""
COLUMNS = (
    "id, received_at, method, path, query, headers, body, trigger, generation, family, summary, webhook, response_status, "
    "response_headers, response_body, verdict, verdict_reason, verdict_metadata, latency_ms, answered_by, forwarded_to, forward_error, "
    "listener"
)
CHECKPOINT_SECONDS = 0.5
MIB = 1024 * 1024
DAY = 86400.0
DIR_MODE = 0o700
FILE_MODE = 0o600
#: The WAL may grow to a quarter of the size cap, within these bounds, before a checkpoint waits for writers; the
#: cap covers the database and its WAL together, so the database is pruned to the rest (see Retention).
WAL_LIMIT_MIN = 256 * 1024
WAL_LIMIT_MAX = 64 * MIB
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
#: SQLite's primary result codes for a damaged file: SQLITE_CORRUPT, SQLITE_NOTADB.
DAMAGED_CODES = (11, 26)
PAGE_PRAGMAS = ("page_size", "page_count", "freelist_count")
#: PRAGMA auto_vacuum's value for INCREMENTAL.
INCREMENTAL = 2
INSERT = f"INSERT INTO exchanges ({COLUMNS}) VALUES ({', '.join('?' * 23)})"
#: Every column the code reads or writes; a table without them is not comethook's (or from a newer one).
EXCHANGE_COLUMNS = ("seq", *COLUMNS.replace(" ", "").split(","))
#: Columns a history written by an older comethook may lack: _migrate adds them.
MIGRATED_COLUMNS = ("listener",)
#: Below this much free space beside the history, `listen` refuses to start: a few deliveries would fill the disk.
MIN_FREE_BYTES = 8 * MIB
T = TypeVar("T")
P = ParamSpec("P")


def _like_escape(text: str) -> str:
    """Text for a LIKE pattern with its wildcards taken literally (used with ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def home() -> Path:
    """$COMETHOOK_HOME, else the platform's per-user data directory."""
    explicit = os.environ.get("COMETHOOK_HOME")
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "comethook"
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", Path.home())) / "comethook"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "comethook"


def default_path() -> Path:
    """Where the history lives: <home>/history.db."""
    return home() / "history.db"


def _move_aside(path: Path, suffix: str) -> str:
    """The shell commands that move the database (and its -wal, which holds the last commits) to path + suffix."""
    quoted = shlex.quote(str(path))
    moves = [f"mv {quoted} {shlex.quote(f'{path}{suffix}')}"]
    if Path(f"{path}-wal").exists():  # named only when there is one
        moves.append(f"mv {shlex.quote(f'{path}-wal')} {shlex.quote(f'{path}{suffix}-wal')}")
    return "; ".join(moves)


class HistoryWrongShape(ComethookError):
    """The history database's tables lack columns comethook reads and writes (another program's file, or a newer
    comethook's): never changed, never written to."""

    def __init__(self, path: Path, table: str, missing: Sequence[str]) -> None:
        named = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        super().__init__(
            f"The history database {path} is not one this comethook can use: its {table} table has no "
            f"{named} column{'s' if len(missing) > 1 else ''}.",
            f"Move it aside (`{_move_aside(path, '.other')}`) or set COMETHOOK_HOME to another directory; "
            "`comethook listen --no-history` runs without one.",
        )
        self.path = path


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


class HistoryDamaged(ComethookError):
    """The history database is corrupt, or not a database at all."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"The history database {path} is damaged ({reason}).",
            f"Move it aside (`{_move_aside(path, '.damaged')}`); the next `comethook listen` starts a fresh one. "
            f"`sqlite3 {shlex.quote(f'{path}.damaged')} .recover` may save what is left.",
        )
        self.path = path
        self.reason = reason


def is_damaged(error: sqlite3.Error) -> bool:
    """Whether SQLite says the file is corrupt or not a database (rather than busy, read-only, full ...)."""
    if "Could not decode to UTF-8" in str(error):
        return True  # garbage that passed SQLite's own checks: no row comethook writes holds invalid UTF-8 text
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in DAMAGED_CODES
    return isinstance(error, sqlite3.DatabaseError) and ("malformed" in str(error) or "not a database" in str(error))


def make_private_directory(directory: Path) -> None:
    """Create the directory, and every missing parent, 0700 whatever the umask (directories that exist keep their mode)."""
    missing: list[Path] = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made meanwhile by someone else: theirs, so its mode is left alone
            continue
        if os.name != "nt":
            os.chmod(folder, DIR_MODE)  # mkdir's mode passes through the umask; say it exactly


def open_private(path: Path | str, encoding: str = "utf-8") -> TextIO:
    """Open a text file for writing (created, or emptied) that only its owner can read: 0600 whatever the umask.
    A file that exists is taken back to 0600 as well; a device or a FIFO (`-o /dev/stdout`) is written as it is."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        if os.name != "nt" and stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.fchmod(descriptor, FILE_MODE)  # os.open's mode passes through the umask, and misses a file that exists
        return os.fdopen(descriptor, "w", encoding=encoding)
    except BaseException:
        os.close(descriptor)
        raise


def write_private(path: Path | str, text: str) -> None:
    """Write a text file only its owner can read (0600 whatever the umask; OSError when it cannot be written)."""
    with open_private(path) as file:
        file.write(text)


def _private_directory(directory: Path) -> str | None:
    """Create the directory 0700 (whatever the umask); for one that exists and is open to others, a warning."""
    if not directory.exists():
        make_private_directory(directory)
        return None
    mode = directory.stat().st_mode & 0o777
    if os.name == "nt" or not mode & 0o077:
        return None
    # Not ours to change (COMETHOOK_HOME may point anywhere): the files inside are 0600 regardless.
    return (
        f"{directory} is open to other users (mode {mode:o}); the history files in it are private (0600), "
        f"but `chmod 700 {shlex.quote(str(directory))}` hides their names too."
    )


def make_private_database(path: Path, create: bool = True) -> None:
    """Create an SQLite database file 0600 before SQLite opens it (`create`), and take back any group/other access
    from the database and its -wal/-shm (SQLite creates those with the database's mode, whatever the umask). For
    every SQLite file comethook keeps (the history; `emulate --state` may use it too)."""
    if os.name == "nt":
        return
    if create and not path.exists():
        with contextlib.suppress(FileExistsError):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                os.fchmod(descriptor, FILE_MODE)  # os.open's mode passes through the umask too
            finally:
                os.close(descriptor)
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(OSError):  # missing, or someone else's file: SQLite's own error says more
            if file.stat().st_mode & 0o077:
                os.chmod(file, FILE_MODE)


def connect(path: Path, create: bool = True, on_warning: Callable[[str], None] | None = None) -> sqlite3.Connection:
    """Open (and create, privately) the history database in WAL mode; HistoryDamaged when it is corrupt."""
    if not create and not path.exists():
        raise ComethookError(f"No history yet at {path}.", "Run `comethook listen` first; it records every delivery.")
    try:
        if create:
            warning = _private_directory(path.parent)
            if warning and on_warning:
                on_warning(warning)
        make_private_database(path, create)
        connection = sqlite3.connect(path, check_same_thread=False, timeout=10)
    except (OSError, sqlite3.Error) as error:
        raise _open_error(path, error) from None
    try:
        # A new database gives the pages pruning frees back when asked (PRAGMA incremental_vacuum), so the file
        # shrinks back under the size cap when the writer closes. Only on an empty file: it must come before the first
        # table, and on an existing database it writes its first page (a damaged file is never written to).
        if create and connection.execute("PRAGMA page_count").fetchone()[0] == 0:
            connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
        _check_shape(connection, path)  # first: WAL mode, SCHEMA and _migrate would each change someone else's file
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(SCHEMA)
        _migrate(connection)
    except sqlite3.Error as error:
        connection.close()
        raise _open_error(path, error) from None
    except HistoryWrongShape:
        connection.close()
        raise
    return connection


def _check_shape(connection: sqlite3.Connection, path: Path) -> None:
    """HistoryWrongShape when a table comethook uses exists without the columns it reads and writes."""
    for table, needed in (("exchanges", EXCHANGE_COLUMNS), ("meta", ("key", "value"))):
        have = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        missing = [column for column in needed if column not in have and column not in MIGRATED_COLUMNS]
        if have and missing:  # no columns at all: no such table yet, SCHEMA creates it
            raise HistoryWrongShape(path, table, missing)


def _migrate(connection: sqlite3.Connection) -> None:
    """Bring a history written by an older comethook up to this schema (columns are only ever added)."""
    have = {row[1] for row in connection.execute("PRAGMA table_info(exchanges)")}
    if "listener" not in have:  # added in 0.2: where the listener ran, so exports point at its real address
        with connection:
            connection.execute("ALTER TABLE exchanges ADD COLUMN listener TEXT")


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


def _open_error(path: Path, error: OSError | sqlite3.Error) -> ComethookError:
    if isinstance(error, sqlite3.Error) and is_damaged(error):
        return HistoryDamaged(path, str(error))
    return ComethookError(
        f"Cannot open the history database {path}: {error}.",
        "Set COMETHOOK_HOME to a writable directory, or use --no-history.",
    )


def set_aside(path: Path) -> Path:
    """Move a damaged database (with its -wal and -shm) to history.db.corrupt-<time>; never overwrites anything
    (OSError when it cannot)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    number = 1
    while any(Path(f"{target}{suffix}").exists() for suffix in ("", "-wal", "-shm")):
        number += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{number}")
    # The -wal goes along under the matching name, so `sqlite3 <target>` still sees its last commits.
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            os.rename(f"{path}{suffix}", f"{target}{suffix}")
    return target


def open_checked(path: Path, on_warning: Callable[[str], None] | None = None) -> sqlite3.Connection:
    """Open the database for writing, after SQLite's quick_check (about 0.3 s per GB): damage is found
    now, not by a delivery halfway through a session."""
    connection = connect(path, on_warning=on_warning)
    try:
        problems = [row[0] for row in connection.execute("PRAGMA quick_check(3)")]
    except sqlite3.Error as error:
        connection.close()
        raise _open_error(path, error) from None
    if problems != ["ok"]:
        connection.close()
        raise HistoryDamaged(path, "; ".join(str(problem) for problem in problems))
    return connection


@dataclass(frozen=True)
class Retention:
    """How much history to keep (None: no limit); past either cap, the oldest exchanges are deleted."""

    max_bytes: int | None = DEFAULT_HISTORY_MAX_MB * MIB
    max_age: float | None = DEFAULT_HISTORY_MAX_AGE_DAYS * DAY

    @classmethod
    def from_options(cls, max_mb: float, max_age_days: float) -> Retention:
        """From --history-max-mb and --history-max-age (0 turns that cap off)."""
        return cls(int(max_mb * MIB) if max_mb > 0 else None, max_age_days * DAY if max_age_days > 0 else None)

    @property
    def wal_limit(self) -> int:
        """The WAL size past which a checkpoint waits for writers to reset it (see WAL_LIMIT_MIN)."""
        if self.max_bytes is None:
            return WAL_LIMIT_MAX
        return min(max(self.max_bytes // 4, WAL_LIMIT_MIN), WAL_LIMIT_MAX)

    @property
    def database_bytes(self) -> int | None:
        """What the database itself may hold: the size cap less the WAL's share, so the files together keep to the cap."""
        return None if self.max_bytes is None else max(self.max_bytes - self.wal_limit, self.max_bytes // 2)

    def describe(self) -> str:
        """The caps in words ("500 MiB and 30 days"), for the banner and `history list`."""
        size = f"{self.max_bytes / MIB:g} MiB" if self.max_bytes is not None else "no size limit"
        days = self.max_age / DAY if self.max_age is not None else None
        age = "no age limit" if days is None else f"{days:g} day" + ("" if days == 1 else "s")
        return f"{size} and {age}"


def _json(value: Any) -> str:
    """A column's JSON text (orjson when it can, else json): read back with json.loads either way."""
    return speedups.dumps(value) or json.dumps(value, default=str)


def _row(exchange: Exchange) -> tuple[Any, ...]:
    """The exchange as a row. Text that UTF-8 cannot hold (a lone surrogate, which a JSON body can carry as
    "\\ud800") is stored with U+FFFD in its place: the body column keeps the exact bytes that arrived."""
    verdict = exchange.verdict
    row = (
        exchange.id, exchange.received_at, exchange.method, exchange.path, exchange.query, _json(exchange.headers),
        exchange.body, exchange.info.trigger, exchange.info.generation, exchange.info.family, exchange.info.summary,
        exchange.info.webhook, exchange.response_status, _json(exchange.response_headers), exchange.response_body,
        verdict.kind if verdict else None, verdict.reason if verdict else None,
        _json(verdict.metadata) if verdict and verdict.metadata is not None else None,
        exchange.latency_ms, exchange.answered_by, exchange.forwarded_to, exchange.forward_error, exchange.listener,
    )  # fmt: skip
    return tuple(replace_surrogates(value) if isinstance(value, str) else value for value in row)


def _used_bytes(connection: sqlite3.Connection) -> int:
    """The bytes of the database's pages in use (pages pruning freed are reused by the next rows, so they do not count)."""
    page_size, pages, free = (connection.execute(f"PRAGMA {name}").fetchone()[0] for name in PAGE_PRAGMAS)
    return int((pages - free) * page_size)


def _row_size(exchange: Exchange) -> int:
    """About what the exchange's row takes on disk (its bodies and headers dominate), without encoding it."""
    headers = sum(len(name) + len(value) + 6 for name, value in exchange.headers)
    answer_headers = sum(len(name) + len(value) + 6 for name, value in exchange.response_headers)
    return len(exchange.body) + len(exchange.response_body) + headers + answer_headers + len(exchange.info.summary) + 256


def _exchange(row: sqlite3.Row) -> Exchange:
    verdict = None
    if row["verdict"]:
        metadata = json.loads(row["verdict_metadata"]) if row["verdict_metadata"] else None
        verdict = Verdict(row["verdict"], row["verdict_reason"], metadata, row["webhook"])
    info = EventInfo(row["trigger"], row["generation"], row["family"], row["summary"], webhook=row["webhook"])
    return Exchange(
        id=row["id"], received_at=row["received_at"], method=row["method"], path=row["path"], query=row["query"],
        headers=tuple(tuple(h) for h in json.loads(row["headers"])), body=bytes(row["body"]), info=info,
        response_status=row["response_status"], response_body=bytes(row["response_body"]), latency_ms=row["latency_ms"],
        verdict=verdict, response_headers=tuple(tuple(h) for h in json.loads(row["response_headers"])),
        forwarded_to=row["forwarded_to"], forward_error=row["forward_error"], answered_by=row["answered_by"],
        listener=row["listener"], outcome=AnsweredBy.of(row["answered_by"]),
    )  # fmt: skip


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
        self._idle = False
        self._kick_scheduled = False
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
                    if not self._restart_due or self._idle:
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
        if self._restart_due and self._idle:
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
            if self._idle and not self._kick_scheduled:
                # One wake-up per loop iteration, however many exchanges it recorded: each is a GIL hand-off.
                self._kick_scheduled = True
                loop.call_soon(self._kick)
        self._written += _row_size(exchange)
        if self._written >= self._wake_after:
            self._written = 0
            self._wake.set()
        await done

    def _kick(self) -> None:
        with self._queued:
            self._kick_scheduled = False
            if self._idle and self._queue:
                self._idle = False
                self._queued.notify()

    def _write_loop(self) -> None:
        while True:
            with self._queued:
                while not self._queue and not self._stopping:
                    self._idle = True
                    self._queued.wait()
                self._idle = False
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
            self._keep_up(sum(_row_size(exchange) for exchange, _ in batch))

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
            rows = [_row(e) for e in exchanges]
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


@dataclass(frozen=True)
class Pruned:
    """What retention has deleted so far: how many exchanges, the last time, and the caps then."""

    rows: int
    at: float
    retention: str


class History:
    """Reading (and clearing) the stored exchanges. A damaged file raises HistoryDamaged, even when the
    damage only shows halfway through reading (SQLite finds it lazily, page by page)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        self._connection = connect(self.path, create=False)
        self._connection.row_factory = sqlite3.Row
        self._lock = threading.Lock()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Turn SQLite's "malformed" (and rows that no longer decode) into HistoryDamaged."""
        try:
            yield
        except sqlite3.Error as error:
            if is_damaged(error):
                raise HistoryDamaged(self.path, str(error)) from None
            raise ComethookError(
                f"Cannot read the history database {self.path}: {error}.",
                "If `comethook listen` is busy writing, try again in a moment.",
            ) from None
        except (ValueError, TypeError, KeyError) as error:
            raise HistoryDamaged(self.path, f"a stored exchange does not decode: {error}") from None

    def page(
        self,
        before_seq: int | None = None,
        limit: int = 50,
        trigger: str | Sequence[str] | None = None,
        verdict: str | None = None,
        q: str | None = None,
        status: int | None = None,
    ) -> tuple[list[Exchange], int | None]:
        """One page of exchanges, newest first, and the cursor for the next (older) page (None when this is the last).

        `before_seq` is the cursor a previous page returned. Filters: a trigger (or several), one verdict kind, a
        status class (`status=4` for 4xx), and `q`,
        text found (ASCII case-insensitively) in the id, the trigger, the summary or the body. Sequence numbers
        only grow, so a page never repeats or skips an exchange stored while a reader pages through."""
        clauses: list[str] = []
        args: list[str | int] = []
        if before_seq is not None:
            clauses.append("seq < ?")
            args.append(before_seq)
        triggers = [trigger] if isinstance(trigger, str) else list(trigger or ())
        if triggers:
            clauses.append(f"trigger IN ({', '.join('?' * len(triggers))})")
            args += triggers
        if status is not None:
            clauses.append("response_status BETWEEN ? AND ?")
            args += [status * 100, status * 100 + 99]
        if verdict:
            clauses.append("verdict = ?")
            args.append(verdict)
        if q:
            pattern = "%" + _like_escape(q) + "%"
            # A BLOB never matches LIKE: the body is compared as the text it holds.
            columns = ("id", "trigger", "summary", "CAST(body AS TEXT)")
            clauses.append(" OR ".join(f"{column} LIKE ? ESCAPE '\\'" for column in columns))
            clauses[-1] = f"({clauses[-1]})"
            args += [pattern] * 4
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        # One row more than asked says whether an older page exists.
        sql = f"SELECT seq, {COLUMNS} FROM exchanges{where} ORDER BY seq DESC LIMIT ?"
        with self._reading():
            rows = self._connection.execute(sql, [*args, max(limit, 1) + 1]).fetchall()
            exchanges = [_exchange(row) for row in rows[:limit]]
        cursor = int(rows[limit - 1]["seq"]) if len(rows) > limit and limit > 0 else None
        return exchanges, cursor

    async def apage(
        self,
        before_seq: int | None = None,
        limit: int = 50,
        trigger: str | Sequence[str] | None = None,
        verdict: str | None = None,
        q: str | None = None,
        status: int | None = None,
    ) -> tuple[list[Exchange], int | None]:
        """`page()` on a worker thread, so a running session's event loop never waits for SQLite."""
        return await self._off_loop(self.page, before_seq, limit, trigger, verdict, q, status)

    def after(self, exchange_id: str, limit: int = 500) -> list[Exchange] | None:
        """The exchanges stored after `exchange_id`, oldest first, at most `limit` (None when that id is not stored,
        or no longer: a reader resuming from it must reload). Sequence numbers only grow, so nothing is skipped."""
        with self._reading():
            found = self._connection.execute("SELECT seq FROM exchanges WHERE id = ?", (exchange_id,)).fetchone()
            if found is None:
                return None
            rows = self._connection.execute(
                f"SELECT {COLUMNS} FROM exchanges WHERE seq > ? ORDER BY seq LIMIT ?", (found["seq"], max(limit, 1))
            ).fetchall()
            return [_exchange(row) for row in rows]

    async def aafter(self, exchange_id: str, limit: int = 500) -> list[Exchange] | None:
        """`after()` on a worker thread."""
        return await self._off_loop(self.after, exchange_id, limit)

    async def asince(self, seq: int, limit: int = 200) -> tuple[list[Exchange], int]:
        """`since()` on a worker thread."""
        return await self._off_loop(self.since, seq, limit)

    async def aget(self, key: str) -> Exchange:
        """`get()` on a worker thread."""
        return await self._off_loop(self.get, key)

    async def _off_loop(self, query: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        def locked() -> T:
            with self._lock:  # one query at a time on this connection, whichever thread runs it
                return query(*args, **kwargs)

        return await asyncio.to_thread(locked)

    def head(self) -> int:
        """The newest sequence number (0 when empty): `since(head())` later returns only what arrived after."""
        with self._reading():
            return int(self._connection.execute("SELECT COALESCE(MAX(seq), 0) FROM exchanges").fetchone()[0])

    def since(self, seq: int, limit: int = 200) -> tuple[list[Exchange], int]:
        """Exchanges stored after `seq`, oldest first, and the sequence number to pass next time."""
        with self._reading():
            rows = self._connection.execute(
                f"SELECT seq, {COLUMNS} FROM exchanges WHERE seq > ? ORDER BY seq LIMIT ?", (seq, max(limit, 1))
            ).fetchall()
            exchanges = [_exchange(row) for row in rows]
        return exchanges, int(rows[-1]["seq"]) if rows else seq

    def iter_all(self) -> Iterator[Exchange]:
        """Every exchange, oldest first, one row at a time (memory stays flat however many there are)."""
        with self._reading():
            for row in self._connection.execute(f"SELECT {COLUMNS} FROM exchanges ORDER BY seq"):
                yield _exchange(row)

    def get(self, key: str) -> Exchange:
        """The exchange with this id, or the only one whose id starts or ends with it (ids begin with the
        time, so their last characters tell them apart best)."""
        escaped = _like_escape(key)
        with self._reading():
            rows = self._connection.execute(
                f"SELECT {COLUMNS} FROM exchanges WHERE id = ? OR id LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\' "
                "ORDER BY seq DESC LIMIT 3",
                (key, escaped + "%", "%" + escaped),
            ).fetchall()
            exact = [r for r in rows if r["id"] == key]
            if exact:
                return _exchange(exact[0])
            if len(rows) == 1:
                return _exchange(rows[0])
        if not rows:
            raise UsageError(f"No exchange {key!r} in the history.", "`comethook history list` shows the ids.")
        raise UsageError(f"{key!r} matches several exchanges.", "Give more characters of the id (its end tells ids apart).")

    def short_ids(self, ids: list[str], minimum: int = 6) -> dict[str, str]:
        """Each id's shortest end (at least `minimum` characters) that no other stored id ends with: what `history
        list` shows and `get()` accepts. Ids begin with the time, so their ends tell them apart."""
        found: dict[str, str] = {}
        with self._reading():
            for full in ids:
                for size in range(min(minimum, len(full)), len(full) + 1):
                    end = full[-size:]
                    matches = self._connection.execute(
                        "SELECT COUNT(*) FROM exchanges WHERE id LIKE ? ESCAPE '\\'", ("%" + _like_escape(end),)
                    ).fetchone()[0]
                    if matches <= 1:
                        found[full] = end
                        break
                else:
                    found[full] = full
        return found

    def last(self) -> Exchange:
        """The newest exchange."""
        newest, _ = self.page(limit=1)
        if not newest:
            raise UsageError("The history is empty.", "Run `comethook listen` and send it a delivery first.")
        return newest[0]

    def count(self) -> int:
        """How many exchanges are stored."""
        with self._reading():
            return int(self._connection.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0])

    def pruned(self) -> Pruned | None:
        """What retention has deleted (None when nothing was)."""
        with self._reading():
            meta = dict(self._connection.execute("SELECT key, value FROM meta").fetchall())
        if not meta.get("pruned_rows"):
            return None
        return Pruned(int(meta["pruned_rows"]), float(meta.get("pruned_at", 0)), str(meta.get("retention", "")))

    def clear(self) -> int:
        """Delete every exchange (and the record of pruning); returns how many there were."""
        with self._reading():
            with self._connection:
                removed = self._connection.execute("DELETE FROM exchanges").rowcount
                self._connection.execute("DELETE FROM meta")
            self._connection.execute("VACUUM")
        return int(removed)

    def close(self) -> None:
        """Close the database."""
        self._connection.close()

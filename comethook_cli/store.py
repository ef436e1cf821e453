"""History of exchanges: SQLite (stdlib sqlite3, WAL), written in group commits.

The listener awaits `HistoryWriter.record()` before it answers, so an acknowledged delivery is
committed (it survives the process being killed). Under load, every exchange of one event-loop
iteration shares one transaction; with `synchronous=NORMAL` in WAL mode a commit is a write to the
OS, not an fsync, so it costs microseconds. A power cut may lose the last commits; a process crash does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from comethook_cli.errors import ComethookError, UsageError
from comethook_cli.models import EventInfo, Exchange, Verdict, replace_surrogates

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
    forward_error TEXT
);
"""
COLUMNS = (
    "id, received_at, method, path, query, headers, body, trigger, generation, family, summary, webhook, response_status, "
    "response_headers, response_body, verdict, verdict_reason, verdict_metadata, latency_ms, answered_by, forwarded_to, forward_error"
)
CHECKPOINT_SECONDS = 0.5
INSERT = f"INSERT INTO exchanges ({COLUMNS}) VALUES ({', '.join('?' * 22)})"


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


def connect(path: Path, create: bool = True) -> sqlite3.Connection:
    """Open (and create) the history database in WAL mode."""
    if not create and not path.exists():
        raise ComethookError(f"No history yet at {path}.", "Run `comethook listen` first; it records every delivery.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, check_same_thread=False, timeout=10)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(SCHEMA)
    except (OSError, sqlite3.Error) as error:
        raise ComethookError(
            f"Cannot open the history database {path}: {error}.",
            "Set COMETHOOK_HOME to a writable directory, or use --no-history.",
        ) from None
    return connection


def _row(exchange: Exchange) -> tuple[Any, ...]:
    """The exchange as a row. Text that UTF-8 cannot hold (a lone surrogate, which a JSON body can carry as
    "\\ud800") is stored with U+FFFD in its place: the body column keeps the exact bytes that arrived."""
    verdict = exchange.verdict
    row = (
        exchange.id, exchange.received_at, exchange.method, exchange.path, exchange.query, json.dumps(exchange.headers),
        exchange.body, exchange.info.trigger, exchange.info.generation, exchange.info.family, exchange.info.summary,
        exchange.info.webhook, exchange.response_status, json.dumps(exchange.response_headers), exchange.response_body,
        verdict.kind if verdict else None, verdict.reason if verdict else None,
        json.dumps(verdict.metadata) if verdict and verdict.metadata is not None else None,
        exchange.latency_ms, exchange.answered_by, exchange.forwarded_to, exchange.forward_error,
    )  # fmt: skip
    return tuple(replace_surrogates(value) if isinstance(value, str) else value for value in row)


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
    )  # fmt: skip


class HistoryWriter:
    """Commits exchanges on the event loop in group commits: every exchange recorded during one loop
    iteration goes into one transaction, run right after that iteration (no thread hand-offs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection = connect(path)
        # Checkpoints (copying the WAL into the database, with an fsync) run on a thread of their own,
        # so the event loop only ever appends to the WAL.
        self._connection.execute("PRAGMA wal_autocheckpoint=0")
        self._pending: list[tuple[Exchange, asyncio.Future[None]]] = []
        self._scheduled = False
        self._closing = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="comethook-checkpoint", daemon=True)
        self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        connection = sqlite3.connect(self.path, timeout=10)
        try:
            while not self._closing.wait(CHECKPOINT_SECONDS):
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            connection.close()

    async def record(self, exchange: Exchange) -> None:
        """Store one exchange; returns once it is committed (raises ComethookError if it cannot be)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((exchange, done))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        await done

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        try:
            failures = self._write([exchange for exchange, _ in batch])
        except Exception as error:
            failures = [ComethookError(f"Could not write history to {self.path}: {error}.")] * len(batch)
        for (_, done), failure in zip(batch, failures, strict=True):
            if done.cancelled():
                continue
            if failure is None:
                done.set_result(None)
            else:
                done.set_exception(failure)

    def _write(self, exchanges: list[Exchange]) -> list[ComethookError | None]:
        """Insert in one transaction; each exchange's failure (None when stored). Any error (a database
        error, a value SQLite cannot take) costs only the exchange it belongs to."""
        try:
            rows = [_row(e) for e in exchanges]
            with self._connection:
                self._connection.executemany(INSERT, rows)
        except (sqlite3.Error, ValueError, TypeError, OverflowError) as error:
            if len(exchanges) == 1:
                return [ComethookError(f"Could not write history to {self.path}: {error}.")]
            # One bad row must not cost the others their place: write them one by one.
            return [self._write([exchange])[0] for exchange in exchanges]
        return [None] * len(exchanges)

    def close(self) -> None:
        """Write anything still pending, checkpoint, then close the database."""
        self._closing.set()
        self._checkpointer.join()
        if self._pending:
            self._write([exchange for exchange, _ in self._pending])
            self._pending = []
        with contextlib.suppress(sqlite3.Error):
            self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._connection.close()


class History:
    """Reading (and clearing) the stored exchanges."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        self._connection = connect(self.path, create=False)
        self._connection.row_factory = sqlite3.Row

    def list(self, limit: int | None = 20, trigger: str | None = None) -> list[Exchange]:
        """The newest exchanges first (optionally one trigger only)."""
        sql = f"SELECT {COLUMNS} FROM exchanges"
        args: list[Any] = []
        if trigger:
            sql += " WHERE trigger = ?"
            args.append(trigger)
        sql += " ORDER BY seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_exchange(row) for row in self._connection.execute(sql, args)]

    def iter_all(self) -> Iterator[Exchange]:
        """Every exchange, oldest first."""
        for row in self._connection.execute(f"SELECT {COLUMNS} FROM exchanges ORDER BY seq"):
            yield _exchange(row)

    def get(self, key: str) -> Exchange:
        """The exchange with this id, or the only one whose id starts or ends with it (ids begin with the
        time, so their last characters tell them apart best)."""
        escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
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

    def last(self) -> Exchange:
        """The newest exchange."""
        newest = self.list(limit=1)
        if not newest:
            raise UsageError("The history is empty.", "Run `comethook listen` and send it a delivery first.")
        return newest[0]

    def count(self) -> int:
        """How many exchanges are stored."""
        return int(self._connection.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0])

    def clear(self) -> int:
        """Delete every exchange; returns how many there were."""
        with self._connection:
            removed = self._connection.execute("DELETE FROM exchanges").rowcount
        self._connection.execute("VACUUM")
        return int(removed)

    def close(self) -> None:
        """Close the database."""
        self._connection.close()

"""The history's table: its schema, the check that a file is comethook's, the upgrade of an older one, opening a
database with all three, and the mapping between an Exchange and its row."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from comethook_cli import speedups
from comethook_cli.engine.history.files import HistoryDamaged, is_damaged, move_aside
from comethook_cli.engine.home import make_private_database, private_directory_warning
from comethook_cli.errors import ComethookError
from comethook_cli.models import AnsweredBy, EventInfo, Exchange, Verdict, replace_surrogates

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
    listener TEXT,
    origin TEXT,
    outcome TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value NOT NULL);
"""
COLUMNS = (
    "id, received_at, method, path, query, headers, body, trigger, generation, family, summary, webhook, response_status, "
    "response_headers, response_body, verdict, verdict_reason, verdict_metadata, latency_ms, answered_by, forwarded_to, forward_error, "
    "listener, origin, outcome"
)
INSERT = f"INSERT INTO exchanges ({COLUMNS}) VALUES ({', '.join('?' * 25)})"
#: Every column the code reads or writes; a table without them is not comethook's (or from a newer one).
EXCHANGE_COLUMNS = ("seq", *COLUMNS.replace(" ", "").split(","))
#: Columns a history written by an older comethook may lack: migrate() adds them.
MIGRATED_COLUMNS = ("listener", "origin", "outcome")


def like_escape(text: str) -> str:
    """Text for a LIKE pattern with its wildcards taken literally (used with ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class HistoryWrongShape(ComethookError):
    """The history database's tables lack columns comethook reads and writes (another program's file, or a newer
    comethook's): never changed, never written to."""

    def __init__(self, path: Path, table: str, missing: Sequence[str]) -> None:
        named = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        super().__init__(
            f"The history database {path} is not one this comethook can use: its {table} table has no "
            f"{named} column{'s' if len(missing) > 1 else ''}.",
            f"Move it aside (`{move_aside(path, '.other')}`) or set COMETHOOK_HOME to another directory; "
            "`comethook listen --no-history` runs without one.",
        )
        self.path = path


def connect(path: Path, create: bool = True, on_warning: Callable[[str], None] | None = None) -> sqlite3.Connection:
    """Open (and create, privately) the history database in WAL mode; HistoryDamaged when it is corrupt."""
    if not create and not path.exists():
        raise ComethookError(f"No history yet at {path}.", "Run `comethook listen` first; it records every delivery.")
    try:
        if create:
            warning = private_directory_warning(path.parent)
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
        check_shape(connection, path)  # first: WAL mode, SCHEMA and migrate would each change someone else's file
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(SCHEMA)
        if create:
            migrate(connection)
        else:  # a reader upgrades the file when it may, and reads an older one it may not write as it is (selected())
            with contextlib.suppress(sqlite3.OperationalError):
                migrate(connection)
    except sqlite3.Error as error:
        connection.close()
        raise _open_error(path, error) from None
    except HistoryWrongShape:
        connection.close()
        raise
    return connection


def check_shape(connection: sqlite3.Connection, path: Path) -> None:
    """HistoryWrongShape when a table comethook uses exists without the columns it reads and writes."""
    for table, needed in (("exchanges", EXCHANGE_COLUMNS), ("meta", ("key", "value"))):
        have = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        missing = [column for column in needed if column not in have and column not in MIGRATED_COLUMNS]
        if have and missing:  # no columns at all: no such table yet, SCHEMA creates it
            raise HistoryWrongShape(path, table, missing)


def selected(connection: sqlite3.Connection) -> str:
    """COLUMNS as this file gives them: a column a history from an older comethook lacks (one the reader could not
    upgrade: a read-only file) is read as NULL, which from_row takes as "not kept then"."""
    have = {row[1] for row in connection.execute("PRAGMA table_info(exchanges)")}
    names = COLUMNS.replace(" ", "").split(",")
    return ", ".join(name if name in have or name not in MIGRATED_COLUMNS else f"NULL AS {name}" for name in names)


def migrate(connection: sqlite3.Connection) -> None:
    """Bring a history written by an older comethook up to this schema (columns are only ever added)."""
    have = {row[1] for row in connection.execute("PRAGMA table_info(exchanges)")}
    if "listener" not in have:  # added in 0.2: where the listener ran, so exports point at its real address
        with connection:
            connection.execute("ALTER TABLE exchanges ADD COLUMN listener TEXT")
    if "origin" not in have:  # added in issue 27: who sent it (NULL in older rows: engine.exchanges.is_live judges those)
        with connection:
            connection.execute("ALTER TABLE exchanges ADD COLUMN origin TEXT")
    if "outcome" not in have:  # added in issue 22: who answered, as a type (NULL in older rows: read from answered_by)
        with connection:
            connection.execute("ALTER TABLE exchanges ADD COLUMN outcome TEXT")


def _open_error(path: Path, error: OSError | sqlite3.Error) -> ComethookError:
    if isinstance(error, sqlite3.Error) and is_damaged(error):
        return HistoryDamaged(path, str(error))
    return ComethookError(
        f"Cannot open the history database {path}: {error}.",
        "Set COMETHOOK_HOME to a writable directory, or use --no-history.",
    )


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


def _json(value: Any) -> str:
    """A column's JSON text (orjson when it can, else json): read back with json.loads either way."""
    return speedups.dumps(value) or json.dumps(value, default=str)


def to_row(exchange: Exchange) -> tuple[Any, ...]:
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
        exchange.origin, exchange.outcome.value,
    )  # fmt: skip
    # Checked in C first: almost every value is ASCII text, or not text at all (each row is made on the writer's thread,
    # holding the interpreter's lock the event loop needs).
    return tuple([value if value.__class__ is not str or value.isascii() else replace_surrogates(value) for value in row])


def row_size(exchange: Exchange) -> int:
    """About what the exchange's row takes on disk (its bodies and headers dominate), without encoding it."""
    pairs = (*exchange.headers, *exchange.response_headers)
    headers = sum(map(len, chain.from_iterable(pairs))) + 6 * len(pairs)  # counted in C: it is done for every exchange
    return len(exchange.body) + len(exchange.response_body) + headers + len(exchange.info.summary) + 256


def from_row(row: sqlite3.Row) -> Exchange:
    """The exchange a row holds (ValueError, TypeError or KeyError when it does not decode)."""
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
        listener=row["listener"], origin=row["origin"],
        outcome=_outcome(row["outcome"], row["answered_by"]),
    )  # fmt: skip


#: The stored outcome values, each to its type.
_OUTCOMES = {outcome.value: outcome for outcome in AnsweredBy}


def _outcome(stored: str | None, answered_by: str) -> AnsweredBy:
    """Who answered, as stored; a row from before the column (NULL), or a value this version does not know, is read
    from its `answered_by` text, the one thing such a row holds."""
    found = _OUTCOMES.get(stored) if stored is not None else None
    return found if found is not None else AnsweredBy.of(answered_by)

"""Reading the history: pages (newest first, filtered), one exchange by its id's start or end, everything in order for
an export, and what retention has pruned. A damaged file raises HistoryDamaged wherever the damage shows."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

from comethook_cli.engine.history.files import HistoryDamaged, default_path, is_damaged
from comethook_cli.engine.history.rows import connect, from_row, like_escape, selected
from comethook_cli.errors import ComethookError, UsageError
from comethook_cli.models import Exchange

T = TypeVar("T")
P = ParamSpec("P")


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
        self._columns = selected(self._connection)  # what every query reads
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
            pattern = "%" + like_escape(q) + "%"
            # A BLOB never matches LIKE: the body is compared as the text it holds.
            columns = ("id", "trigger", "summary", "CAST(body AS TEXT)")
            clauses.append(" OR ".join(f"{column} LIKE ? ESCAPE '\\'" for column in columns))
            clauses[-1] = f"({clauses[-1]})"
            args += [pattern] * 4
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        # One row more than asked says whether an older page exists.
        sql = f"SELECT seq, {self._columns} FROM exchanges{where} ORDER BY seq DESC LIMIT ?"
        with self._reading():
            rows = self._connection.execute(sql, [*args, max(limit, 1) + 1]).fetchall()
            exchanges = [from_row(row) for row in rows[:limit]]
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
                f"SELECT {self._columns} FROM exchanges WHERE seq > ? ORDER BY seq LIMIT ?", (found["seq"], max(limit, 1))
            ).fetchall()
            return [from_row(row) for row in rows]

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
                f"SELECT seq, {self._columns} FROM exchanges WHERE seq > ? ORDER BY seq LIMIT ?", (seq, max(limit, 1))
            ).fetchall()
            exchanges = [from_row(row) for row in rows]
        return exchanges, int(rows[-1]["seq"]) if rows else seq

    def iter_all(self) -> Iterator[Exchange]:
        """Every exchange, oldest first, one row at a time (memory stays flat however many there are)."""
        with self._reading():
            for row in self._connection.execute(f"SELECT {self._columns} FROM exchanges ORDER BY seq"):
                yield from_row(row)

    def get(self, key: str) -> Exchange:
        """The exchange with this id, or the only one whose id starts or ends with it (ids begin with the
        time, so their last characters tell them apart best)."""
        escaped = like_escape(key)
        with self._reading():
            rows = self._connection.execute(
                f"SELECT {self._columns} FROM exchanges WHERE id = ? OR id LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\' "
                "ORDER BY seq DESC LIMIT 3",
                (key, escaped + "%", "%" + escaped),
            ).fetchall()
            exact = [r for r in rows if r["id"] == key]
            if exact:
                return from_row(exact[0])
            if len(rows) == 1:
                return from_row(rows[0])
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
                        "SELECT COUNT(*) FROM exchanges WHERE id LIKE ? ESCAPE '\\'", ("%" + like_escape(end),)
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

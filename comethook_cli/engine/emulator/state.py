"""The emulated app's state: the State records, and the Store that keeps them in memory and, with `--state`, in SQLite.

With a state file, each call writes only the records it changed (one row per user, group, message...), in one
transaction when the call ends; the Store also keeps the state's size as JSON, which the caps read.
"""

from __future__ import annotations

import copy
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comethook_cli.engine.home import make_private_database
from comethook_cli.errors import InvalidSetting

#: The keys of State whose entries are records of their own (one row each in the state file).
KINDS = ("users", "groups", "members", "banned", "messages", "reactions", "blocks", "pins", "receipts", "calls")


class Refused(Exception):
    """A REST call CometChat would refuse: its error code, message and (validation) details."""

    def __init__(self, code: str, message: str, details: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


@dataclass
class State:
    """Everything the emulated app holds; JSON-able for `--state` and `GET /_emulator/state`."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: guid → uid → {"scope", "joinedAt"}.
    members: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    banned: dict[str, list[str]] = field(default_factory=dict)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: message id → reaction → uids.
    reactions: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    #: blocker uid → blocked uids.
    blocks: dict[str, list[str]] = field(default_factory=dict)
    #: message id → {"pinnedBy", "pinnedAt"}: kept beside the message, so a pin never changes what a GET returns.
    pins: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 1
    #: message id → "delivered" / "read" → the uids whose SDK client sent that receipt (sdk.py).
    receipts: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    #: call session id → the call: its parties, type, outcome and times (sdk.py).
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The state as one JSON object."""
        return {name: copy.deepcopy(getattr(self, name)) for name in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, document: Any) -> State:
        """A state read back from `to_json()` (unknown keys ignored)."""
        if not isinstance(document, dict):
            return cls()
        return cls(**{k: v for k, v in document.items() if k in cls.__dataclass_fields__})


class Store:
    """The state, the records the call in progress changed, their sizes, and the state file when there is one."""

    def __init__(self) -> None:
        self.state = State()
        self._db: sqlite3.Connection | None = None
        #: Records changed by the call in progress (written, or deleted, when it ends) and each record's JSON size.
        self._dirty: set[tuple[str, str]] = set()
        self._sizes: dict[tuple[str, str], int] = {}
        self.state_bytes = 0
        self._saved_next_id = 0

    def open(self, path: Path) -> None:
        """Open (or create, 0600) the state file and load it; a file of the old one-row format is converted."""
        try:
            make_private_database(path)
            self._db = sqlite3.connect(path)
            self._db.execute("PRAGMA journal_mode=WAL")  # a kill -9 mid-write leaves the last committed state
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._db:
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, key TEXT NOT NULL, json TEXT NOT NULL, "
                    "PRIMARY KEY (kind, key)) WITHOUT ROWID"
                )
                rows = self._db.execute("SELECT kind, key, json FROM records").fetchall()
                old = self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'state'").fetchone()
                whole = self._db.execute("SELECT json FROM state WHERE id = 1").fetchone() if old else None
        except (sqlite3.Error, OSError) as error:
            self.close()
            raise InvalidSetting(
                "state", f": {error}.", "Give a new file, or one `emulate` wrote.", value=str(path), before="Cannot use "
            ) from None
        try:
            if whole is not None:  # the format before records: one row holding the whole state
                self.state = State.from_json(json.loads(whole[0]))
                self._dirty = {(kind, key) for kind in KINDS for key in getattr(self.state, kind)}
                self.flush()
                with self._db:
                    self._db.execute("DROP TABLE state")
            else:
                self._load(rows)
        except (ValueError, TypeError, AttributeError, Refused):
            self.close()
            raise InvalidSetting("state", " holds no emulator state.", "Give a new file.", value=str(path)) from None

    def _load(self, rows: list[tuple[str, str, str]]) -> None:
        state = State()
        for kind, key, text in rows:
            if kind == "meta" and key == "next_id":
                state.next_id = int(json.loads(text))
            elif kind in KINDS:
                value = json.loads(text)
                if not isinstance(value, (dict, list)):
                    raise ValueError(f"{kind} {key} is not a record")
                getattr(state, kind)[key] = value
                self._sizes[(kind, key)] = len(text)
        self.state = state
        self.state_bytes = sum(self._sizes.values())

    def close(self) -> None:
        """Close the state file, if one is open."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def touch(self, kind: str, *keys: str) -> None:
        """Mark records the call in progress changed (or removed): only those are written when it ends."""
        self._dirty.update((kind, key) for key in keys)

    def flush(self) -> None:
        """Write the records the last call changed, in one transaction, and keep the state's size up to date."""
        dirty, self._dirty = self._dirty, set()
        writes: list[tuple[str, str, str]] = []
        removed: list[tuple[str, str]] = []
        for kind, key in dirty:
            value = getattr(self.state, kind).get(key)
            self.state_bytes -= self._sizes.pop((kind, key), 0)
            if value is None:
                removed.append((kind, key))
                continue
            text = json.dumps(value)
            self._sizes[(kind, key)] = len(text)
            self.state_bytes += len(text)
            writes.append((kind, key, text))
        if self._db is None or (not writes and not removed and self.state.next_id == self._saved_next_id):
            return  # a read: nothing to write
        self._saved_next_id = self.state.next_id
        try:
            with self._db:
                self._db.executemany("DELETE FROM records WHERE kind = ? AND key = ?", removed)
                self._db.executemany("INSERT OR REPLACE INTO records (kind, key, json) VALUES (?, ?, ?)", writes)
                self._db.execute(
                    "INSERT OR REPLACE INTO records (kind, key, json) VALUES ('meta', 'next_id', ?)", (str(self.state.next_id),)
                )
        except sqlite3.Error as error:  # a full disk, a file removed: this call says so, the next one writes them again
            self._dirty |= dirty
            self._saved_next_id = 0
            raise Refused("ERR_EXCEPTION", f"The call was applied, but --state could not be written: {error}.") from None

    def reset(self) -> None:
        """Empty the state, and the state file; Refused (ERR_EXCEPTION) when the file cannot be written."""
        self.state = State()
        self._dirty.clear()
        self._sizes.clear()
        self.state_bytes = 0
        if self._db is not None:
            try:
                with self._db:
                    self._db.execute("DELETE FROM records")
            except sqlite3.Error as error:
                raise Refused("ERR_EXCEPTION", f"The state was emptied, but --state could not be written: {error}.") from None

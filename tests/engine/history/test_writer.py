"""The history writer (engine/history/writer.py): under constant writes the WAL starts over without a truncate, and a
WAL past its limit is copied out when the writes stop."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from comethook_cli.engine.history.reader import History
from comethook_cli.engine.history.retention import Retention
from comethook_cli.engine.history.writer import HistoryWriter
from tests.cli.test_history import exchange as stored_exchange


@pytest.mark.serial
async def test_under_constant_writes_the_wal_starts_over_without_a_truncate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PASSIVE checkpoint never reaches the end of a WAL that is written all the time, so SQLite never starts it
    over: the writer thread finishes the copy between two group commits instead. With the TRUNCATE fallback out of
    the way, the WAL starts over again and again (each start writes new salts into its header) while 120 MB are
    written without a pause; it used to grow by all of them (about 140 MB of frames). The bound leaves room for a
    loaded machine, where the writer thread gets to the restart later: it is a third of what an unbounded WAL reaches."""
    from comethook_cli.engine.history import retention as retention_module
    from comethook_cli.engine.history import writer as store_module

    monkeypatch.setattr(store_module, "WAL_STUCK_FACTOR", 10_000)  # no TRUNCATE: only a restart can bound it
    monkeypatch.setattr(store_module, "CHECKPOINT_SECONDS", 0.05)
    monkeypatch.setattr(retention_module, "WAL_LIMIT_MAX", retention_module.WAL_LIMIT_MIN)  # Retention.wal_limit reads it
    writer = HistoryWriter(tmp_path / "h.db", Retention(None, None))  # no pruning; the WAL limit is 4 MiB
    wal = tmp_path / "h.db-wal"
    salts: set[bytes] = set()
    peak = 0
    base = stored_exchange("after_message", "y")
    filler = b'{"trigger":"after_message","data":{"text":"' + b"y" * 20_000 + b'"}}'

    async def keep_writing(worker: int) -> None:
        nonlocal peak
        for n in range(750):
            await writer.record(replace(base, id=f"evt_{worker}_{n}", body=filler))
            with wal.open("rb") as header:
                salts.add(header.read(32)[16:24])
            peak = max(peak, wal.stat().st_size)

    try:
        await asyncio.gather(*(keep_writing(w) for w in range(8)))  # 6,000 x 20 KB, never a quiet moment
    finally:
        writer.close()
    assert len(salts) >= 3, salts
    assert peak < 40_000_000, peak
    with History(tmp_path / "h.db") as history:
        assert history.count() == 6000


async def test_a_wal_past_its_limit_is_copied_out_when_the_writes_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When no delivery follows the one that took the WAL past its limit, the writer thread never gets to finish the
    copy: the maintenance thread does it once the writer sleeps, so a quiet listener does not sit on a large WAL."""
    from comethook_cli.engine.history import retention as retention_module
    from comethook_cli.engine.history import writer as store_module

    monkeypatch.setattr(store_module, "CHECKPOINT_SECONDS", 0.05)
    monkeypatch.setattr(retention_module, "WAL_LIMIT_MAX", retention_module.WAL_LIMIT_MIN)  # Retention.wal_limit reads it
    writer = HistoryWriter(tmp_path / "h.db", Retention(None, None))
    base = stored_exchange("after_message", "y")
    filler = b'{"trigger":"after_message","data":{"text":"' + b"y" * 100_000 + b'"}}'
    try:
        await asyncio.gather(*(writer.record(replace(base, id=f"evt_{n}", body=filler)) for n in range(60)))  # 6 MB
        writer._restart_due = True  # as the maintenance thread sets it when it sees the WAL past its limit after the last commit
        writer._wake.set()
        for _ in range(200):  # the maintenance thread runs every 0.05 s here
            if not writer._restart_due:
                break
            await asyncio.sleep(0.05)
        assert not writer._restart_due
        probe = sqlite3.connect(tmp_path / "h.db")
        [(busy, frames, copied)] = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        probe.close()
        assert busy == 0 and frames == copied  # everything in the WAL is in the database
    finally:
        writer.close()

"""The history (engine/history/, mostly its reader): group commits, lookups by part of an id, paged queries, streaming, clearing, the pruned note."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

from comethook_cli.cli.history import pruned_note
from comethook_cli.cometchat.events import describe
from comethook_cli.engine.history.reader import History
from comethook_cli.engine.history.writer import HistoryWriter
from comethook_cli.errors import ComethookError, UsageError
from comethook_cli.models import Exchange, Verdict


def exchange(id_: str, trigger: str = "message_sent", text: str = "hi", verdict: str | None = None) -> Exchange:
    payload = {"trigger": trigger, "data": {"message": {"id": "1", "data": {"text": text}}}}
    return Exchange(
        id=id_, received_at=time.time(), method="POST", path="/webhook", query="", headers=(("Content-Type", "application/json"),),
        body=json.dumps(payload).encode(), info=describe(payload), response_status=200, response_body=b"{}", latency_ms=1.0,
        verdict=Verdict(verdict) if verdict else None,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "history.db"


def store(db: Path, exchanges: list[Exchange]) -> None:
    """Record one after the other (each in its own commit), so seq follows the list."""

    async def write() -> None:
        writer = HistoryWriter(db)
        try:
            for e in exchanges:
                await writer.record(e)
        finally:
            writer.close()

    asyncio.run(write())


def ids(exchanges: list[Exchange]) -> list[str]:
    return [e.id for e in exchanges]


# --- the writer ------------------------------------------------------------------------------------------


async def test_one_loop_iteration_is_one_commit_and_a_bad_row_costs_only_itself(db: Path) -> None:
    writer = HistoryWriter(db)
    batches: list[int] = []
    write = writer._write

    def counting(exchanges: list[Exchange]) -> list[ComethookError | None]:
        batches.append(len(exchanges))
        return write(exchanges)

    writer._write = counting  # type: ignore[method-assign]
    try:
        await asyncio.gather(*(writer.record(exchange(f"evt_{n}")) for n in range(5)))
        assert batches == [5]  # one transaction for the five
        # A duplicate id breaks the batch's transaction: the batch is retried row by row, and only the duplicate fails.
        results = await asyncio.gather(
            *(writer.record(exchange(key)) for key in ("evt_a", "evt_1", "evt_b")), return_exceptions=True
        )
        assert [type(r).__name__ for r in results] == ["NoneType", "HistoryWriteFailed", "NoneType"]
        assert batches[1:] == [3, 1, 1, 1]
        await writer.record(exchange("evt_after"))  # and the writer goes on
    finally:
        writer.close()
    with History(db) as history:
        assert sorted(ids(list(history.iter_all()))) == sorted(
            ["evt_0", "evt_1", "evt_2", "evt_3", "evt_4", "evt_a", "evt_b", "evt_after"]
        )


# --- lookups ---------------------------------------------------------------------------------------------


def test_get_by_id_start_or_end(db: Path) -> None:
    store(db, [exchange(key) for key in ("evt_aaa_111", "evt_aaa_222", "evt_bbb_333", "ab", "abc")])
    with History(db) as history:
        assert history.get("evt_bbb").id == "evt_bbb_333"  # a unique start
        assert history.get("222").id == "evt_aaa_222"  # a unique end
        assert history.get("ab").id == "ab"  # an exact id wins over the ids it starts
        with pytest.raises(UsageError, match="matches several"):
            history.get("evt_aaa")
        for missing in ("nope", "%", "_"):  # LIKE wildcards are taken literally
            with pytest.raises(UsageError, match="No exchange"):
                history.get(missing)
        assert history.last().id == "abc"


# --- pages ---------------------------------------------------------------------------------------------


def test_pages_walk_back_by_seq_without_repeats_or_gaps(db: Path) -> None:
    store(db, [exchange(f"evt_{n}") for n in range(7)])
    with History(db) as history:
        first, cursor = history.page(limit=3)
        assert ids(first) == ["evt_6", "evt_5", "evt_4"] and cursor is not None
        store(db, [exchange("evt_new")])  # a delivery arriving between pages does not shift the older ones
        second, cursor = history.page(before_seq=cursor, limit=3)
        assert ids(second) == ["evt_3", "evt_2", "evt_1"] and cursor is not None
        last, cursor = history.page(before_seq=cursor, limit=3)
        assert (ids(last), cursor) == (["evt_0"], None)
        exact, cursor = history.page(limit=8)  # exactly all of them: no promise of an empty next page
        assert len(exact) == 8 and cursor is None
        assert history.page(limit=50) == (history.page(limit=50)[0], None)


def test_page_filters_combine_with_the_cursor(db: Path) -> None:
    store(
        db,
        [exchange("evt_0", "before_message", "hello", "pass"), exchange("evt_1", "message_sent", "100% sure"),
         exchange("evt_2", "before_message", "drop me", "drop"), exchange("evt_3", "before_message", "hello again", "pass"),
         exchange("evt_4", "reaction_added")],
    )  # fmt: skip
    with History(db) as history:
        assert ids(history.page(trigger="before_message")[0]) == ["evt_3", "evt_2", "evt_0"]
        assert ids(history.page(verdict="pass")[0]) == ["evt_3", "evt_0"]
        assert ids(history.page(q="HELLO")[0]) == ["evt_3", "evt_0"]  # in the body, ASCII case-insensitively
        assert ids(history.page(q="message 1")[0]) == ["evt_4", "evt_1"]  # in the summary ("… · message 1"), not the body
        assert ids(history.page(q="100%")[0]) == ["evt_1"]  # % is literal, not a wildcard
        assert ids(history.page(q="evt_4")[0]) == ["evt_4"]  # in the id (and _ is literal)
        assert ids(history.page(q='"message_sent"')[0]) == ["evt_1"]  # in the body
        assert history.page(trigger="before_message", verdict="drop", q="hello") == ([], None)
        page, cursor = history.page(trigger="before_message", limit=1)
        assert ids(page) == ["evt_3"] and cursor is not None
        rest, cursor = history.page(before_seq=cursor, trigger="before_message", verdict="pass")
        assert (ids(rest), cursor) == (["evt_0"], None)


async def test_async_queries_run_off_the_loop_and_agree(db: Path) -> None:
    await asyncio.to_thread(store, db, [exchange(f"evt_{n}") for n in range(4)])
    with History(db) as history:
        main = asyncio.get_running_loop()
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = main.create_task(tick())
        pages = await asyncio.gather(*(history.apage(limit=2) for _ in range(10)))
        ticker.cancel()
        assert all(ids(p) == ["evt_3", "evt_2"] and c is not None for p, c in pages)
        assert (await history.aget("evt_1")).id == "evt_1"
        assert ticks > 0


# --- streaming, clearing, closing --------------------------------------------------------------------------


def test_iter_all_is_oldest_first_and_clear_empties_everything(db: Path) -> None:
    store(db, [exchange(f"evt_{n}") for n in (2, 0, 1)])
    with History(db) as history:
        assert ids(list(history.iter_all())) == ["evt_2", "evt_0", "evt_1"]  # the order they were stored in
        assert history.clear() == 3
        assert (history.count(), list(history.iter_all()), history.page()) == (0, [], ([], None))
        with pytest.raises(UsageError, match="empty"):
            history.last()


def test_a_closed_history_refuses_to_read(db: Path) -> None:
    store(db, [exchange("evt_0")])
    with History(db) as history:
        assert history.count() == 1
    with pytest.raises(ComethookError):
        history.count()


def test_no_history_is_an_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ComethookError) as raised:
        History(tmp_path / "missing.db")
    assert "comethook listen" in (raised.value.hint or "")


def test_pruned_note_reports_what_retention_deleted_and_clear_forgets_it(db: Path) -> None:
    store(db, [exchange("evt_0")])
    with History(db) as history:
        assert history.pruned() is None and pruned_note(history) is None
    with sqlite3.connect(db) as raw:  # what the writer's maintenance thread records when it prunes
        raw.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [("pruned_rows", 1234), ("pruned_at", time.time()), ("retention", "500 MiB and 30 days")],
        )
    raw.close()
    with History(db) as history:
        pruned = history.pruned()
        assert pruned is not None and (pruned.rows, pruned.retention) == (1234, "500 MiB and 30 days")
        note = pruned_note(history)
        assert note is not None and "1,234 deleted so far" in note and "500 MiB and 30 days" in note
        history.clear()
        assert history.pruned() is None

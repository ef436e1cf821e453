"""The history's rows: the origin column (who sent an exchange) written and read back, and a history from before it
migrated in place and still readable, its rows judged live or not by their headers."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from comethook_cli import jsonbody
from comethook_cli.engine.exchanges import is_live, make_exchange
from comethook_cli.engine.history.reader import History
from comethook_cli.engine.history.rows import SCHEMA, connect
from comethook_cli.engine.history.writer import HistoryWriter
from comethook_cli.models import Answer, AnsweredBy

BODY = b'{"trigger": "message_sent", "data": {"message": {"id": "1"}}}'


def stored(path: Path, *headers: tuple[tuple[str, str], ...]) -> list[str]:
    """Record one exchange per set of headers through the real writer; their ids."""
    return record(path, [Answer(200, b"{}")] * len(headers), headers)


def record(path: Path, answers: list[Answer], headers: tuple[tuple[tuple[str, str], ...], ...] | None = None) -> list[str]:
    """Record one exchange per answer (with the headers given, or none) through the real writer; their ids."""
    made = [make_exchange("POST", "/webhook", "", h, BODY, jsonbody.parse(BODY), answer, received_at=time.time(),
                          latency_ms=1.0) for h, answer in zip(headers or [()] * len(answers), answers, strict=True)]  # fmt: skip
    writer = HistoryWriter(path)

    async def write() -> None:
        for exchange in made:
            await writer.record(exchange)

    asyncio.run(write())
    writer.close()
    return [e.id for e in made]


def test_each_exchange_keeps_who_sent_it(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    ids = stored(
        path,
        (("Content-Type", "Application/json"),),  # CometChat marks nothing
        (("X-Comethook-Origin", "send"), ("User-Agent", "comethook/1.0")),
        (("x-comethook-origin", "Emulate"),),
        (("X-Comethook-Origin", "something-newer"),),
        (("User-Agent", "comethook-check/0.9"),),  # an older comethook's check: its User-Agent alone
    )
    with History(path) as history:
        found = [history.get(i) for i in ids]
    assert [e.origin for e in found] == ["live", "send", "emulate", "comethook", "check"]
    assert [is_live(e) for e in found] == [True, False, False, False, False]


def test_a_history_from_before_the_origin_column_is_migrated_and_its_rows_judged_by_their_headers(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA.replace(",\n    origin TEXT,\n    outcome TEXT\n", "\n"))
    columns = "id, received_at, method, path, query, headers, body, trigger, generation, family, summary, response_status, "
    columns += "response_headers, response_body, latency_ms, answered_by"
    agents = {"evt_cometchat": [["Content-Type", "Application/json"]], "evt_send": [["User-Agent", "comethook/0.3"]],
              "evt_emulate": [["User-Agent", "Python/3.11 aiohttp/3.9"]]}  # fmt: skip
    for key, headers in agents.items():
        old.execute(
            f"INSERT INTO exchanges ({columns}) VALUES (?, ?, 'POST', '/webhook', '', ?, ?, 'message_sent', 'current', "
            "'message', 'an old one', 200, '[]', ?, 1.0, 'comethook')",
            (key, time.time(), json.dumps(headers), BODY, b"{}"),
        )
    old.commit()
    old.close()
    connect(path).close()  # what every open does: the column is added, nothing else changes
    columns_now = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(exchanges)")}
    assert {"origin", "outcome"} <= columns_now
    with History(path) as history:
        rows = {key: history.get(key) for key in agents}
    assert {key: e.origin for key, e in rows.items()} == dict.fromkeys(agents)  # unknown: never guessed into the file
    assert {key: is_live(e) for key, e in rows.items()} == {"evt_cometchat": True, "evt_send": False, "evt_emulate": False}
    assert stored(path, (("X-Comethook-Origin", "replay"),))  # and the migrated file takes new rows with their origin


def test_who_answered_is_stored_as_a_type_and_older_rows_are_read_from_their_text(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    ids = record(path, [
        Answer(200, b"{}", outcome=outcome, answered_by=text)
        for outcome, text in (
            (AnsweredBy.FALLBACK_DROP, "comethook (fallback drop)"), (AnsweredBy.APP, "your app"), (AnsweredBy.RULE, "comethook")
        )
    ])  # fmt: skip
    with sqlite3.connect(path) as raw:
        assert [r[0] for r in raw.execute("SELECT outcome FROM exchanges ORDER BY seq")] == ["fallback drop", "app", "rule"]
        # A row from before the column: its outcome is NULL, and its text is all there is to go by.
        raw.execute("UPDATE exchanges SET outcome = NULL WHERE id = ?", (ids[0],))
        raw.execute("UPDATE exchanges SET outcome = 'from-a-newer-comethook' WHERE id = ?", (ids[1],))
    with History(path) as history:
        # The column wins over the text: "comethook" alone would read as the canned answer.
        assert [history.get(i).outcome for i in ids] == [AnsweredBy.FALLBACK_DROP, AnsweredBy.APP, AnsweredBy.RULE]


def test_a_read_only_history_from_before_the_new_columns_is_read_as_it_is(tmp_path: Path, cli: Any) -> None:
    """A reader upgrades an older file when it may; one it may not write (chattr +i: not even root may) is read with
    the columns it lacks taken as not kept (before: `history list` failed, `attempt to write a readonly database`)."""
    from comethook_cli.engine.history.files import default_path
    from tests.engine.history.test_files import immutable

    path = default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    old = sqlite3.connect(path)
    old.execute("PRAGMA journal_mode=WAL")  # as every history comethook writes
    old.executescript(SCHEMA.replace(",\n    origin TEXT,\n    outcome TEXT\n", "\n"))
    old.execute(
        "INSERT INTO exchanges (id, received_at, method, path, query, headers, body, trigger, generation, family, summary, "
        "response_status, response_headers, response_body, latency_ms, answered_by) VALUES ('evt_old', ?, 'POST', "
        "'/webhook', '', '[]', ?, 'before_message', 'current', 'message', 'an old one', 200, '[]', ?, 1.0, "
        "'comethook (fallback drop)')",
        (time.time(), BODY, b'{"action": "do_not_propagate"}'),
    )
    old.commit()
    old.close()
    with immutable(path):
        result = cli("history", "list")
        assert result.exit_code == 0, result.output
        assert "an old one" in result.stdout and "before_message" in result.stdout
        with History(path) as history:
            found = history.get("evt_old")
        assert found.outcome is AnsweredBy.FALLBACK_DROP and found.origin is None
    assert "outcome" not in {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(exchanges)")}

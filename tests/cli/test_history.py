"""`comethook history`: list, show, export (ndjson, curl, har), clear, against a real SQLite file."""

from __future__ import annotations

import asyncio
import base64
import json
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from comethook_cli.cli import history as history_command
from comethook_cli.cometchat.events import describe
from comethook_cli.cometchat.verdict import judge
from comethook_cli.engine.exchanges import new_id, redact_headers
from comethook_cli.engine.history.files import default_path
from comethook_cli.engine.history.reader import History
from comethook_cli.engine.history.writer import HistoryWriter
from comethook_cli.models import Exchange
from tests.conftest import ndjson


def exchange(trigger: str, text: str, answer: bytes = b"{}", forwarded_to: str | None = None) -> Exchange:
    payload = {"trigger": trigger, "webhook": "wh", "data": {"data": {"text": text}}}
    body = json.dumps(payload).encode()
    headers = redact_headers(
        [("Content-Type", "application/json"), ("Authorization", "Basic " + base64.b64encode(b"u:pw").decode())]
    )
    return Exchange(
        id=new_id(), received_at=time.time(), method="POST", path="/webhook", query="", headers=headers, body=body,
        info=describe(payload), response_status=200, response_body=answer, latency_ms=1.5,
        verdict=judge(payload, 200, answer) if trigger == "before_message" else None, forwarded_to=forwarded_to,
        response_headers=(("Content-Type", "application/json"),),
    )  # fmt: skip


@pytest.fixture
def stored() -> list[Exchange]:
    exchanges = [
        exchange("before_message", "one", b'{"action": "do_not_propagate"}'),
        exchange("after_message", "two"),
        exchange("before_message", 'it\'s "quoted"', b'{"k": 1}', forwarded_to="http://localhost:8000/hook"),
    ]
    writer = HistoryWriter(default_path())

    async def write() -> None:
        for e in exchanges:
            await writer.record(e)

    asyncio.run(write())
    writer.close()
    return exchanges


def test_list_newest_first_with_filter_and_limit(cli: Any, stored: list[Exchange]) -> None:
    result = cli("history", "list", "--json")
    assert result.exit_code == 0
    assert [e["id"] for e in ndjson(result.stdout)] == [e.id for e in reversed(stored)]
    only = ndjson(cli("history", "list", "--json", "--trigger", "before_message", "--limit", "1").stdout)
    assert [e["id"] for e in only] == [stored[2].id]
    table = cli("history", "list")
    assert table.exit_code == 0 and stored[0].id[-6:] in table.stdout and "DROP" in table.stdout and "INJECT" in table.stdout


def test_show_full_and_by_prefix(cli: Any, stored: list[Exchange]) -> None:
    result = cli("history", "show", stored[0].id[-8:], "--json")  # a unique end of the id
    assert result.exit_code == 0, result.output
    (shown,) = ndjson(result.stdout)
    assert shown["id"] == stored[0].id and shown["verdict"] == "drop"
    assert shown["body"]["data"]["data"]["text"] == "one"
    assert json.loads(shown["raw"]) == shown["body"]
    assert shown["headers"]["Authorization"] == "Basic [redacted]"
    by_prefix = cli("history", "show", stored[0].id[:-2], "--json")
    assert by_prefix.exit_code == 0 and ndjson(by_prefix.stdout)[0]["id"] == stored[0].id
    human = cli("history", "show", stored[0].id)
    assert human.exit_code == 0 and "DROP" in human.stdout and "do_not_propagate" in human.stdout
    missing = cli("history", "show", "evt_nope")
    assert missing.exit_code == 2 and "No exchange 'evt_nope'" in missing.stderr
    ambiguous = cli("history", "show", "evt_")
    assert ambiguous.exit_code == 2 and "matches several" in ambiguous.stderr


def test_export_ndjson_to_file_and_stdout(cli: Any, stored: list[Exchange], tmp_path: Path) -> None:
    out = tmp_path / "export.ndjson"
    assert cli("history", "export", "--format", "ndjson", "-o", str(out)).exit_code == 0
    lines = ndjson(out.read_text())
    assert [line["id"] for line in lines] == [e.id for e in stored]  # oldest first
    assert lines[1]["body"] == json.loads(stored[1].body)
    assert ndjson(cli("history", "export").stdout) == lines
    bad = cli("history", "export", "--format", "xml")
    assert bad.exit_code == 2 and "Unknown export format" in bad.stderr


def test_export_curl_reproduces_the_request(cli: Any, stored: list[Exchange]) -> None:
    result = cli("history", "export", "--format", "curl")
    assert result.exit_code == 0
    commands = result.stdout.strip().splitlines()
    assert len(commands) == 3
    words = shlex.split(commands[2])
    assert words[:4] == ["curl", "-X", "POST", "http://localhost:8000/hook"]
    assert json.loads(words[words.index("--data-binary") + 1]) == json.loads(stored[2].body)
    assert "-u" in words and "pw" not in commands[2]
    assert "http://localhost:8765/webhook" in commands[0]


def test_export_har_is_valid_har(cli: Any, stored: list[Exchange]) -> None:
    result = cli("history", "export", "--format", "har")
    assert result.exit_code == 0
    har = json.loads(result.stdout)
    entries = har["log"]["entries"]
    assert har["log"]["version"] == "1.2" and len(entries) == 3
    for entry, original in zip(entries, stored, strict=True):
        assert entry["request"]["method"] == "POST"
        assert json.loads(entry["request"]["postData"]["text"]) == json.loads(original.body)
        assert entry["response"]["status"] == 200
        assert entry["response"]["content"]["text"] == original.response_body.decode()
        assert {"startedDateTime", "time", "cache", "timings"} <= set(entry)


def test_clear_needs_yes_without_a_tty(cli: Any, stored: list[Exchange]) -> None:
    refused = cli("history", "clear")
    assert refused.exit_code == 2 and "Pass --yes" in refused.stderr
    done = cli("history", "clear", "--yes")
    assert done.exit_code == 0 and "Deleted 3 exchange(s)." in done.stderr
    assert ndjson(cli("history", "list", "--json").stdout) == []
    assert "No exchanges stored yet." in cli("history", "list").stderr


def test_no_history_yet_is_a_clear_error(cli: Any) -> None:
    result = cli("history", "list")
    assert result.exit_code == 0 and "No history yet" in result.stderr and "comethook listen" in result.stderr


def test_no_history_flag_writes_nothing(cli: Any) -> None:
    result = cli("listen", "--port", "0", "--no-history", "--max-events", "1", "--timeout", "0.2")
    assert result.exit_code == 4
    assert not default_path().exists()


def test_export_subprocess_pipes_to_jq_style_consumer(stored: list[Exchange]) -> None:
    import sys

    out = subprocess.run([sys.executable, "-m", "comethook_cli", "history", "export"], capture_output=True, text=True, check=True)
    assert len([json.loads(line) for line in out.stdout.splitlines()]) == 3


def test_list_keeps_every_column_on_a_narrow_terminal(cli: Any, stored: list[Exchange]) -> None:
    result = cli("history", "list", env={"COLUMNS": "70"})
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and len(lines) == 4
    assert all(len(line) <= 70 for line in lines)
    assert stored[0].id[-6:] in result.stdout and "200 DROP" in result.stdout and "200 INJECT" in result.stdout


def test_exports_point_at_the_listener_that_received_the_exchange(cli: Any, listen_process: Any) -> None:
    from tests.conftest import delivery, post_json

    listener = listen_process("--max-events", "1")  # --port 0: not the default 8765
    assert post_json(listener.url + "/webhook?x=1", delivery())[0] == 200
    code, _, err = listener.finish()
    assert code == 0, err
    curl = cli("history", "export", "--format", "curl")
    assert curl.exit_code == 0, curl.output
    assert shlex.split(curl.stdout)[3] == listener.url + "/webhook?x=1"
    har = json.loads(cli("history", "export", "--format", "har").stdout)
    assert har["log"]["entries"][0]["request"]["url"] == listener.url + "/webhook?x=1"


def test_a_history_from_before_the_listener_column_is_migrated_and_still_exports(cli: Any) -> None:
    import sqlite3

    from comethook_cli.engine.history.rows import SCHEMA

    path = default_path()
    path.parent.mkdir(parents=True)
    old = sqlite3.connect(path)
    old.executescript(SCHEMA.replace(",\n    listener TEXT,\n    origin TEXT\n", "\n"))
    columns = "id, received_at, method, path, query, headers, body, trigger, generation, family, summary, response_status, "
    columns += "response_headers, response_body, latency_ms, answered_by"
    old.execute(
        f"INSERT INTO exchanges ({columns}) VALUES (?, ?, 'POST', '/webhook', '', '[]', ?, 'message_sent', 'current', "
        "'message', 'an old one', 200, '[]', ?, 1.0, 'comethook')",
        ("evt_old", time.time(), b"{}", b"{}"),
    )
    old.commit()
    old.close()
    curl = cli("history", "export", "--format", "curl")
    assert curl.exit_code == 0, curl.output
    assert "http://localhost:8765/webhook" in curl.stdout  # where listeners of that time listened by default
    assert "listener" in {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(exchanges)")}


@pytest.mark.parametrize("existing", [False, True])
def test_an_export_file_is_private_whatever_the_umask(cli: Any, stored: list[Exchange], tmp_path: Path, existing: bool) -> None:
    import os
    import stat

    out = tmp_path / "export.har"
    if existing:
        out.write_text("an older export")
        out.chmod(0o666)
    previous = os.umask(0)
    try:
        result = cli("history", "export", "--format", "har", "-o", str(out))
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it holds chat bodies
    assert len(json.loads(out.read_text())["log"]["entries"]) == len(stored)
    before = os.stat(os.devnull).st_mode
    assert cli("history", "export", "-o", os.devnull).exit_code == 0
    assert os.stat(os.devnull).st_mode == before  # root could chmod /dev/null: only regular files are made 0600


async def test_history_list_reads_pages_whatever_the_limit(start: Any, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    running = await start()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=50)) as session:

        async def one(n: int) -> None:
            body = json.dumps({"trigger": "after_message", "data": {"text": f"m-{n}"}}).encode()
            async with session.post(running.url, data=body) as response:
                assert response.status == 200

        await asyncio.gather(*(one(n) for n in range(1200)))
    asked: list[int] = []
    page = History.page

    def recording(self: History, *args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs.get("limit", 50))
        return page(self, *args, **kwargs)

    monkeypatch.setattr(History, "page", recording)
    listed = await cli.run("history", "list", "-n", "1000000", "--json")
    assert listed.exit_code == 0 and len(ndjson(listed.stdout)) == 1200
    assert max(asked) <= history_command.LIST_PAGE  # today: one query for a million rows, bodies and all
    human = await cli.run("history", "list", "-n", "1000000")
    assert human.exit_code == 0 and human.stdout.count("after_message") == 1200

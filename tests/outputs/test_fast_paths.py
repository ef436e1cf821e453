"""The listener's per-delivery shortcuts give exactly what the long way gave.

Each shortcut is checked against the code it stands in for: the event line written without rich's print
pipeline (on a console without colours) against `Console.print`, and the header names a real listener stores against orjson."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from comethook_cli import speedups
from comethook_cli.engine.history.reader import History
from comethook_cli.engine.history.retention import Retention
from comethook_cli.engine.history.writer import HistoryWriter
from comethook_cli.models import AnsweredBy, Verdict
from comethook_cli.outputs import wire
from comethook_cli.outputs.eventline import event_spans
from comethook_cli.outputs.terminal import Renderer
from tests.cli.test_history import exchange as stored_exchange
from tests.outputs.test_terminal import event_lines, exchange

CONSOLES = [
    dict(force_terminal=False, color_system=None),
    dict(force_terminal=True, color_system="truecolor"),
    dict(force_terminal=True, color_system="256"),
    dict(force_terminal=True, color_system="standard"),
    dict(force_terminal=True, color_system="truecolor", no_color=True),
]


def exchanges() -> list[Any]:
    return [
        exchange(),
        exchange(verdict=Verdict("drop", "blocked word")),
        exchange("message_sent", None, latency_ms=1234.5),
        exchange(response_status=500, verdict=Verdict("invalid", "not JSON")),
        exchange(forwarded_to="http://127.0.0.1:3000/hook", answered_by="your app", outcome=AnsweredBy.APP),
        exchange(
            forwarded_to="http://127.0.0.1:3000/hook",
            answered_by="comethook (fallback pass)",
            outcome=AnsweredBy.FALLBACK_PASS,
            forward_error="refused",
        ),
        exchange("group_member_joined", None, id="evt_wide_字字字字字字字字字字字字_😀😀"),
    ]


@pytest.mark.parametrize("settings", CONSOLES, ids=lambda s: "-".join(str(v) for v in s.values()))
@pytest.mark.parametrize("width", [60, 80, 200, None])
def test_the_event_line_is_written_as_console_print_would(settings: dict[str, Any], width: int | None) -> None:
    """The listener writes its event lines as spans (or a Text when one had to be cut), on a console without colours
    without Console.print: the bytes are the same as printing the Text that event_lines() gives, on every console."""
    for e in exchanges():
        lines, fast = event_lines(e, width), event_spans(e, width)
        assert len(lines) == len(fast)
        for line, spans in zip(lines, fast, strict=True):
            for given in (line, spans):
                expected, got = io.StringIO(), io.StringIO()
                reference = Console(file=expected, width=width or 400, highlight=False, soft_wrap=width is None, **settings)
                reference.print(line)
                renderer = Renderer(stream=got)
                renderer.out = Console(file=got, width=width or 400, highlight=False, soft_wrap=width is None, **settings)
                renderer.print_line(given)
                renderer.print_line(given)
                assert got.getvalue() == expected.getvalue() * 2
                assert got.getvalue().count("\n") == 2


def test_a_recording_console_still_records_the_line() -> None:
    renderer = Renderer(stream=io.StringIO())
    renderer.out = Console(file=io.StringIO(), record=True, width=120)
    (line,) = event_lines(exchange(), 120)
    renderer.print_line(line)
    assert "--> before_message" in renderer.out.export_text()


@pytest.mark.parametrize("speedups_on", [True, False], ids=["orjson", "json"])
def test_an_unsafe_character_in_an_event_line_is_escaped_by_either_encoder(
    speedups_on: bool, request: pytest.FixtureRequest
) -> None:
    if not speedups_on:
        request.getfixturevalue("without_speedups")
    e = exchange(info=exchange().info.__class__("before_message", "legacy", "message", "a\u202eb\x85c → d"))
    line = wire.Event(e).encode()
    assert "\u202e" not in line and "\x85" not in line and "\\u202e" in line and "\\u0085" in line
    assert json.loads(line)["summary"] == "a\u202eb\x85c → d"


async def test_a_real_delivery_is_encoded_by_orjson(start: Any) -> None:
    """aiohttp hands header names over as multidict's `istr`, which orjson refuses as a key: the listener stores
    plain `str` names, so every `--json` line takes orjson's way, not the stdlib's."""
    import aiohttp

    running = await start()
    body, headers = b'{"trigger":"after_message","data":{}}', {"Content-Type": "application/json", "X-Custom": "1"}
    async with aiohttp.ClientSession() as client, client.post(running.url, data=body, headers=headers) as response:
        assert response.status == 200
    (stored,) = running.exchanges
    assert all(type(name) is str for name, _ in stored.headers)
    if speedups.active()["orjson"]:
        document = wire.Event(stored).to_json()
        assert speedups.dumpb(document) is not None


@pytest.mark.serial
async def test_under_constant_writes_the_wal_starts_over_without_a_truncate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PASSIVE checkpoint never reaches the end of a WAL that is written all the time, so SQLite never starts it
    over: the writer thread finishes the copy between two group commits instead. With the TRUNCATE fallback out of
    the way, the WAL starts over again and again (each start writes new salts into its header) while 40 MB are
    written without a pause; it used to grow by all of them."""
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
        for n in range(250):
            await writer.record(replace(base, id=f"evt_{worker}_{n}", body=filler))
            with wal.open("rb") as header:
                salts.add(header.read(32)[16:24])
            peak = max(peak, wal.stat().st_size)

    try:
        await asyncio.gather(*(keep_writing(w) for w in range(8)))  # 2,000 x 20 KB, never a quiet moment
    finally:
        writer.close()
    assert len(salts) >= 3, salts
    assert peak < 2000 * 20_000, peak
    with History(tmp_path / "h.db") as history:
        assert history.count() == 2000


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

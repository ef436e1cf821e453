"""The core the outputs stand on: the Session run from Python, the hub's isolation, and non-blocking output."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from comethook_cli.engine import values
from comethook_cli.engine.config import AnswerConfig, HistoryConfig, ListenConfig, ListenerConfig, TunnelConfig
from comethook_cli.engine.history.reader import History
from comethook_cli.engine.hub import Hub, NotStored
from comethook_cli.engine.session import Session
from comethook_cli.errors import UsageError
from comethook_cli.models import Exchange, RecordHandler, Rejection, Skipped
from comethook_cli.outputs.stream import BackgroundStream
from tests.conftest import delivery, ndjson


def local_config(respond: str = "pass", **answers: Any) -> ListenConfig:
    answer_config = AnswerConfig(action=values.action(respond), **answers)
    return ListenConfig(listener=ListenerConfig(port=0), answers=answer_config, tunnel=TunnelConfig(mode="off"))


async def test_a_session_runs_from_python_without_typer_and_stores_before_it_answers() -> None:
    async with Session(local_config(respond="drop")) as session:
        records = session.hub.subscribe_queue()
        async with aiohttp.ClientSession() as client:
            async with client.post(session.webhook_url, data=delivery(text="buy pills")) as answer:
                assert answer.status == 200 and await answer.json() == {"action": "do_not_propagate"}
            async with client.post(session.local_url + "/webhook", data=b"not json") as refused:
                assert refused.status == 400
        exchange = await asyncio.wait_for(records.get(), 5)
        rejection = await asyncio.wait_for(records.get(), 5)
        assert isinstance(exchange, Exchange) and exchange.verdict is not None and exchange.verdict.kind == "drop"
        assert isinstance(rejection, Rejection) and rejection.status == 400
        assert session.events == 1
        assert session.history is not None
        path = session.history.path
    # Shut down: the history is closed, and the exchange was committed before it was answered.
    assert History(path).get(exchange.id).info.summary == exchange.info.summary
    assert session.history is None and session.listener is not None


async def test_max_events_ends_serve_and_a_bad_option_fails_before_anything_opens() -> None:
    config = ListenConfig(
        listener=ListenerConfig(port=0), tunnel=TunnelConfig(mode="off"), history=HistoryConfig(enabled=False), max_events=2
    )
    async with Session(config) as session:
        serving = asyncio.ensure_future(session.serve())
        async with aiohttp.ClientSession() as client:
            for _ in range(2):
                async with client.post(session.webhook_url, data=delivery()) as answer:
                    assert answer.status == 200
        await asyncio.wait_for(serving, 5)
    with pytest.raises(UsageError, match="status=42 is not an HTTP status code"):  # the engine names no flag
        local_config(status=42)


async def test_the_hub_stores_first_isolates_a_broken_output_and_cuts_off_a_queue_that_falls_behind() -> None:
    order: list[str] = []
    warnings: list[str] = []

    class Sink:
        async def record(self, exchange: Any) -> None:
            order.append("stored")

    hub = Hub(Sink(), warnings.append)

    def broken(record: object) -> None:
        raise RuntimeError("the terminal is gone")

    hub.subscribe(broken)
    hub.subscribe(lambda record: order.append(f"shown {record}"))
    slow = hub.subscribe_queue(maxsize=2)
    assert await hub.commit(object()) is None  # type: ignore[arg-type]
    for n in range(4):
        hub.publish(n)
    assert order == ["stored", "shown 0", "shown 1", "shown 2", "shown 3"]  # the broken output cost nothing else
    assert len(warnings) == 4 and all("the terminal is gone" in w for w in warnings)
    assert slow.overflowed and slow.queue.qsize() == 2  # cut off at the bound, told to reload

    class FailingSink:
        async def record(self, exchange: Any) -> None:
            raise RuntimeError("disk full")

    failing = Hub(FailingSink(), warnings.append)
    assert await failing.commit(type("E", (), {"id": "evt_1"})()) == NotStored("evt_1", "RuntimeError: disk full")
    assert len(warnings) == 4  # the caller warns (the listener, rate-limited), not the hub once per exchange


async def test_the_hub_publishes_a_closed_set_of_records_each_to_its_own_handler_method() -> None:
    """A RecordHandler subscribes itself and gets each record in the method for its kind: the exchange `keep` leaves out
    arrives as Skipped, in on_skipped; the one it keeps in on_exchange; a rejection in on_rejection."""
    from tests.cli.test_history import exchange

    got: list[tuple[str, object]] = []

    class Handler(RecordHandler):
        def on_exchange(self, exchange: Exchange) -> None:
            got.append(("exchange", exchange))

        def on_skipped(self, skipped: Skipped) -> None:
            got.append(("skipped", skipped.exchange))

        def on_rejection(self, rejection: Rejection) -> None:
            got.append(("rejection", rejection))

    hub = Hub()
    hub.keep = lambda e: e.info.trigger == "before_message"
    remove = hub.subscribe(Handler())
    kept, left_out = exchange("before_message", "one"), exchange("message_sent", "two")
    refused = Rejection(400, "body is not JSON", "POST", "/webhook")
    for record in (kept, left_out, refused):
        hub.publish(record)
    assert got == [("exchange", kept), ("skipped", left_out), ("rejection", refused)]
    remove()
    hub.publish(kept)
    assert len(got) == 3  # removed by the function subscribe() returned


def test_background_stream_never_blocks_and_says_what_it_dropped() -> None:
    read_end, write_end = os.pipe()
    target = os.fdopen(write_end, "w", encoding="utf-8")
    stream = BackgroundStream(target, limit=1000, overflow_note=lambda n: f"dropped {n}\n")
    for n in range(20_000):  # nobody reads the pipe: 64 KiB fill it, the rest is dropped, not waited on (no hang)
        stream.write(f"line {n:05d} " + "x" * 50 + "\n")
    assert stream.dropped > 0
    received = bytearray()

    def drain() -> None:
        while chunk := os.read(read_end, 65536):
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    stream.drain()
    stream.write("after\n")  # the reader caught up: the count of lost lines comes first
    stream.close()
    target.close()
    reader.join(5)
    lines = received.decode().splitlines()
    assert lines[-1] == "after" and lines[-2].startswith("dropped ") and int(lines[-2].split()[1]) > 0
    written = [line for line in lines[:-1] if line.startswith("line ")]
    notes = [int(line.split()[1]) for line in lines[:-1] if line.startswith("dropped ")]
    assert len(written) + len(notes) == len(lines) - 1  # nothing else, and no line cut in two
    assert all(len(line) == 61 for line in written)
    assert len(written) + sum(notes) == 20_000  # each line was written, or counted as dropped
    assert [int(line.split()[1]) for line in written] == sorted(int(line.split()[1]) for line in written)


def test_a_reader_that_stops_reading_never_holds_up_an_answer(tmp_path: Path) -> None:
    env = {**os.environ, "COMETHOOK_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "comethook_cli", "listen", "--port", "0", "--no-tunnel", "--json"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())  # then stop reading stdout altogether
        url = ready["webhook_url"]
        body = delivery(text="y" * 20_000)

        async def post_all() -> list[int]:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:

                async def one() -> int:
                    async with client.post(url, data=body) as answer:
                        return answer.status

                return [await one() for _ in range(800)]  # ~16 MB of event lines: far past the pipe and the buffer

        statuses = asyncio.run(post_all())
        assert statuses == [200] * 800
        assert History(tmp_path / "home" / "history.db").count() == 800  # every answered delivery is stored
        proc.send_signal(2)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    lines = ndjson(out.decode())
    overflow = [line for line in lines if line["type"] == "overflow"]
    events = [line for line in lines if line["type"] == "event"]
    assert overflow and overflow[0]["dropped"] > 0
    assert len(events) + sum(o["dropped"] for o in overflow) == 800
    assert lines[-1] == {"type": "stopped", "events": 800}
    assert proc.returncode == 0, err


def test_the_human_view_writes_through_the_background_stream() -> None:
    from comethook_cli.outputs.views import view

    buffer = io.StringIO()
    stream = BackgroundStream(buffer)
    shown = view(False, stream=stream)
    shown.exchanges([], "No exchanges stored yet.")  # a note: stderr
    shown.human.out.print("hello")
    stream.close()
    assert buffer.getvalue() == "hello\n"


async def test_a_batch_subscriber_gets_everything_published_meanwhile_in_order_with_one_wake_up() -> None:
    hub = Hub()
    subscription = hub.subscribe_batches(maxsize=100)
    waiting = asyncio.ensure_future(subscription.batch())
    await asyncio.sleep(0)  # it waits
    for n in range(5):
        hub.publish(n)  # one loop iteration: a queue would wake its consumer five times
    assert await waiting == [0, 1, 2, 3, 4]
    hub.publish("next")
    assert await subscription.batch() == ["next"]


async def test_a_batch_subscriber_that_falls_behind_is_cut_off_and_a_closed_one_wakes_empty() -> None:
    hub = Hub()
    behind = hub.subscribe_batches(maxsize=3)
    for n in range(5):
        hub.publish(n)
    assert behind.overflowed and behind.closed
    assert await behind.batch() == [0, 1, 2]  # what it had, then nothing more
    assert await behind.batch() == []
    # A consumer waiting when the subscription is closed (the inspector stopping) wakes at once, with nothing.
    dropped = hub.subscribe_batches()
    waiting = asyncio.ensure_future(dropped.batch())
    await asyncio.sleep(0)
    dropped.close()
    assert await asyncio.wait_for(waiting, 1) == [] and not dropped.overflowed
    hub.publish("after")  # neither is subscribed any more
    assert await behind.batch() == [] and await dropped.batch() == []


async def test_a_batch_wait_that_timed_out_leaves_the_subscription_working() -> None:
    hub = Hub()
    subscription = hub.subscribe_batches()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await subscription.batch()
    hub.publish("later")
    assert await asyncio.wait_for(subscription.batch(), 1) == ["later"]

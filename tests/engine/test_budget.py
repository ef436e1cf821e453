"""The shared body budget on a real listener: bodies arriving at once past it get 503 with Retry-After."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from tests.conftest import eventually, post


async def test_bodies_arriving_at_once_past_the_body_budget_get_503_with_retry_after(start: Any) -> None:
    running = await start(body_budget=256 * 1024)
    budget = running.listener.budget
    big = json.dumps({"trigger": "after_message", "data": {"text": "x" * (200 * 1024)}}).encode()
    port = running.listener.port
    # A slow sender: the headers and 150 KiB of its body now, the rest later.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(big))
    writer.write(big[: 150 * 1024])
    await writer.drain()
    await eventually(lambda: budget.used >= 150 * 1024)
    # Its Content-Length does not fit in what is left: refused before a byte is read.
    status, body, headers = await post(running.url, big)
    assert status == 503 and headers["Retry-After"] == "5" and b"memory budget" in body
    # Chunked (no Content-Length): refused once its chunks pass the budget.

    async def chunked() -> AsyncIterator[bytes]:
        for start_ in range(0, len(big), 16 * 1024):
            yield big[start_ : start_ + 16 * 1024]

    status, body, headers = await post(running.url, chunked())  # type: ignore[arg-type]
    assert status == 503 and headers["Retry-After"] == "5"
    # The slow sender finishes: answered and stored; the budget is handed back, and the next big body fits.
    writer.write(big[150 * 1024 :])
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200")
    await eventually(lambda: budget.used == 0)
    assert (await post(running.url, big))[0] == 200
    assert [r.status for r in running.rejections] == [503, 503]
    assert len([w for w in running.warnings if "memory budget" in w]) == 1
    assert len(running.exchanges) == 2

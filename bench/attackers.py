"""The slow-body attacker that bench/run.py's slow-body flood and tests/engine/test_listener_hostile.py both send:
one implementation, so the benchmark measures the attack the test asserts about."""

from __future__ import annotations

import asyncio


async def drip_attacker(port: int, stop: asyncio.Event, every: float = 1.0, declared: int = 100_000) -> int:
    """A slow-body attacker: headers at once, then one body byte every `every` seconds; reconnects when dropped.
    Returns how many connections it opened."""
    opened = 0
    while not stop.is_set():
        writer = None
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            opened += 1
            writer.write(
                b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % declared
            )
            while not stop.is_set():
                await writer.drain()
                try:  # the listener answering or closing ends this connection
                    if await asyncio.wait_for(reader.read(65536), every) == b"":
                        break
                except TimeoutError:
                    writer.write(b" ")
                    continue
                break
        except OSError:
            await asyncio.sleep(0.05)
        finally:
            if writer is not None:
                writer.close()
        await asyncio.sleep(0.01)
    return opened

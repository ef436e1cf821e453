"""A reference client: bare aiohttp, 32 workers POSTing one fixed body N times (no building, no output)."""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp


async def main(url: str, body: bytes, count: int, concurrency: int) -> None:
    remaining = iter(range(count))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            for _ in remaining:
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        print(f"{count / (time.perf_counter() - started):.0f}", file=sys.stderr)


if __name__ == "__main__":
    with open(sys.argv[2], "rb") as source:
        payload = source.read()
    asyncio.run(main(sys.argv[1], payload, int(sys.argv[3]), int(sys.argv[4])))

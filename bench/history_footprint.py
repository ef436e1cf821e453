"""The history's disk footprint under a flood: db + -wal + -shm against --history-max-mb.

    python bench/history_footprint.py                       # 20,000 deliveries, 16 KB of headers each, cap 5 MiB
    python bench/history_footprint.py --count 5000 --cap 5 --header-kb 32

Runs a real `comethook listen --quiet --history-max-mb CAP` (its own COMETHOOK_HOME), floods it from 32
connections, samples the three files' sizes every few milliseconds, then stops it with SIGINT and measures what
is left. Not a test: it prints what it measured (the test is tests/engine/history/test_files.py's flood test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp

MIB = 1024 * 1024


def sizes(db: Path) -> tuple[int, int, int]:
    """The sizes of history.db, -wal and -shm (0 for a missing one)."""
    found = []
    for suffix in ("", "-wal", "-shm"):
        try:
            found.append(os.stat(f"{db}{suffix}").st_size)
        except OSError:
            found.append(0)
    return found[0], found[1], found[2]


async def flood(url: str, count: int, header_kb: int, connections: int = 32) -> dict[int, int]:
    """POST `count` deliveries with `header_kb` KB of headers each; how many got each status."""
    filler = "h" * 8000
    headers = {f"X-Filler-{n}": filler for n in range(max(header_kb * 1000 // 8000, 1))}
    statuses: dict[int, int] = {}
    queue = iter(range(count))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as client:

        async def worker() -> None:
            for n in queue:
                body = json.dumps({"trigger": "after_message", "data": {"data": {"text": f"flood {n}"}}})
                async with client.post(url, data=body, headers=headers) as answer:
                    await answer.read()
                    statuses[answer.status] = statuses.get(answer.status, 0) + 1

        await asyncio.gather(*(worker() for _ in range(connections)))
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--cap", type=float, default=5.0, help="--history-max-mb")
    parser.add_argument("--header-kb", type=int, default=16)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="footprint-"))
    db = home / "history.db"
    command = [sys.executable, "-m", "comethook_cli", "listen", "--port", "0", "--no-tunnel", "--json", "--quiet"]
    command += ["--history-max-mb", f"{args.cap:g}"]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "COMETHOOK_HOME": str(home)}
    )
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    peak = (0, 0, 0, 0)  # total, db, wal, shm
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.002):
            found = sizes(db)
            if sum(found) > peak[0]:
                peak = (sum(found), *found)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    statuses = asyncio.run(flood(ready["local_url"] + "/webhook", args.count, args.header_kb))
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    after = sizes(db)
    cap = args.cap * MIB
    print(f"{args.count:,} deliveries with {args.header_kb} KB of headers in {seconds:.1f} s; answers {statuses}")
    print(f"cap {args.cap:g} MiB; peak total {peak[0] / MIB:.1f} MiB ({peak[0] / cap:.2f}x the cap: "
          f"db {peak[1] / MIB:.1f}, wal {peak[2] / MIB:.1f}, shm {peak[3] / MIB:.2f})")  # fmt: skip
    print(f"after exit: {sum(after) / MIB:.1f} MiB ({sum(after) / cap:.2f}x the cap: db {after[0] / MIB:.1f}, "
          f"wal {after[1] / MIB:.1f}, shm {after[2] / MIB:.2f}); exit {proc.returncode}")  # fmt: skip
    if err.strip():
        print(err.decode(errors="replace")[-2000:])


if __name__ == "__main__":
    main()

"""The listener's open connections: the warning when accepting fails counts the connections it sees."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import eventually


async def test_the_accept_error_warning_counts_the_connections_it_sees(start: Any) -> None:
    import errno

    running = await start()
    idle = [await asyncio.open_connection("127.0.0.1", running.listener.port) for _ in range(5)]
    try:
        await eventually(lambda: running.listener._server is not None and len(running.listener._server.connections) == 5)
        error = OSError(errno.EMFILE, "Too many open files")
        asyncio.get_running_loop().call_exception_handler({"message": "accept", "exception": error})
    finally:
        for _, writer in idle:
            writer.close()
    assert len(running.warnings) == 1
    assert "(5 connections to the listener open, 0 busy; closed the 1 slowest)" in running.warnings[0]

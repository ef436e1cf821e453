"""Binding an aiohttp server to its address: the listener's and the inspector's, with the same errors."""

from __future__ import annotations

import errno

from aiohttp import web

from comethook_cli.errors import ListenerError


async def bind(
    runner: web.BaseRunner, host: str, port: int, in_use: tuple[str, str], failed: tuple[str, str | None], backlog: int = 128
) -> None:
    """Set the runner up and listen on host:port; ListenerError (with `in_use` or `failed` as message and hint)
    when the address cannot be used, and nothing left half-open."""
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, backlog=backlog).start()
    except OSError as error:
        await runner.cleanup()
        if error.errno == errno.EADDRINUSE:
            raise ListenerError(*in_use) from None
        raise ListenerError(f"{failed[0]}: {error.strerror or error}.", failed[1]) from None

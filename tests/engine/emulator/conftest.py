"""The harness of the emulator's tests: an HTTP client of a real emulator on loopback, and one whose webhook is a receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from comethook_cli.engine.config import EmulatorConfig
from comethook_cli.engine.emulator import Emulator


class Client:
    """An HTTP client of one emulator: REST calls under /v3, control calls under /_emulator."""

    def __init__(self, emulator: Emulator, session: aiohttp.ClientSession, key: str = "k") -> None:
        self.emulator = emulator
        self.session = session
        self.root = emulator.base_url.removesuffix("/v3")
        self.key = key

    async def call(self, method: str, path: str, body: Any = None, key: str | None = None, **headers: str) -> tuple[int, Any]:
        sent = {"apikey": key if key is not None else self.key, **headers}
        data = json.dumps(body).encode() if body is not None else None
        url = self.root + (path if path.startswith("/_emulator") else "/v3" + path)
        async with self.session.request(method, url, headers=sent, data=data) as answer:
            return answer.status, await answer.json(content_type=None)

    async def user(self, uid: str, **extra: Any) -> tuple[int, Any]:
        return await self.call("POST", "/users", {"uid": uid, "name": uid.upper(), **extra})


async def running(config: EmulatorConfig) -> AsyncIterator[Client]:
    async with Emulator(config) as emulator, aiohttp.ClientSession() as session:
        yield Client(emulator, session, config.api_key or "k")


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async for started in running(EmulatorConfig(port=0)):
        yield started


def refused(status: int, body: Any, code: str) -> bool:
    error = body.get("error", {}) if isinstance(body, dict) else {}
    return status == 403 and error.get("code") == code and error.get("source") == "chat-api" and bool(error.get("message"))


# --- every REST operation a backend calls, with the webhooks it fires (and nothing else) -------------------------
class Receiver:
    """A webhook receiver on loopback: every delivery's body, in arrival order."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.json_response({})

    def take(self) -> list[dict[str, Any]]:
        taken, self.bodies = self.bodies, []
        return taken


async def hooked(**config: Any) -> AsyncIterator[tuple[Client, Receiver]]:
    """An emulator (key "k") whose one webhook is a Receiver."""
    from comethook_cli.engine.config import WebhookTarget

    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        hook = WebhookTarget(f"http://127.0.0.1:{port}/hook", "hook-1")
        async for client in running(EmulatorConfig(port=0, api_key="k", webhooks=(hook,), **config)):
            yield client, receiver
    finally:
        await runner.cleanup()


async def fired(client: Client, receiver: Receiver) -> list[dict[str, Any]]:
    """The deliveries the calls so far caused, once all of them have been delivered."""
    pending = client.emulator.webhooks._pending  # the delivery tasks in flight; each one's end removes it
    while pending:
        await asyncio.gather(*list(pending), return_exceptions=True)
    return receiver.take()


def stored_group_time(client: Client) -> int:
    return int(client.emulator.state.groups["g"]["createdAt"])

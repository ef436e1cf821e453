"""What `listen` watches while it runs (engine/health.py): the probe through the public URL, against real pyngrok and
the stand-in agent (tests/fake_ngrok.py), which stops forwarding mid-run; and the app behind --forward-to, a real
aiohttp app started late and then stopped. Intervals are 0.2 s here (a Session parameter), 30 s and 3 s for users."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from comethook_cli.cli.app import as_flags
from comethook_cli.engine.config import ListenConfig, ListenerConfig, TunnelConfig
from comethook_cli.engine.health import FAILURES_FOR_DOWN
from comethook_cli.engine.session import Session
from comethook_cli.models import Exchange, Health, HubRecord
from tests.conftest import delivery, eventually, forward_config, post

TOKEN = "2abcSECRETtoken_do_not_print"


@pytest.fixture
async def sessions() -> AsyncIterator[Callable[..., Any]]:
    started: list[Session] = []

    async def start(config: ListenConfig, **options: Any) -> tuple[Session, list[HubRecord], list[str]]:
        warnings: list[str] = []
        session = Session(config, on_warning=warnings.append, **options)
        records: list[HubRecord] = []
        session.hub.subscribe(records.append)
        started.append(session)
        await session.startup()
        return session, records, warnings

    yield start
    for session in started:
        await session.shutdown()


def health(records: list[HubRecord], subject: str) -> list[Health]:
    return [r for r in records if isinstance(r, Health) and r.subject == subject]


async def test_the_probe_through_the_tunnel_says_down_after_two_failures_and_up_once_it_is_back(
    sessions: Any, fake_ngrok: Any, cli: Any
) -> None:
    tunnel = TunnelConfig(mode="on", ngrok_path=str(fake_ngrok.path), ngrok_authtoken=TOKEN)
    session, records, _ = await sessions(ListenConfig(ListenerConfig(port=0), tunnel=tunnel), probe_interval=0.2)
    (probe,) = session.watches
    await eventually(lambda: probe.checks >= 3)
    assert health(records, "tunnel") == []  # healthy: nothing to say
    fake_ngrok.stop_forwarding()
    await eventually(lambda: bool(health(records, "tunnel")))
    (down,) = health(records, "tunnel")
    assert down.state == "down" and down.url == session.public_url
    assert "HTTP 404 (ERR_NGROK_3200)" in down.detail and "CometChat's deliveries do not arrive" in down.detail
    assert "Restart `comethook listen`" in down.hint and "--domain" in down.hint
    assert probe.failures >= FAILURES_FOR_DOWN
    assert session.health()["tunnel"]["state"] == "down"
    fake_ngrok.resume_forwarding()
    await eventually(lambda: len(health(records, "tunnel")) == 2)
    up = health(records, "tunnel")[1]
    assert up.state == "up" and "reaches this listener again" in up.detail
    await asyncio.sleep(0.5)  # more probes, all through: one line for the recovery, not one per probe
    assert len(health(records, "tunnel")) == 2
    # Every probe was answered by the listener, and none of them is a delivery: not stored, published nor counted.
    assert probe.checks >= 6
    assert not [r for r in records if not isinstance(r, Health)]
    assert session.events == 0 and session.listener is not None and session.listener.events == 0
    assert (await cli.run("history", "list", "--json")).stdout == ""


async def test_the_listener_answers_the_probe_path_with_its_secret_and_records_nothing(start: Any, cli: Any) -> None:
    running = await start()
    listener = running.listener
    base = listener.local_url
    async with aiohttp.ClientSession() as client:
        async with client.get(base + listener.probe_path) as answer:
            assert answer.status == 200 and await answer.read() == listener.probe_reply
        # Another token is no probe: an ordinary request, refused as one (and published as a rejection).
        async with client.get(base + "/_comethook/probe/not-the-token") as answer:
            assert answer.status == 405
    assert len(running.rejections) == 1 and running.exchanges == [] and listener.events == 0
    assert listener.probe_path.startswith("/_comethook/probe/") and len(listener.probe_path) > len("/_comethook/probe/") + 16
    assert listener.probe_reply not in listener.probe_path.encode()
    assert (await post(running.url, delivery()))[0] == 200  # deliveries still work, and only they are stored
    # With Basic auth on, the probe still gets through (its token is its credential); a delivery needs the password.
    guarded = await start(basic_auth="cc:secret")
    async with aiohttp.ClientSession() as client, client.get(guarded.listener.local_url + guarded.listener.probe_path) as answer:
        assert answer.status == 200 and await answer.read() == guarded.listener.probe_reply
    assert (await post(guarded.url, delivery()))[0] == 401
    stored = (await cli.run("history", "list", "--json")).stdout.splitlines()
    assert len(stored) == 1 and "_comethook" not in stored[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_app_started_late_then_stopped_gets_one_line_each_way_and_never_a_delivery(sessions: Any) -> None:
    port = free_port()
    target = f"http://127.0.0.1:{port}/hook"
    config = ListenConfig(ListenerConfig(port=0), forward=forward_config((target,)), tunnel=TunnelConfig(mode="off"))
    session, records, warnings = await sessions(config, app_interval=0.2)
    (warning,) = [w for w in warnings if w.startswith("forward_to ")]  # the engine names the setting; the CLI, the flag:
    assert as_flags(warning).startswith(f"--forward-to http://127.0.0.1:{port}/hook: nothing listens there")
    assert "Start your app" in warning and "the --fallback answer" in as_flags(warning)
    assert session.health()["app"]["state"] == "down"
    hits: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await eventually(lambda: bool(health(records, "app")))
        (up,) = health(records, "app")
        assert up.state == "up" and up.url == target
    finally:
        await runner.cleanup()
    await eventually(lambda: len(health(records, "app")) == 2)
    down = health(records, "app")[1]
    assert down.state == "down" and "nothing listens there" in down.detail and "--fallback answer (error)" in down.hint
    await asyncio.sleep(0.6)
    assert len(health(records, "app")) == 2  # one line while it stays down
    assert hits == [] and not [r for r in records if isinstance(r, Exchange)]  # found by a connect, never a delivery


async def test_no_watch_without_a_public_url_or_an_app(sessions: Any) -> None:
    session, _records, _ = await sessions(ListenConfig(ListenerConfig(port=0), tunnel=TunnelConfig(mode="off")))
    assert session.watches == [] and session.health() == {}


async def test_a_failed_probe_never_says_the_probe_token() -> None:
    """aiohttp names the URL in some errors (a malformed answer): the probe path's token stays out of what is said."""
    from comethook_cli.engine.health import TunnelProbe
    from comethook_cli.engine.hub import Hub

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 abc not a status\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = TunnelProbe(f"http://127.0.0.1:{port}", "/_comethook/probe/s3cr3t-token-value", b"ok", Hub(), "hint", timeout=5)
    try:
        said = await probe.probe()
    finally:
        await probe.stop()
        server.close()
    assert said is not None and "could not reach" in said and "s3cr3t-token-value" not in said, said

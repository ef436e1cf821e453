"""`comethook mcp` driven by the SDK's own client over stdio, as a subprocess: its tools and their schemas, each tool
against real loopback servers (a handler, a running `listen` with its history, `emulate`), --read-only, tool errors
that keep the server serving, and secrets from the environment kept out of every result.

One server process (and one listen, one handler, one emulator) serves the whole module: a background event loop
holds them, and each test calls into it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from comethook_cli.engine.config import EmulatorConfig, WebhookTarget
from comethook_cli.engine.emulator import Emulator
from comethook_cli.mcp.server import READ_ONLY

T = TypeVar("T")
#: The secrets the server's environment holds; no result may ever show them.
BASIC = "hook-user:s3cret-pass-word"
API_TOKEN = "tok-9f8e7d6c5b4a"
REST_KEY = "rest-key-0a1b2c3d4e"
SENDING = {"send", "check", "replay", "trigger"}


async def handler(request: web.Request) -> web.StreamResponse:
    """A webhook handler with one behaviour per path."""
    await request.read()
    path = request.path
    if path == "/ack":
        return web.json_response({"status": "ok"})  # the classic bug: an acknowledgement CometChat injects
    if path == "/pass":
        return web.json_response({})
    if path == "/echo":  # a handler that echoes what it got (its credentials too)
        return web.json_response({"seen": dict(request.headers)})
    if path == "/slow":
        await asyncio.sleep(5)
        return web.json_response({})
    return web.json_response({"error": "boom"}, status=500)


class World:
    """The servers of the module, on a loop of their own, and the client session to `comethook mcp`."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stop = asyncio.Event()
        self.ready: asyncio.Future[ClientSession] = self.loop.create_future()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def env(self, **more: str) -> dict[str, str]:
        return {"COMETHOOK_HOME": str(self.home), "NO_COLOR": "1", "BASIC": BASIC, "API_TOKEN": API_TOKEN,
                "COMETCHAT_API_KEY": REST_KEY, "COMETHOOK_MCP_SECRETS": "BASIC,API_TOKEN",
                "AWS_SECRET_ACCESS_KEY": "not-for-agents", **more}  # fmt: skip

    async def hold(self, *args: str) -> None:
        """Open the client session (one server process) and keep it until `stop`."""
        params = StdioServerParameters(command=sys.executable, args=["-m", "comethook_cli", "mcp", *args], env=self.env())
        try:
            async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                self.ready.set_result(session)
                await self.stop.wait()
        except BaseException as error:
            if not self.ready.done():
                self.ready.set_exception(error)
            raise

    async def session(self) -> ClientSession:
        return await self.ready

    async def call(self, name: str, arguments: dict[str, Any] | None = None) -> Any:
        session = await self.ready
        return await session.call_tool(name, arguments or {})


@contextlib.asynccontextmanager
async def servers() -> AsyncIterator[tuple[str, Any]]:
    runner = web.AppRunner(_app(), shutdown_timeout=0.5)  # a /slow request still in flight is not waited for
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", runner
    finally:
        await runner.cleanup()


def _app() -> web.Application:
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    return app


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("home")
    w = World(home)
    listen = subprocess.Popen(
        [sys.executable, "-m", "comethook_cli", "listen", "--port", "0", "--no-tunnel", "--inspector-port", "0", "--json"],
        env={**os.environ, **w.env()}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert listen.stdout is not None
    w.ready_line = json.loads(next(line for line in listen.stdout if '"ready"' in line))
    # Its event lines are read (and dropped), so a full pipe never holds the listen up.
    threading.Thread(target=lambda: [None for _ in listen.stdout], daemon=True).start()  # type: ignore[union-attr]
    stack = contextlib.AsyncExitStack()
    w.handler_url, _ = w.run(stack.enter_async_context(servers()))
    hook = WebhookTarget(w.ready_line["webhook_url"], "hook-1")
    emulator = w.run(stack.enter_async_context(Emulator(EmulatorConfig(port=0, webhooks=(hook,), legacy=True))))
    w.api_base = emulator.base_url
    held = asyncio.run_coroutine_threadsafe(w.hold(), w.loop)
    w.run(w.session())
    try:
        yield w
    finally:
        w.loop.call_soon_threadsafe(w.stop.set)
        with contextlib.suppress(Exception):
            held.result(30)
        w.run(stack.aclose())
        listen.send_signal(2)
        try:
            listen.wait(15)
        except subprocess.TimeoutExpired:
            listen.kill()
        w.loop.call_soon_threadsafe(w.loop.stop)
        w.thread.join(10)


def call(world: Any, name: str, arguments: dict[str, Any] | None = None) -> Any:
    return world.run(world.call(name, arguments))


def ok(world: Any, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    result = call(world, name, arguments)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def error_text(result: Any) -> str:
    assert result.is_error
    return " ".join(getattr(block, "text", "") for block in result.content)


def test_every_tool_is_listed_with_a_typed_input_schema_and_an_output_schema(world: Any) -> None:
    listed = world.run(world.session()).list_tools
    tools = {tool.name: tool for tool in world.run(listed()).tools}
    assert set(tools) == set(READ_ONLY) | SENDING
    for name, tool in tools.items():
        assert tool.output_schema is not None and tool.output_schema.get("type") == "object", name
        assert tool.annotations is not None and tool.annotations.read_only_hint is (name in READ_ONLY), name
        assert tool.description
    send = tools["send"].input_schema
    assert send["required"] == ["to"]
    assert {"to", "trigger", "body", "basic_auth_env", "header_env", "expect", "timeout"} <= set(send["properties"])
    # Secrets are never arguments: nothing in any schema takes a password or a key as a value.
    assert not [
        p for tool in tools.values() for p in tool.input_schema["properties"] if p in ("basic_auth", "password", "api_key")
    ]
    assert set(tools["history_list"].input_schema["properties"]["verdict"]["anyOf"][0]["enum"]) == {
        "pass",
        "inject",
        "drop",
        "invalid",
    }
    assert set(tools["explain_answer"].output_schema["properties"]) >= {"verdict", "meaning", "metadata", "acknowledgement"}


def test_payloads_are_listed_and_shown_as_send_would_send_them(world: Any) -> None:
    listed = ok(world, "list_payloads", {"generation": "legacy"})["payloads"]
    assert {p["trigger"] for p in listed} >= {"before_message", "after_message"}
    assert {p["generation"] for p in listed} == {"legacy"} and {p["type"] for p in listed} == {"payload"}
    shown = ok(world, "show_payload", {"trigger": "before_message", "generation": "legacy",
                                       "overrides": {"text": "buy pills", "sender": "uid-9"}, "adds": ["data.custom=1"],
                                       "unsets": ["data.conversationId"]})  # fmt: skip
    assert shown["trigger"] == "before_message" and shown["generation"] == "legacy"
    assert shown["body"]["data"]["data"]["text"] == "buy pills" and shown["body"]["data"]["sender"] == "uid-9"
    assert shown["body"]["data"]["custom"] == 1 and "conversationId" not in shown["body"]["data"]
    missing = error_text(call(world, "show_payload", {"trigger": "before_message", "sets": ["data.nope=1"]}))
    assert "Hint:" in missing  # --set's meaning: a path that exists (adds makes one)


@pytest.mark.parametrize(
    ("arguments", "verdict", "acknowledgement"),
    [
        ({"answer": {"status": "ok"}}, "inject", True),
        ({"answer": {"flagged": True, "score": 3}}, "inject", False),
        ({"answer": {}}, "pass", False),
        ({"answer": {"action": "do_not_propagate"}}, "drop", False),
        ({"answer_text": "OK"}, "invalid", False),
        ({"answer": {}, "status": 500}, "invalid", False),
    ],
)
def test_explain_answer_says_what_cometchat_does(
    world: Any, arguments: dict[str, Any], verdict: str, acknowledgement: bool
) -> None:
    explained = ok(world, "explain_answer", arguments)
    assert explained["type"] == "explanation" and explained["verdict"] == verdict
    assert explained["acknowledgement"] is acknowledgement
    assert explained["meaning"].startswith("CometChat" if verdict != "invalid" else "The answer")
    if verdict == "inject":
        injected = explained["metadata"]["@injected"]["webhooks"][explained["webhook_id"]]
        assert injected == arguments["answer"]


def test_send_shows_inject_where_pass_was_meant_then_the_fixed_handler_passes(world: Any) -> None:
    sent = ok(world, "send", {"to": world.handler_url + "/ack", "trigger": "before_message", "expect": "pass"})
    delivery = sent["delivery"]
    assert delivery["type"] == "delivery" and delivery["status"] == 200 and delivery["verdict"] == "inject"
    assert sent["explanation"]["acknowledgement"] is True
    assert sent["assertion"]["ok"] is False and sent["assertion"]["asserted"] == ["expect pass"]
    fixed = ok(world, "send", {"to": world.handler_url + "/pass", "trigger": "before_message", "expect": "pass"})
    assert fixed["delivery"]["verdict"] == "pass" and fixed["assertion"]["ok"] is True


def test_send_takes_a_body_of_its_own(world: Any) -> None:
    sent = ok(world, "send", {"to": world.handler_url + "/pass", "body": {"trigger": "before_message", "data": {}}})
    assert sent["delivery"]["trigger"] == "before_message" and sent["delivery"]["verdict"] == "pass"


def test_check_groups_the_failures_by_cause(world: Any) -> None:
    checked = ok(world, "check", {"to": world.handler_url + "/broken", "triggers": "before_message,message_sent"})
    assert checked["reached"] is True and checked["summary"]["type"] == "summary"
    assert checked["summary"]["failed"] >= 2 and checked["results"][0]["type"] == "check"
    failed = [name for cause in checked["causes"] if cause["status"] == "fail" for name in cause["checks"]]
    assert sorted(failed) == sorted(r["name"] for r in checked["results"] if r["status"] == "fail")
    assert any(len(cause["checks"]) > 1 for cause in checked["causes"])  # one cause, several checks: grouped


def test_history_list_show_and_replay_work_while_listen_runs(world: Any) -> None:
    marker = "history-marker-41"
    sent = ok(world, "send", {"to": world.ready_line["webhook_url"], "trigger": "before_message",
                              "overrides": {"text": marker}})  # fmt: skip
    assert sent["delivery"]["status"] == 200
    page = ok(world, "history_list", {"q": marker, "trigger": ["before_message"], "limit": 5})
    assert len(page["exchanges"]) == 1 and page["exchanges"][0]["type"] == "event"
    stored = page["exchanges"][0]
    shown = ok(world, "history_show", {"exchange_id": stored["id"][-8:]})["exchange"]
    assert shown["id"] == stored["id"] and marker in shown["raw"]
    replayed = ok(world, "replay", {"exchange_id": stored["id"], "to": world.handler_url + "/ack",
                                    "edits": ["data.data.text=changed"]})  # fmt: skip
    assert replayed["replay_of"] == stored["id"] and replayed["delivery"]["verdict"] == "inject"
    again = ok(world, "replay", {"exchange_id": stored["id"]})  # no target: the running listen
    assert again["delivery"]["status"] == 200 and again["delivery"]["url"].startswith(world.ready_line["local_url"])


def test_listen_status_names_the_running_listener_and_its_urls(world: Any) -> None:
    status = ok(world, "listen_status")
    assert status["running"] is True and status["history"] is True
    assert status["ready"]["local_url"] == world.ready_line["local_url"]
    assert status["ready"]["webhook_url"] == world.ready_line["webhook_url"]
    assert status["ready"]["inspector_url"] == world.ready_line["inspector_url"] is not None
    assert status["home"] == str(world.home)


def test_trigger_makes_emulate_fire_and_waits_for_the_webhooks_in_listen(world: Any) -> None:
    setup = ok(world, "trigger", {"verb": "setup", "api_base": world.api_base})
    assert setup["trigger"]["ok"] is True and setup["calls"][0]["type"] == "rest"
    fired = ok(world, "trigger", {"verb": "message", "args": {"text": "from the agent"}, "api_base": world.api_base,
                                  "wait": True, "expect": "delivered"})  # fmt: skip
    record = fired["trigger"]
    assert record["type"] == "trigger" and record["waited"] is True and record["missing"] == []
    assert "before_message" in record["expected"]["legacy"] and record["deliveries"]
    assert fired["expectation_failed"] is None


def test_every_tool_is_bounded_in_time_and_in_bytes(world: Any) -> None:
    slow = ok(world, "send", {"to": world.handler_url + "/slow", "trigger": "message_sent", "timeout": 0.5})
    assert slow["delivery"]["status"] is None and "0.5" in slow["delivery"]["error"]  # the answer waited for: 0.5 s
    assert error_text(call(world, "send", {"to": world.handler_url, "trigger": "message_sent", "timeout": 3600}))
    big = "x" * 200_000
    sent = ok(world, "send", {"to": world.ready_line["webhook_url"], "body": {"trigger": "message_sent", "data": {"big": big}}})
    assert sent["delivery"]["status"] == 200
    stored = ok(world, "history_list", {"q": "xxxxxxxxxx", "limit": 1})["exchanges"][0]
    assert "truncated" in ok(world, "history_list", {"q": "xxxxxxxxxx", "limit": 1})  # 200 KB of body, cut to fit
    shown = call(world, "history_show", {"exchange_id": stored["id"]})
    assert not shown.is_error and len(json.dumps(shown.structured_content)) < 80_000
    assert "characters in all" in shown.structured_content["exchange"]["raw"]
    assert "exchange.raw" in shown.structured_content["truncated"]


def test_a_bad_argument_is_a_tool_error_with_the_cli_hint_and_the_server_keeps_serving(world: Any) -> None:
    unknown = error_text(call(world, "show_payload", {"trigger": "before_mesage"}))
    assert "Unknown trigger 'before_mesage'" in unknown and "\nHint: Did you mean before_message" in unknown
    region = error_text(call(world, "show_payload", {"trigger": "message_sent", "overrides": {"region": "mars"}}))
    assert "mars" in region and "Hint: Use one of: us, eu, in." in region
    assert "Hint:" in error_text(call(world, "history_show", {"exchange_id": "no-such-exchange"}))
    assert error_text(call(world, "history_list", {"limit": 0}))  # the schema's bounds, checked by the SDK
    assert "could not connect" in ok(world, "send", {"to": "http://127.0.0.1:9", "trigger": "message_sent"})["delivery"]["error"]
    # A trigger expectation only the deliveries can tell needs waiting: said with the tool's own arguments.
    unwaited = error_text(call(world, "trigger", {"verb": "message", "api_base": world.api_base, "expect": "blocked"}))
    assert "expect='blocked' needs wait=true: a message moderation blocks is answered 2xx" in unwaited
    assert "\nHint: Pass wait=true (with `comethook listen` running)." in unwaited and "--" not in unwaited
    assert ok(world, "list_payloads")["payloads"]  # still serving


def test_secrets_come_from_the_environment_and_appear_in_no_result(world: Any) -> None:
    refused = error_text(call(world, "send", {"to": world.handler_url + "/echo", "trigger": "message_sent",
                                               "headers": {"Authorization": "Bearer x"}}))  # fmt: skip
    assert "basic_auth_env" in refused or "header_env" in refused
    missing = error_text(call(world, "send", {"to": world.handler_url + "/echo", "basic_auth_env": "NOT_SET_ANYWHERE",
                                               "trigger": "message_sent"}))  # fmt: skip
    assert "NOT_SET_ANYWHERE" in missing
    # Only comethook's own variables and those the server's environment names may be read: a misled agent cannot send
    # another secret of the environment to a host of its choosing, nor the REST key to a foreign api_base.
    other = error_text(call(world, "send", {"to": world.handler_url + "/echo", "trigger": "message_sent",
                                             "header_env": {"X-Key": "AWS_SECRET_ACCESS_KEY"}}))  # fmt: skip
    assert "not one this server lets a tool read" in other and "COMETHOOK_MCP_SECRETS" in other
    foreign = error_text(call(world, "trigger", {"verb": "setup", "api_base": "http://198.51.100.7/v3"}))
    assert "not on this machine" in foreign
    sent = call(world, "send", {"to": world.handler_url + "/echo", "trigger": "before_message", "basic_auth_env": "BASIC",
                                "header_env": {"X-Api-Token": "API_TOKEN"}})  # fmt: skip
    assert not sent.is_error
    echoed = sent.structured_content["delivery"]["response"]["seen"]
    assert echoed["Authorization"] == "Basic ***" and echoed["X-Api-Token"] == "***"  # it did reach the handler
    fired = call(world, "trigger", {"verb": "setup", "api_base": world.api_base})

    for result in (sent, fired):
        text = json.dumps(result.structured_content) + " ".join(getattr(b, "text", "") for b in result.content)
        for secret in (BASIC, BASIC.split(":")[1], base64.b64encode(BASIC.encode()).decode(), API_TOKEN, REST_KEY):
            assert secret not in text


def test_resources_hold_the_payload_templates_and_the_recent_exchanges(world: Any) -> None:
    session = world.run(world.session())
    uris = {str(resource.uri) for resource in world.run(session.list_resources()).resources}
    assert {"comethook://payloads/legacy/before_message", "comethook://payloads/current/message_sent"} <= uris
    assert "comethook://history/recent" in uris
    template = world.run(session.read_resource("comethook://payloads/legacy/before_message")).contents[0]
    assert json.loads(template.text)["trigger"] == "before_message"
    ok(world, "send", {"to": world.ready_line["webhook_url"], "trigger": "message_sent"})
    recent = json.loads(world.run(session.read_resource("comethook://history/recent")).contents[0].text)
    assert recent["exchanges"] and recent["exchanges"][0]["type"] == "event"


def test_read_only_offers_only_the_tools_that_send_nothing(world: Any) -> None:
    async def names() -> set[str]:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "comethook_cli", "mcp", "--read-only"], env=world.env()
        )
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            listed = {tool.name for tool in (await session.list_tools()).tools}
            refused = await session.call_tool("send", {"to": world.handler_url + "/pass", "trigger": "message_sent"})
            assert refused.is_error
            return listed

    assert world.run(names()) == set(READ_ONLY)


def test_the_tools_schemas_offer_the_engines_own_choices_and_defaults(world: Any) -> None:
    """The schema spells out what the engine takes (an agent reads it before calling); it must not drift from it."""
    from typing import get_args

    from comethook_cli.engine.config import Checking, Delivering, default
    from comethook_cli.engine.restvalues import TriggerExpectation
    from comethook_cli.mcp import server

    assert set(get_args(server.TriggerExpect)) == {e.value for e in TriggerExpectation}
    tools = {tool.name: tool for tool in world.run(world.run(world.session()).list_tools()).tools}
    assert tools["check"].input_schema["properties"]["timeout"]["default"] == default(Checking, "timeout")
    for name in ("send", "replay"):
        assert tools[name].input_schema["properties"]["timeout"]["default"] == default(Delivering, "timeout"), name

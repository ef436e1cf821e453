"""The pytest plugin, as a team uses it: pytester runs of test files against a real small aiohttp handler."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import comethook.pytest_plugin  # imported here so the pytester runs below find it whether or not comethook is installed
from comethook.pytest_plugin import assert_verdict

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]
#: Load the plugin explicitly: the dev checkout is not installed (no entry point); in CI it is, and the entry point is
#: named after the module, so this is the same plugin, not a second registration.
PLUGIN = (
    "-p",
    "comethook.pytest_plugin",
    "-p",
    "no:randomly",
    "-p",
    "no:cacheprovider",
    "-W",
    "ignore::pytest.PytestAssertRewriteWarning",
)

#: The team's handler: a small aiohttp app, as it would sit in their repository.
TEAM_APP = """
import base64
import json

from aiohttp import web

EXPECTED = "Basic " + base64.b64encode(b"team:s3cret").decode()


async def webhook(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != EXPECTED:
        return web.json_response({"error": "unauthorized"}, status=401)
    payload = json.loads(await request.read())  # whatever the Content-Type says, as CometChat sends Application/json
    if payload.get("trigger") != "before_message":
        return web.json_response({"stored": payload["trigger"]})
    text = payload["data"]["data"].get("text", "")
    if "cheap pills" in text:
        return web.json_response({"action": "do_not_propagate"})
    if "http" in text:
        return web.json_response({"links": "checked"})
    return web.json_response({})


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/cometchat/webhook", webhook)
    return app
"""


@pytest.fixture
def team(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester directory holding the team's app and pytest-aiohttp's asyncio settings."""
    pytester.makepyfile(team_app=TEAM_APP)
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_a_project_fixture_shadows_the_catalog_in_the_plugin(team: pytest.Pytester) -> None:
    folder = team.path / "comethook" / "fixtures"
    folder.mkdir(parents=True)
    shape = {"trigger": "message_sent", "data": {"message": {"id": "{{id}}", "data": {"text": "{{text}}", "orderId": 7}}}}
    (folder / "message_sent.json").write_text(json.dumps({"body": shape}))
    team.makepyfile(
        test_fixtures="""
        def test_the_project_shape_comes_first(cometchat_payload, cometchat_delivery):
            payload = cometchat_payload("message_sent", text="hi")
            assert payload["data"]["message"]["data"] == {"text": "hi", "orderId": 7}
            assert cometchat_delivery("message_sent").payload["data"]["message"]["data"]["orderId"] == 7
            assert "orderId" not in cometchat_payload("message_sent", fixtures=None)["data"]["message"]["data"]
        """
    )
    team.runpytest("-p", "comethook.pytest_plugin", "-p", "no:randomly").assert_outcomes(passed=1)


def test_the_fixtures_test_a_real_aiohttp_handler(team: pytest.Pytester) -> None:
    team.makepyfile(
        test_webhook="""
        import pytest

        from team_app import make_app


        @pytest.fixture
        async def client(aiohttp_client):
            return await aiohttp_client(make_app())


        async def test_spam_is_dropped(client, cometchat_delivery, assert_verdict):
            headers, body = cometchat_delivery("before_message", text="buy cheap pills")
            response = await client.post("/cometchat/webhook", data=body, headers=headers)
            await response.read()
            verdict = assert_verdict(response, "drop")
            assert verdict.kind == "drop"


        async def test_links_are_injected(client, cometchat_delivery, assert_verdict):
            delivery = cometchat_delivery("before_message", text="see http://x", webhook_id="moderation")
            response = await client.post("/cometchat/webhook", data=delivery.body, headers=delivery.headers)
            assert_verdict((response.status, await response.read()), "inject", request=delivery.payload,
                           injected={"links": "checked"})


        async def test_other_triggers_are_stored(client, cometchat_delivery, cometchat_payload):
            payload = cometchat_payload("message_sent", text="hi", group="cometchat-guid-1")
            assert payload["data"]["message"]["receiverType"] == "group"
            headers, body = cometchat_delivery("message_sent", text="hi")
            assert headers["Content-Type"] == "Application/json"
            response = await client.post("/cometchat/webhook", data=body, headers=headers)
            assert response.status == 200 and await response.json() == {"stored": "message_sent"}


        async def test_a_delivery_without_credentials_is_refused(client, cometchat_delivery, assert_verdict):
            headers, body = cometchat_delivery("before_message", basic_auth=None)
            assert "Authorization" not in headers
            response = await client.post("/cometchat/webhook", data=body, headers=headers)
            assert response.status == 401
            assert_verdict((response.status, await response.read()), "invalid")
        """
    )
    result = team.runpytest(*PLUGIN, "--cometchat-basic-auth", "team:s3cret")
    result.assert_outcomes(passed=4)


def test_a_wrong_verdict_fails_readably(team: pytest.Pytester) -> None:
    team.makepyfile(
        test_webhook="""
        from team_app import make_app


        async def test_expects_a_drop(aiohttp_client, cometchat_delivery, assert_verdict):
            client = await aiohttp_client(make_app())
            headers, body = cometchat_delivery("before_message", text="hello there")
            response = await client.post("/cometchat/webhook", data=body, headers=headers)
            await response.read()
            assert_verdict(response, "drop")
        """
    )
    team.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\ncometchat_basic_auth = team:s3cret\n"
    )
    result = team.runpytest(*PLUGIN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*CometChat's verdict on this answer is PASS, not DROP.",
            "*status: 200",
            "*answer: {}",
            "*why:    the answer {} lets the message through unchanged",
            '*to drop: answer a 2xx with {"action": "do_not_propagate"} to drop the message',
        ]
    )
    assert "s3cret" not in result.stdout.str()


def test_the_listener_fixture_receives_what_a_relay_sends(team: pytest.Pytester) -> None:
    team.makepyfile(
        test_relay='''
        import json
        import urllib.request

        import pytest


        def relay(url, body):
            """The team's code under test: it sends webhooks onward."""
            request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.loads(answer.read())


        @pytest.mark.comethook_listener(respond="drop")
        def test_sync_relay(comethook_listener, cometchat_delivery):
            _, body = cometchat_delivery("before_message", text="relayed")
            assert relay(comethook_listener.url, body) == {"action": "do_not_propagate"}
            [exchange] = comethook_listener.wait_for(1)
            assert exchange.info.trigger == "before_message" and exchange.verdict.kind == "drop"
            assert json.loads(exchange.body)["data"]["data"]["text"] == "relayed"


        async def test_async_waiting(comethook_listener, cometchat_payload, aiohttp_client):
            from comethook import deliver

            for n in range(3):
                await deliver(comethook_listener.url, cometchat_payload("message_sent", text=str(n)))
            events = await comethook_listener.wait_for_async(3)
            assert [json.loads(e.body)["data"]["message"]["data"]["text"] for e in events] == ["0", "1", "2"]


        def test_waiting_too_long_says_so(comethook_listener):
            with pytest.raises(TimeoutError, match="0 of 1 deliveries arrived within 0.2 s"):
                comethook_listener.wait_for(1, timeout=0.2)
        '''
    )
    result = team.runpytest(*PLUGIN)
    result.assert_outcomes(passed=3)


def test_the_plugin_is_registered_and_documents_itself(team: pytest.Pytester) -> None:
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["pytest11"]
    # Named after its module: `-p comethook.pytest_plugin` with the package installed is the same plugin, not a clash.
    assert entry_points == {"comethook.pytest_plugin": "comethook.pytest_plugin"}
    assert comethook.pytest_plugin.__name__ == "comethook.pytest_plugin"
    listed = team.runpytest(*PLUGIN, "--fixtures").stdout.str()
    for fixture in ("cometchat_payload", "cometchat_delivery", "comethook_listener", "assert_verdict"):
        assert re.search(rf"^{fixture} -- .*comethook/pytest_plugin.py:\d+$", listed, re.MULTILINE), fixture
    result = team.runpytest(*PLUGIN, "--markers")
    result.stdout.fnmatch_lines(["*comethook_listener(**options)*"])
    result = team.runpytest(*PLUGIN, "--help")
    result.stdout.fnmatch_lines(["*--cometchat-basic-auth=USER:PASS*"])


async def test_assert_verdict_reads_aiohttp_responses(aiohttp_client: Any) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"action": "do_not_propagate"})

    app = web.Application()
    app.router.add_post("/", handler)
    client = await aiohttp_client(app)
    response = await client.post("/", data=b"{}")
    await response.read()
    assert assert_verdict(response, "drop").kind == "drop"
    assert assert_verdict(web.json_response({}), "pass").kind == "pass"
    assert assert_verdict((200, '{"a": 1}'), "inject").kind == "inject"
    with pytest.raises(AssertionError) as failure:
        assert_verdict((200, b"\x1b]0;owned\x07"), "pass")
    message = str(failure.value)
    assert message.startswith("CometChat's verdict on this answer is INVALID, not PASS.")
    assert "\x1b" not in message and "\\x1b" in message  # an answer never drives the terminal
    with pytest.raises(AssertionError, match=r'CometChat would inject \{"a": 1\}, not \{"a": 2\}'):
        assert_verdict((200, b'{"a": 1}'), "inject", injected={"a": 2})
    with pytest.raises(ValueError, match="expected must be one of"):
        assert_verdict((200, b"{}"), "DROPPED")
    with pytest.raises(TypeError, match=r"pass \(status, body\)"):
        assert_verdict(object(), "pass")


def test_assert_verdict_warns_that_an_acknowledgement_will_be_injected() -> None:
    from comethook.pytest_plugin import assert_verdict

    with pytest.warns(UserWarning, match=r"looks like an acknowledgement.*answer \{\} to let the message pass"):
        verdict = assert_verdict((200, b'{"ok": true}'), "inject")
    assert verdict.kind == "inject"
    with pytest.raises(AssertionError, match="acknowledgement"):  # asked for pass: the failure says why it is not
        assert_verdict((200, b'{"received": true}'), "pass")

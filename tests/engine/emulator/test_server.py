"""The emulator's HTTP face (engine/emulator/server.py) on a real emulator over loopback: a foreign Host and another site's
page are refused, `/_emulator/*` needs the key when one is set, the key is checked before the route, every REST action has
one handler, and a real operation the emulator does not serve gets a 404 that says so."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web

from comethook_cli.cometchat.rest import ACTIONS
from comethook_cli.engine.config import EmulatorConfig
from comethook_cli.engine.emulator import Emulator
from comethook_cli.engine.emulator import server as emulator_server
from tests.engine.emulator.conftest import Client, refused, running


# --- the guard -------------------------------------------------------------------------------------------------
async def test_a_foreign_host_is_refused_so_dns_rebinding_reads_and_changes_nothing(client: Client) -> None:
    port = client.emulator.port
    assert (await client.user("kept"))[0] == 200
    for host in ("evil.example", f"evil.example:{port}", f"rebound.attacker.test:{port}", "127.0.0.1:1", ""):
        status, body = await client.call("GET", "/_emulator/state", Host=host)
        assert refused(status, body, "ERR_REQUEST_REFUSED"), host
        status, body = await client.call("POST", "/users", {"uid": "planted", "name": "P"}, Host=host)
        assert refused(status, body, "ERR_REQUEST_REFUSED"), host
    assert set(client.emulator.state.users) == {"kept"}
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert (await client.call("GET", "/_emulator/state", Host=host))[0] == 200, host


async def test_a_name_given_with_allow_host_is_answered_and_others_still_refused() -> None:
    async for client in running(EmulatorConfig(port=0, host="0.0.0.0", allowed_hosts=("emulator",))):
        port = client.emulator.port
        assert (await client.call("GET", "/_emulator/state", Host=f"emulator:{port}"))[0] == 200
        assert (await client.call("GET", "/_emulator/state", Host=f"Emulator:{port}"))[0] == 200
        status, body = await client.call("GET", "/_emulator/state", Host=f"evil.example:{port}")
        assert refused(status, body, "ERR_REQUEST_REFUSED")


def test_allow_host_takes_a_bare_name_only(cli: Any) -> None:
    result = cli("emulate", "--port", "0", "--allow-host", "http://emulator:8780")
    assert result.exit_code == 2 and "--allow-host 'http://emulator:8780' is not a host name" in result.stderr


async def test_a_cross_origin_post_is_refused_and_the_state_is_intact(client: Client) -> None:
    hits: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        hits.append(await request.text())
        return web.json_response({})

    assert (await client.user("alice"))[0] == 200
    assert (await client.user("bob"))[0] == 200
    message = {"receiver": "bob", "receiverType": "user", "data": {"text": "planted"}}
    browsers = ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:3000"})  # fmt: skip
    for headers in browsers:
        # What a form post of another site sends: no apikey needed to be refused.
        status, body = await client.call("POST", "/_emulator/reset", **headers)
        assert refused(status, body, "ERR_REQUEST_REFUSED"), headers
        status, body = await client.call("POST", "/messages", message, onBehalfOf="alice", **headers)
        assert refused(status, body, "ERR_REQUEST_REFUSED"), headers
        status, body = await client.call("GET", "/_emulator/state", **headers)
        assert refused(status, body, "ERR_REQUEST_REFUSED"), headers
    assert set(client.emulator.state.users) == {"alice", "bob"} and client.emulator.state.messages == {}
    # curl and backend SDKs send no Origin: they still work, and so does the emulator's own origin.
    own = f"http://127.0.0.1:{client.emulator.port}"
    assert (await client.call("POST", "/messages", message, onBehalfOf="alice", Origin=own))[0] == 200
    assert (await client.call("POST", "/_emulator/reset"))[1] == {"reset": True}
    assert client.emulator.state.users == {}


async def test_the_control_routes_need_the_key_when_one_is_set() -> None:
    async for client in running(EmulatorConfig(port=0, api_key="right")):
        assert (await client.user("kept"))[0] == 200
        for path, method in (("/_emulator/state", "GET"), ("/_emulator/reset", "POST")):
            status, body = await client.call(method, path, key="")
            assert status == 401 and body["error"]["code"] == "AUTH_ERR_EMPTY_APIKEY", path
            status, body = await client.call(method, path, key="wrong")
            assert status == 401 and body["error"]["code"] == "AUTH_ERR_APIKEY_NOT_FOUND", path
        assert set(client.emulator.state.users) == {"kept"}
        status, state = await client.call("GET", "/_emulator/state", key="right")
        assert status == 200 and set(state["users"]) == {"kept"}
    async for client in running(EmulatorConfig(port=0)):  # no key set: the control routes stay open to curl
        assert (await client.call("GET", "/_emulator/state", key=""))[0] == 200


def test_every_rest_action_has_exactly_one_handler() -> None:
    """Each action of cometchat/rest.py is answered by one family module's handler, and no handler answers nothing."""
    names = [name for family in emulator_server.FAMILIES for name in family]
    assert len(names) == len(set(names)), "two families answer the same action"
    assert set(names) == set(ACTIONS)


# --- the key first, then the route; unserved real operations say so ---------------------------------------------
async def test_a_bad_key_gets_401_on_every_path_served_or_not() -> None:
    async for keyed in running(EmulatorConfig(port=0, api_key="right")):
        for method, path in (("GET", "/users/x"), ("GET", "/conversations"), ("POST", "/nowhere/at/all"), ("GET", "/users")):
            status, body = await keyed.call(method, path, key="wrong")
            assert status == 401 and body["error"]["code"] == "AUTH_ERR_APIKEY_NOT_FOUND", path
            status, body = await keyed.call(method, path, key="")
            assert status == 401 and body["error"]["code"] == "AUTH_ERR_EMPTY_APIKEY", path


async def test_an_unserved_real_operation_gets_the_404_a_header_and_one_warning() -> None:
    warnings: list[str] = []
    config = EmulatorConfig(port=0, api_key="k")
    async with Emulator(config, on_warning=warnings.append) as emulator, aiohttp.ClientSession() as session:
        root = emulator.base_url

        async def get(path: str, method: str = "GET") -> tuple[int, Any, str | None]:
            async with session.request(method, root + path, headers={"apikey": "k"}) as answer:
                return answer.status, await answer.json(), answer.headers.get("X-Comethook-Emulator")

        for _ in range(3):
            status, body, header = await get("/conversations")
            assert status == 404 and body["error"]["code"] == "ERR_API_NOT_FOUND" and header == "not-emulated"
        assert (await get("/users/a/conversation/read", "POST"))[2] == "not-emulated"
        assert warnings == [
            "Not emulated: GET /conversations (list conversations) is a real CometChat operation; answered 404.",
            "Not emulated: POST /users/{uid}/conversation/read (mark a user conversation read) is a real CometChat "
            "operation; answered 404.",
        ]
        status, body, header = await get("/nowhere")
        assert status == 404 and body["error"]["code"] == "ERR_API_NOT_FOUND" and header is None
        assert (await get("/users", "PATCH"))[2] is None  # a real path, but no such operation
        assert len(warnings) == 2
    assert warnings[2:] == [
        "Not emulated: GET /conversations (list conversations) is a real CometChat operation; answered 404. "
        "(2 more like it since the last warning)"
    ]

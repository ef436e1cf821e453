"""`emulate`'s guard and bounds, on a real emulator over loopback: a foreign Host and another site's page are refused,
`/_emulator/*` needs the key when one is set, the state is capped with CometChat-shaped errors, and `--state` writes
only what a call changed, in a private file that a kill -9 leaves loadable."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from comethook_cli.cometchat.rest import ACTIONS
from comethook_cli.engine.config import EmulatorConfig
from comethook_cli.engine.emulator import Emulator
from comethook_cli.engine.emulator import rules as emulator_rules
from comethook_cli.engine.emulator import server as emulator_server


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


# --- the caps --------------------------------------------------------------------------------------------------
async def test_cometchat_limits_on_one_item_are_refused_like_cometchat(client: Client) -> None:
    status, body = await client.user("big", metadata={"blob": "x" * 100_000})  # the 100 KB users
    assert status == 400 and body["error"]["code"] == "ERR_BAD_REQUEST" and "10240" in body["error"]["message"]
    status, body = await client.user("meta", metadata={"blob": "x" * 6000})
    assert status == 400 and "metadata" in body["error"]["details"]
    status, body = await client.user("tags", tags=["t"] * 26)
    assert status == 400 and "tags" in body["error"]["details"]
    assert client.emulator.state.users == {}
    for n in range(27):
        assert (await client.user(f"u{n}"))[0] == 200
    status, body = await client.call("POST", "/groups", {"guid": "g", "name": "G", "owner": "u0"})
    assert status == 200
    status, body = await client.call("POST", "/groups/g/members", {"participants": [f"u{n}" for n in range(1, 27)]})
    assert status == 400 and body["error"]["code"] == "ERR_BAD_REQUEST" and set(client.emulator.state.members["g"]) == {"u0"}
    status, sent = await client.call("POST", "/messages", {"receiver": "u1", "receiverType": "user", "data": {"text": "hi"}})
    message_id = sent["data"]["id"]
    for n in range(25):
        assert (await client.call("POST", f"/messages/{message_id}/reactions/r{n}", onBehalfOf="u0"))[0] == 200
    status, body = await client.call("POST", f"/messages/{message_id}/reactions/r25", onBehalfOf="u0")
    assert status == 400 and body["error"]["code"] == "ERR_BAD_REQUEST"
    assert len(client.emulator.state.reactions[message_id]) == 25


async def test_the_state_is_capped_by_count_and_by_bytes(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulator_rules, "MAX_USERS", 3)
    for uid in ("a", "b", "c"):
        assert (await client.user(uid))[0] == 200
    status, body = await client.user("d")
    assert refused(status, body, "ERR_PLAN_QUOTA_RESTRICTION") and "reset" in body["error"]["message"]
    assert set(client.emulator.state.users) == {"a", "b", "c"}
    monkeypatch.setattr(emulator_rules, "MAX_MESSAGES", 2)
    message = {"receiver": "b", "receiverType": "user", "data": {"text": "hi"}}
    assert [(await client.call("POST", "/messages", message))[0] for _ in range(3)] == [200, 200, 403]
    assert len(client.emulator.state.messages) == 2
    # Bytes: users of the largest metadata CometChat allows, until the state is full.
    assert (await client.call("POST", "/_emulator/reset"))[0] == 200
    monkeypatch.setattr(emulator_rules, "MAX_USERS", 10_000)
    monkeypatch.setattr(emulator_rules, "MAX_STATE_BYTES", 50_000)
    answers = [await client.user(f"user-{n}", metadata={"blob": "x" * 5000}) for n in range(30)]
    statuses = [status for status, _ in answers]
    assert 200 in statuses and statuses[-1] == 403 and refused(*answers[-1], "ERR_PLAN_QUOTA_RESTRICTION")
    assert client.emulator.state_bytes <= 50_000 + 10 * 1024  # at most one record past the cap
    held = len(client.emulator.state.users)
    assert held == statuses.count(200) and held < 30
    # A DELETE still works on a full state (it is how a test makes room), and reset empties it.
    assert (await client.call("POST", "/_emulator/reset"))[0] == 200 and client.emulator.state_bytes == 0


# --- the state file --------------------------------------------------------------------------------------------
def written_bytes() -> int:
    """Bytes this process has passed to write() so far (Linux's per-process I/O accounting)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux's /proc/self/io")
async def test_state_writes_are_incremental_and_private(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    async for client in running(EmulatorConfig(port=0, state=str(path))):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        for n in range(40):  # ~200 KB of state, which a whole rewrite would write on every call
            assert (await client.user(f"user-{n}", metadata={"blob": "x" * 5000}))[0] == 200
        message = {"receiver": "user-1", "receiverType": "user", "data": {"text": "hi"}}
        before = written_bytes()
        for _ in range(20):
            assert (await client.call("POST", "/messages", message, onBehalfOf="user-0"))[0] == 200
        per_call = (written_bytes() - before) / 20
        assert per_call < 50_000, per_call  # a few pages of the WAL, not the 200 KB state
        for name in (path, Path(f"{path}-wal")):
            assert stat.S_IMODE(name.stat().st_mode) == 0o600, name
        expected = client.emulator.state.to_json()
    async for again in running(EmulatorConfig(port=0, state=str(path))):
        assert again.emulator.state.to_json() == expected
        assert len(again.emulator.state.messages) == 20 and again.emulator.state_bytes > 200_000


async def test_every_action_round_trips_through_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    async for client in running(EmulatorConfig(port=0, state=str(path))):
        for uid in ("a", "b", "c"):
            assert (await client.user(uid))[0] == 200
        calls: list[tuple[str, str, Any, dict[str, str]]] = [
            ("POST", "/groups", {"guid": "g", "name": "G", "owner": "a", "members": {"participants": ["b"]}}, {}),
            ("POST", "/groups/g/members", {"participants": ["c"]}, {}),
            ("PUT", "/groups/g/members/c", {"scope": "moderator"}, {}),
            ("PUT", "/groups/g", {"name": "G2", "metadata": {"k": 1}}, {}),
            ("POST", "/messages", {"receiver": "b", "receiverType": "user", "data": {"text": "one"}}, {"onBehalfOf": "a"}),
            ("POST", "/messages", {"receiver": "g", "receiverType": "group", "data": {"text": "two"}}, {"onBehalfOf": "a"}),
            ("PUT", "/messages/1", {"data": {"text": "edited"}}, {"onBehalfOf": "a"}),
            ("POST", "/messages/1/reactions/ok", None, {"onBehalfOf": "b"}),
            ("DELETE", "/messages/2", None, {"onBehalfOf": "a"}),
            ("DELETE", "/groups/g/members/c", None, {}),
            ("POST", "/groups/g/bannedusers/b", None, {}),
            ("POST", "/users/a/blockedusers", {"blockedUids": ["c"]}, {}),
            ("POST", "/groups", {"guid": "gone", "name": "Gone"}, {}),
            ("DELETE", "/groups/gone", None, {}),
            ("POST", "/messages/1/pin", None, {"onBehalfOf": "a"}),
            ("PUT", "/users/c", {"name": "Cee"}, {}),
            ("DELETE", "/users/b", None, {}),
        ]
        for method, route, body, headers in calls:
            status, answer = await client.call(method, route, body, **headers)
            assert status == 200, (method, route, answer)
        expected = client.emulator.state.to_json()
        assert expected["messages"]["1"]["data"]["text"] == "edited" and expected["banned"]["g"] == ["b"]
        assert expected["pins"]["1"]["pinnedBy"] == "a" and expected["users"]["c"]["name"] == "Cee"
        assert "b" not in expected["users"]
    async for again in running(EmulatorConfig(port=0, state=str(path))):
        assert again.emulator.state.to_json() == expected


async def test_a_state_file_of_the_old_format_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE state (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL)")
        whole = {"users": {"a": {"uid": "a", "name": "A"}}, "next_id": 7}
        old.execute("INSERT INTO state (id, json) VALUES (1, ?)", (json.dumps(whole),))
    old.close()
    async for client in running(EmulatorConfig(port=0, state=str(path))):
        assert set(client.emulator.state.users) == {"a"} and client.emulator.state.next_id == 7
    async for again in running(EmulatorConfig(port=0, state=str(path))):
        assert set(again.emulator.state.users) == {"a"} and again.emulator.state.next_id == 7


def test_a_kill_9_mid_run_leaves_a_loadable_state(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    log = tmp_path / "emulate.ndjson"  # a file, not a pipe: nobody reads the per-call lines while it runs
    with log.open("w") as out:
        emulate = subprocess.Popen(
            [sys.executable, "-m", "comethook_cli", "emulate", "--port", "0", "--json", "--state", str(path)],
            stdout=out, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
    answered: list[str] = []

    async def flood(base: str) -> None:
        async with aiohttp.ClientSession(headers={"apikey": "k"}) as session:

            async def one(n: int) -> None:
                async with session.post(f"{base}/users", json={"uid": f"u{n}", "name": "U", "metadata": {"n": n}}) as answer:
                    if answer.status == 200:
                        answered.append(f"u{n}")

            # A killed server fails the calls still in flight: those are not in `answered`.
            await asyncio.gather(*(one(n) for n in range(2000)), return_exceptions=True)

    async def run() -> None:
        async with asyncio.timeout(60):
            while not log.read_text():
                await asyncio.sleep(0.05)
            base = json.loads(log.read_text().splitlines()[0])["webhook_url"]
            task = asyncio.ensure_future(flood(base))
            while len(answered) < 200 and not task.done():  # well into the run, with calls still in flight
                await asyncio.sleep(0.01)
            emulate.send_signal(signal.SIGKILL)
            await task

    try:
        asyncio.run(run())
        emulate.wait(timeout=15)
    finally:
        if emulate.poll() is None:
            emulate.kill()
            emulate.wait(timeout=15)
    assert 200 <= len(answered) < 2000

    async def reload() -> dict[str, Any]:
        async for client in running(EmulatorConfig(port=0, state=str(path))):
            return client.emulator.state.users
        raise AssertionError("unreachable")

    users = asyncio.run(reload())
    assert set(answered) <= set(users)  # every answered call was committed before its answer
    assert all(user["metadata"] == {"n": int(uid[1:])} for uid, user in users.items())


def test_every_rest_action_has_exactly_one_handler() -> None:
    """Each action of cometchat/rest.py is answered by one family module's handler, and no handler answers nothing."""
    names = [name for family in emulator_server.FAMILIES for name in family]
    assert len(names) == len(set(names)), "two families answer the same action"
    assert set(names) == set(ACTIONS)


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


async def test_every_rest_operation_answers_like_the_sheet_and_fires_exactly_its_triggers() -> None:
    """One step per REST operation (rest.ACTIONS): its status, the part of the answer a client reads, and exactly the
    webhooks the sheet's §7 gives it. One long test rather than one per operation: each step needs the state the
    earlier ones built, and the table is what a reader compares with the sheet."""
    async for client, receiver in hooked():
        steps: list[tuple[str, str, str, Any, dict[str, str], list[str], Any]] = [
            ("create_user", "POST", "/users", {"uid": "a", "name": "A"}, {}, [], lambda d: d["data"]["uid"] == "a"),
            ("create_user", "POST", "/users", {"uid": "b", "name": "B", "withAuthToken": True}, {}, [],
             lambda d: d["data"]["authToken"].startswith("b_")),
            ("create_user", "POST", "/users", {"uid": "c", "name": "C"}, {}, [], lambda d: d["data"]["status"] == "offline"),
            ("get_user", "GET", "/users/a", None, {}, [], lambda d: d["data"]["name"] == "A"),
            ("list_users", "GET", "/users?perPage=2&page=2", None, {}, [],
             lambda d: [u["uid"] for u in d["data"]] == ["c"]
             and d["meta"]["pagination"] == {"total": 3, "count": 1, "per_page": 2, "current_page": 2, "total_pages": 2}),
            ("update_user", "PUT", "/users/c", {"name": "Cee", "avatar": "https://example.com/c.png"}, {}, [],
             lambda d: d["data"]["name"] == "Cee" and d["data"]["avatar"] == "https://example.com/c.png"),
            ("create_auth_token", "POST", "/users/a/auth_tokens", {}, {}, [],
             lambda d: d["data"]["uid"] == "a" and d["data"]["authToken"].startswith("a_") and d["data"]["createdAt"] > 0),
            ("send_message", "POST", "/messages", {"receiver": "b", "receiverType": "user", "data": {"text": "hi"}},
             {"onBehalfOf": "a"}, ["message_sent"], lambda d: d["data"]["id"] == "1"),
            ("get_message", "GET", "/messages/1", None, {}, [], lambda d: d["data"]["data"]["text"] == "hi"),
            ("edit_message", "PUT", "/messages/1", {"data": {"text": "edited"}}, {"onBehalfOf": "a"}, ["message_edited"],
             lambda d: d["data"]["data"]["entities"]["on"]["entity"]["id"] == "1"),
            ("add_reaction", "POST", "/messages/1/reactions/%F0%9F%91%8D", None, {"onBehalfOf": "b"},
             ["message_reaction_added"], lambda d: d["data"]["data"]["reactions"][0]["count"] == 1),
            ("remove_reaction", "DELETE", "/messages/1/reactions/%F0%9F%91%8D", None, {"onBehalfOf": "b"},
             ["message_reaction_removed"], lambda d: d["data"]["data"]["reactions"] == []),
            ("pin_message", "POST", "/messages/1/pin", None, {"onBehalfOf": "a"}, ["message_pinned"],
             lambda d: d["data"]["success"] is True),
            ("unpin_message", "DELETE", "/messages/1/pin", None, {"onBehalfOf": "a"}, ["message_unpinned"],
             lambda d: d["data"]["success"] is True),
            ("delete_message", "DELETE", "/messages/1", None, {"onBehalfOf": "a"}, ["message_deleted"],
             lambda d: d["data"]["data"]["action"] == "deleted"),
            ("create_group", "POST", "/groups", {"guid": "g", "name": "G", "type": "public"}, {"onBehalfOf": "a"},
             ["group_created"], lambda d: d["data"]["owner"] == "a" and d["data"]["membersCount"] == 1),
            ("create_group", "POST", "/groups", {"guid": "h", "name": "H", "type": "private"}, {"onBehalfOf": "a"},
             ["group_created"], lambda d: d["data"]["guid"] == "h"),
            ("get_group", "GET", "/groups/g", None, {}, [], lambda d: d["data"]["conversationId"] == "group_g"),
            ("list_groups", "GET", "/groups?searchKey=G&perPage=1", None, {}, [],
             lambda d: [g["guid"] for g in d["data"]] == ["g"] and d["meta"]["pagination"]["total"] == 1),
            ("update_group", "PUT", "/groups/g", {"name": "Gee"}, {"onBehalfOf": "a"}, ["group_updated"],
             lambda d: d["data"]["name"] == "Gee"),
            ("add_members", "POST", "/groups/g/members", {"participants": ["b", "c"]}, {"onBehalfOf": "a"},
             ["group_member_added"], lambda d: d["data"]["participants"]["b"]["success"] is True),
            ("list_members", "GET", "/groups/g/members?scopes=participant", None, {}, [],
             lambda d: [(m["uid"], m["name"], m["scope"]) for m in d["data"]] == [("b", "B", "participant"), ("c", "Cee", "participant")]
             and d["meta"]["pagination"]["total"] == 2),
            ("change_scope", "PUT", "/groups/g/members/b", {"scope": "moderator"}, {"onBehalfOf": "a"},
             ["group_member_scope_changed"], lambda d: d["data"]["scope"] == "moderator"),
            ("transfer_owner", "PUT", "/groups/g", {"owner": "b"}, {}, ["group_owner_transferred"],
             lambda d: d["data"]["owner"] == "b"),
            ("kick_member", "DELETE", "/groups/g/members/c", None, {"onBehalfOf": "b"}, ["group_member_kicked"],
             lambda d: d["data"]["success"] is True),
            ("ban_member", "POST", "/groups/g/bannedusers/c", None, {"onBehalfOf": "b"}, ["group_member_banned"],
             lambda d: d["data"]["success"] is True),
            ("unban_member", "DELETE", "/groups/g/bannedusers/c", None, {"onBehalfOf": "b"}, ["group_member_unbanned"],
             lambda d: d["data"]["success"] is True),
            ("delete_group", "DELETE", "/groups/h", None, {"onBehalfOf": "a"}, ["group_deleted"],
             lambda d: d["data"]["success"] is True),
            ("block_users", "POST", "/users/a/blockedusers", {"blockedUids": ["c"]}, {}, ["user_blocked"],
             lambda d: d["data"]["c"]["success"] is True),
            ("unblock_users", "DELETE", "/users/a/blockedusers", {"blockedUids": ["c"]}, {}, ["user_unblocked"],
             lambda d: d["data"]["c"]["success"] is True),
            ("delete_user", "DELETE", "/users/c", None, {}, [], lambda d: d["data"]["success"] is True),
        ]  # fmt: skip
        assert {step[0] for step in steps} == set(ACTIONS), "every operation has a step"
        for name, method, path, body, headers, triggers, reads in steps:
            status, answer = await client.call(method, path, body, **headers)
            assert status == 200 and reads(answer), (name, answer)
            assert [b["trigger"] for b in await fired(client, receiver)] == triggers, name
        status, answer = await client.call("GET", "/users/c")
        assert status == 404 and answer["error"]["code"] == "ERR_UID_NOT_FOUND"
        assert "c" not in client.emulator.state.members["g"]


async def test_the_owner_in_an_update_without_on_behalf_of_transfers_the_group() -> None:
    async for client, receiver in hooked():
        for uid in ("a", "b"):
            await client.user(uid)
        await client.call("POST", "/groups", {"guid": "g", "name": "G", "members": {"participants": ["b"]}}, onBehalfOf="a")
        await fired(client, receiver)
        # With onBehalfOf the owner is ignored (the OAS) and group_updated fires (seen live).
        status, answer = await client.call("PUT", "/groups/g", {"owner": "b"}, onBehalfOf="a")
        assert status == 200 and answer["data"]["owner"] == "a"
        assert [b["trigger"] for b in await fired(client, receiver)] == ["group_updated"]
        status, answer = await client.call("PUT", "/groups/g", {"owner": "b"})
        assert status == 200 and answer["data"]["owner"] == "b"
        assert (await client.call("GET", "/groups/g"))[1]["data"]["owner"] == "b"
        (delivery,) = await fired(client, receiver)
        group = delivery["data"]["group"]
        assert delivery["trigger"] == "group_owner_transferred"
        assert (group["guid"], group["owner"], group["oldOwner"]) == ("g", "b", "a")
        assert client.emulator.state.members["g"]["b"]["scope"] == "admin"
        # The new owner must exist and be a member.
        assert (await client.call("PUT", "/groups/g", {"owner": "nobody"}))[0] == 404
        await client.user("c")
        status, answer = await client.call("PUT", "/groups/g", {"owner": "c"})
        assert status == 404 and answer["error"]["code"] == "ERR_NOT_A_MEMBER"
        assert await fired(client, receiver) == []


async def test_pin_and_unpin_fire_with_the_live_key_paths_and_leave_the_message_as_it_was() -> None:
    async for client, receiver in hooked():
        for uid in ("a", "b"):
            await client.user(uid)
        sent = (await client.call("POST", "/messages", {"receiver": "b", "receiverType": "user", "data": {"text": "x"}},
                                  onBehalfOf="a"))[1]["data"]  # fmt: skip
        await fired(client, receiver)
        assert (await client.call("POST", "/messages/1/pin", onBehalfOf="b"))[0] == 200
        (pinned,) = await fired(client, receiver)
        message = pinned["data"]["message"]
        assert pinned["trigger"] == "message_pinned" and message["id"] == "1" and message["pinnedBy"] == "b"
        assert isinstance(message["pinnedAt"], int) and message["data"]["text"] == "x"
        assert (await client.call("DELETE", "/messages/1/pin"))[0] == 200  # without onBehalfOf: the app unpins
        (unpinned,) = await fired(client, receiver)
        message = unpinned["data"]["message"]
        assert unpinned["trigger"] == "message_unpinned" and message["unpinnedBy"] == "app_system"
        assert isinstance(message["unpinnedAt"], int) and message["pinnedAt"] == pinned["data"]["message"]["pinnedAt"]
        assert (await client.call("GET", "/messages/1"))[1]["data"] == sent
        status, answer = await client.call("POST", "/messages/99/pin")
        assert status == 404 and answer["error"]["code"] == "ERR_MESSAGE_ID_NOT_FOUND"


@pytest.mark.parametrize("quirk_on", [True, False])
async def test_a_ban_with_on_behalf_of_carries_the_actor_while_the_quirk_is_on(quirk_on: bool) -> None:
    off = () if quirk_on else ("ban-actor-in-members",)
    async for client, receiver in hooked(quirks_off=off):
        for uid in ("owner", "mod", "target"):
            await client.user(uid)
        await client.call("POST", "/groups", {"guid": "g", "name": "G", "members": {"moderators": ["mod"]}}, onBehalfOf="owner")
        await fired(client, receiver)
        expected = "mod" if quirk_on else "target"
        for method in ("POST", "DELETE"):
            assert (await client.call(method, "/groups/g/bannedusers/target", onBehalfOf="mod"))[0] == 200
            (delivery,) = await fired(client, receiver)
            assert list(delivery["data"]["members"]) == [expected] and delivery["data"]["by"]["uid"] == "mod"
        # Without onBehalfOf, the target either way.
        assert (await client.call("POST", "/groups/g/bannedusers/target"))[0] == 200
        (delivery,) = await fired(client, receiver)
        assert list(delivery["data"]["members"]) == ["target"]


async def test_webhook_entities_are_what_was_stored_and_agree_with_get() -> None:
    async for client, receiver in hooked():
        await client.user("a")
        await client.user("b", avatar="https://example.com/b.png")
        await client.call("POST", "/groups", {"guid": "g", "name": "G", "members": {"participants": ["b"]}}, onBehalfOf="a")
        await client.call("POST", "/messages", {"receiver": "g", "receiverType": "group", "data": {"text": "x"}}, onBehalfOf="b")
        created, sent = sorted(await fired(client, receiver), key=lambda body: str(body["trigger"]))
        stored_a = (await client.call("GET", "/users/a"))[1]["data"]
        stored_b = (await client.call("GET", "/users/b"))[1]["data"]
        group = {k: v for k, v in created["data"]["group"].items() if k not in ("scope", "joinedAt", "hasJoined")}
        assert group == {
            "guid": "g", "name": "G", "type": "public", "owner": "a", "createdAt": stored_group_time(client),
            "updatedAt": stored_group_time(client), "membersCount": 2, "onlineMembersCount": 0, "conversationId": "group_g",
        }  # fmt: skip
        sender = sent["data"]["message"]["data"]["entities"]["sender"]["entity"]
        assert sender == {k: stored_b[k] for k in ("uid", "name", "avatar", "role", "status")}
        assert sender["status"] == stored_b["status"] == "offline"
        by = created["data"]["members"]["a"] if "a" in created["data"].get("members", {}) else None
        for entity in (by, sent["data"]["message"]["data"]["entities"]["receiver"]["entity"]):
            assert entity is None or ("avatar" not in entity and "lastActiveAt" not in entity and "icon" not in entity)
        assert "avatar" not in stored_a


def stored_group_time(client: Client) -> int:
    return int(client.emulator.state.groups["g"]["createdAt"])


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


async def test_lists_refuse_a_page_size_out_of_range(client: Client) -> None:
    for query in ("perPage=0", "perPage=1001", "page=x", "page=0"):
        status, body = await client.call("GET", f"/users?{query}")
        assert status == 400 and body["error"]["code"] == "ERR_BAD_REQUEST" and body["error"]["details"], query
    await client.user("abc")
    await client.user("xyz")
    status, body = await client.call("GET", "/users?searchKey=Y")
    assert [u["uid"] for u in body["data"]] == ["xyz"]
    status, body = await client.call("GET", "/users?page=5")
    assert status == 200 and body["data"] == [] and body["meta"]["pagination"]["current_page"] == 5


def test_a_state_file_the_emulator_cannot_use_is_the_state_setting(tmp_path: Path) -> None:
    """The engine names the `state` setting; `comethook emulate` says it as --state, as it always has."""
    from comethook_cli.cli.app import flagged
    from comethook_cli.engine.emulator.state import Store
    from comethook_cli.errors import InvalidSetting

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(InvalidSetting) as broken:
        Store().open(junk)
    assert broken.value.setting == "state"
    assert flagged(broken.value) == (
        f"Cannot use --state {str(junk)!r}: file is not a database.",
        "Give a new file, or one `emulate` wrote.",
    )
    assert broken.value.message == f"Cannot use state={str(junk)!r}: file is not a database."
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (kind, key))")
        db.execute("INSERT INTO records VALUES ('meta', 'next_id', 'not json')")
    db.close()
    with pytest.raises(InvalidSetting) as empty:
        Store().open(foreign)
    assert flagged(empty.value) == (f"--state {str(foreign)!r} holds no emulator state.", "Give a new file.")

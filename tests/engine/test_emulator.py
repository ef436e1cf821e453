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
        ]
        for method, route, body, headers in calls:
            status, answer = await client.call(method, route, body, **headers)
            assert status == 200, (method, route, answer)
        expected = client.emulator.state.to_json()
        assert expected["messages"]["1"]["data"]["text"] == "edited" and expected["banned"]["g"] == ["b"]
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

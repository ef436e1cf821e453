"""The emulator's state (engine/emulator/state.py): `--state` writes only what a call changed, in a private file that a
kill -9 leaves loadable, every action round-trips through it, and the old format is converted."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from comethook_cli.engine.config import EmulatorConfig
from tests.engine.emulator.conftest import running


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

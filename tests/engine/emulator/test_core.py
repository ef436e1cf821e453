"""The emulator's shared checks (engine/emulator/core.py) on a real emulator over loopback: CometChat's limits on one item, the state
capped by count and by bytes with CometChat-shaped errors, and list pages."""

from __future__ import annotations

import pytest

from comethook_cli.engine.emulator import rules as emulator_rules
from tests.engine.emulator.conftest import Client, refused


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

"""The webhooks the emulator fires (engine/emulator/webhooks.py): every REST operation a backend calls, with exactly the
webhooks it fires, and entities that are what was stored."""

from __future__ import annotations

from typing import Any

from comethook_cli.cometchat.rest import ACTIONS
from tests.engine.emulator.conftest import fired, hooked, stored_group_time


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

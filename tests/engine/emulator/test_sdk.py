"""`emulate`'s stand-ins for SDK clients (engine/emulator/sdk.py), on a real emulator delivering to a real
`comethook.Listener` over loopback: receipts (and the group's `*_to_all` once every member has), joining and leaving,
connection status (current and legacy) stored where `GET /users/{uid}` reads it, and the call and meeting lifecycles,
each with the catalog's live key paths."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from comethook import Listener
from comethook_cli.engine.config import EmulatorConfig, WebhookTarget
from comethook_cli.engine.emulator import Emulator
from tests.cli.test_trigger import shape as catalog_shape

USERS = ("ann", "bob", "cat")


def shape(trigger: str, body: Any, ids: tuple[str, ...] = ()) -> list[str]:
    """How a delivery strays from the catalog's live key paths (maps keyed by these tests' uids and guid)."""
    return catalog_shape(trigger, body, ("team", *USERS, *ids))


class App:
    """An emulator, its REST and control calls, and the listener its webhook points at."""

    def __init__(self, emulator: Emulator, listener: Listener, session: aiohttp.ClientSession) -> None:
        self.emulator, self.listener, self.session = emulator, listener, session
        self.root = emulator.base_url.removesuffix("/v3")
        self.key = emulator.config.api_key or "k"
        self.seen = 0

    async def call(self, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        url = self.root + (path if path.startswith("/_emulator") else "/v3" + path)
        data = json.dumps(body).encode() if body is not None else None
        async with self.session.request(method, url, data=data, headers={"apikey": self.key, **headers}) as answer:
            return answer.status, await answer.json(content_type=None)

    async def sdk(self, name: str, **body: Any) -> Any:
        status, answer = await self.call("POST", f"/_emulator/{name}", body)
        assert status == 200 and answer["emulator"] == "comethook", answer
        return answer

    async def deliveries(self, count: int) -> list[dict[str, Any]]:
        """The next `count` deliveries' bodies, in the order they arrived."""
        arrived = await self.listener.wait_for(self.seen + count, timeout=15)
        fresh = arrived[self.seen : self.seen + count]
        self.seen += count
        return [json.loads(e.body) for e in fresh]


@contextlib.asynccontextmanager
async def app(legacy: bool = False, **config: Any) -> AsyncIterator[App]:
    async with Listener() as listener, aiohttp.ClientSession() as session:
        hook = WebhookTarget(listener.url, "hook-1")
        async with Emulator(EmulatorConfig(port=0, webhooks=(hook,), legacy=legacy, **config)) as emulator:
            client = App(emulator, listener, session)
            for uid in USERS:
                assert (await client.call("POST", "/users", {"uid": uid, "name": uid.title()}))[0] == 200
            yield client


async def group_message(client: App) -> str:
    await client.call("POST", "/groups", {"guid": "team", "name": "Team", "type": "public"}, onBehalfOf="ann")
    await client.call("POST", "/groups/team/members", {"participants": ["bob", "cat"]}, onBehalfOf="ann")
    status, sent = await client.call("POST", "/messages", {"receiver": "team", "receiverType": "group",
                                                           "data": {"text": "hi all"}}, onBehalfOf="ann")  # fmt: skip
    assert status == 200
    await client.deliveries(3)  # group_created, group_member_added, message_sent
    return str(sent["data"]["id"])


async def test_receipts_fire_with_the_live_paths_and_to_all_once_every_member_has() -> None:
    async with app() as client:
        message = await group_message(client)
        first = await client.sdk("receipts", messageId=message, uid="bob", receipt="read")
        assert first["triggers"] == ["message_read_receipt"] and first["data"]["read"] == ["bob"]
        (receipt,) = await client.deliveries(1)
        assert shape("message_read_receipt", receipt, ("team",)) == []
        data = receipt["data"]
        assert (data["sender"], data["messageSender"], data["receiver"], data["receiverType"]) == ("bob", "ann", "team", "group")
        assert (data["body"]["action"], data["body"]["messageId"], data["body"]["user"]["uid"]) == ("read", message, "bob")
        # cat's read completes the group (ann sent it): read_by_all, and delivered_to_all since reading implies delivery.
        last = await client.sdk("receipts", messageId=message, uid="cat", receipt="read")
        assert last["triggers"] == ["message_read_receipt", "message_delivered_to_all", "message_read_by_all"]
        bodies = await client.deliveries(3)
        assert [b["trigger"] for b in bodies] == last["triggers"]  # in this order
        for body in bodies:
            assert shape(body["trigger"], body, ("team",)) == [], body
        by_all = bodies[2]["data"]
        assert (by_all["sender"], by_all["receiver"], by_all["body"]["action"], by_all["body"]["messageId"]) == (
            "app_system", "team", "readByAll", message,
        )  # fmt: skip
        again = await client.sdk("receipts", messageId=message, uid="cat", receipt="read")
        assert again["triggers"] == ["message_read_receipt"]  # *_to_all fires once
        await client.deliveries(1)
        assert client.emulator.state.receipts[message] == {"delivered": ["bob", "cat"], "read": ["bob", "cat"]}


async def test_a_one_to_one_delivery_receipt_and_the_refusals() -> None:
    async with app() as client:
        status, sent = await client.call("POST", "/messages", {"receiver": "bob", "receiverType": "user",
                                                               "data": {"text": "yo"}}, onBehalfOf="ann")  # fmt: skip
        await client.deliveries(1)
        message = sent["data"]["id"]
        done = await client.sdk("receipts", messageId=message, uid="bob", receipt="delivered")
        assert done["triggers"] == ["message_delivery_receipt"]
        (receipt,) = await client.deliveries(1)
        assert shape("message_delivery_receipt", receipt) == [] and receipt["data"]["receiverType"] == "user"
        assert (receipt["data"]["receiver"], receipt["data"]["sender"]) == ("ann", "bob")
        for body, code in (
            ({"messageId": message, "uid": "cat", "receipt": "read"}, "ERR_BAD_REQUEST"),  # not its receiver
            ({"messageId": message, "uid": "ann", "receipt": "read"}, "ERR_BAD_REQUEST"),  # its sender
            ({"messageId": "999", "uid": "bob", "receipt": "read"}, "ERR_MESSAGE_ID_NOT_FOUND"),
            ({"messageId": message, "uid": "bob", "receipt": "seen"}, "ERR_BAD_REQUEST"),
        ):
            status, answer = await client.call("POST", "/_emulator/receipts", body)
            assert status in (400, 404) and answer["error"]["code"] == code and answer["emulator"] == "comethook", body


async def test_join_and_leave_change_the_members_and_fire_without_by() -> None:
    async with app() as client:
        await client.call("POST", "/groups", {"guid": "team", "name": "Team", "type": "public"}, onBehalfOf="ann")
        await client.deliveries(1)
        joined = await client.sdk("join", guid="team", uid="bob")
        assert joined["triggers"] == ["group_member_joined"] and joined["data"]["membersCount"] == 2
        left = await client.sdk("leave", guid="team", uid="bob")
        assert left["triggers"] == ["group_member_left"] and left["data"]["membersCount"] == 1
        bodies = await client.deliveries(2)
        for body, trigger in zip(bodies, ("group_member_joined", "group_member_left"), strict=True):
            assert body["trigger"] == trigger and shape(trigger, body, ("team",)) == [], body
            assert set(body["data"]["members"]) == {"bob"} and body["data"]["group"]["guid"] == "team"
            assert "by" not in body["data"]
        assert bodies[0]["data"]["group"]["membersCount"] == 2 and bodies[1]["data"]["group"]["membersCount"] == 1
        assert "bob" not in client.emulator.state.members["team"]
        status, answer = await client.call("POST", "/_emulator/leave", {"guid": "team", "uid": "bob"})
        assert status == 400 and answer["error"]["code"] == "ERR_GROUP_NOT_JOINED"


async def test_presence_is_stored_so_get_user_agrees_and_legacy_apps_get_the_legacy_shape() -> None:
    async with app() as client:
        online = await client.sdk("presence", uid="bob", status="online")
        assert online["triggers"] == ["user_connection_status_changed"] and online["data"]["changed"] is True
        (body,) = await client.deliveries(1)
        assert shape("user_connection_status_changed", body) == []
        data = body["data"]
        assert (data["user"]["uid"], data["status"], data["user"]["status"]) == ("bob", "online", "online")
        assert data["currentConnection"]["action"] == "connected" and data["userPresenceChanged"] is True
        assert isinstance(data["timestamp"], int) and data["timestamp"] > 10**12  # milliseconds
        assert (await client.call("GET", "/users/bob"))[1]["data"]["status"] == "online"
        await client.sdk("presence", uid="bob", status="offline")
        (body,) = await client.deliveries(1)
        assert body["data"]["currentConnection"]["action"] == "disconnected" and body["data"]["status"] == "offline"
        assert (await client.call("GET", "/users/bob"))[1]["data"]["status"] == "offline"
    async with app(legacy=True) as client:
        answer = await client.sdk("presence", uid="cat", status="online")
        assert (answer["triggers"], answer["generation"]) == (["after_connection_status_changed"], "legacy")
        (body,) = await client.deliveries(1)
        assert body["trigger"] == "after_connection_status_changed" and shape(body["trigger"], body) == []
        assert (body["data"]["user"]["uid"], body["data"]["user"]["status"], body["data"]["event"]["type"]) == (
            "cat", "online", "connected",
        )  # fmt: skip


async def test_legacy_receipts_have_the_legacy_shape_and_current_only_triggers_fire_nothing() -> None:
    async with app(legacy=True) as client:
        _status, sent = await client.call("POST", "/messages", {"receiver": "bob", "receiverType": "user",
                                                               "data": {"text": "yo"}}, onBehalfOf="ann")  # fmt: skip
        await client.deliveries(2)  # before_message, after_message
        answer = await client.sdk("receipts", messageId=sent["data"]["id"], uid="bob", receipt="read")
        assert answer["triggers"] == ["message_read_receipt"]
        (body,) = await client.deliveries(1)
        assert body["data"]["receiptType"] == "read" and body["data"]["receiptSender"] == "bob" and "body" not in body["data"]
        call = await client.sdk("calls", **{"from": "ann", "to": "bob"})
        assert call["triggers"] == []  # legacy webhooks have no call triggers


async def test_an_answered_call_fires_its_lifecycle_in_order_with_one_session() -> None:
    async with app() as client:
        answer = await client.sdk("calls", **{"from": "ann", "to": "bob", "type": "video"})
        expected = ["call_initiated", "call_started", "call_participant_joined", "call_participant_joined",
                    "call_participant_left", "call_participant_left", "call_ended"]  # fmt: skip
        assert answer["triggers"] == expected
        session = answer["data"]["id"]
        bodies = await client.deliveries(len(expected))
        assert [b["trigger"] for b in bodies] == expected
        for body in bodies:
            assert shape(body["trigger"], body) == [], body
        call = bodies[0]["data"]["call"]
        on = call["data"]["entities"]["on"]["entity"]
        assert (on["sessionid"], on["sender"], on["receiver"], call["type"]) == (session, "ann", "bob", "video")
        assert all(b["data"]["sessionId"] == session for b in bodies[1:])
        assert [b["data"]["occupant"]["uid"] for b in bodies[2:6]] == ["ann", "bob", "bob", "ann"]
        assert bodies[2]["data"]["occupant"]["audio_call"] == "false"
        assert {o["uid"] for o in bodies[6]["data"]["all_occupants"]} == {"ann", "bob"}
        assert client.emulator.state.calls[session]["outcome"] == "answered"


async def test_a_rejected_call_is_acted_by_the_callee_and_a_meeting_fires_the_meeting_family() -> None:
    async with app() as client:
        rejected = await client.sdk("calls", **{"from": "ann", "to": "bob", "outcome": "rejected"})
        assert rejected["triggers"] == ["call_initiated", "call_rejected"]
        initiated, refusal = await client.deliveries(2)
        assert refusal["data"]["call"]["data"]["entities"]["by"]["entity"]["uid"] == "bob"
        assert refusal["data"]["call"]["data"]["entities"]["on"]["entity"]["sessionid"] == rejected["data"]["id"]
        assert refusal["data"]["call"]["id"] == initiated["data"]["call"]["id"]
        meeting = await client.sdk("calls", **{"from": "ann", "to": "cat", "outcome": "meeting"})
        assert meeting["triggers"][0] == "meeting_started" and meeting["triggers"][-1] == "meeting_ended"
        bodies = await client.deliveries(len(meeting["triggers"]))
        for body in bodies:
            assert body["type"] == "meet" and shape(body["trigger"], body) == [], body
        status, answer = await client.call("POST", "/_emulator/calls", {"from": "ann", "to": "ann"})
        assert status == 400 and answer["error"]["code"] == "ERR_BAD_REQUEST"


async def test_the_control_endpoints_need_the_key_when_one_is_set() -> None:
    async with app(api_key="right") as client:
        for key in ("", "wrong"):
            status, answer = await client.call("POST", "/_emulator/presence", {"uid": "ann", "status": "online"}, apikey=key)
            assert status == 401 and answer["emulator"] == "comethook", key
        assert "status" not in client.emulator.state.users["ann"] or client.emulator.state.users["ann"]["status"] == "offline"


async def test_the_emulator_marks_its_webhooks_so_a_listener_files_them_apart_from_cometchats() -> None:
    from comethook_cli.engine.exchanges import is_live

    async with app() as client:
        await group_message(client)  # group_created, group_member_added, message_sent
        arrived = client.listener.events
        assert len(arrived) == 3 and [e.origin for e in arrived] == ["emulate"] * 3 and not any(map(is_live, arrived))

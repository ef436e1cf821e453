"""The emulator's message operations (engine/emulator/messages.py): pin and unpin."""

from __future__ import annotations

from tests.engine.emulator.conftest import fired, hooked


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

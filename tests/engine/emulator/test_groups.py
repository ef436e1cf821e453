"""The emulator's group operations (engine/emulator/groups.py): an owner transfer in an update, bans with and without
onBehalfOf while the ban-actor quirk is on or off."""

from __future__ import annotations

import pytest

from tests.engine.emulator.conftest import fired, hooked


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

"""CometChat's sample users and group (the ones its docs and sample apps use)."""

from __future__ import annotations

from typing import Any

SAMPLE_USERS = {
    "cometchat-uid-1": "Andrew Joseph",
    "cometchat-uid-2": "George Alan",
    "cometchat-uid-3": "Nancy Grace",
    "cometchat-uid-4": "Susan Marie",
    "cometchat-uid-5": "John Paul",
}
SAMPLE_GROUPS = {"cometchat-guid-1": "Hiking Group"}
_ASSETS = "https://assets.cometchat.io/sampleapp/v2"


def user_name(uid: str) -> str:
    """The display name of a user (the uid itself for users outside the samples)."""
    return SAMPLE_USERS.get(uid, uid)


def user_entity(uid: str, now: int, legacy: bool = False) -> dict[str, Any]:
    """A user entity as CometChat puts it in `entities` (legacy payloads carry no lastActiveAt)."""
    entity: dict[str, Any] = {
        "uid": uid,
        "name": user_name(uid),
        "avatar": f"{_ASSETS}/users/{uid}.webp" if uid in SAMPLE_USERS else f"https://example.com/avatars/{uid}.png",
        "status": "offline" if legacy else "available",
        "role": "default",
    }
    if not legacy:
        entity["lastActiveAt"] = now - 30
    return entity


def group_entity(guid: str, owner: str, now: int) -> dict[str, Any]:
    """A group entity as group triggers carry it."""
    return {
        "guid": guid,
        "name": SAMPLE_GROUPS.get(guid, guid),
        "icon": f"{_ASSETS}/groups/{guid}.webp" if guid in SAMPLE_GROUPS else f"https://example.com/groups/{guid}.png",
        "type": "public",
        "membersCount": 2,
        "conversationId": f"group_{guid}",
        "createdAt": now - 86400,
        "owner": owner,
        "updatedAt": now,
        "onlineMembersCount": 1,
    }

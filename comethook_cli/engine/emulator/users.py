"""REST handlers for users: create, get, list, update, delete, auth tokens, block and unblock."""

from __future__ import annotations

import secrets
import time
from typing import Any

from comethook_cli.engine.emulator import rules
from comethook_cli.engine.emulator.core import Core, Handler, check_entity, matches, page, room, uid_field
from comethook_cli.engine.emulator.state import Refused


async def create_user(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """POST /users."""
    uid = uid_field(body, "uid")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise Refused("ERR_BAD_REQUEST", "The name field is required.", {"name": ["The name field is required."]})
    check_entity(body)
    if uid in app.state.users or uid == rules.SYSTEM_USER:
        raise Refused("ERR_UID_ALREADY_EXISTS", f"The UID {uid} already exists, please use another UID.")
    user: dict[str, Any] = {"uid": uid, "name": name, "status": "offline", "role": "default", "createdAt": int(time.time())}
    for key in ("avatar", "link", "role", "statusMessage", "metadata", "tags"):
        if key in body:
            user[key] = body[key]
    room("users", len(app.state.users), rules.MAX_USERS)
    app.state.users[uid] = user
    app.touch("users", uid)
    if body.get("withAuthToken") is True:
        return {"data": {**user, "authToken": _token(uid)}}
    return {"data": user}


#: The fields a user's create or update body may set (the sheet §5 #1), and those update's `unset` may clear.
USER_FIELDS = ("name", "avatar", "link", "role", "statusMessage", "metadata", "tags")
UNSETTABLE = ("avatar", "link", "metadata", "statusMessage", "tags")


def _token(uid: str) -> str:
    """A fresh auth token: `<uid>_<hex>`, the form CometChat's examples show (the format is not documented)."""
    return f"{uid}_{secrets.token_hex(20)}"


async def list_users(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """GET /users: searchKey (in searchIn, default uid and name), status, role, perPage, page."""
    fields = tuple(f for f in params.get("searchIn", "uid,name").split(",") if f in ("uid", "name")) or ("uid", "name")
    found = [
        user for user in app.state.users.values()
        if matches(user, params.get("searchKey", ""), fields)
        and params.get("status", user.get("status")) == user.get("status")
        and params.get("role", user.get("role")) == user.get("role")
    ]  # fmt: skip
    return page(sorted(found, key=lambda user: user["uid"]), params)


async def update_user(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """PUT /users/{uid}: the fields given, and `unset` ones removed; fires nothing (the sheet §7 lists no trigger)."""
    user = app.user(params["uid"])
    check_entity(body)
    name = body.get("name", user["name"])
    if not isinstance(name, str) or not name.strip():
        raise Refused("ERR_BAD_REQUEST", "The name may not be empty.", {"name": ["The name may not be empty."]})
    unset = body.get("unset", [])
    if not isinstance(unset, list) or not all(field in UNSETTABLE for field in unset):
        told = f"unset may list {', '.join(UNSETTABLE)}."
        raise Refused("ERR_BAD_REQUEST", told, {"unset": [told]})
    app.touch("users", user["uid"])
    for key in USER_FIELDS:
        if key in body:
            user[key] = body[key]
    for key in unset:
        user.pop(key, None)
    return {"data": user}


async def delete_user(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """DELETE /users/{uid}: the user, their memberships and their blocks go; their messages stay. Fires nothing."""
    uid = app.user(params["uid"])["uid"]
    del app.state.users[uid]
    app.touch("users", uid)
    for guid, members in app.state.members.items():
        if members.pop(uid, None) is not None:
            app.touch("members", guid)
    if app.state.blocks.pop(uid, None) is not None:
        app.touch("blocks", uid)
    return {"data": {"success": True, "message": f"User {uid} deleted successfully."}}


async def create_auth_token(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """POST /users/{uid}/auth_tokens: `{uid, authToken, createdAt}`. Tokens are not kept: the emulator serves no SDK."""
    uid = app.user(params["uid"])["uid"]
    return {"data": {"uid": uid, "authToken": _token(uid), "createdAt": int(time.time())}}


async def get_user(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """GET /users/{uid}."""
    return {"data": app.user(params["uid"])}


async def block_users(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None, block: bool = True) -> Any:
    """POST /users/{uid}/blockedusers (and, with block=False, its DELETE)."""
    blocker = app.user(params["uid"])["uid"]
    uids = body.get("blockedUids")
    if not isinstance(uids, list) or not uids or not all(isinstance(u, str) for u in uids):
        raise Refused(
            "ERR_BAD_REQUEST", "The blockedUids field is required.", {"blockedUids": ["The blockedUids field is required."]}
        )
    blocked = app.state.blocks.setdefault(blocker, [])
    app.touch("blocks", blocker)
    answer: dict[str, Any] = {}
    changed: list[str] = []
    for uid in (u.lower() for u in uids):
        if uid == blocker:
            raise Refused("ERR_CANNOT_BLOCK_SELF", "A user cannot block themselves.")
        app.user(uid)
        if block and uid not in blocked:
            blocked.append(uid)
        elif not block and uid in blocked:
            blocked.remove(uid)
        changed.append(uid)
        answer[uid] = {"success": True, "message": f"{blocker} has {'blocked' if block else 'unblocked'} {uid} successfully."}
    app.fire("user_blocked" if block else "user_unblocked", merge="users", each=changed, sender=blocker)
    return {"data": answer}


async def unblock_users(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """DELETE /users/{uid}/blockedusers."""
    return await block_users(app, params, body, actor, block=False)


HANDLERS: dict[str, Handler] = {
    "create_user": create_user,
    "get_user": get_user,
    "list_users": list_users,
    "update_user": update_user,
    "delete_user": delete_user,
    "create_auth_token": create_auth_token,
    "block_users": block_users,
    "unblock_users": unblock_users,
}

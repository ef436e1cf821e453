"""REST handlers for users: create, get, block and unblock."""

from __future__ import annotations

import time
from typing import Any

from comethook_cli.engine.emulator import rules
from comethook_cli.engine.emulator.core import Core, Handler, check_entity, room, uid_field
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
    return {"data": user}


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
    "block_users": block_users,
    "unblock_users": unblock_users,
}

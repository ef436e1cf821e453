"""REST handlers for groups: create, get, list, update (an ownership transfer too), delete, and their members (add,
list, scope, kick, ban, unban)."""

from __future__ import annotations

import copy
import time
from typing import Any

from comethook_cli.cometchat import rest
from comethook_cli.engine.emulator import rules
from comethook_cli.engine.emulator.core import Core, Handler, check_entity, matches, page, room, uid_field
from comethook_cli.engine.emulator.state import Refused

#: The scopes a create or add-members body lists users under, and the key of each list.
SCOPE_KEYS = (("admin", "admins"), ("moderator", "moderators"), ("participant", "participants"))


def _group_answer(app: Core, guid: str, actor: str | None) -> dict[str, Any]:
    group = copy.deepcopy(app.state.groups[guid])
    members = app.state.members.get(guid, {})
    group["membersCount"] = len(members)
    group["conversationId"] = f"group_{guid}"
    if actor and actor in members:
        group.update(scope=members[actor]["scope"], joinedAt=members[actor]["joinedAt"], hasJoined=True)
    return group


async def create_group(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """POST /groups."""
    guid = uid_field(body, "guid")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise Refused("ERR_BAD_REQUEST", "The name field is required.", {"name": ["The name field is required."]})
    kind = body.get("type", "public")
    if kind not in rest.GROUP_TYPES:
        raise Refused("ERR_BAD_REQUEST", "type must be public, password or private.", {"type": ["The selected type is invalid."]})
    if kind == "password" and not body.get("password"):
        raise Refused("ERR_EMPTY_GROUP_PASS", "A password group needs a password.")
    check_entity({k: v for k, v in body.items() if k != "members"})
    if guid in app.state.groups:
        raise Refused("ERR_GUID_ALREADY_EXISTS", f"The GUID {guid} already exists, please use another GUID.")
    extra: dict[str, Any] = body["members"] if isinstance(body.get("members"), dict) else {}
    _per_call(extra)
    room("groups", len(app.state.groups), rules.MAX_GROUPS)
    owner = body.get("owner") if isinstance(body.get("owner"), str) else actor
    owner = app.user(owner)["uid"] if owner else rules.SYSTEM_USER
    now = int(time.time())
    group: dict[str, Any] = {"guid": guid, "name": name, "type": kind, "owner": owner, "createdAt": now, "updatedAt": now}
    for key in ("icon", "description", "metadata", "tags"):
        if key in body:
            group[key] = body[key]
    app.state.groups[guid] = group
    members = app.state.members[guid] = {}
    app.touch("groups", guid)
    app.touch("members", guid)
    if owner != rules.SYSTEM_USER:
        members[owner] = {"scope": "admin", "joinedAt": now}
    for scope, key in SCOPE_KEYS:
        for uid in extra.get(key) or []:
            if isinstance(uid, str) and uid.lower() in app.state.users:
                members.setdefault(uid.lower(), {"scope": scope, "joinedAt": now})
    app.fire("group_created", sender=owner, group=guid)
    return {"data": _group_answer(app, guid, actor or owner)}


async def get_group(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """GET /groups/{guid}."""
    return {"data": _group_answer(app, app.group(params["guid"])["guid"], actor)}


async def list_groups(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """GET /groups: searchKey (in guid and name), type, perPage, page."""
    found = [
        _group_answer(app, guid, actor) for guid, group in sorted(app.state.groups.items())
        if matches(group, params.get("searchKey", ""), ("guid", "name")) and params.get("type", group["type"]) == group["type"]
    ]  # fmt: skip
    return page(found, params)


def _new_owner(app: Core, guid: str, owner: Any) -> str:
    """The uid an ownership transfer names: a user who is a member already (the emulator's choice: CometChat is silent)."""
    if not isinstance(owner, str) or not owner.strip():
        raise Refused("ERR_BAD_REQUEST", "owner must be a uid.", {"owner": ["The owner must be a uid."]})
    uid: str = app.user(owner)["uid"]
    if uid not in app.state.members.get(guid, {}):
        raise Refused("ERR_NOT_A_MEMBER", f"The user {uid} is not a member of the group {guid}.")
    return uid


async def update_group(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """PUT /groups/{guid}: group_updated; with {"owner": uid} and no onBehalfOf, an ownership transfer that fires
    group_owner_transferred instead (the sheet §7; with onBehalfOf the owner is ignored, as the OAS says)."""
    group = app.group(params["guid"])
    check_entity(body)
    new_owner = _new_owner(app, group["guid"], body.get("owner")) if actor is None and "owner" in body else None
    app.touch("groups", group["guid"])
    for key in ("name", "type", "icon", "description", "metadata", "tags"):
        if key in body:
            group[key] = body[key]
    group["updatedAt"] = int(time.time())
    if new_owner is not None and new_owner != group["owner"]:
        old_owner, group["owner"] = group["owner"], new_owner
        app.state.members[group["guid"]][new_owner]["scope"] = "admin"
        app.touch("members", group["guid"])
        app.fire("group_owner_transferred", sender=old_owner, receiver=new_owner, group=group["guid"])
    elif new_owner is None:
        app.fire("group_updated", sender=actor or group["owner"], group=group["guid"])
    return {"data": _group_answer(app, group["guid"], actor)}


async def delete_group(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """DELETE /groups/{guid}."""
    guid = app.group(params["guid"])["guid"]
    by = actor or app.state.groups[guid]["owner"]
    app.fire("group_deleted", sender=by, group=guid)  # built now, while the group still exists
    del app.state.groups[guid]
    app.state.members.pop(guid, None)
    app.state.banned.pop(guid, None)
    for kind in ("groups", "members", "banned"):
        app.touch(kind, guid)
    return {"data": {"success": True, "message": f"Group {guid} deleted successfully."}}


def _per_call(body: dict[str, Any]) -> None:
    """CometChat's limit: at most 25 users per add-members call (and per create-group `members` object)."""
    uids = [u for key in ("admins", "moderators", "participants", "usersToBan") if isinstance(body.get(key), list)
            for u in body[key]]  # fmt: skip
    if len(uids) > rules.MAX_MEMBERS_PER_CALL:
        told = f"At most {rules.MAX_MEMBERS_PER_CALL} users per call."
        raise Refused("ERR_BAD_REQUEST", told, {"participants": [told]})


def _member_call(app: Core, params: dict[str, str], actor: str | None) -> tuple[str, str, str]:
    guid = app.group(params["guid"])["guid"]
    uid = app.user(params["uid"])["uid"]
    by = actor or app.state.groups[guid]["owner"]
    if uid == by:
        raise Refused("ERR_GROUP_NO_SELF_ACTION", "A member cannot do this to themselves.")
    return guid, uid, by


async def add_members(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """POST /groups/{guid}/members: per user, added or why not; usersToBan banned."""
    guid = app.group(params["guid"])["guid"]
    by = actor or app.state.groups[guid]["owner"]
    _per_call(body)
    members = app.state.members.setdefault(guid, {})
    banned = app.state.banned.setdefault(guid, [])
    app.touch("members", guid)
    app.touch("banned", guid)
    answer: dict[str, Any] = {}
    added: list[str] = []
    now = int(time.time())
    given = [(scope, key, body.get(key)) for scope, key in SCOPE_KEYS]
    if not any(isinstance(uids, list) and uids for _, _, uids in given) and not body.get("usersToBan"):
        raise Refused("ERR_BAD_REQUEST", "Give admins, moderators, participants or usersToBan.", {"participants": ["Required."]})
    for scope, key, uids in given:
        for uid in (u.lower() for u in uids or [] if isinstance(u, str)):
            app.user(uid)
            if uid in banned:
                answer.setdefault(key, {})[uid] = {"success": False, "error": {"code": "ERR_BANNED_GROUPMEMBER"}}
            elif uid in members:
                answer.setdefault(key, {})[uid] = {"success": False, "error": {"code": "ERR_ALREADY_JOINED"}}
            elif len(members) >= rules.MAX_GROUP_MEMBERS:
                answer.setdefault(key, {})[uid] = {"success": False, "error": {"code": "ERR_NO_VACANCY"}}
            else:
                members[uid] = {"scope": scope, "joinedAt": now}
                added.append(uid)
                answer.setdefault(key, {})[uid] = {"success": True}
    to_ban = [u.lower() for u in body.get("usersToBan") or [] if isinstance(u, str)]
    for uid in to_ban:
        app.user(uid)
        members.pop(uid, None)
        if uid not in banned:
            banned.append(uid)
        answer.setdefault("usersToBan", {})[uid] = {"success": True}
    if added:
        app.fire("group_member_added", merge="members", each=added, sender=by, group=guid)
    if to_ban:  # usersToBan → group_member_banned is the sheet's inference
        app.fire("group_member_banned", merge="members", each=to_ban, sender=by, group=guid)
    return {"data": answer}


async def list_members(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """GET /groups/{guid}/members: each member is the stored user with its scope and joinedAt; scopes, perPage, page."""
    guid = app.group(params["guid"])["guid"]
    scopes = [s for s in params.get("scopes", "").split(",") if s]
    found = [
        {**app.state.users.get(uid, {"uid": uid}), "scope": member["scope"], "joinedAt": member["joinedAt"]}
        for uid, member in sorted(app.state.members.get(guid, {}).items())
        if not scopes or member["scope"] in scopes
    ]  # fmt: skip
    return page(found, params)


async def change_scope(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """PUT /groups/{guid}/members/{uid}."""
    guid, uid, by = _member_call(app, params, actor)
    scope = body.get("scope", "participant")
    if scope not in rest.SCOPES:
        raise Refused(
            "ERR_BAD_REQUEST", "scope must be admin, moderator or participant.", {"scope": ["The selected scope is invalid."]}
        )
    member = app.state.members.get(guid, {}).get(uid)
    if member is None:
        raise Refused("ERR_NOT_A_MEMBER", f"The user {uid} is not a member of the group {guid}.")
    if member["scope"] == scope:
        raise Refused("ERR_SAME_SCOPE", f"The user {uid} already has the scope {scope}.")
    old, member["scope"] = member["scope"], scope
    app.touch("members", guid)
    sets = ((f"data.members.{uid}.scope", scope), (f"data.members.{uid}.oldScope", old))
    app.fire("group_member_scope_changed", sender=by, receiver=uid, group=guid, adds=sets)
    return {"data": {"guid": guid, "uid": uid, "scope": scope, "joinedAt": member["joinedAt"]}}


async def kick_member(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """DELETE /groups/{guid}/members/{uid}."""
    guid, uid, by = _member_call(app, params, actor)
    if uid not in app.state.members.get(guid, {}):
        raise Refused("ERR_NOT_A_MEMBER", f"The user {uid} is not a member of the group {guid}.")
    app.fire("group_member_kicked", sender=by, receiver=uid, group=guid)
    del app.state.members[guid][uid]
    app.touch("members", guid)
    return {"data": {"success": True, "message": f"{uid} kicked from the group {guid} successfully."}}


def _in_members(app: Core, uid: str, actor: str | None) -> str:
    """Who a ban's or unban's data.members holds: the target, or live with onBehalfOf the actor (quirks.py)."""
    return actor if actor is not None and app.quirk("ban-actor-in-members") else uid


async def ban_member(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """POST /groups/{guid}/bannedusers/{uid}."""
    guid, uid, by = _member_call(app, params, actor)
    banned = app.state.banned.setdefault(guid, [])
    if uid in banned:
        raise Refused("ERR_ALREADY_BANNED", f"The user {uid} is already banned from the group {guid}.")
    app.fire("group_member_banned", sender=by, receiver=_in_members(app, uid, actor), group=guid)
    banned.append(uid)
    app.state.members.get(guid, {}).pop(uid, None)
    app.touch("banned", guid)
    app.touch("members", guid)
    return {"data": {"success": True, "message": f"{uid} banned from the group {guid} successfully."}}


async def unban_member(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """DELETE /groups/{guid}/bannedusers/{uid}."""
    guid, uid, by = _member_call(app, params, actor)
    banned = app.state.banned.setdefault(guid, [])
    if uid not in banned:
        raise Refused("ERR_NOT_A_BANNED_USER", f"The user {uid} is not banned from the group {guid}.")
    banned.remove(uid)
    app.touch("banned", guid)
    app.fire("group_member_unbanned", sender=by, receiver=_in_members(app, uid, actor), group=guid)
    return {"data": {"success": True, "message": f"{uid} unbanned from the group {guid} successfully."}}


HANDLERS: dict[str, Handler] = {
    "create_group": create_group,
    "get_group": get_group,
    "list_groups": list_groups,
    "update_group": update_group,
    "transfer_owner": update_group,  # the same call: the body and onBehalfOf decide (rest.ACTIONS says so)
    "list_members": list_members,
    "delete_group": delete_group,
    "add_members": add_members,
    "change_scope": change_scope,
    "kick_member": kick_member,
    "ban_member": ban_member,
    "unban_member": unban_member,
}

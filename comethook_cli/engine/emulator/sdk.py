"""What SDK clients cause and REST cannot: receipts, joining and leaving a group, connection status, calls.

CometChat fires these webhooks only for a live SDK (WebSocket) client (the REST sheet §7, the webhooks sheet §10), so
a backend's CI cannot cause them through REST. `emulate` stands in for the client: each handler here is a control
endpoint (`POST /_emulator/<name>`, server.py's CONTROL), acts on the state as the client's action would, and fires
the catalog's templates (the live shapes) filled from that state. Each answers what it did and the triggers this
app fired for it (`triggers`, `generation`), marked as the emulator's (rest.EMULATOR_MARK), never a CometChat shape.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from comethook_cli.cometchat import rest
from comethook_cli.engine.emulator import rules
from comethook_cli.engine.emulator.core import Core, room
from comethook_cli.engine.emulator.state import Refused

#: A control handler: (the app, the JSON body) → the answer's JSON.
ControlHandler = Callable[[Core, dict[str, Any]], Awaitable[dict[str, Any]]]
RECEIPTS = ("delivered", "read")
STATUSES = ("online", "offline")
#: How a ringing call ends (each a trigger of the catalog's call family), and a meeting (a call session).
CALL_OUTCOMES = ("answered", "rejected", "busy", "cancelled", "unanswered", "meeting")
CALL_TYPES = ("audio", "video")
#: The platform a stand-in SDK client reports (user_connection_status_changed's currentConnection.platform).
PLATFORM = "javascript"


def _answer(app: Core, data: dict[str, Any], fired: list[str]) -> dict[str, Any]:
    return {"data": data, "triggers": fired, "generation": "legacy" if app.config.legacy else "current", **rest.EMULATOR_MARK}


def _field(body: dict[str, Any], name: str, choices: tuple[str, ...] | None = None) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Refused("ERR_BAD_REQUEST", f"The {name} field is required.", {name: [f"The {name} field is required."]})
    if choices is not None and value not in choices:
        told = f"{name} must be one of: {', '.join(choices)}."
        raise Refused("ERR_BAD_REQUEST", told, {name: [told]})
    return value.strip()


def _fire(app: Core, steps: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Deliver the steps in order; the triggers this app's generation fires (current-only ones vanish on legacy)."""
    legacy_names = rules.LEGACY_TRIGGERS | rules.BOTH_GENERATIONS
    fired = [(t, o) for t, o in steps if (t in legacy_names if app.config.legacy else t not in rules.LEGACY_TRIGGERS)]
    app.webhooks.fire_in_order(fired)
    return [trigger for trigger, _ in fired]


async def receipt(app: Core, body: dict[str, Any]) -> dict[str, Any]:
    """POST /_emulator/receipts {messageId, uid, receipt}: `uid`'s client marks the message delivered or read."""
    kind = _field(body, "receipt", RECEIPTS)
    message = app.message(str(body.get("messageId") or _field(body, "messageId")))
    reader = app.user(_field(body, "uid"))["uid"]
    sender, group = message["sender"], message["receiver"] if message["receiverType"] == "group" else None
    if reader == sender:
        raise Refused("ERR_BAD_REQUEST", f"{reader} sent message {message['id']}: receipts come from its receivers.")
    members = set(app.state.members.get(group, {})) if group else set()
    if group is not None and reader not in members:
        raise Refused("ERR_GROUP_NOT_JOINED", f"{reader} is not a member of the group {group}.")
    if group is None and reader != message["receiver"]:
        raise Refused("ERR_BAD_REQUEST", f"Message {message['id']} was sent to {message['receiver']}, not to {reader}.")
    seen = app.state.receipts.setdefault(message["id"], {"delivered": [], "read": []})
    app.touch("receipts", message["id"])
    # Reading implies delivery: a read receipt counts towards both sets (the emulator's choice, CHOICES).
    kinds = ("delivered", "read") if kind == "read" else ("delivered",)
    receivers = members - {sender}
    complete_before = {k: bool(receivers) and receivers <= set(seen[k]) for k in kinds}
    for k in kinds:
        if reader not in seen[k]:
            seen[k].append(reader)
    trigger = "message_read_receipt" if kind == "read" else "message_delivery_receipt"
    options: dict[str, Any] = {"sender": sender, "receiver": reader, "message_id": message["id"]}
    if group is not None:  # a group message's receipt names the group as its receiver
        options["adds"] = (
            ("data.receiptReceiver" if app.config.legacy else "data.receiver", group),
            ("data.receiverType", "group"),
        )
    steps: list[tuple[str, dict[str, Any]]] = [(trigger, options)]
    # *_to_all: a group message, once, when this receipt completes every member's (Enhanced Messaging Status only).
    to_all = {"delivered": "message_delivered_to_all", "read": "message_read_by_all"}
    for k in kinds:
        if group is not None and not complete_before[k] and receivers <= set(seen[k]):
            steps.append((to_all[k], {"sender": sender, "group": group, "message_id": message["id"]}))
    data = {"id": message["id"], "receipt": kind, "uid": reader, "delivered": list(seen["delivered"]), "read": list(seen["read"])}
    return _answer(app, data, _fire(app, steps))


async def join(app: Core, body: dict[str, Any], leave: bool = False) -> dict[str, Any]:
    """POST /_emulator/join {guid, uid}: `uid`'s client joins the group (POST /_emulator/leave: leaves it)."""
    guid = app.group(_field(body, "guid"))["guid"]
    uid = app.user(_field(body, "uid"))["uid"]
    members = app.state.members.setdefault(guid, {})
    app.touch("members", guid)
    if leave:
        if uid not in members:
            raise Refused("ERR_GROUP_NOT_JOINED", f"{uid} is not a member of the group {guid}.")
        del members[uid]
    else:
        if uid in app.state.banned.get(guid, []):
            raise Refused("ERR_BANNED_GROUPMEMBER", f"{uid} is banned from the group {guid}.")
        if uid in members:
            raise Refused("ERR_ALREADY_JOINED", f"{uid} is already a member of the group {guid}.")
        if app.state.groups[guid].get("type") == "private":
            raise Refused("ERR_GROUP_JOIN_NOT_ALLOWED", f"The group {guid} is private: a member must add {uid}.")
        members[uid] = {"scope": "participant", "joinedAt": int(time.time())}
    trigger = "group_member_left" if leave else "group_member_joined"
    fired = _fire(app, [(trigger, {"sender": uid, "receiver": uid, "group": guid})])
    return _answer(app, {"id": guid, "guid": guid, "uid": uid, "membersCount": len(members)}, fired)


async def leave(app: Core, body: dict[str, Any]) -> dict[str, Any]:
    """POST /_emulator/leave {guid, uid}."""
    return await join(app, body, leave=True)


async def presence(app: Core, body: dict[str, Any]) -> dict[str, Any]:
    """POST /_emulator/presence {uid, status}: `uid`'s client connects (online) or disconnects (offline)."""
    status = _field(body, "status", STATUSES)
    user = app.user(_field(body, "uid"))
    now = time.time()
    changed = user.get("status") != status
    # Stored, so GET /users/{uid} agrees with the webhook; lastActiveAt as CometChat keeps it (seconds).
    user["status"], user["lastActiveAt"] = status, int(now)
    app.touch("users", user["uid"])
    action = "connected" if status == "online" else "disconnected"
    if app.config.legacy:
        sets: tuple[tuple[str, Any], ...] = (("data.user.status", status), ("data.event.type", action))
        trigger = "after_connection_status_changed"
    else:
        sets = (
            ("data.user.status", status), ("data.status", status), ("data.currentConnection.action", action),
            ("data.currentConnection.platform", PLATFORM), ("data.userPresenceChanged", changed),
        )  # fmt: skip
        trigger = "user_connection_status_changed"
    fired = _fire(app, [(trigger, {"sender": user["uid"], "adds": sets})])
    return _answer(app, {"id": user["uid"], "uid": user["uid"], "status": status, "changed": changed}, fired)


def _occupant(app: Core, uid: str, joined: int, kind: str, left: int | None = None) -> dict[str, Any]:
    found = {"uid": uid, "joined_at": joined, "audio_call": "true" if kind == "audio" else "false",
             "name": app.state.users[uid].get("name", uid)}  # fmt: skip
    return {**found, "left_at": left} if left is not None else found


async def call(app: Core, body: dict[str, Any]) -> dict[str, Any]:
    """POST /_emulator/calls {from, to, type, outcome}: a whole call, as the two clients would make it happen.

    A ringing call is initiated by `from`, then `to` answers it (started, both join, both leave, ended), rejects it,
    is busy, or `from` cancels it, or nobody answers. `meeting` is a call session (meeting_*) both join and leave."""
    outcome = body.get("outcome") or "answered"
    if outcome not in CALL_OUTCOMES:
        raise Refused("ERR_BAD_REQUEST", f"outcome must be one of: {', '.join(CALL_OUTCOMES)}.")
    kind = body.get("type") or "audio"
    if kind not in CALL_TYPES:
        raise Refused("ERR_BAD_REQUEST", "type must be audio or video.")
    caller, callee = app.user(_field(body, "from"))["uid"], app.user(_field(body, "to"))["uid"]
    if caller == callee:
        raise Refused("ERR_BAD_REQUEST", "A call needs two different users.")
    room("calls", len(app.state.calls), rules.MAX_MESSAGES)
    now = int(time.time())
    session = f"v1.{app.config.region}.{app.config.app_id}.{int(time.time() * 1000)}{secrets.token_hex(16)}"
    parties = {"sender": caller, "receiver": callee}
    steps: list[tuple[str, dict[str, Any]]] = []
    if outcome != "meeting":
        call_id = app.new_id()
        on = "data.call.data.entities.on.entity"
        ringing = (
            (f"{on}.sessionid", session), (f"{on}.type", kind), (f"{on}.initiatedAt", now), ("data.call.type", kind),
        )  # fmt: skip
        steps.append(("call_initiated", {**parties, "message_id": call_id, "adds": ringing}))
        if outcome != "answered":
            steps.append((f"call_{outcome}", {**parties, "message_id": call_id, "adds": ringing}))
    family = "meeting" if outcome == "meeting" else "call"
    if outcome in ("answered", "meeting"):
        both = (caller, callee)
        steps.append((f"{family}_started", {"adds": (("data.sessionId", session), ("data.created_at", now))}))
        for uid in both:
            occupant = ("data.occupant", _occupant(app, uid, now, kind))
            steps.append((f"{family}_participant_joined", {"sender": uid, "adds": (("data.sessionId", session), occupant)}))
        for uid in reversed(both):
            occupant = ("data.occupant", _occupant(app, uid, now, kind, now))
            steps.append((f"{family}_participant_left", {"sender": uid, "adds": (("data.sessionId", session), occupant)}))
        ended = (
            ("data.sessionId", session), ("data.created_at", now), ("data.destroyed_at", now),
            ("data.all_occupants", [_occupant(app, uid, now, kind, now) for uid in both]),
        )  # fmt: skip
        steps.append((f"{family}_ended", {"adds": ended}))
    record = {"sessionId": session, "from": caller, "to": callee, "type": kind, "outcome": outcome, "at": now}
    app.state.calls[session] = record
    app.touch("calls", session)
    return _answer(app, {"id": session, **record}, _fire(app, steps))


#: The control endpoints, by their path under /_emulator/ (server.py serves each with the control routes' key rule).
CONTROL: dict[str, tuple[str, ControlHandler]] = {
    "receipts": ("sdk_receipt", receipt),
    "join": ("sdk_join", join),
    "leave": ("sdk_leave", leave),
    "presence": ("sdk_presence", presence),
    "calls": ("sdk_call", call),
}

"""REST handlers for messages: send (through before_message on legacy webhooks), get, edit, delete, reactions, pins."""

from __future__ import annotations

import copy
import time
from typing import Any

from comethook_cli.cometchat import rest
from comethook_cli.cometchat.payloads import encode
from comethook_cli.engine.config import WebhookTarget
from comethook_cli.engine.emulator import moderation, rules
from comethook_cli.engine.emulator.core import Core, Handler, check_tags, room, size
from comethook_cli.engine.emulator.state import Refused


def _checked(body: dict[str, Any]) -> tuple[str, str, str, str, dict[str, Any], Any]:
    """A send's body, checked as CometChat checks it: (receiver, receiverType, category, type, data, text)."""
    receiver, receiver_type = body.get("receiver"), body.get("receiverType")
    if not isinstance(receiver, str) or not receiver:
        raise Refused("ERR_EMPTY_RECEIVER", "The receiver is empty.")
    if receiver_type not in ("user", "group"):
        raise Refused("ERR_INVALID_RECEIVER_TYPE", "receiverType must be user or group.")
    category = body.get("category", "message")
    kind = body.get("type", "text")
    data: dict[str, Any] = body["data"] if isinstance(body.get("data"), dict) else {}
    if category not in ("message", "custom"):
        raise Refused("ERR_INVALID_MESSAGE_CATEGORY", "category must be message or custom.")
    if category == "message" and kind not in ("text", "image", "file", "audio", "video"):
        raise Refused("ERR_INVALID_MESSAGE_TYPE", f"Unknown message type {kind!r}.")
    text = data.get("text")
    if kind == "text" and category == "message" and (not isinstance(text, str) or not text.strip()):
        raise Refused("ERR_EMPTY_MESSAGE_TEXT", "The message text is empty.")
    if "metadata" in data and not isinstance(data["metadata"], dict):
        raise Refused("ERR_INVALID_METADATA", "data.metadata must be an object.")
    if category == "custom" and not isinstance(data.get("customData"), dict):
        raise Refused("ERR_INVALID_CUSTOM_DATA", "data.customData must be an object.")
    if len(encode(data)) > rest.MAX_DATA_BYTES:
        raise Refused("ERR_BAD_REQUEST", f"data is larger than {rest.MAX_DATA_BYTES} bytes.")
    if size(body) > rules.MAX_MESSAGE_BYTES:
        raise Refused("ERR_BAD_REQUEST", f"A message is at most {rules.MAX_MESSAGE_BYTES} bytes.")
    check_tags(body)
    return receiver.lower(), receiver_type, category, kind, data, text


def _reach(app: Core, sender: str, receiver: str, receiver_type: str) -> str | None:
    """Whether `sender` may write to `receiver` (a member of the group, not blocked either way): the group, if one."""
    if receiver_type == "group":
        group: str = app.group(receiver)["guid"]
        if sender != rules.SYSTEM_USER and sender not in app.state.members.get(group, {}):
            raise Refused("ERR_GROUP_NOT_JOINED", f"{sender} is not a member of the group {group}.")
        return group
    app.user(receiver)
    if receiver in app.state.blocks.get(sender, []):
        raise Refused("ERR_BLOCKED_RECEIVER", f"{sender} has blocked {receiver}.")
    if sender in app.state.blocks.get(receiver, []):
        raise Refused("ERR_BLOCKED_SENDER", f"{receiver} has blocked {sender}.")
    return None


def _compose(app: Core, body: dict[str, Any], category: str, kind: str, data: dict[str, Any], options: dict[str, Any]) -> Any:
    """The message a send stores, built from the catalog's message_sent with the body's parts (id still "0")."""
    text = data.get("text")
    message = app.webhooks.payload("message_sent", WebhookTarget(""), text=text, message_id="0", **options)["data"]["message"]
    message["data"].pop("url", None)
    if category == "custom":
        message["category"], message["type"] = "custom", kind
        message["data"] = {
            "customData": data["customData"],
            **({"text": text} if text else {}),
            "entities": message["data"]["entities"],
        }
    elif kind != "text" and isinstance(data.get("attachments"), list):
        message["data"]["attachments"] = data["attachments"]
    if data.get("metadata"):
        message["data"]["metadata"] = copy.deepcopy(data["metadata"])
    for key in ("muid", "tags"):
        if key in body:
            message[key] = body[key]
    return message


async def send_message(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """POST /messages."""
    sender = actor or rules.SYSTEM_USER
    receiver, receiver_type, category, kind, data, text = _checked(body)
    room("messages", len(app.state.messages), rules.MAX_MESSAGES)
    group = _reach(app, sender, receiver, receiver_type)
    mentions = list(dict.fromkeys(u.lower() for u in rest.MENTION.findall(text or "")))[: rest.MAX_MENTIONS]
    options: dict[str, Any] = {"sender": sender, "receiver": receiver if group is None else sender, "group": group}
    if category == "message" and kind != "text":
        options["type"] = kind
    message = _compose(app, body, category, kind, data, options)
    if app.config.legacy:
        dropped, metadata = await app.webhooks.before_message(message, options)
        if dropped:
            raise Refused("ERR_BLOCKED_BY_WEBHOOK", "The message is blocked by the webhook.")
        if metadata:
            message["data"]["metadata"] = metadata
    message["id"] = app.new_id()
    app.state.messages[message["id"]] = message
    app.touch("messages", message["id"])
    judged = moderation.judge(app, message)  # None: moderation off; a blocked message is answered, not delivered
    if judged is None or not judged.blocked:
        app.fire("after_message" if app.config.legacy else "message_sent", message=message, **options)
    known = [uid for uid in mentions if uid in app.state.users]
    if known and not app.config.legacy and (judged is None or not judged.blocked):
        users, _ = app.webhooks.entities()
        mentioned = {uid: {"uid": uid, "name": users.get(uid, {}).get("name", uid)} for uid in known}
        sets = (("data.message.data.text", text), ("data.message.data.mentions", mentioned))
        app.fire("user_mentioned", message=message, adds=sets, **options)
    return {"data": moderation.report(app, message, judged, options)}


async def get_message(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """GET /messages/{id}."""
    return {"data": app.message(params["id"])}


def _owned(app: Core, params: dict[str, str], actor: str | None) -> tuple[dict[str, Any], str]:
    message = app.message(params["id"])
    by = actor or rules.SYSTEM_USER
    if actor is not None and message["sender"] != actor:
        raise Refused("ERR_MESSAGE_NOT_A_SENDER", "Only the sender of a message can edit or delete it.")
    return message, by


def _options_of(message: dict[str, Any], by: str) -> dict[str, Any]:
    group = message["receiver"] if message["receiverType"] == "group" else None
    return {"sender": by, "receiver": message["receiver"] if group is None else by, "group": group}


def _action_message(app: Core, action: str, message: dict[str, Any], by: str) -> dict[str, Any]:
    """What edit and delete answer: a new action message whose entities.on is the message (the sheet §6.2)."""
    users, _ = app.webhooks.entities()
    built = app.webhooks.payload("message_sent", WebhookTarget(""), message=message, **_options_of(message, by))
    entities = built["data"]["message"]["data"]["entities"]
    now = int(time.time())
    by_entity = {"entity": {"uid": by, **users.get(by, {})}, "entityType": "user"}
    return {
        "id": app.new_id(), "conversationId": message["conversationId"], "sender": by,
        "receiverType": message["receiverType"], "receiver": message["receiver"], "category": "action", "type": "message",
        "data": {
            "action": action,
            "entities": {"by": by_entity, "for": entities["receiver"], "on": {"entity": copy.deepcopy(message), "entityType": "message"}},
        },
        "sentAt": now, "updatedAt": now,
    }  # fmt: skip


async def edit_message(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """PUT /messages/{id}."""
    message, by = _owned(app, params, actor)
    if message["category"] == "action":
        raise Refused("ERR_MESSAGE_ACTION_NOT_ALLOWED", "Action messages cannot be edited.")
    data: dict[str, Any] = body["data"] if isinstance(body.get("data"), dict) else {}
    text = data.get("text")
    if message["type"] == "text" and (not isinstance(text, str) or not text.strip()):
        raise Refused("ERR_EMPTY_MESSAGE_TEXT", "The message text is empty.")
    if len(encode(data)) > rest.MAX_DATA_BYTES:
        raise Refused("ERR_BAD_REQUEST", f"data is larger than {rest.MAX_DATA_BYTES} bytes.")
    if "metadata" in data and not isinstance(data["metadata"], dict):
        raise Refused("ERR_INVALID_METADATA", "data.metadata must be an object.")
    check_tags(body)
    app.touch("messages", message["id"])
    now = int(time.time())
    if isinstance(text, str):
        message["data"]["text"] = text
    if isinstance(data.get("metadata"), dict):
        message["data"]["metadata"] = data["metadata"]
    if "tags" in body:
        message["tags"] = body["tags"]
    message.update(updatedAt=now, editedAt=now, editedBy=by)
    app.fire("message_edited", message=message, message_id=message["id"], **_options_of(message, by))
    return {"data": _action_message(app, "edited", message, by)}


async def delete_message(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """DELETE /messages/{id}."""
    message, by = _owned(app, params, actor)
    now = int(time.time())
    message.update(updatedAt=now, deletedAt=now, deletedBy=by)
    app.touch("messages", message["id"])
    app.fire("message_deleted", message=message, message_id=message["id"], **_options_of(message, by))
    return {"data": _action_message(app, "deleted", message, by)}


async def add_reaction(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None, add: bool = True) -> Any:
    """POST /messages/{id}/reactions/{reaction} (and, with add=False, its DELETE)."""
    message = app.message(params["id"])
    reaction, by = params["reaction"], actor or rules.SYSTEM_USER
    if not reaction or len(reaction) > rest.MAX_REACTION_CHARS:
        raise Refused("ERR_BAD_REQUEST", f"A reaction is 1 to {rest.MAX_REACTION_CHARS} characters.")
    reactions = app.state.reactions.setdefault(message["id"], {})
    app.touch("reactions", message["id"])
    if add and reaction not in reactions and len(reactions) >= rules.MAX_REACTIONS:
        raise Refused("ERR_BAD_REQUEST", f"A message has at most {rules.MAX_REACTIONS} distinct reactions.")
    who = reactions.setdefault(reaction, [])
    if add and by not in who:
        who.append(by)
    elif not add and by in who:
        who.remove(by)
    if not who:
        del reactions[reaction]
    trigger = "message_reaction_added" if add else "message_reaction_removed"
    sets = (("data.reaction.reaction", reaction),)
    app.fire(trigger, message_id=message["id"], adds=sets, **_options_of(message, by))
    answer = copy.deepcopy(message)
    answer["data"]["reactions"] = [{"reaction": r, "count": len(u), **({"reactedByMe": True} if by in u else {})}
                                   for r, u in reactions.items()]  # fmt: skip
    return {"data": answer}


async def remove_reaction(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """DELETE /messages/{id}/reactions/{reaction}."""
    return await add_reaction(app, params, body, actor, add=False)


#: CometChat's limit: 100 pinned messages per conversation (docs: rest-api/messages/pin-message.mdx).
MAX_PINS = 100


async def pin_message(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None, pin: bool = True) -> Any:
    """POST /messages/{id}/pin (and, with pin=False, its DELETE): message_pinned / message_unpinned (seen live)."""
    message = app.message(params["id"])
    by, now = actor or rules.SYSTEM_USER, int(time.time())
    pinned = app.state.pins.get(message["id"])
    if pin and pinned is None:
        conversation = [
            i for i in app.state.pins if app.state.messages.get(i, {}).get("conversationId") == message["conversationId"]
        ]
        if len(conversation) >= MAX_PINS:
            raise Refused("ERR_PINNED_MESSAGES_LIMIT_EXCEEDED", f"A conversation has at most {MAX_PINS} pinned messages.")
    app.touch("pins", message["id"])
    if pin:
        app.state.pins[message["id"]] = {"pinnedBy": by, "pinnedAt": now}
        sets: tuple[tuple[str, Any], ...] = (("data.message.pinnedBy", by), ("data.message.pinnedAt", now))
    else:
        app.state.pins.pop(message["id"], None)
        was = pinned["pinnedAt"] if pinned else now
        sets = (("data.message.unpinnedBy", by), ("data.message.pinnedAt", was), ("data.message.unpinnedAt", now))
    trigger = "message_pinned" if pin else "message_unpinned"
    app.fire(trigger, message=message, message_id=message["id"], adds=sets, **_options_of(message, by))
    # CometChat's answer is not documented (the sheet §5 #13: "not read"): the emulator's choice, deleteSchema's shape.
    return {"data": {"success": True, "message": f"Message {message['id']} {'pinned' if pin else 'unpinned'} successfully."}}


async def unpin_message(app: Core, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
    """DELETE /messages/{id}/pin."""
    return await pin_message(app, params, body, actor, pin=False)


HANDLERS: dict[str, Handler] = {
    "send_message": send_message,
    "get_message": get_message,
    "edit_message": edit_message,
    "delete_message": delete_message,
    "add_reaction": add_reaction,
    "remove_reaction": remove_reaction,
    "pin_message": pin_message,
    "unpin_message": unpin_message,
}

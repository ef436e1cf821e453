"""Read a CometChat delivery for people: trigger, generation, and one line saying who did what to whom.

Parsers tolerate missing keys everywhere: CometChat's own examples trim objects differently.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from comethook_cli.models import EventInfo, Generation

LEGACY_ONLY = {"before_message", "after_message", "after_connection_status_changed"}
BOTH_GENERATIONS = {"message_delivery_receipt", "message_read_receipt"}
PREVIEW_CHARS = 60
#: Triggers about one existing message: edited, deleted, pinned or unpinned by someone.
MESSAGE_ACTIONS = ("message_edited", "message_deleted", "message_pinned", "message_unpinned")
BAN_QUIRK = "CometChat's known actor-in-members quirk"
_MEMBER_VERBS = {
    "added": "added to",
    "kicked": "kicked from",
    "banned": "banned from",
    "unbanned": "unbanned in",
    "removed": "removed from",
    "joined": "joined",
    "left": "left",
}


@cache
def _steps(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def get(node: Any, path: str) -> Any:
    """The value at a dotted path, or None where any step is missing."""
    for part in _steps(path):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _generation(trigger: str, payload: Any) -> Generation:
    if trigger in LEGACY_ONLY:
        return "legacy"
    if trigger in BOTH_GENERATIONS:
        return "legacy" if get(payload, "data.receiptType") is not None else "current"
    return "current" if trigger in _families() else "unknown"


@cache
def _families() -> dict[str, str]:
    from comethook_cli.cometchat.payloads import catalog

    return {t.trigger: t.family for t in catalog()}


def family_of(trigger: str) -> str:
    """The catalog family of a trigger ("unknown" when CometChat does not document it)."""
    return _families().get(trigger, "unknown")


def message_of(payload: Any) -> dict[str, Any] | None:
    """The message object of a message-carrying delivery (legacy: `data`; current: `data.message` / `data.call`)."""
    return _message(get(payload, "trigger"), payload)


def _message(trigger: Any, payload: Any) -> dict[str, Any] | None:
    if trigger in ("before_message", "after_message"):
        data = get(payload, "data")
    else:
        data = get(payload, "data.message") or get(payload, "data.call")
    return data if isinstance(data, dict) else None


def describe(payload: Any) -> EventInfo:
    """An EventInfo for any JSON body (CometChat's or not)."""
    # Every delivery is described before it is answered: the trigger and its family are looked up once.
    trigger = payload.get("trigger") if isinstance(payload, dict) else None
    if not isinstance(trigger, str) or not trigger:
        keys = ", ".join(list(payload)[:5]) if isinstance(payload, dict) else type(payload).__name__
        return EventInfo("unknown", "unknown", "unknown", f"not a CometChat delivery ({keys})")
    webhook = payload.get("webhook")
    family = family_of(trigger)
    summary = _summarise(trigger, payload, _message(trigger, payload), family)
    return EventInfo(
        trigger=trigger,
        generation=_generation(trigger, payload),
        family=family,
        summary=summary,
        webhook=webhook if isinstance(webhook, str) else None,
    )


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """A one-line, length-capped preview of user text."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _who(user: Any, names: dict[str, str] | None = None) -> str | None:
    """A user or group for people: its name when the payload gives one anywhere, else its uid."""
    if isinstance(user, dict):
        name = user.get("name") or (names or {}).get(str(user.get("uid") or user.get("guid") or ""))
        name = name or user.get("uid") or user.get("guid")
        return str(name) if name else None
    if isinstance(user, str):
        return (names or {}).get(user, user)
    return None


#: How deep `names_in` looks for user and group objects (CometChat nests them four or five levels down).
NAME_DEPTH = 8


def names_in(node: Any, depth: int = NAME_DEPTH, found: dict[str, str] | None = None) -> dict[str, str]:
    """uid (or guid) → name, for every user or group object in a payload that carries both."""
    found = {} if found is None else found
    if depth == 0:
        return found
    if isinstance(node, dict):
        ident, name = node.get("uid") or node.get("guid"), node.get("name")
        if isinstance(ident, str) and isinstance(name, str) and name and ident not in found:
            found[ident] = name
        for value in node.values():
            if isinstance(value, (dict, list)):
                names_in(value, depth - 1, found)
    elif isinstance(node, list):
        for item in node[:100]:  # a bounded look: a summary never walks a huge list
            names_in(item, depth - 1, found)
    return found


class _LazyNames(dict[str, str]):
    """`names_in(payload)`, walked only when a summary first needs a name the object at hand does not give
    (most deliveries name their actors inline, and the walk is the larger part of describing one)."""

    def __init__(self, payload: Any) -> None:
        super().__init__()
        self._payload: Any = payload
        self._walked = False

    def __bool__(self) -> bool:
        return True

    def _walk(self) -> None:
        if not self._walked:
            self._walked = True
            names_in(self._payload, found=self)

    def get(self, key: str, default: Any = None) -> Any:
        """The name for a uid, walking the payload on first use."""
        self._walk()
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self._walk()
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._walk()
        return super().__contains__(key)


def _member_uids(payload: Any) -> set[str]:
    """The uids in `data.members` (a map uid → user, or uid → uid as the ban quirk has been seen to send)."""
    members = get(payload, "data.members")
    if not isinstance(members, dict):
        return set()
    uids = {str(k) for k in members}
    uids |= {str(m.get("uid")) if isinstance(m, dict) else str(m) for m in members.values() if m}
    return uids


def _members(payload: Any, names: dict[str, str]) -> str:
    members = get(payload, "data.members")
    if isinstance(members, dict) and members:
        return ", ".join(_who(m, names) or names.get(str(k), str(k)) for k, m in members.items())
    return "members"


def _summarise(trigger: str, payload: Any, message: dict[str, Any] | None, family: str) -> str:
    """The one-line summary (who did what to whom) for every documented trigger.

    Over 60 lines: one short branch per trigger family, read top to bottom as one table of summaries; split into a
    function per family, each would repeat the payload lookups and the lazy name table they share."""

    def d(path: str) -> Any:
        return get(payload, f"data.{path}")

    known = _LazyNames(payload)

    def name_of(user: Any) -> str | None:
        return _who(user, known)

    if message is not None and trigger not in MESSAGE_ACTIONS and family != "call":
        data = message.get("data")  # the message's own data, read once: every delivery of a message comes this way
        actor = name_of(get(data, "entities.sender.entity")) or name_of(message.get("sender"))
        target = name_of(get(data, "entities.receiver.entity")) or name_of(message.get("receiver"))
        kind = f"{message.get('category', '?')}/{message.get('type', '?')}"
        text = get(data, "text")
        parts = [f"{actor or '?'} → {target or '?'}"]
        if kind != "message/text" or not isinstance(text, str):  # a text message is said by its text: it comes first
            parts.append(kind)
        if isinstance(text, str):
            parts.append(f'"{preview(text)}"')
        attachments = get(data, "attachments")
        if isinstance(attachments, list) and attachments:
            parts.append(f"{len(attachments)} attachment(s)")
        moderation = get(data, "moderation.status")
        if moderation:
            rule = get(data, "moderation.rule.id")
            parts.append(f"moderation {moderation}" + (f" (rule {rule})" if rule else ""))
        parts.append(f"message {message['id']}" if message.get("id") is not None else "id not yet assigned")
        return " · ".join(parts)
    if trigger in MESSAGE_ACTIONS and message is not None:
        verb = trigger.removeprefix("message_")
        # Live deliveries carry the affected message itself; CometChat's docs show an action message
        # with the affected one in entities.on. Read both.
        on = get(message, "data.entities.on.entity")
        affected = on if isinstance(on, dict) else message
        sender = get(message, "data.entities.sender.entity")
        by_uid = affected.get(f"{verb}By") or message.get(f"{verb}By")
        by_sender = by_uid is not None and by_uid == get(sender, "uid")
        actor = (
            name_of(get(message, "data.entities.by.entity"))
            or (name_of(sender) if by_sender else name_of(by_uid))
            or name_of(message.get("sender"))
        )
        original = affected.get("id") or message.get("id")
        action = get(message, "data.action") or verb
        text = get(affected, "data.text")
        tail = f': "{preview(text)}"' if isinstance(text, str) else ""
        return f"{actor} {action} message {original}{tail}"
    if family == "receipt":
        if get(payload, "data.receiptType") is not None:  # legacy
            by, whose, action = d("receiptSender"), d("messageSender"), d("receiptType")
            mid = d("messageId")
        else:
            by, whose, action = d("sender"), d("messageSender"), d("body.action")
            mid = d("body.messageId")
        return f"{name_of(by)} {action} message {mid} (sent by {name_of(whose)})"
    if family == "reaction":
        who = name_of(d("reaction.reactedBy")) or name_of(d("reaction.uid"))
        verb = "reacted" if trigger.endswith("added") else "removed reaction"
        return f"{who} {verb} {d('reaction.reaction')} on message {d('reaction.messageId')}"
    if trigger in ("user_blocked", "user_unblocked"):
        users = d("users")
        names = ", ".join(name_of(u) or str(k) for k, u in users.items()) if isinstance(users, dict) else "?"
        who = name_of(d("by"))
        return f"{who} {trigger.split('_')[1]} {names}"
    if trigger == "user_connection_status_changed":
        who = name_of(d("user"))
        action = d("currentConnection.action") or d("status")
        return f"{who} {action} ({d('currentConnection.platform') or '?'}), now {d('status')}"
    if trigger == "after_connection_status_changed":
        who = name_of(d("user.uid"))
        return f"{who} {d('event.type')} ({d('event.event_for.platform') or '?'}), now {d('user.status')}"
    if family == "group":
        group = name_of(d("group"))
        by = name_of(d("by"))
        if trigger == "group_created":
            return f"group {group} created by {name_of(d('group.owner'))}"
        if trigger == "group_owner_transferred":
            return f"{group}: owner {d('group.oldOwner')} → {d('group.owner')}"
        if trigger in ("group_updated", "group_deleted"):
            return f"group {group} {trigger.split('_')[1]} by {d('group.updatedBy')}"
        verb = _MEMBER_VERBS.get(trigger.removeprefix("group_member_"), trigger.removeprefix("group_member_"))
        members = _members(payload, known)
        if trigger == "group_member_scope_changed":
            m: Any = next(iter(d("members").values()), {}) if isinstance(d("members"), dict) else {}
            scope = f" {get(m, 'oldScope')} → {get(m, 'scope')}"
            return f"{by} changed scope of {members}{scope} in {group}"
        line = f"{members} {verb} {group}" + (f" (by {by})" if by else "")
        actor_uid = get(payload, "data.by.uid")
        if trigger in ("group_member_banned", "group_member_unbanned") and actor_uid and str(actor_uid) in _member_uids(payload):
            line += f" · {BAN_QUIRK}"
        return line
    if family in ("call", "meeting"):
        call = get(payload, "data.call")
        if isinstance(call, dict):
            # `by` is whoever acted (the callee for rejected and busy), `for` the other party.
            who = name_of(get(call, "data.entities.by.entity")) or name_of(call.get("sender"))
            to = name_of(get(call, "data.entities.for.entity")) or name_of(call.get("receiver"))
            return f"{who} → {to} {call.get('type', '?')} call {get(call, 'data.action')} · call {call.get('id')}"
        session = str(d("sessionId") or "?")
        short = session if len(session) <= 24 else session[:10] + "…" + session[-6:]
        if trigger.endswith("participant_joined") or trigger.endswith("participant_left"):
            who = name_of(d("occupant"))
            return f"{who} {trigger.rsplit('_', 1)[1]} session {short}"
        if trigger.endswith("_ended"):
            occupants = d("all_occupants")
            count = len(occupants) if isinstance(occupants, list) else 0
            start, end = d("created_at"), d("destroyed_at")
            took = f" after {end - start} s" if isinstance(start, int) and isinstance(end, int) else ""
            return f"session {short} ended{took}, {count} participant(s)"
        if trigger == "recording_generated":
            return f"recording of session {short} ready ({d('duration')} s)"
        if trigger == "transcription_generated":
            return f"transcript of session {short} ready"
        return f"session {short} started"
    if trigger == "moderation_engine_failed":
        failure = d("failures.0")
        return (
            f"moderation engine failed on message {d('resource.id')}: {get(failure, 'category')} "
            f"(HTTP {get(failure, 'httpStatus')}), outcome {d('outcome')}"
        )
    if family == "campaign":
        if trigger.startswith("after_campaign"):
            return f"campaign {d('name')!s} {d('status')}: {d('sentCount')}/{d('totalTargets')} sent, {d('failedCount')} failed"
        if trigger == "after_notification_created":
            return f"notification {d('label')} {d('status')} to {d('totalTargets')} target(s)"
        item = "push notification" if "push" in trigger else "feed item"
        topic = f" ({d('topic')})" if isinstance(d("topic"), str) else ""
        return f"{item} {d('label')} {trigger.rsplit('_', 1)[1]} for {d('receiver')}{topic}"
    if family == "notification":
        return _notification(trigger, payload, known)
    data = get(payload, "data")
    keys = ", ".join(list(data)[:5]) if isinstance(data, dict) and data else "no data"
    if family != "unknown":
        # A documented trigger whose body is too thin to summarise: say what is missing, never "undocumented".
        wanted = "data.message" if family == "message" else "data.call" if family == "call" else "data"
        return f"{trigger} without {wanted} (data: {keys})"
    return f"{trigger} (undocumented trigger; data: {keys})"


def _notification(trigger: str, payload: Any, names: dict[str, str]) -> str:
    """A custom provider's payload: which channel, for whom, about what (one POST per recipient)."""
    channel = trigger.split("-", 1)[0]
    to = _who(get(payload, "data.to"), names) or "?"
    if channel == "push":
        if get(payload, "data.notificationDetails.receiver") == get(payload, "data.to.uid"):
            to = str(get(payload, "data.notificationDetails.receiverName") or to)
        title, body = get(payload, "data.notificationDetails.title"), get(payload, "data.notificationDetails.body")
        kind = get(payload, "data.notificationDetails.type") or "?"
        text = f'"{preview(str(title))}: {preview(str(body))}"' if title is not None or body is not None else "no text"
        return f"push ({kind}) for {to}: {text}"
    messages = get(payload, "data.messages")
    count = len(messages) if isinstance(messages, list) else 0
    about = get(payload, "data.subject" if channel == "email" else "data.smsContent")
    tail = f': "{preview(about)}"' if isinstance(about, str) else ""
    return f"{channel} for {to}, {count} message(s){tail}"

"""What `trigger` does, as REST calls: each verb (message, edit, group create ...) turns its arguments into
calls of cometchat/rest.py's model, the same for one command and for a step of a scenario.

A scenario is `{"name", "steps": [{"id"?, "do": VERB, ...the verb's arguments}]}` (TOML or JSON). A string
argument may refer to an earlier step: `${steps.first.id}` is the step's main id (a message id, a guid),
`${steps.first.data.conversationId}` any path of its REST answer, and `${run.id}` a suffix fresh for each run.
No I/O here: the engine runs the calls, the command layer reads files.
"""

from __future__ import annotations

import difflib
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from comethook_cli.cometchat import rest
from comethook_cli.errors import InvalidSetting, UsageError

DEFAULT_REACTION = "\N{THUMBS UP SIGN}"

#: An example metadata value, quoted as a shell needs it.
METADATA = "'{\"k\": 1}'"


@dataclass(frozen=True)
class Correlation:
    """What ties a delivery to the call that caused it."""

    message_ids: tuple[str, ...] = ()
    muid: str | None = None
    guid: str | None = None
    #: block/unblock: the blocker, then the blocked users.
    users: tuple[str, ...] = ()
    #: before_message carries no id: matched on sender, receiver and text (and the muid when it is there).
    sender: str | None = None
    receiver: str | None = None
    text: str | None = None
    #: connection status: the user whose client connected or disconnected.
    uid: str | None = None
    #: calls and meetings: the session every event of the call carries.
    session: str | None = None

    def matches(self, payload: Any) -> bool:
        """Whether a delivery's body is about this call."""
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict):
            return False
        message: dict[str, Any] = data["message"] if isinstance(data.get("message"), dict) else data
        if self.message_ids or self.muid or self.text is not None:
            reaction: dict[str, Any] = data["reaction"] if isinstance(data.get("reaction"), dict) else {}
            receipt: dict[str, Any] = data["body"] if isinstance(data.get("body"), dict) else {}
            # a receipt names its message in body.messageId (current) or messageId (legacy)
            ids = {
                str(message.get("id")),
                str(reaction.get("messageId")),
                str(receipt.get("messageId")),
                str(data.get("messageId")),
            }
            if ids & set(self.message_ids):
                return True
            if self.muid and message.get("muid") == self.muid:
                return True
            if self.text is not None and "id" not in message and message.get("sender") == self.sender:
                inner: dict[str, Any] = message["data"] if isinstance(message.get("data"), dict) else {}
                return message.get("receiver") == self.receiver and inner.get("text") == self.text
            return False
        if self.guid is not None:
            group = data.get("group")
            return isinstance(group, dict) and group.get("guid") == self.guid
        if self.users:
            by, users = data.get("by"), data.get("users")
            return (
                isinstance(by, dict)
                and by.get("uid") == self.users[0]
                and isinstance(users, dict)
                and bool(set(users) & set(self.users[1:]))
            )
        if self.uid is not None:
            user = data.get("user")
            return isinstance(user, dict) and user.get("uid") == self.uid
        if self.session is not None:
            call = data.get("call")
            on = call.get("data", {}).get("entities", {}).get("on", {}).get("entity", {}) if isinstance(call, dict) else {}
            return self.session in (data.get("sessionId"), on.get("sessionid") if isinstance(on, dict) else None)
        return False


@dataclass(frozen=True)
class Call:
    """One REST call a verb makes."""

    action: str
    params: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    on_behalf_of: str | None = None
    #: Error codes that mean "it is there already": `setup` reuses, it does not fail.
    reuse: frozenset[str] = frozenset()
    mentions: bool = False
    correlation: Correlation = Correlation()

    @property
    def spec(self) -> rest.Action:
        """The model of this call's REST operation."""
        return rest.action(self.action)


def _text(args: Mapping[str, Any], name: str, default: str | None = None) -> str:
    value = args.get(name, default)
    if value is None:
        raise UsageError(f"{name!r} is missing.", f"Give --{name.replace('_', '-')} (in a scenario: {name} = ...).")
    if not isinstance(value, str):
        raise UsageError(f"{name!r} must be a string, not {json.dumps(value)}.", "Quote it.")
    return value


def _id(args: Mapping[str, Any], name: str, default: str | None = None) -> str:
    value = _text(args, name, default).strip()
    if not rest.ID_PATTERN.fullmatch(value):
        raise UsageError(f"{name} {value!r} is not a CometChat id.", "Ids are up to 100 letters, digits, - and _.")
    return value.lower()


def _message(args: Mapping[str, Any]) -> list[Call]:
    sender = _id(args, "from", rest.SENDER)
    group = args.get("group")
    receiver = _id(args, "group") if group else _id(args, "to", rest.RECEIVER)
    kind = _text(args, "type", "text")
    text = args.get("text")
    mention = args.get("mention") or []
    mention = [mention] if isinstance(mention, str) else mention
    if not isinstance(mention, list) or not all(isinstance(m, str) for m in mention):
        raise InvalidSetting("mention", " must be a uid or a list of uids.", "e.g. {example}", example="comethook-b")
    if text is None and kind == "text":
        text = "Hello from comethook"
    if text is not None and not isinstance(text, str):
        raise UsageError("text must be a string.", "Quote it.")
    if mention:
        text = " ".join([*(f"<@uid:{m.lower()}>" for m in mention), text or ""]).strip()
    data: dict[str, Any] = {}
    if text is not None:
        data["text"] = text
    metadata = args.get("metadata")
    if metadata is not None:
        if isinstance(metadata, str):
            from comethook_cli import jsonbody

            try:
                metadata = jsonbody.parse(metadata.encode("utf-8"))
            except jsonbody.JsonBodyError as error:
                raise InvalidSetting(
                    "metadata", f" is not valid JSON: {error}.", "Give a JSON object, e.g. {example}.", example=METADATA
                ) from None
        if not isinstance(metadata, dict):
            raise InvalidSetting("metadata", " must be a JSON object.", "e.g. {example}.", example=METADATA)
        data["metadata"] = metadata
    category = "message"
    if kind == "custom":
        category, kind = "custom", _text(args, "custom_type", "comethook")
        data["customData"] = args.get("custom_data") if isinstance(args.get("custom_data"), dict) else {"from": "comethook"}
    elif kind in ("image", "video", "audio", "file"):
        ext = {"image": "png", "video": "mp4", "audio": "mp3", "file": "pdf"}[kind]
        url = _text(args, "url", f"https://example.com/comethook.{ext}")
        data["attachments"] = [
            {"url": url, "name": f"comethook.{ext}", "mimeType": f"{kind}/{ext}", "extension": ext, "size": "1024"}
        ]
    elif kind != "text":
        raise UsageError(f"Unknown message type {kind!r}.", "Use text, image, video, audio, file or custom.")
    muid = f"comethook-{secrets.token_hex(8)}"
    body = {"receiver": receiver, "receiverType": "group" if group else "user", "category": category, "type": kind,
            "data": data, "muid": muid}  # fmt: skip
    correlation = Correlation(muid=muid, sender=sender, receiver=receiver, text=text)
    return [Call("send_message", {}, body, sender, mentions=bool(rest.MENTION.search(text or "")), correlation=correlation)]


def _on_message(action: str) -> Callable[[Mapping[str, Any]], list[Call]]:
    def verb(args: Mapping[str, Any]) -> list[Call]:
        message = _text(args, "message")
        if not message.strip().isdigit():
            raise UsageError(f"Message id {message!r} is not a number.", "Give the id `trigger message` printed, or --last.")
        params = {"id": message.strip()}
        body: dict[str, Any] | None = None
        if action == "edit_message":
            body = {"data": {"text": _text(args, "text", "Edited by comethook")}}
        if action in ("add_reaction", "remove_reaction"):
            params["reaction"] = _text(args, "reaction", DEFAULT_REACTION)
        return [Call(action, params, body, _id(args, "from", rest.SENDER), correlation=Correlation(message_ids=(params["id"],)))]

    return verb


def _group(action: str) -> Callable[[Mapping[str, Any]], list[Call]]:
    def verb(args: Mapping[str, Any]) -> list[Call]:
        guid = _id(args, "guid", rest.TEST_GROUP)
        body: dict[str, Any] | None = None
        if action == "create_group":
            body = {"guid": guid, "name": _text(args, "name", f"Comethook {guid}"), "type": _text(args, "group_type", "public")}
        elif action == "update_group":
            body = {"name": _text(args, "name", f"Comethook {guid} (renamed)")}
        params = {} if action == "create_group" else {"guid": guid}
        return [Call(action, params, body, _id(args, "from", rest.SENDER), correlation=Correlation(guid=guid))]

    return verb


def _member(action: str) -> Callable[[Mapping[str, Any]], list[Call]]:
    def verb(args: Mapping[str, Any]) -> list[Call]:
        guid, uid = _id(args, "guid", rest.TEST_GROUP), _id(args, "uid", rest.RECEIVER)
        scope = _text(args, "scope", "moderator" if action == "change_scope" else "participant")
        if scope not in rest.SCOPES:
            raise UsageError(f"Unknown scope {scope!r}.", f"Use one of: {', '.join(rest.SCOPES)}.")
        body: dict[str, Any] | None = None
        params = {"guid": guid, "uid": uid}
        if action == "add_members":
            body, params = {f"{scope}s": [uid]}, {"guid": guid}
        elif action == "change_scope":
            body = {"scope": scope}
        return [Call(action, params, body, _id(args, "from", rest.SENDER), correlation=Correlation(guid=guid))]

    return verb


def _transfer(args: Mapping[str, Any]) -> list[Call]:
    """`group transfer-owner`: PUT /groups/{guid} {"owner": uid} without onBehalfOf (with it, CometChat ignores owner)."""
    guid, uid = _id(args, "guid", rest.TEST_GROUP), _id(args, "uid", rest.RECEIVER)
    return [Call("transfer_owner", {"guid": guid}, {"owner": uid}, None, correlation=Correlation(guid=guid))]


def _block(action: str) -> Callable[[Mapping[str, Any]], list[Call]]:
    def verb(args: Mapping[str, Any]) -> list[Call]:
        blocker, uid = _id(args, "from", rest.SENDER), _id(args, "uid", rest.RECEIVER)
        return [Call(action, {"uid": blocker}, {"blockedUids": [uid]}, None, correlation=Correlation(users=(blocker, uid)))]

    return verb


def _choice(args: Mapping[str, Any], name: str, choices: tuple[str, ...], default: str | None = None) -> str:
    value = _text(args, name, default)
    if value not in choices:
        raise UsageError(f"Unknown {name} {value!r}.", f"Use one of: {', '.join(choices)}.")
    return value


#: The verbs only an SDK client's action causes: `emulate` stands in for the client (rest.SDK_ACTIONS); a real app has
#: no REST call for them. Each with the triggers it stands for, as people read them.
SDK_VERBS: dict[str, str] = {
    "receipt": "message_delivery_receipt, message_read_receipt (and their *_to_all in groups)",
    "join": "group_member_joined",
    "leave": "group_member_left",
    "presence": "user_connection_status_changed (after_connection_status_changed on legacy webhooks)",
    "call": "the call_* and meeting_* triggers",
}


def sdk_only(verb: str, base: str | None) -> UsageError:
    """The usage error for an SDK verb against a real app (`base` None) or a server that is not `emulate`."""
    where = "a real CometChat app" if base is None else f"{base} is not `comethook emulate`, and a real CometChat app"
    return UsageError(
        f"`trigger {verb}` needs an SDK client: {where} fires {SDK_VERBS[verb]} only for a client connected over "
        "CometChat's WebSocket, and no REST call causes it.",
        "Rehearse it against `comethook emulate` (--api-base http://127.0.0.1:8780/v3), or send the canned payload "
        "with `comethook send TRIGGER --to URL`.",
    )


def _receipt(args: Mapping[str, Any]) -> list[Call]:
    message = _text(args, "message")
    if not message.strip().isdigit():
        raise UsageError(f"Message id {message!r} is not a number.", "Give the id `trigger message` printed, or --last.")
    body = {"messageId": message.strip(), "uid": _id(args, "from", rest.RECEIVER),
            "receipt": _choice(args, "receipt", ("delivered", "read"))}  # fmt: skip
    return [Call("sdk_receipt", {}, body, correlation=Correlation(message_ids=(message.strip(),)))]


def _membership(action: str) -> Callable[[Mapping[str, Any]], list[Call]]:
    def verb(args: Mapping[str, Any]) -> list[Call]:
        guid = _id(args, "guid", rest.TEST_GROUP)
        return [Call(action, {}, {"guid": guid, "uid": _id(args, "uid", rest.RECEIVER)}, correlation=Correlation(guid=guid))]

    return verb


def _presence(args: Mapping[str, Any]) -> list[Call]:
    uid = _id(args, "uid", rest.SENDER)
    body = {"uid": uid, "status": _choice(args, "status", ("online", "offline"))}
    return [Call("sdk_presence", {}, body, correlation=Correlation(uid=uid))]


def _call(args: Mapping[str, Any]) -> list[Call]:
    outcome = _choice(args, "outcome", ("answered", "rejected", "busy", "cancelled", "unanswered", "meeting"), "answered")
    body = {"from": _id(args, "from", rest.SENDER), "to": _id(args, "to", rest.RECEIVER), "outcome": outcome,
            "type": _choice(args, "type", ("audio", "video"), "audio")}  # fmt: skip
    return [Call("sdk_call", {}, body)]  # the session is known from the answer (engine/trigger.py correlates on it)


def _setup(args: Mapping[str, Any]) -> list[Call]:
    users = args.get("users") or list(rest.TEST_USERS)
    if isinstance(users, str):
        users = [u for u in users.split(",") if u.strip()]
    if not isinstance(users, list) or len(users) < 1 or not all(isinstance(u, str) for u in users):
        raise InvalidSetting("users", " must be a list of uids.", "e.g. {example}", example="comethook-a,comethook-b")
    uids = [_id({"uid": u}, "uid") for u in users]
    calls = [Call("create_user", {}, {"uid": uid, "name": rest.TEST_USERS.get(uid, uid)}, reuse=frozenset({"ERR_UID_ALREADY_EXISTS"}))
             for uid in uids]  # fmt: skip
    group = args.get("group", rest.TEST_GROUP)
    if group:
        guid = _id({"group": group}, "group")
        body = {"guid": guid, "name": f"Comethook {guid}", "type": "public"}
        calls.append(Call("create_group", {}, body, uids[0], reuse=frozenset({"ERR_GUID_ALREADY_EXISTS"})))
        if len(uids) > 1:
            calls.append(Call("add_members", {"guid": guid}, {"participants": uids[1:]}, uids[0]))
    return calls


#: Every verb `trigger` knows: the CLI's subcommands and a scenario step's `do`.
VERBS: dict[str, Callable[[Mapping[str, Any]], list[Call]]] = {
    "setup": _setup,
    "message": _message,
    "edit": _on_message("edit_message"),
    "delete": _on_message("delete_message"),
    "react": _on_message("add_reaction"),
    "unreact": _on_message("remove_reaction"),
    "pin": _on_message("pin_message"),
    "unpin": _on_message("unpin_message"),
    "group-create": _group("create_group"),
    "group-update": _group("update_group"),
    "group-delete": _group("delete_group"),
    "group-transfer-owner": _transfer,
    "member-add": _member("add_members"),
    "member-scope": _member("change_scope"),
    "member-kick": _member("kick_member"),
    "member-ban": _member("ban_member"),
    "member-unban": _member("unban_member"),
    "block": _block("block_users"),
    "unblock": _block("unblock_users"),
    "receipt": _receipt,
    "join": _membership("sdk_join"),
    "leave": _membership("sdk_leave"),
    "presence": _presence,
    "call": _call,
}


def calls_for(verb: str, args: Mapping[str, Any]) -> list[Call]:
    """The REST calls of one verb with its arguments (UsageError for a bad argument)."""
    if verb not in VERBS:
        raise UsageError(f"Unknown step {verb!r}.", f"Use one of: {', '.join(VERBS)}.")
    return VERBS[verb](args)


# --- scenarios ---------------------------------------------------------------------------------------------

BUILTIN: dict[str, dict[str, Any]] = {
    "conversation": {
        "name": "conversation",
        "description": "message → edit → react → delete, between comethook-a and comethook-b",
        "steps": [
            {"do": "setup", "group": ""},
            {"id": "first", "do": "message", "text": "Hello from a comethook scenario"},
            {"do": "edit", "message": "${steps.first.id}", "text": "Hello again (edited)"},
            {"do": "react", "message": "${steps.first.id}"},
            {"do": "delete", "message": "${steps.first.id}"},
        ],
    },
    "group-lifecycle": {
        "name": "group-lifecycle",
        "description": "create → add → scope → kick → ban → unban → delete, on a fresh group",
        "steps": [
            {"do": "setup", "group": ""},
            {"id": "group", "do": "group-create", "guid": "comethook-${run.id}"},
            {"do": "member-add", "guid": "${steps.group.id}"},
            {"do": "member-scope", "guid": "${steps.group.id}", "scope": "moderator"},
            {"do": "member-kick", "guid": "${steps.group.id}"},
            {"do": "member-ban", "guid": "${steps.group.id}"},
            {"do": "member-unban", "guid": "${steps.group.id}"},
            {"do": "group-delete", "guid": "${steps.group.id}"},
        ],
    },
}


@dataclass(frozen=True)
class Step:
    """One step of a scenario: its id (for later `${steps.ID...}`), its verb and its arguments (unresolved)."""

    id: str
    verb: str
    args: dict[str, Any]


def parse_scenario(document: Any, origin: str) -> list[Step]:
    """A scenario document's steps, checked (verbs known, ids unique, references only to earlier steps)."""
    steps = document.get("steps") if isinstance(document, dict) else None
    if not isinstance(steps, list) or not steps:
        raise UsageError(f"{origin}: no steps.", 'A scenario has a list of steps: [[steps]] do = "message" ... (TOML).')
    found: list[Step] = []
    for number, raw in enumerate(steps, start=1):
        if not isinstance(raw, dict) or not isinstance(raw.get("do"), str):
            raise UsageError(f"{origin}: step {number} has no `do`.", f"Name a verb: {', '.join(VERBS)}.")
        step_id = str(raw.get("id") or f"step{number}")
        if step_id in {s.id for s in found}:
            raise UsageError(f"{origin}: two steps are called {step_id!r}.", "Give each step its own id.")
        if raw["do"] not in VERBS:
            close = difflib.get_close_matches(raw["do"], VERBS, n=1)
            raise UsageError(
                f"{origin}: step {step_id!r} does {raw['do']!r}.",
                (f"Did you mean {close[0]!r}? " if close else "") + f"Use one of: {', '.join(VERBS)}.",
            )
        args = {k: v for k, v in raw.items() if k not in ("id", "do")}
        _refuse_unread(origin, step_id, raw["do"], args)
        for ref in _REF.findall(json.dumps(args)):
            if ref.startswith("steps."):
                target = ref.split(".")[1]
                if target not in {s.id for s in found}:
                    raise UsageError(f"{origin}: step {step_id!r} refers to ${{{ref}}}.", "Refer only to steps before it, by id.")
            elif ref != "run.id":
                raise UsageError(f"{origin}: unknown reference ${{{ref}}}.", "Use ${steps.ID.id}, ${steps.ID.PATH} or ${run.id}.")
        found.append(Step(step_id, raw["do"], args))
    return found


_REF = re.compile(r"\$\{([A-Za-z0-9_.@-]+)\}")


class _Reading(dict[str, Any]):
    """A step's arguments that note which keys the verb asks for."""

    def __init__(self, args: Mapping[str, Any]) -> None:
        super().__init__(args)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)


def _refuse_unread(origin: str, step_id: str, verb: str, args: dict[str, Any]) -> None:
    """A key the step's verb never reads (`txt = "x"`, or `url` on a text message) is a usage error, not silently
    ignored: the verb is tried on the arguments, references standing in as a valid id, and asked keys are noted."""
    reading = _Reading(json.loads(_REF.sub("comethook-ref", json.dumps(args))))
    try:
        VERBS[verb](reading)
    except UsageError:
        return  # a bad value: said when the step runs, with its resolved references
    for key in args:
        if key not in reading.asked:
            close = difflib.get_close_matches(key, sorted(reading.asked), n=1, cutoff=0.5)
            raise UsageError(
                f"{origin}: step {step_id!r} ({verb}) has a key {key!r} that {verb} does not use.",
                (f"Did you mean {close[0]!r}? " if close else "")
                + f"{verb} reads: {', '.join(sorted(reading.asked)) or 'no keys'}.",
            )


@dataclass(frozen=True)
class StepResult:
    """What a finished step exposes to later ones: its main id and its REST answer."""

    id: str | None
    answer: Any


def resolve(args: Any, results: Mapping[str, StepResult], run_id: str) -> Any:
    """The arguments with every `${...}` replaced from earlier steps' results."""
    if isinstance(args, dict):
        return {key: resolve(value, results, run_id) for key, value in args.items()}
    if isinstance(args, list):
        return [resolve(item, results, run_id) for item in args]
    if not isinstance(args, str):
        return args

    def value(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref == "run.id":
            return run_id
        _, step, *path = ref.split(".")
        result = results[step]
        found: Any = result.id if path == ["id"] else result.answer
        if path != ["id"]:
            for key in path:
                found = found.get(key) if isinstance(found, dict) else None
        if found is None:
            raise UsageError(f"${{{ref}}} has no value.", f"Step {step!r} answered without it; check the path.")
        return str(found)

    return _REF.sub(value, args)

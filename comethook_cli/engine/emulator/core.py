"""The emulated app without its HTTP face: config, state, webhooks, and the lookups and checks every handler shares.

A REST family's module (users.py, messages.py, groups.py) holds its handlers as plain functions of a Core and lists
them in its HANDLERS; server.py's Emulator is the Core that aiohttp serves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from comethook_cli.cometchat import rest
from comethook_cli.cometchat.payloads import encode
from comethook_cli.engine.config import EmulatorConfig
from comethook_cli.engine.emulator import rules
from comethook_cli.engine.emulator.state import Refused, State, Store
from comethook_cli.engine.emulator.webhooks import Webhooks
from comethook_cli.models import Delivery


class Core:
    """The emulated CometChat app: its config, its state (a Store) and the webhooks it fires."""

    def __init__(self, config: EmulatorConfig, on_delivery: Callable[[Delivery], None]) -> None:
        self.config = config
        self.store = Store()
        self.webhooks = Webhooks(config, self.store, on_delivery)

    @property
    def state(self) -> State:
        """Everything the app holds now."""
        return self.store.state

    @property
    def state_bytes(self) -> int:
        """The state's size as JSON."""
        return self.store.state_bytes

    def touch(self, kind: str, *keys: str) -> None:
        """Mark records the call in progress changed (or removed): only those are written when it ends."""
        self.store.touch(kind, *keys)

    def fire(self, trigger: str, merge: str | None = None, each: Iterable[str] = (), **options: Any) -> None:
        """Deliver `trigger` to every subscribed webhook, in the background (Webhooks.fire)."""
        self.webhooks.fire(trigger, merge, each, **options)

    def quirk(self, name: str) -> bool:
        """Whether production quirk `name` (quirks.py) is reproduced: all are, unless turned off."""
        return name not in self.config.quirks_off

    def user(self, uid: str) -> dict[str, Any]:
        """The user `uid` (any case), or CometChat's ERR_UID_NOT_FOUND."""
        user = self.state.users.get(uid.lower())
        if user is None:
            raise Refused(
                "ERR_UID_NOT_FOUND", f"The UID {uid} does not exist, please make sure you have created a user with UID {uid}."
            )
        return user

    def group(self, guid: str) -> dict[str, Any]:
        """The group `guid` (any case), or CometChat's ERR_GUID_NOT_FOUND."""
        group = self.state.groups.get(guid.lower())
        if group is None:
            raise Refused(
                "ERR_GUID_NOT_FOUND",
                f"The GUID {guid} does not exist, please make sure you have created a group with GUID {guid}.",
            )
        return group

    def message(self, message_id: str) -> dict[str, Any]:
        """The message `message_id`, unless deleted, or CometChat's ERR_MESSAGE_ID_NOT_FOUND."""
        message = self.state.messages.get(message_id)
        if message is None or message.get("deletedAt"):
            raise Refused("ERR_MESSAGE_ID_NOT_FOUND", f"The message with id {message_id} does not exist.")
        return message

    def new_id(self) -> str:
        """The next message id."""
        found = str(self.state.next_id)
        self.state.next_id += 1
        return found


#: A REST handler: (the app, the path's parameters, the JSON body, the onBehalfOf user) → the answer's JSON.
Handler = Callable[[Core, dict[str, str], dict[str, Any], str | None], Awaitable[Any]]


def uid_field(body: dict[str, Any], name: str) -> str:
    """The uid or guid a create call names, lowercased; refused when missing or not an id."""
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Refused("ERR_BAD_REQUEST", f"The {name} field is required.", {name: [f"The {name} field is required."]})
    if not rest.ID_PATTERN.fullmatch(value):
        code = "ERR_INVALID_UID" if name == "uid" else "ERR_BAD_REQUEST"
        raise Refused(code, f"The {name} may only contain letters, digits, - and _ (at most 100).")
    return value.lower()


def size(value: Any) -> int:
    """Bytes as CometChat would count them: compact UTF-8 JSON."""
    return len(encode(value))


def check_tags(body: dict[str, Any]) -> None:
    """CometChat's limit on tags: at most 25, each at most 100 characters."""
    tags = body.get("tags")
    if tags is not None and (
        not isinstance(tags, list)
        or len(tags) > rules.MAX_TAGS
        or not all(isinstance(t, str) and len(t) <= rules.MAX_TAG_CHARS for t in tags)
    ):
        told = f"tags must be at most {rules.MAX_TAGS} strings of at most {rules.MAX_TAG_CHARS} characters."
        raise Refused("ERR_BAD_REQUEST", told, {"tags": [told]})


def check_entity(body: dict[str, Any]) -> None:
    """CometChat's limits on a user's or a group's body: 10 KB in all, metadata (an object) 5 KB, tags."""
    if size(body) > rules.MAX_ENTITY_BODY:
        raise Refused("ERR_BAD_REQUEST", f"The request body is larger than {rules.MAX_ENTITY_BODY} bytes.")
    if "metadata" in body:
        if not isinstance(body["metadata"], dict):
            raise Refused("ERR_BAD_REQUEST", "metadata must be an object.", {"metadata": ["The metadata must be an object."]})
        if size(body["metadata"]) > rules.MAX_METADATA_BYTES:
            told = f"The metadata may not be larger than {rules.MAX_METADATA_BYTES} bytes."
            raise Refused("ERR_BAD_REQUEST", told, {"metadata": [told]})
    check_tags(body)


def page(items: list[Any], query: dict[str, str]) -> dict[str, Any]:
    """One page of a list answer with CometChat's `meta.pagination` (the sheet §2): `perPage` (default 100, at most
    1000) and `page` (from 1) from the query string."""
    sizes = {}
    for name, default, most in (("perPage", 100, 1000), ("page", 1, None)):
        raw = query.get(name, str(default))
        if not raw.isdigit() or int(raw) < 1 or (most is not None and int(raw) > most):
            told = f"{name} must be a whole number from 1{f' to {most}' if most else ''}."
            raise Refused("ERR_BAD_REQUEST", told, {name: [told]})
        sizes[name] = int(raw)
    per_page, current = sizes["perPage"], sizes["page"]
    shown = items[(current - 1) * per_page : current * per_page]
    pagination = {
        "total": len(items), "count": len(shown), "per_page": per_page, "current_page": current,
        "total_pages": max(1, -(-len(items) // per_page)),
    }  # fmt: skip
    return {"data": shown, "meta": {"pagination": pagination}}


def matches(entity: dict[str, Any], key: str, fields: tuple[str, ...]) -> bool:
    """`searchKey`: a case-insensitive substring of one of the fields (CometChat's searchIn, default uid and name)."""
    return not key or any(key.lower() in str(entity.get(f, "")).lower() for f in fields)


def room(what: str, count: int, limit: int) -> None:
    """Refuse a call that would grow a full state (CometChat's quota error: the emulator's choice)."""
    if count >= limit:
        raise Refused(
            "ERR_PLAN_QUOTA_RESTRICTION",
            f"The emulator holds {count} {what}, its limit; POST /_emulator/reset empties it.",
        )

"""Project fixtures as data: a stored delivery turned into a template (`payloads save`), and a fixture file's JSON
checked and turned into a Template the builder fills like the catalog's own. No I/O: engine/fixtures.py finds,
reads and writes the files.

A fixture keeps the delivery's shape and replaces what identifies people with the catalog's placeholders: the
sender's and receiver's uids, names and avatars, the message's text, ids, timestamps, the app id, region and
webhook id. So `--sender`, `--text`, `--set` and fresh ids work on it as on a built-in template. Every other value
(metadata, custom data, URLs, numbers) is replaced by a neutral one of the same type, unless `keep_values`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from comethook_cli.cometchat.events import describe, get, message_of
from comethook_cli.cometchat.payloads import TOKEN, Template, token_names
from comethook_cli.errors import UsageError

#: The version of the fixture file format `payloads save` writes.
FORMAT = 1
#: A fixture's name: a file name that is safe everywhere, and a word on a command line.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # whole names only: fullmatch (a `$` let "x\n" through)
#: Keys whose string values are words of CometChat's vocabulary (or the app's own message types), not a person's data.
VOCABULARY = frozenset({
    "trigger", "category", "type", "action", "receiverType", "entityType", "status", "role", "scope", "oldScope",
    "platform", "mimeType", "extension", "receiptType", "contentType", "outcome", "reactionType", "generation",
})  # fmt: skip
#: Fresh-id placeholders for the ids after the message's own, in the order they are met.
_ID_TOKENS = ("id2", "uuid", "uuid2", "uuid3", "uuid4")
_SECONDS = range(1_000_000_000, 4_000_000_000)
_MILLISECONDS = range(1_000_000_000_000, 4_000_000_000_000)


def check_name(name: str) -> str:
    """A fixture name, or a UsageError saying what one may be."""
    if not NAME.fullmatch(name):
        raise UsageError(
            f"{name!r} is not a fixture name.",
            "Use letters, digits, '_', '-' and '.', starting with a letter or digit (at most 64), e.g. order_message.",
        )
    return name


def fixture_of(payload: dict[str, Any], name: str, keep_values: bool = False) -> dict[str, Any]:
    """The fixture file's document for a delivery body: its shape with placeholders (see the module docstring)."""
    info = describe(payload)
    body = _Placeholders(payload, keep_values).node(payload, None)
    return {"comethook_fixture": FORMAT, "name": check_name(name), "trigger": info.trigger, "generation": info.generation,
            "keep_values": keep_values, "body": body}  # fmt: skip


def template_of(name: str, document: Any, source: str) -> Template:
    """The Template a fixture file holds (`source`: where it came from, for messages); UsageError when it is not one."""

    def bad(problem: str) -> UsageError:
        return UsageError(
            f"The fixture {source} {problem}.", "Save it again with `comethook payloads save ID NAME`, or fix the file."
        )

    if not isinstance(document, dict) or not isinstance(document.get("body"), dict):
        raise bad('is not a fixture: it needs a "body" object')
    body = document["body"]
    trigger = body.get("trigger")
    if not isinstance(trigger, str) or not trigger or TOKEN.search(trigger):
        raise bad('has no "trigger" name in its body')
    unknown = sorted(set(_placeholders_in(body)) - token_names())
    if unknown:
        raise bad(f"uses placeholders comethook does not know: {', '.join('{{' + u + '}}' for u in unknown[:5])}")
    for marker, allowed in (("$user", ("sender", "receiver")), ("$message", ("saved", "pending"))):
        for value in _values_of(body, marker):
            if value not in allowed:
                raise bad(f"has {marker} {str(value)[:40]!r} (it may be {' or '.join(allowed)})")
    info = describe(body)
    description = f"project fixture {source.replace(chr(92), '/').rsplit('/', 1)[-1]}"
    return Template(trigger, info.generation, info.family, description, body, fixture=check_name(name))


def _placeholders_in(node: Any) -> Iterable[str]:
    if isinstance(node, str):
        yield from TOKEN.findall(node)
    elif isinstance(node, list):
        for item in node:
            yield from _placeholders_in(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _placeholders_in(key)
            yield from _placeholders_in(value)


def _values_of(node: Any, marker: str) -> Iterable[Any]:
    if isinstance(node, dict):
        if marker in node:
            yield node[marker]
        for value in node.values():
            yield from _values_of(value, marker)
    elif isinstance(node, list):
        for item in node:
            yield from _values_of(item, marker)


class _Placeholders:
    """One delivery's values mapped to placeholders: who is who is read once, then every value is replaced in a walk."""

    def __init__(self, payload: dict[str, Any], keep_values: bool) -> None:
        self.keep_values = keep_values
        self.exact: dict[str, str] = {}
        self.ids: dict[Any, Any] = {}
        message = message_of(payload) or {}
        sender = message.get("sender") or get(payload, "data.by.uid") or get(payload, "data.user.uid")
        receiver = message.get("receiver")
        if message.get("receiverType") == "group" and isinstance(receiver, str):
            self._role(receiver, "{{guid}}")
            receiver = None
        self._role(get(payload, "data.group.guid"), "{{guid}}")
        members = get(payload, "data.members")
        if receiver is None and isinstance(members, dict) and len(members) == 1:
            receiver = next(iter(members))  # a group_member_* delivery is about one member: --receiver
        self._role(sender, "{{sender}}")
        self._role(receiver, "{{receiver}}")
        if isinstance(message.get("id"), str):
            self.ids[message["id"]] = "{{id}}"
        self._role(message.get("conversationId"), "{{conversation_id}}")
        for key, token in (("appId", "{{app_id}}"), ("region", "{{region}}"), ("webhook", "{{webhook}}")):
            self._role(payload.get(key), token)
        self.others: dict[str, str] = {}
        self._people(payload, sender, receiver)

    def _role(self, value: Any, token: str) -> None:
        if isinstance(value, str) and value and value not in self.exact:
            self.exact[value] = token

    def _people(self, node: Any, sender: Any, receiver: Any, depth: int = 0) -> None:
        """Names and avatars of the sender and receiver become theirs; other people get sample uids and names."""
        if depth > 64:
            return
        if isinstance(node, dict):
            uid = node.get("uid") or node.get("guid")
            if isinstance(uid, str):
                role = "sender" if uid == sender else "receiver" if uid == receiver else None
                if role is None and uid not in self.exact:
                    number = len(self.others) + 3
                    self.others[uid] = f"cometchat-uid-{number}"
                    self.exact[uid] = self.others[uid]
                if role is not None:
                    self._role(node.get("name"), f"{{{{{role}_name}}}}")
                    self._role(node.get("avatar"), f"{{{{{role}_avatar}}}}")
                elif isinstance(node.get("name"), str) and not self.keep_values:
                    self._role(node["name"], f"User {self.exact[uid].rsplit('-', 1)[-1]}")
            for value in node.values():
                self._people(value, sender, receiver, depth + 1)
        elif isinstance(node, list):
            for item in node:
                self._people(item, sender, receiver, depth + 1)

    def node(self, value: Any, key: str | None) -> Any:
        """The value at `key` with its placeholders."""
        if isinstance(value, dict):
            return {self._key(k): self.node(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.node(item, key) for item in value]
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int):
            return self._number(value, key)
        if isinstance(value, float):
            return value if self.keep_values else 0.0
        if isinstance(value, str):
            return self._text(value, key)
        return value

    def _key(self, key: str) -> str:
        # A uid-keyed map (members, users, mentions) names people in its keys.
        return self.exact.get(key, key) if key not in ("appId", "region", "webhook") else key

    def _number(self, value: int, key: str | None) -> Any:
        if value in _SECONDS:
            return "{{now}}"
        if value in _MILLISECONDS:
            return "{{now_ms}}"
        if key is not None and _is_id(key):
            return self._fresh(value)
        return value if self.keep_values or -1000 <= value <= 1000 else 0

    def _text(self, value: str, key: str | None) -> Any:
        if value in self.exact:
            return self.exact[value]
        if key == "text":
            return "{{text}}"
        if key is not None and _is_id(key):
            return self._fresh(value)
        if value.isdigit() and int(value) in _SECONDS:
            return "{{now_str}}"
        if value.isdigit() and int(value) in _MILLISECONDS:
            return "{{now_ms_str}}"
        if self.keep_values or key in VOCABULARY:
            return value.replace("{{", "{ {")  # a stored value never becomes a placeholder
        if value.startswith(("http://", "https://")):
            return f"https://example.com/{key or 'url'}"
        return f"sample {key}" if key else "sample"

    def _fresh(self, value: Any) -> Any:
        if value not in self.ids:
            taken = len([v for v in self.ids.values() if v != "{{id}}"])
            if isinstance(value, str):
                self.ids[value] = "{{" + _ID_TOKENS[taken] + "}}" if taken < len(_ID_TOKENS) else f"sample-id-{taken}"
            else:
                self.ids[value] = 1000 + taken
        return self.ids[value]


def _is_id(key: str) -> bool:
    return key in ("id", "muid", "tid", "sessionid") or key.endswith(("Id", "_id", "ID"))

"""The canned payload catalog (templates/ as JSON data) and the builder that fills a template.

A template is `{"trigger", "generation", "family", "description", "fidelity"?, "keys", "body"}`:

* `keys`: the documented-or-observed key paths (dotted; `*` is every item of a list or uid-keyed map);
  the test suite holds every built body to them, so a new live finding is a change to one file;
* `fidelity` (optional): how the template relates to CometChat's docs and to live deliveries: `shape`
  (`live`: sends what live deliveries carry, the docs show something else; `docs`: sends the documented
  shape, live deliveries have a known quirk; `observed`: seen live, not in CometChat's trigger list;
  `guess`: listed, never documented), a one-line `note`, its `evidence` and the paths that are `guesses`.

In `body`:

* a string that is exactly `{{name}}` becomes the token's value, whatever its type (int, object ...);
  `{{name}}` inside a longer string is replaced by the value's text;
* an object with a `"$message"` key ("saved" or "pending") becomes the message the options describe,
  deep-merged with the object's other keys; `"$user": "sender"|"receiver"` does the same for a user.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import os
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from comethook_cli.cometchat.payloads.paths import apply as apply_overrides
from comethook_cli.cometchat.payloads.paths import parse_set as parse_set
from comethook_cli.cometchat.payloads.paths import set_path as set_path
from comethook_cli.cometchat.payloads.people import group_entity, user_entity
from comethook_cli.cometchat.rest import REGIONS as REGIONS
from comethook_cli.cometchat.rest import Region
from comethook_cli.errors import InvalidSetting, UsageError
from comethook_cli.models import Generation

DEFAULT_APP_ID = "2379614bd4db65dd"
DEFAULT_WEBHOOK_ID = "comethook-dev"
DEFAULT_REGION = Region.US
MESSAGE_TYPES = ("text", "image", "video", "audio", "file", "custom")
#: The configured name of a legacy trigger whose body says something else.
TRIGGER_ALIASES = {"user_connection_status_change": "after_connection_status_changed"}

TOKEN = re.compile(r"\{\{([a-z0-9_]+)\}\}")
_MEDIA = {
    "image": ("image/jpeg", "jpg", "2048576"),
    "video": ("video/mp4", "mp4", "10485760"),
    "audio": ("audio/mpeg", "mp3", "512000"),
    "file": ("application/pdf", "pdf", "204800"),
}


@dataclass(frozen=True)
class Fidelity:
    """How a template relates to CometChat's docs and to live deliveries (see the module docstring)."""

    shape: str
    note: str
    evidence: tuple[str, ...] = ()
    guesses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Template:
    """One catalog entry."""

    trigger: str
    generation: Generation
    family: str
    description: str
    body: dict[str, Any]
    keys: tuple[str, ...] = ()
    fidelity: Fidelity | None = None
    #: A project fixture's name (None for the catalog's own): what `send NAME` takes.
    fixture: str | None = None

    @property
    def name(self) -> str:
        """What a user types to get this template: the fixture's name, or the trigger."""
        return self.fixture or self.trigger

    @property
    def note(self) -> str | None:
        """The one-line live-vs-docs note, if CometChat's docs and live deliveries disagree here."""
        return self.fidelity.note if self.fidelity else None

    @property
    def key(self) -> str:
        """`generation/trigger`, unique in the catalog."""
        return f"{self.generation}/{self.trigger}"


@dataclass(frozen=True)
class BuildOptions:
    """What the user asked the builder for (`--type`, `--text`, `--sender` ...)."""

    type: str = "text"
    text: str | None = None
    sender: str = "cometchat-uid-1"
    receiver: str = "cometchat-uid-2"
    group: str | None = None
    webhook_id: str = DEFAULT_WEBHOOK_ID
    app_id: str = DEFAULT_APP_ID
    region: Region = DEFAULT_REGION
    #: `--set`s (paths that exist), `--add`s (paths made on purpose), `--unset`s: applied adds, sets, unsets.
    sets: Sequence[tuple[str, Any]] = field(default_factory=tuple)
    adds: Sequence[tuple[str, Any]] = field(default_factory=tuple)
    unsets: Sequence[str] = field(default_factory=tuple)
    #: The id of the message a delivery is about (an edit carries its original's id); fresh when None.
    message_id: str | None = None
    #: Known users and groups (`emulate`'s state): whole entities by uid / guid, in place of the sample ones.
    users: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: A stored message: `$message` is this message (its id dropped while pending), not one built from the options.
    message: Mapping[str, Any] | None = None


@cache
def catalog() -> tuple[Template, ...]:
    """Every canned payload, legacy first, then current by family."""
    root = resources.files("comethook_cli.cometchat.payloads") / "templates"
    found: list[Template] = []
    for generation in ("legacy", "current"):
        for entry in sorted((root / generation).iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".json"):
                found.append(_template(json.loads(entry.read_text(encoding="utf-8"))))
    order = ["message", "receipt", "reaction", "user", "group", "call", "meeting", "moderation", "campaign", "notification"]
    return tuple(sorted(found, key=lambda t: (t.generation != "legacy", order.index(t.family), t.trigger)))


def _template(raw: dict[str, Any]) -> Template:
    fidelity = raw.get("fidelity")
    return Template(
        raw["trigger"], raw["generation"], raw["family"], raw["description"], raw["body"], tuple(raw["keys"]),
        Fidelity(fidelity["shape"], fidelity["note"], tuple(fidelity["evidence"]), tuple(fidelity["guesses"])) if fidelity else None,
    )  # fmt: skip


def trigger_names() -> list[str]:
    """All trigger names the catalog knows (each once)."""
    return sorted({t.trigger for t in catalog()} | set(TRIGGER_ALIASES))


def known_trigger(trigger: str, setting: str) -> tuple[str, bool]:
    """A trigger name given for a setting (`route`, `events`), lower-cased: (name, whether the catalog knows it).

    A name close to a known one is a typo: InvalidSetting with "did you mean". Any other unknown name is let
    through (CometChat adds triggers), and the caller says so."""
    folded = trigger.strip().lower()
    name = TRIGGER_ALIASES.get(folded, folded)
    if name in trigger_names():
        return name, True
    close = difflib.get_close_matches(folded, trigger_names(), n=3, cutoff=0.8)
    if close:
        raise InvalidSetting(setting, ".", f"Did you mean {', '.join(close)}?", before=f"Unknown trigger {trigger!r} in ")
    return name, False


def find_template(trigger: str, legacy: bool = False, fixtures: Mapping[str, Template] | None = None) -> Template:
    """The template for a trigger; current shape unless `legacy` (or the trigger is legacy-only). A project fixture of
    that name (`fixtures`, by name) comes first: it shadows the catalog's trigger of the same name."""
    if fixtures and trigger.strip() in fixtures:
        return fixtures[trigger.strip()]
    folded = trigger.strip().lower()  # trigger names are case-insensitive: BEFORE_MESSAGE is before_message
    name = TRIGGER_ALIASES.get(folded, folded)
    matches = {t.generation: t for t in catalog() if t.trigger == name}
    if not matches:
        close = difflib.get_close_matches(folded, trigger_names(), n=3, cutoff=0.6)
        close += difflib.get_close_matches(trigger.strip(), list(fixtures or ()), n=2, cutoff=0.6)
        hint = f"Did you mean {', '.join(close)}?" if close else "Run `comethook payloads list` to see every trigger."
        raise UsageError(f"Unknown trigger {trigger!r}.", hint)
    if legacy and "legacy" not in matches:
        raise UsageError(f"{trigger!r} has no legacy shape.", "Drop --legacy: it exists only as a current webhook trigger.")
    return matches["legacy"] if legacy or "current" not in matches else matches["current"]


@cache
def token_names() -> frozenset[str]:
    """Every `{{name}}` a template may use."""
    return frozenset(_tokens(catalog()[0], BuildOptions(), IdSource(1), 0.0))


#: Illustrative ids (sessions, campaigns ...) need no secrecy: a private generator, no system call per id.
_random = random.Random(int.from_bytes(os.urandom(16), "big"))


def _hex(bits: int, source: random.Random = _random) -> str:
    return f"{source.getrandbits(bits):0{bits // 4}x}"


class IdSource:
    """Fresh CometChat-like string ids (numeric, increasing), unique within one run."""

    #: Where every random part of a body comes from; seeded, the same options build the same body (`comethook.build_payload`).
    random: random.Random = _random

    def __init__(self, seed: int | None = None) -> None:
        if seed is not None:
            self.random = random.Random(seed)
        self._counter = itertools.count(self.random.randint(1000, 90000) * 100)

    def next(self) -> str:
        """The next message id."""
        return str(next(self._counter))

    def hex(self, bits: int) -> str:
        """`bits` random bits as lowercase hex digits (uuids, session and media names)."""
        return _hex(bits, self.random)

    def digits(self, low: int, high: int) -> str:
        """A random whole number from `low` to `high`, as text."""
        return str(self.random.randint(low, high))


def build(template: Template, options: BuildOptions, ids: IdSource | None = None, now: float | None = None) -> dict[str, Any]:
    """A delivery body: the template filled from the options, fresh ids and timestamps, then the overrides applied."""
    if options.type not in MESSAGE_TYPES:
        raise UsageError(f"Unknown message type {options.type!r}.", f"Use one of: {', '.join(MESSAGE_TYPES)}.")
    ids = ids or IdSource()
    tokens = _tokens(template, options, ids, time.time() if now is None else now)
    body = _fill(template.body, tokens, options)
    apply_overrides(body, options.sets, options.adds, options.unsets)
    return body  # type: ignore[no-any-return]


#: One draw of build()'s on an IdSource: what makes the value, and what only makes the same draw (for a value the body
#: does not use, which still moves the ids and the random generator on exactly as build() does).
_Draw = tuple[Callable[[IdSource], str], Callable[[IdSource], object]]


class _Holes(IdSource):
    """An IdSource that hands out a marker for every fresh value instead of the value, and keeps the draw, so that
    each body can make the same draws, in the same order, on a real IdSource."""

    def __init__(self, nonce: str) -> None:  # no super().__init__(): nothing is drawn here
        self.nonce = nonce
        self.draws: list[_Draw] = []

    def _mark(self, draw: _Draw) -> str:
        self.draws.append(draw)
        return f"\ue000{self.nonce}.{len(self.draws) - 1}\ue001"

    def next(self) -> str:
        """A marker for the next message id."""
        return self._mark((IdSource.next, IdSource.next))

    def hex(self, bits: int) -> str:
        """A marker for `bits` random bits in hex."""
        return self._mark((lambda ids: ids.hex(bits), lambda ids: ids.random.getrandbits(bits)))

    def digits(self, low: int, high: int) -> str:
        """A marker for a random number from `low` to `high`."""
        return self._mark((lambda ids: ids.digits(low, high), lambda ids: ids.random.randint(low, high)))


@dataclass(frozen=True)
class _Frame:
    """A body encoded once with markers: the bytes between them, which draw fills each of them, and every draw to make
    (the value where the body uses it, the bare draw where it does not)."""

    parts: tuple[bytes, ...]
    slots: tuple[int, ...]
    steps: tuple[Callable[[IdSource], object], ...]

    @classmethod
    def of(cls, encoded: bytes, marker: re.Pattern[bytes], draws: Sequence[_Draw]) -> _Frame:
        """The frame of a body encoded with `draws`' markers in it."""
        pieces = marker.split(encoded)
        slots = tuple(int(slot) for slot in pieces[1::2])
        return cls(tuple(pieces[0::2]), slots, tuple(value if n in slots else draw for n, (value, draw) in enumerate(draws)))

    def fill(self, ids: IdSource) -> bytes:
        """The body with this delivery's fresh values: every draw made, in build()'s order, the used ones spliced in."""
        values = [step(ids) for step in self.steps]
        pieces = [self.parts[0]]
        for slot, part in zip(self.slots, self.parts[1:], strict=True):
            pieces += (str(values[slot]).encode(), part)
        return b"".join(pieces)


class Bodies:
    """Fresh encoded bodies of one template, each `encode(build(template, options, ids, now))` byte for byte, cheaply.

    A `--count` run needs thousands of bodies that differ only in their ids, random parts and times. The template is
    built and encoded once per tick of the clock it reads (a second; a millisecond for templates that carry
    millisecond times) with a marker where each fresh value goes; each body then makes build()'s draws on `ids` and
    splices them in. Checked once against real builds (seeded): a template or option whose body this does not
    reproduce exactly gets a real build for every body instead."""

    def __init__(
        self, template: Template, options: BuildOptions, ids: IdSource | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.template = template
        self.options = options
        self.ids = ids or IdSource()
        self._clock = clock
        self._nonce = _hex(64)
        self._marker = re.compile(re.escape(f"\ue000{self._nonce}.".encode()) + rb"([0-9]+)" + re.escape("\ue001".encode()))
        second = float(int(clock()))
        early, late = self._frame(second + 0.25), self._frame(second + 0.75)
        #: Whether the bodies carry millisecond times (the frame is then built again every millisecond).
        self.milliseconds = early.parts != late.parts
        self.exact = all(
            encode(build(template, options, IdSource(seed), second + 0.25)) == early.fill(IdSource(seed)) for seed in (1, 2)
        )
        self._tick: int | None = None
        self._current = early

    def next(self) -> bytes:
        """The next fresh body."""
        now = self._clock()
        if not self.exact:
            return encode(build(self.template, self.options, self.ids, now))
        tick = int(now * 1000) if self.milliseconds else int(now)
        if tick != self._tick:
            self._tick, self._current = tick, self._frame(now)
        return self._current.fill(self.ids)

    def _frame(self, now: float) -> _Frame:
        holes = _Holes(self._nonce)
        return _Frame.of(encode(build(self.template, self.options, holes, now)), self._marker, holes.draws)


def _tokens(template: Template, options: BuildOptions, ids: IdSource, now: float) -> dict[str, Any]:
    seconds = int(now)
    group_id = options.group or "cometchat-guid-1"
    receiver_is_group = options.group is not None
    legacy = template.generation == "legacy"
    # A known user or group is taken whole (emulate's state: nothing invented); others are the sample ones.
    sender_user = dict(options.users.get(options.sender) or user_entity(options.sender, seconds, legacy=legacy))
    receiver_user = dict(options.users.get(options.receiver) or user_entity(options.receiver, seconds, legacy=legacy))
    conversation = f"group_{group_id}" if receiver_is_group else "_user_".join(sorted((options.sender, options.receiver)))
    group = dict(options.groups.get(group_id) or group_entity(group_id, options.sender, seconds))
    # A new group's creator is its one member, unless the group is known (emulate counts its members).
    joined_count = group.get("membersCount", 1) if group_id in options.groups else 1
    text = options.text if options.text is not None else "Hi Webhook Test"
    # A stored message was sent when it was sent: edits and deletes say so instead of an illustrative 95 s ago.
    sent = options.message.get("sentAt") if options.message else None
    earlier = sent if isinstance(sent, int) and not isinstance(sent, bool) else seconds - 95
    return {
        "app_id": options.app_id,
        "region": str(options.region),
        "webhook": options.webhook_id,
        "now": seconds,
        "now_str": str(seconds),
        "now_ms": int(now * 1000),
        "now_ms_str": str(int(now * 1000)),
        "earlier": earlier,
        "earlier_str": str(earlier),
        "earlier_ms": int(now * 1000) - 95_000,
        "today": time.strftime("%Y-%m-%d", time.gmtime(now)),
        "id": options.message_id if options.message_id is not None else ids.next(),
        "id2": ids.next(),
        "uuid": ids.hex(96),
        "uuid2": ids.hex(96),
        "uuid3": ids.hex(96),
        "uuid4": ids.hex(96),
        "session_id": f"v1.{options.region}.{options.app_id}.{int(now * 1000)}{ids.hex(128)}",
        "media_name": f"{seconds}_{ids.digits(1, 999999)}_{ids.hex(128)}",
        "text": text,
        "sender": options.sender,
        "receiver": options.receiver,
        "sender_name": sender_user["name"],
        "receiver_name": receiver_user["name"],
        "sender_avatar": sender_user.get("avatar"),
        "receiver_avatar": receiver_user.get("avatar"),
        "sender_user": sender_user,
        "receiver_user": {**receiver_user, "conversationId": "_user_".join(sorted((options.sender, options.receiver)))},
        "guid": group_id,
        "group": group,
        "group_joined": {**group, "scope": "admin", "joinedAt": seconds, "hasJoined": True, "membersCount": joined_count},
        "group_updated": {**group, "updatedBy": options.sender},
        "group_transferred": {**group, "owner": options.receiver, "updatedBy": options.sender, "oldOwner": options.sender},
        "conversation_id": conversation,
        "receiver_type": "group" if receiver_is_group else "user",
        "receiver_id": group_id if receiver_is_group else options.receiver,
        "receiver_entity": group if receiver_is_group else receiver_user,
    }


def _fill(node: Any, tokens: dict[str, Any], options: BuildOptions) -> Any:
    if isinstance(node, str):
        whole = TOKEN.fullmatch(node)
        if whole:
            return copy.deepcopy(tokens[whole.group(1)])
        return TOKEN.sub(lambda m: str(tokens[m.group(1)]), node)
    if isinstance(node, list):
        return [_fill(item, tokens, options) for item in node]
    if isinstance(node, dict):
        rest = {_fill(k, tokens, options): _fill(v, tokens, options) for k, v in node.items() if k not in ("$message", "$user")}
        if "$message" in node:
            saved = node["$message"] == "saved"
            if options.message is not None:
                stored = copy.deepcopy(dict(options.message))
                if not saved:
                    stored.pop("id", None)
                return _merge(stored, rest)
            return _merge(_message(tokens, options, saved=saved), rest)
        if "$user" in node:
            return _merge(copy.deepcopy(tokens[f"{node['$user']}_user"]), rest)
        return rest
    return node


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _message(tokens: dict[str, Any], options: BuildOptions, saved: bool) -> dict[str, Any]:
    """A CometChat message object as the options describe it (no `id` while still pending)."""
    kind = options.type
    data: dict[str, Any] = {}
    if kind == "text":
        data["text"] = tokens["text"]
    elif kind == "custom":
        data["customData"] = {"latitude": 40.7128, "longitude": -74.006}
        if options.text is not None:
            data["text"] = options.text
    else:
        mime, ext, size = _MEDIA[kind]
        stored = f"{tokens['media_name']}.{ext}"
        url = f"https://data-{tokens['region']}.cometchat.io/{tokens['app_id']}/media/{stored}"
        data["url"] = url
        data["attachments"] = [{"url": url, "name": f"{kind}.{ext}", "mimeType": mime, "extension": ext, "size": size}]
        if options.text is not None:
            data["text"] = options.text
    data["entities"] = {
        "sender": {"entity": copy.deepcopy(tokens["sender_user"]), "entityType": "user"},
        "receiver": {"entity": copy.deepcopy(tokens["receiver_entity"]), "entityType": tokens["receiver_type"]},
    }
    message: dict[str, Any] = {}
    if saved:
        message["id"] = tokens["id"]
    message.update(
        {
            "conversationId": tokens["conversation_id"],
            "sender": options.sender,
            "receiverType": tokens["receiver_type"],
            "receiver": tokens["receiver_id"],
            "category": "custom" if kind == "custom" else "message",
            "type": "location" if kind == "custom" else kind,
            "data": data,
            "sentAt": tokens["now"],
            "updatedAt": tokens["now"],
        }
    )
    return message


def encode(payload: Any) -> bytes:
    """A payload as CometChat sends it: compact UTF-8 JSON."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

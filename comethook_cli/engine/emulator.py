"""`comethook emulate`: a local stand-in for CometChat's v3 REST API that fires the webhooks each call causes.

It answers the calls `trigger` makes (cometchat/rest.py lists them) under `/v3/...`, checks the `apikey`
header, validates bodies, keeps users, groups, members, messages and blocks (in memory, or in SQLite with
`state`), and delivers the resulting webhooks, built from the same catalog templates as `send`, filled with
its real state. `before_message` is called synchronously before a message is stored (legacy webhooks).
Points CometChat does not document are the emulator's choice, and say so (`CHOICES`).

It is for this machine's tools, not for the pages open in its browser: engine/localguard.py's guard (the
inspector's) refuses a foreign `Host` (DNS rebinding) and any cross-origin change; `/_emulator/*` needs the key
when one is set; the state is capped (CometChat's per-item limits, the emulator's own totals: the MAX_* below); with
`state`, each call writes only the records it changed (one SQLite row per user, group, message...).

    async with Emulator(EmulatorConfig(webhooks=(WebhookTarget("http://127.0.0.1:8765/webhook"),))) as emulator:
        ...  # point a REST client at emulator.base_url
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp import web

from comethook_cli import jsonbody
from comethook_cli.cometchat import rest
from comethook_cli.cometchat.payloads import BuildOptions, build, encode, find_template
from comethook_cli.cometchat.rest import ACTIONS, Action, RestCall
from comethook_cli.engine.auth import basic_auth_header
from comethook_cli.engine.config import EmulatorConfig, WebhookTarget
from comethook_cli.engine.history.files import make_private_database
from comethook_cli.engine.localguard import LocalGuard
from comethook_cli.engine.sender import COMETCHAT_RETRY_DELAYS, Outgoing, connector, deliver
from comethook_cli.errors import ListenerError, UsageError
from comethook_cli.models import Delivery

#: The sender of a message sent without onBehalfOf (the sheet §5.1, observed live by a third party).
SYSTEM_USER = "app_system"
LEGACY_TRIGGERS = frozenset({"before_message", "after_message"})
#: The largest REST body accepted (CometChat: 10 KB for a POST's data, 65 KB for a whole message).
MAX_REST_BODY = 128 * 1024
#: What the emulator decides where CometChat documents nothing (the README repeats these).
CHOICES = {
    "hook_failure": "a before_message timeout, non-2xx or invalid answer lets the message pass (--on-hook-failure drop drops it)",
    "blocked_status": "a dropped send answers 403 with ERR_BLOCKED_BY_WEBHOOK (the code is the sheet's inference, the status a guess)",
    "injected_in_answer": "an injected answer appears in the REST answer and in after_message (inferred, not documented)",
    "create_members": "members{...} on create group fires no group_member_added (CometChat's behaviour is unknown)",
    "state_caps": "a full state (MAX_USERS, MAX_GROUPS, MAX_MESSAGES, MAX_STATE_BYTES) answers 403 ERR_PLAN_QUOTA_RESTRICTION",
}
#: CometChat's own limits (the sheet §4): a user's or group's metadata, the POST body that carries it, a whole
#: message, tags, distinct reactions per message, users per add-members call, members per group.
MAX_METADATA_BYTES = 5 * 1024
MAX_ENTITY_BODY = 10 * 1024
MAX_MESSAGE_BYTES = 65 * 1024
MAX_TAGS, MAX_TAG_CHARS = 25, 100
MAX_REACTIONS = 25
MAX_MEMBERS_PER_CALL = 25
MAX_GROUP_MEMBERS = 100_000
#: The emulator's own totals (CometChat documents none for an app): enough for any test run, small enough that a
#: runaway loop or a hostile client cannot take the machine's memory. POST /_emulator/reset empties the state.
MAX_USERS = 10_000
MAX_GROUPS = 1_000
MAX_MESSAGES = 50_000
#: The state's size as JSON; past it, every POST and PUT is refused (DELETEs still work).
MAX_STATE_BYTES = 32 * 1024 * 1024
#: The keys of State whose entries are records of their own (one row each in the state file).
KINDS = ("users", "groups", "members", "banned", "messages", "reactions", "blocks")


class Refused(Exception):
    """A REST call CometChat would refuse: its error code, message and (validation) details."""

    def __init__(self, code: str, message: str, details: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


@dataclass
class State:
    """Everything the emulated app holds; JSON-able for `--state` and `GET /_emulator/state`."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: guid → uid → {"scope", "joinedAt"}.
    members: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    banned: dict[str, list[str]] = field(default_factory=dict)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: message id → reaction → uids.
    reactions: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    #: blocker uid → blocked uids.
    blocks: dict[str, list[str]] = field(default_factory=dict)
    next_id: int = 1

    def to_json(self) -> dict[str, Any]:
        """The state as one JSON object."""
        return {name: copy.deepcopy(getattr(self, name)) for name in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, document: Any) -> State:
        """A state read back from `to_json()` (unknown keys ignored)."""
        if not isinstance(document, dict):
            return cls()
        return cls(**{k: v for k, v in document.items() if k in cls.__dataclass_fields__})


def _size(value: Any) -> int:
    """Bytes as CometChat would count them: compact UTF-8 JSON."""
    return len(encode(value))


def _check_tags(body: dict[str, Any]) -> None:
    """CometChat's limit on tags: at most 25, each at most 100 characters."""
    tags = body.get("tags")
    if tags is not None and (
        not isinstance(tags, list)
        or len(tags) > MAX_TAGS
        or not all(isinstance(t, str) and len(t) <= MAX_TAG_CHARS for t in tags)
    ):
        told = f"tags must be at most {MAX_TAGS} strings of at most {MAX_TAG_CHARS} characters."
        raise Refused("ERR_BAD_REQUEST", told, {"tags": [told]})


def _check_entity(body: dict[str, Any]) -> None:
    """CometChat's limits on a user's or a group's body: 10 KB in all, metadata (an object) 5 KB, tags."""
    if _size(body) > MAX_ENTITY_BODY:
        raise Refused("ERR_BAD_REQUEST", f"The request body is larger than {MAX_ENTITY_BODY} bytes.")
    if "metadata" in body:
        if not isinstance(body["metadata"], dict):
            raise Refused("ERR_BAD_REQUEST", "metadata must be an object.", {"metadata": ["The metadata must be an object."]})
        if _size(body["metadata"]) > MAX_METADATA_BYTES:
            told = f"The metadata may not be larger than {MAX_METADATA_BYTES} bytes."
            raise Refused("ERR_BAD_REQUEST", told, {"metadata": [told]})
    _check_tags(body)


def _route(action: Action) -> re.Pattern[str]:
    return re.compile("^/v3" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", action.path) + "$")


ROUTES = [(_route(action), action) for action in ACTIONS.values()]


class Emulator:
    """The emulated CometChat app: an aiohttp server, its state, and the webhooks it fires."""

    def __init__(
        self,
        config: EmulatorConfig,
        on_call: Callable[[RestCall], None] | None = None,
        on_delivery: Callable[[Delivery], None] | None = None,
    ) -> None:
        self.config = config
        self.on_call = on_call or (lambda call: None)
        self.on_delivery = on_delivery or (lambda delivery: None)
        self.state = State()
        self.guard = LocalGuard(config.host, config.port, extra_names=frozenset(n.lower() for n in config.allowed_hosts))
        self._store: sqlite3.Connection | None = None
        #: Records changed by the call in progress (written, or deleted, when it ends) and each record's JSON size.
        self._dirty: set[tuple[str, str]] = set()
        self._sizes: dict[tuple[str, str], int] = {}
        self.state_bytes = 0
        self._saved_next_id = 0
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._minute = (0, 0)
        self.port = config.port

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """What `trigger --api-base` takes."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}/v3"

    async def start(self) -> None:
        """Load the state, bind the server and open the webhook client."""
        if self.config.state:
            self._open_state(Path(self.config.state))
        app = web.Application(client_max_size=MAX_REST_BODY, middlewares=[self._guard])
        app.router.add_get("/_emulator/state", self._state_route)
        app.router.add_post("/_emulator/reset", self._reset_route)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            raise ListenerError(
                f"Cannot listen on {self.config.host}:{self.config.port}: {error.strerror or error}.",
                "Pick another --port (0 picks a free one), or stop whatever uses it.",
            ) from None
        sockets = getattr(site._server, "sockets", None) or []  # aiohttp exposes the bound port nowhere else
        if sockets:
            self.port = self.guard.port = sockets[0].getsockname()[1]
        self._client = aiohttp.ClientSession(connector=connector(100, insecure=False))

    async def idle(self, timeout: float = 30.0) -> None:
        """Wait until every webhook delivery in flight (retries included) is done."""
        async with asyncio.timeout(timeout):
            while self._pending:
                await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel deliveries still in flight, close the server, the client and the state file."""
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*list(self._pending), return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._client is not None:
            await self._client.close()
        if self._store is not None:
            self._store.close()

    # --- state file --------------------------------------------------------------------------------
    def _open_state(self, path: Path) -> None:
        """Open (or create, 0600) the state file and load it; a file of the old one-row format is converted."""
        try:
            make_private_database(path)
            self._store = sqlite3.connect(path)
            self._store.execute("PRAGMA journal_mode=WAL")  # a kill -9 mid-write leaves the last committed state
            self._store.execute("PRAGMA synchronous=NORMAL")
            with self._store:
                self._store.execute(
                    "CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, key TEXT NOT NULL, json TEXT NOT NULL, "
                    "PRIMARY KEY (kind, key)) WITHOUT ROWID"
                )
                rows = self._store.execute("SELECT kind, key, json FROM records").fetchall()
                old = self._store.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'state'").fetchone()
                whole = self._store.execute("SELECT json FROM state WHERE id = 1").fetchone() if old else None
        except (sqlite3.Error, OSError) as error:
            self._close_store()
            raise UsageError(f"Cannot use --state {str(path)!r}: {error}.", "Give a new file, or one `emulate` wrote.") from None
        try:
            if whole is not None:  # the format before records: one row holding the whole state
                self.state = State.from_json(json.loads(whole[0]))
                self._dirty = {(kind, key) for kind in KINDS for key in getattr(self.state, kind)}
                self._flush()
                with self._store:
                    self._store.execute("DROP TABLE state")
            else:
                self._load(rows)
        except (ValueError, TypeError, AttributeError, Refused):
            self._close_store()
            raise UsageError(f"--state {str(path)!r} holds no emulator state.", "Give a new file.") from None

    def _load(self, rows: list[tuple[str, str, str]]) -> None:
        state = State()
        for kind, key, text in rows:
            if kind == "meta" and key == "next_id":
                state.next_id = int(json.loads(text))
            elif kind in KINDS:
                value = json.loads(text)
                if not isinstance(value, (dict, list)):
                    raise ValueError(f"{kind} {key} is not a record")
                getattr(state, kind)[key] = value
                self._sizes[(kind, key)] = len(text)
        self.state = state
        self.state_bytes = sum(self._sizes.values())

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _touch(self, kind: str, *keys: str) -> None:
        """Mark records the call in progress changed (or removed): only those are written when it ends."""
        self._dirty.update((kind, key) for key in keys)

    def _flush(self) -> None:
        """Write the records the last call changed, in one transaction, and keep the state's size up to date."""
        dirty, self._dirty = self._dirty, set()
        writes: list[tuple[str, str, str]] = []
        removed: list[tuple[str, str]] = []
        for kind, key in dirty:
            value = getattr(self.state, kind).get(key)
            self.state_bytes -= self._sizes.pop((kind, key), 0)
            if value is None:
                removed.append((kind, key))
                continue
            text = json.dumps(value)
            self._sizes[(kind, key)] = len(text)
            self.state_bytes += len(text)
            writes.append((kind, key, text))
        if self._store is None or (not writes and not removed and self.state.next_id == self._saved_next_id):
            return  # a read: nothing to write
        self._saved_next_id = self.state.next_id
        try:
            with self._store:
                self._store.executemany("DELETE FROM records WHERE kind = ? AND key = ?", removed)
                self._store.executemany("INSERT OR REPLACE INTO records (kind, key, json) VALUES (?, ?, ?)", writes)
                self._store.execute(
                    "INSERT OR REPLACE INTO records (kind, key, json) VALUES ('meta', 'next_id', ?)", (str(self.state.next_id),)
                )
        except sqlite3.Error as error:  # a full disk, a file removed: this call says so, the next one writes them again
            self._dirty |= dirty
            self._saved_next_id = 0
            raise Refused("ERR_EXCEPTION", f"The call was applied, but --state could not be written: {error}.") from None

    def _room(self, what: str, count: int, limit: int) -> None:
        """Refuse a call that would grow a full state (CometChat's quota error: the emulator's choice)."""
        if count >= limit:
            raise Refused(
                "ERR_PLAN_QUOTA_RESTRICTION",
                f"The emulator holds {count} {what}, its limit; POST /_emulator/reset empties it.",
            )

    # --- the guard and the control API -------------------------------------------------------------
    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """The inspector's guard (engine/localguard.py): no foreign Host, no change from another site's page."""
        refusal = self.guard.refusal(request)
        if refusal is not None:
            return web.json_response(rest.error_body("ERR_REQUEST_REFUSED", f"The emulator refused this request: {refusal}."),
                                     status=403)  # fmt: skip
        return await handler(request)

    def _control_refusal(self, request: web.Request) -> web.Response | None:
        """The REST routes' key check on /_emulator/*, when a key is set (with none, curl needs no header)."""
        if self.config.api_key is None:
            return None
        try:
            self._authenticate(request)
        except Refused as refusal:
            return web.json_response(rest.error_body(refusal.code, refusal.message), status=rest.status_for(refusal.code))
        return None

    async def _state_route(self, request: web.Request) -> web.Response:
        return self._control_refusal(request) or web.json_response(self.state.to_json())

    async def _reset_route(self, request: web.Request) -> web.Response:
        refusal = self._control_refusal(request)
        if refusal is not None:
            return refusal
        async with self._lock:
            self.state = State()
            self._dirty.clear()
            self._sizes.clear()
            self.state_bytes = 0
            if self._store is not None:
                try:
                    with self._store:
                        self._store.execute("DELETE FROM records")
                except sqlite3.Error as error:
                    told = f"The state was emptied, but --state could not be written: {error}."
                    return web.json_response(rest.error_body("ERR_EXCEPTION", told), status=500)
        return web.json_response({"reset": True})

    # --- REST --------------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        action: Action | None = None
        actor = request.headers.get("onBehalfOf", "").strip().lower() or None
        sent: Any = None
        try:
            action, params = self._match(request)
            self._authenticate(request)
            sent = await self._body(request)
            async with self._lock:  # one call at a time: the state changes as CometChat's would, call by call
                try:
                    status, answer = 200, await self._dispatch(action, params, sent, actor)
                finally:  # a refused call may have changed some records before it was refused (add_members)
                    self._flush()
        except Refused as refusal:
            status, answer = rest.status_for(refusal.code), rest.error_body(refusal.code, refusal.message, refusal.details)
        except (TypeError, ValueError, KeyError, AttributeError) as unforeseen:
            # A body shape no check foresaw must cost that call a 500, never the emulator.
            status, answer = 500, rest.error_body("ERR_EXCEPTION", f"The emulator could not handle this call: {unforeseen!r}.")
        response = web.json_response(answer, status=status, headers=self._rate_headers())
        error = rest.read_error(answer)
        self.on_call(
            RestCall(
                action.name if action else None, request.method, request.path_qs, status, answer,
                (time.perf_counter() - started) * 1000, error, request=sent, on_behalf_of=actor,
            )
        )  # fmt: skip
        return response

    def _rate_headers(self) -> dict[str, str]:
        """X-Rate-Limit and X-Rate-Limit-Remaining, as every CometChat answer carries (standard operations: 20,000/min)."""
        minute, used = self._minute
        now = int(time.time() // 60)
        used = used + 1 if now == minute else 1
        self._minute = (now, used)
        return {"X-Rate-Limit": "20000", "X-Rate-Limit-Remaining": str(max(20000 - used, 0))}

    def _match(self, request: web.Request) -> tuple[Action, dict[str, str]]:
        path = request.rel_url.raw_path
        for pattern, action in ROUTES:
            found = pattern.match(path)
            if found and action.method == request.method:
                return action, {key: unquote(value) for key, value in found.groupdict().items()}
        raise Refused("ERR_API_NOT_FOUND", "The API endpoint is invalid. Please verify the API call.")

    def _authenticate(self, request: web.Request) -> None:
        key = request.headers.get("apikey", "")
        if not key:
            raise Refused("AUTH_ERR_EMPTY_APIKEY", "The apikey header is empty or missing.")
        if self.config.api_key is not None and key != self.config.api_key:
            raise Refused("AUTH_ERR_APIKEY_NOT_FOUND", "The API key is not found for this app. Please check the apikey header.")

    async def _body(self, request: web.Request) -> Any:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise Refused("ERR_BAD_REQUEST", f"The request body is larger than {MAX_REST_BODY} bytes.") from None
        if not raw.strip():
            return {}
        try:
            body = jsonbody.parse(raw)
        except jsonbody.JsonBodyError as error:
            raise Refused("ERR_BAD_REQUEST", f"The request body is not valid JSON: {error}.") from None
        if not isinstance(body, dict):
            raise Refused("ERR_BAD_REQUEST", "The request body must be a JSON object.")
        return body

    async def _dispatch(self, action: Action, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        if action.on_behalf_of == "required" and not actor:
            raise Refused(
                "ERR_BAD_REQUEST", "The onBehalfOf header is required.", {"onBehalfOf": ["The onBehalfOf header is required."]}
            )
        if actor is not None and actor != SYSTEM_USER:
            self._user(actor)
        if action.method in ("POST", "PUT") and self.state_bytes >= MAX_STATE_BYTES:
            raise Refused(
                "ERR_PLAN_QUOTA_RESTRICTION",
                f"The emulator's state is {self.state_bytes} bytes, its limit; POST /_emulator/reset empties it.",
            )
        handler = getattr(self, f"_{action.name}")
        return await handler(params, body, actor)

    # --- lookups -----------------------------------------------------------------------------------
    def _user(self, uid: str) -> dict[str, Any]:
        user = self.state.users.get(uid.lower())
        if user is None:
            raise Refused(
                "ERR_UID_NOT_FOUND", f"The UID {uid} does not exist, please make sure you have created a user with UID {uid}."
            )
        return user

    def _group(self, guid: str) -> dict[str, Any]:
        group = self.state.groups.get(guid.lower())
        if group is None:
            raise Refused(
                "ERR_GUID_NOT_FOUND",
                f"The GUID {guid} does not exist, please make sure you have created a group with GUID {guid}.",
            )
        return group

    def _message(self, message_id: str) -> dict[str, Any]:
        message = self.state.messages.get(message_id)
        if message is None or message.get("deletedAt"):
            raise Refused("ERR_MESSAGE_ID_NOT_FOUND", f"The message with id {message_id} does not exist.")
        return message

    def _new_id(self) -> str:
        found = str(self.state.next_id)
        self.state.next_id += 1
        return found

    @staticmethod
    def _uid_field(body: dict[str, Any], name: str) -> str:
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            raise Refused("ERR_BAD_REQUEST", f"The {name} field is required.", {name: [f"The {name} field is required."]})
        if not rest.ID_PATTERN.fullmatch(value):
            code = "ERR_INVALID_UID" if name == "uid" else "ERR_BAD_REQUEST"
            raise Refused(code, f"The {name} may only contain letters, digits, - and _ (at most 100).")
        return value.lower()

    # --- what goes into payloads -------------------------------------------------------------------
    def _entities(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Entity fields of the known users and groups, as the builder merges them over the sample ones."""
        users = {uid: {k: u[k] for k in ("name", "avatar", "role") if u.get(k)} for uid, u in self.state.users.items()}
        users[SYSTEM_USER] = {"name": "App System"}
        groups = {}
        for guid, g in self.state.groups.items():
            entity = {k: g[k] for k in ("name", "type", "owner", "createdAt", "updatedAt", "icon") if g.get(k)}
            entity["membersCount"] = len(self.state.members.get(guid, {}))
            groups[guid] = entity
        return users, groups

    def _payload(self, trigger: str, target: WebhookTarget, **options: Any) -> dict[str, Any]:
        users, groups = self._entities()
        template = find_template(trigger, legacy=trigger in LEGACY_TRIGGERS)
        built = BuildOptions(
            webhook_id=target.webhook_id, app_id=self.config.app_id, region=self.config.region, users=users, groups=groups,
            **options,
        )  # fmt: skip
        return build(template, built)

    def _targets(self, trigger: str) -> list[WebhookTarget]:
        generation_fits = (trigger in LEGACY_TRIGGERS) == self.config.legacy
        return [t for t in self.config.webhooks if generation_fits and t.wants(trigger)]

    def _fire(self, trigger: str, merge: str | None = None, each: Iterable[str] = (), **options: Any) -> None:
        """Deliver `trigger` to every subscribed webhook, in the background. With `merge` (a map in data, e.g.
        `members`) and `each` (its uids), one delivery carries every uid: the template is built once per uid."""
        for target in self._targets(trigger):
            uids = list(each)
            if merge and uids:
                payload = self._payload(trigger, target, receiver=uids[0], **options)
                for uid in uids[1:]:
                    payload["data"][merge].update(self._payload(trigger, target, receiver=uid, **options)["data"][merge])
            else:
                payload = self._payload(trigger, target, **options)
            task = asyncio.get_running_loop().create_task(self._deliver_async(target, trigger, payload))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _headers(self, target: WebhookTarget) -> dict[str, str]:
        return {"Authorization": basic_auth_header(target.basic_auth)} if target.basic_auth else {}

    async def _deliver_async(self, target: WebhookTarget, trigger: str, payload: dict[str, Any]) -> None:
        assert self._client is not None
        outgoing = Outgoing(encode(payload), payload, trigger)
        cadence = COMETCHAT_RETRY_DELAYS if self.config.retry_delays is None else self.config.retry_delays
        delays = (0.0, *cadence) if self.config.retry_on_failure else (0.0,)
        for attempt, delay in enumerate(delays, start=1):
            if delay:
                await asyncio.sleep(delay)
            delivery = await deliver(
                self._client, target.url, outgoing, self._headers(target), self.config.delivery_timeout, attempt
            )
            self.on_delivery(delivery)
            if delivery.ok:
                return

    async def _before_message(self, message: dict[str, Any], options: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Call every before_message webhook, in turn, before storing: (dropped?, the metadata to store)."""
        metadata: dict[str, Any] = copy.deepcopy(message["data"].get("metadata") or {})
        assert self._client is not None
        for target in self._targets("before_message"):
            payload = self._payload("before_message", target, message=message, **options)
            outgoing = Outgoing(encode(payload), payload, "before_message")
            delivery = await deliver(self._client, target.url, outgoing, self._headers(target), self.config.hook_timeout)
            self.on_delivery(delivery)
            verdict = delivery.verdict
            if verdict is None or verdict.kind == "invalid":
                if self.config.on_hook_failure == "drop":
                    return True, metadata
            elif verdict.kind == "drop":
                return True, metadata
            elif verdict.kind == "inject" and verdict.metadata is not None:
                answer = verdict.metadata["@injected"]["webhooks"][target.webhook_id]
                metadata.setdefault("@injected", {}).setdefault("webhooks", {})[target.webhook_id] = answer
        return False, metadata

    # --- users -------------------------------------------------------------------------------------
    async def _create_user(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        uid = self._uid_field(body, "uid")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise Refused("ERR_BAD_REQUEST", "The name field is required.", {"name": ["The name field is required."]})
        _check_entity(body)
        if uid in self.state.users or uid == SYSTEM_USER:
            raise Refused("ERR_UID_ALREADY_EXISTS", f"The UID {uid} already exists, please use another UID.")
        user: dict[str, Any] = {"uid": uid, "name": name, "status": "offline", "role": "default", "createdAt": int(time.time())}
        for key in ("avatar", "link", "role", "statusMessage", "metadata", "tags"):
            if key in body:
                user[key] = body[key]
        self._room("users", len(self.state.users), MAX_USERS)
        self.state.users[uid] = user
        self._touch("users", uid)
        return {"data": user}

    async def _get_user(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        return {"data": self._user(params["uid"])}

    async def _block_users(self, params: dict[str, str], body: dict[str, Any], actor: str | None, block: bool = True) -> Any:
        blocker = self._user(params["uid"])["uid"]
        uids = body.get("blockedUids")
        if not isinstance(uids, list) or not uids or not all(isinstance(u, str) for u in uids):
            raise Refused(
                "ERR_BAD_REQUEST", "The blockedUids field is required.", {"blockedUids": ["The blockedUids field is required."]}
            )
        blocked = self.state.blocks.setdefault(blocker, [])
        self._touch("blocks", blocker)
        answer: dict[str, Any] = {}
        changed: list[str] = []
        for uid in (u.lower() for u in uids):
            if uid == blocker:
                raise Refused("ERR_CANNOT_BLOCK_SELF", "A user cannot block themselves.")
            self._user(uid)
            if block and uid not in blocked:
                blocked.append(uid)
            elif not block and uid in blocked:
                blocked.remove(uid)
            changed.append(uid)
            answer[uid] = {"success": True, "message": f"{blocker} has {'blocked' if block else 'unblocked'} {uid} successfully."}
        self._fire("user_blocked" if block else "user_unblocked", merge="users", each=changed, sender=blocker)
        return {"data": answer}

    async def _unblock_users(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        return await self._block_users(params, body, actor, block=False)

    # --- messages ----------------------------------------------------------------------------------
    async def _send_message(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        sender = actor or SYSTEM_USER
        receiver, receiver_type = body.get("receiver"), body.get("receiverType")
        if not isinstance(receiver, str) or not receiver:
            raise Refused("ERR_EMPTY_RECEIVER", "The receiver is empty.")
        if receiver_type not in ("user", "group"):
            raise Refused("ERR_INVALID_RECEIVER_TYPE", "receiverType must be user or group.")
        receiver = receiver.lower()
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
        if _size(body) > MAX_MESSAGE_BYTES:
            raise Refused("ERR_BAD_REQUEST", f"A message is at most {MAX_MESSAGE_BYTES} bytes.")
        _check_tags(body)
        self._room("messages", len(self.state.messages), MAX_MESSAGES)
        group = None
        if receiver_type == "group":
            group = self._group(receiver)["guid"]
            if sender != SYSTEM_USER and sender not in self.state.members.get(group, {}):
                raise Refused("ERR_GROUP_NOT_JOINED", f"{sender} is not a member of the group {group}.")
        else:
            self._user(receiver)
            if receiver in self.state.blocks.get(sender, []):
                raise Refused("ERR_BLOCKED_RECEIVER", f"{sender} has blocked {receiver}.")
            if sender in self.state.blocks.get(receiver, []):
                raise Refused("ERR_BLOCKED_SENDER", f"{receiver} has blocked {sender}.")
        mentions = list(dict.fromkeys(u.lower() for u in rest.MENTION.findall(text or "")))[: rest.MAX_MENTIONS]
        options: dict[str, Any] = {"sender": sender, "receiver": receiver if group is None else sender, "group": group}
        if category == "message" and kind != "text":
            options["type"] = kind
        message = self._payload("message_sent", WebhookTarget(""), text=text, message_id="0", **options)["data"]["message"]
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
        if self.config.legacy:
            dropped, metadata = await self._before_message(message, options)
            if dropped:
                raise Refused("ERR_BLOCKED_BY_WEBHOOK", "The message is blocked by the webhook.")
            if metadata:
                message["data"]["metadata"] = metadata
        message["id"] = self._new_id()
        self.state.messages[message["id"]] = message
        self._touch("messages", message["id"])
        self._fire("after_message" if self.config.legacy else "message_sent", message=message, **options)
        known = [uid for uid in mentions if uid in self.state.users]
        if known and not self.config.legacy:
            users, _ = self._entities()
            mentioned = {uid: {"uid": uid, "name": users.get(uid, {}).get("name", uid)} for uid in known}
            sets = (("data.message.data.text", text), ("data.message.data.mentions", mentioned))
            self._fire("user_mentioned", message=message, sets=sets, **options)
        return {"data": message}

    async def _get_message(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        return {"data": self._message(params["id"])}

    def _owned(self, params: dict[str, str], actor: str | None) -> tuple[dict[str, Any], str]:
        message = self._message(params["id"])
        by = actor or SYSTEM_USER
        if actor is not None and message["sender"] != actor:
            raise Refused("ERR_MESSAGE_NOT_A_SENDER", "Only the sender of a message can edit or delete it.")
        return message, by

    def _options_of(self, message: dict[str, Any], by: str) -> dict[str, Any]:
        group = message["receiver"] if message["receiverType"] == "group" else None
        return {"sender": by, "receiver": message["receiver"] if group is None else by, "group": group}

    def _action_message(self, action: str, message: dict[str, Any], by: str) -> dict[str, Any]:
        """What edit and delete answer: a new action message whose entities.on is the message (the sheet §6.2)."""
        users, _ = self._entities()
        built = self._payload("message_sent", WebhookTarget(""), message=message, **self._options_of(message, by))
        entities = built["data"]["message"]["data"]["entities"]
        now = int(time.time())
        by_entity = {"entity": {"uid": by, **users.get(by, {})}, "entityType": "user"}
        return {
            "id": self._new_id(), "conversationId": message["conversationId"], "sender": by,
            "receiverType": message["receiverType"], "receiver": message["receiver"], "category": "action", "type": "message",
            "data": {
                "action": action,
                "entities": {"by": by_entity, "for": entities["receiver"], "on": {"entity": copy.deepcopy(message), "entityType": "message"}},
            },
            "sentAt": now, "updatedAt": now,
        }  # fmt: skip

    async def _edit_message(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        message, by = self._owned(params, actor)
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
        _check_tags(body)
        self._touch("messages", message["id"])
        now = int(time.time())
        if isinstance(text, str):
            message["data"]["text"] = text
        if isinstance(data.get("metadata"), dict):
            message["data"]["metadata"] = data["metadata"]
        if "tags" in body:
            message["tags"] = body["tags"]
        message.update(updatedAt=now, editedAt=now, editedBy=by)
        self._fire("message_edited", message=message, message_id=message["id"], **self._options_of(message, by))
        return {"data": self._action_message("edited", message, by)}

    async def _delete_message(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        message, by = self._owned(params, actor)
        now = int(time.time())
        message.update(updatedAt=now, deletedAt=now, deletedBy=by)
        self._touch("messages", message["id"])
        self._fire("message_deleted", message=message, message_id=message["id"], **self._options_of(message, by))
        return {"data": self._action_message("deleted", message, by)}

    async def _add_reaction(self, params: dict[str, str], body: dict[str, Any], actor: str | None, add: bool = True) -> Any:
        message = self._message(params["id"])
        reaction, by = params["reaction"], actor or SYSTEM_USER
        if not reaction or len(reaction) > rest.MAX_REACTION_CHARS:
            raise Refused("ERR_BAD_REQUEST", f"A reaction is 1 to {rest.MAX_REACTION_CHARS} characters.")
        reactions = self.state.reactions.setdefault(message["id"], {})
        self._touch("reactions", message["id"])
        if add and reaction not in reactions and len(reactions) >= MAX_REACTIONS:
            raise Refused("ERR_BAD_REQUEST", f"A message has at most {MAX_REACTIONS} distinct reactions.")
        who = reactions.setdefault(reaction, [])
        if add and by not in who:
            who.append(by)
        elif not add and by in who:
            who.remove(by)
        if not who:
            del reactions[reaction]
        trigger = "message_reaction_added" if add else "message_reaction_removed"
        sets = (("data.reaction.reaction", reaction),)
        self._fire(trigger, message_id=message["id"], sets=sets, **self._options_of(message, by))
        answer = copy.deepcopy(message)
        answer["data"]["reactions"] = [{"reaction": r, "count": len(u), **({"reactedByMe": True} if by in u else {})}
                                       for r, u in reactions.items()]  # fmt: skip
        return {"data": answer}

    async def _remove_reaction(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        return await self._add_reaction(params, body, actor, add=False)

    # --- groups ------------------------------------------------------------------------------------
    def _group_answer(self, guid: str, actor: str | None) -> dict[str, Any]:
        group = copy.deepcopy(self.state.groups[guid])
        members = self.state.members.get(guid, {})
        group["membersCount"] = len(members)
        group["conversationId"] = f"group_{guid}"
        if actor and actor in members:
            group.update(scope=members[actor]["scope"], joinedAt=members[actor]["joinedAt"], hasJoined=True)
        return group

    async def _create_group(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        guid = self._uid_field(body, "guid")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise Refused("ERR_BAD_REQUEST", "The name field is required.", {"name": ["The name field is required."]})
        kind = body.get("type", "public")
        if kind not in rest.GROUP_TYPES:
            raise Refused(
                "ERR_BAD_REQUEST", "type must be public, password or private.", {"type": ["The selected type is invalid."]}
            )
        if kind == "password" and not body.get("password"):
            raise Refused("ERR_EMPTY_GROUP_PASS", "A password group needs a password.")
        _check_entity({k: v for k, v in body.items() if k != "members"})
        if guid in self.state.groups:
            raise Refused("ERR_GUID_ALREADY_EXISTS", f"The GUID {guid} already exists, please use another GUID.")
        extra: dict[str, Any] = body["members"] if isinstance(body.get("members"), dict) else {}
        self._per_call(extra)
        self._room("groups", len(self.state.groups), MAX_GROUPS)
        owner = body.get("owner") if isinstance(body.get("owner"), str) else actor
        owner = self._user(owner)["uid"] if owner else SYSTEM_USER
        now = int(time.time())
        group: dict[str, Any] = {"guid": guid, "name": name, "type": kind, "owner": owner, "createdAt": now, "updatedAt": now}
        for key in ("icon", "description", "metadata", "tags"):
            if key in body:
                group[key] = body[key]
        self.state.groups[guid] = group
        members = self.state.members[guid] = {}
        self._touch("groups", guid)
        self._touch("members", guid)
        if owner != SYSTEM_USER:
            members[owner] = {"scope": "admin", "joinedAt": now}
        for scope, key in (("admin", "admins"), ("moderator", "moderators"), ("participant", "participants")):
            for uid in extra.get(key) or []:
                if isinstance(uid, str) and uid.lower() in self.state.users:
                    members.setdefault(uid.lower(), {"scope": scope, "joinedAt": now})
        self._fire("group_created", sender=owner, group=guid)
        return {"data": self._group_answer(guid, actor or owner)}

    async def _get_group(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        return {"data": self._group_answer(self._group(params["guid"])["guid"], actor)}

    async def _update_group(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        group = self._group(params["guid"])
        _check_entity(body)
        self._touch("groups", group["guid"])
        for key in ("name", "type", "icon", "description", "metadata", "tags"):
            if key in body:
                group[key] = body[key]
        group["updatedAt"] = int(time.time())
        self._fire("group_updated", sender=actor or group["owner"], group=group["guid"])
        return {"data": self._group_answer(group["guid"], actor)}

    async def _delete_group(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        guid = self._group(params["guid"])["guid"]
        by = actor or self.state.groups[guid]["owner"]
        self._fire("group_deleted", sender=by, group=guid)  # built now, while the group still exists
        del self.state.groups[guid]
        self.state.members.pop(guid, None)
        self.state.banned.pop(guid, None)
        for kind in ("groups", "members", "banned"):
            self._touch(kind, guid)
        return {"data": {"success": True, "message": f"Group {guid} deleted successfully."}}

    @staticmethod
    def _per_call(body: dict[str, Any]) -> None:
        """CometChat's limit: at most 25 users per add-members call (and per create-group `members` object)."""
        uids = [u for key in ("admins", "moderators", "participants", "usersToBan") if isinstance(body.get(key), list)
                for u in body[key]]  # fmt: skip
        if len(uids) > MAX_MEMBERS_PER_CALL:
            told = f"At most {MAX_MEMBERS_PER_CALL} users per call."
            raise Refused("ERR_BAD_REQUEST", told, {"participants": [told]})

    def _member_call(self, params: dict[str, str], actor: str | None) -> tuple[str, str, str]:
        guid = self._group(params["guid"])["guid"]
        uid = self._user(params["uid"])["uid"]
        by = actor or self.state.groups[guid]["owner"]
        if uid == by:
            raise Refused("ERR_GROUP_NO_SELF_ACTION", "A member cannot do this to themselves.")
        return guid, uid, by

    async def _add_members(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        guid = self._group(params["guid"])["guid"]
        by = actor or self.state.groups[guid]["owner"]
        self._per_call(body)
        members = self.state.members.setdefault(guid, {})
        banned = self.state.banned.setdefault(guid, [])
        self._touch("members", guid)
        self._touch("banned", guid)
        answer: dict[str, Any] = {}
        added: list[str] = []
        now = int(time.time())
        given = [(scope, key, body.get(key)) for scope, key in
                 (("admin", "admins"), ("moderator", "moderators"), ("participant", "participants"))]  # fmt: skip
        if not any(isinstance(uids, list) and uids for _, _, uids in given) and not body.get("usersToBan"):
            raise Refused(
                "ERR_BAD_REQUEST", "Give admins, moderators, participants or usersToBan.", {"participants": ["Required."]}
            )
        for scope, key, uids in given:
            for uid in (u.lower() for u in uids or [] if isinstance(u, str)):
                self._user(uid)
                if uid in banned:
                    answer.setdefault(key, {})[uid] = {"success": False, "error": {"code": "ERR_BANNED_GROUPMEMBER"}}
                elif uid in members:
                    answer.setdefault(key, {})[uid] = {"success": False, "error": {"code": "ERR_ALREADY_JOINED"}}
                elif len(members) >= MAX_GROUP_MEMBERS:
                    answer.setdefault(key, {})[uid] = {"success": False, "error": {"code": "ERR_NO_VACANCY"}}
                else:
                    members[uid] = {"scope": scope, "joinedAt": now}
                    added.append(uid)
                    answer.setdefault(key, {})[uid] = {"success": True}
        to_ban = [u.lower() for u in body.get("usersToBan") or [] if isinstance(u, str)]
        for uid in to_ban:
            self._user(uid)
            members.pop(uid, None)
            if uid not in banned:
                banned.append(uid)
            answer.setdefault("usersToBan", {})[uid] = {"success": True}
        if added:
            self._fire("group_member_added", merge="members", each=added, sender=by, group=guid)
        if to_ban:  # usersToBan → group_member_banned is the sheet's inference
            self._fire("group_member_banned", merge="members", each=to_ban, sender=by, group=guid)
        return {"data": answer}

    async def _change_scope(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        guid, uid, by = self._member_call(params, actor)
        scope = body.get("scope", "participant")
        if scope not in rest.SCOPES:
            raise Refused(
                "ERR_BAD_REQUEST", "scope must be admin, moderator or participant.", {"scope": ["The selected scope is invalid."]}
            )
        member = self.state.members.get(guid, {}).get(uid)
        if member is None:
            raise Refused("ERR_NOT_A_MEMBER", f"The user {uid} is not a member of the group {guid}.")
        if member["scope"] == scope:
            raise Refused("ERR_SAME_SCOPE", f"The user {uid} already has the scope {scope}.")
        old, member["scope"] = member["scope"], scope
        self._touch("members", guid)
        sets = ((f"data.members.{uid}.scope", scope), (f"data.members.{uid}.oldScope", old))
        self._fire("group_member_scope_changed", sender=by, receiver=uid, group=guid, sets=sets)
        return {"data": {"guid": guid, "uid": uid, "scope": scope, "joinedAt": member["joinedAt"]}}

    async def _kick_member(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        guid, uid, by = self._member_call(params, actor)
        if uid not in self.state.members.get(guid, {}):
            raise Refused("ERR_NOT_A_MEMBER", f"The user {uid} is not a member of the group {guid}.")
        self._fire("group_member_kicked", sender=by, receiver=uid, group=guid)
        del self.state.members[guid][uid]
        self._touch("members", guid)
        return {"data": {"success": True, "message": f"{uid} kicked from the group {guid} successfully."}}

    async def _ban_member(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        guid, uid, by = self._member_call(params, actor)
        banned = self.state.banned.setdefault(guid, [])
        if uid in banned:
            raise Refused("ERR_ALREADY_BANNED", f"The user {uid} is already banned from the group {guid}.")
        self._fire("group_member_banned", sender=by, receiver=uid, group=guid)
        banned.append(uid)
        self.state.members.get(guid, {}).pop(uid, None)
        self._touch("banned", guid)
        self._touch("members", guid)
        return {"data": {"success": True, "message": f"{uid} banned from the group {guid} successfully."}}

    async def _unban_member(self, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        guid, uid, by = self._member_call(params, actor)
        banned = self.state.banned.setdefault(guid, [])
        if uid not in banned:
            raise Refused("ERR_NOT_A_BANNED_USER", f"The user {uid} is not banned from the group {guid}.")
        banned.remove(uid)
        self._touch("banned", guid)
        self._fire("group_member_unbanned", sender=by, receiver=uid, group=guid)
        return {"data": {"success": True, "message": f"{uid} unbanned from the group {guid} successfully."}}

"""CometChat's Chat REST API (v3) as far as `trigger` and `emulate` use it: one model for the client and the emulator.

Every fact comes from the reference sheet (shared/cometchat-rest-api.md, built from CometChat's OpenAPI file and
docs, and from third-party live harnesses). Where the sheet says a point is undocumented or only inferred, the
model says so too (`Action.basis`, `Action.note`, `INFERRED_CODES`), and the commands print it. No I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import quote

from comethook_cli.errors import InvalidSetting

Method = Literal["GET", "POST", "PUT", "DELETE"]
OnBehalfOf = Literal["required", "optional", "none"]

#: `https://{appId}.api-{region}.cometchat.io/v3` (OAS `servers`).
API_BASE = "https://{app_id}.api-{region}.cometchat.io/v3"


class Region(StrEnum):
    """A CometChat app's region: where its REST API lives, and what its payloads carry (engine.values.region parses one)."""

    US = "us"
    EU = "eu"
    IN = "in"


REGIONS: tuple[str, ...] = tuple(region.value for region in Region)
#: The test users and group `trigger setup` makes (lowercase: CometChat lowercases ids on create).
TEST_USERS = {"comethook-a": "Comethook A", "comethook-b": "Comethook B"}
TEST_GROUP = "comethook-group"
SENDER, RECEIVER = "comethook-a", "comethook-b"
#: UID/GUID: at most 100 characters, alpha-dash (the sheet, §4).
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,100}")
SCOPES = ("admin", "moderator", "participant")
GROUP_TYPES = ("public", "password", "private")
#: Sheet §4: mentions are written `<@uid:UID>` in the text.
MENTION = re.compile(r"<@uid:([A-Za-z0-9_-]{1,100})>")
#: Sheet §4: at most 10 distinct mentions, 45 characters per reaction, 10 KB of `data`.
MAX_MENTIONS = 10
MAX_REACTION_CHARS = 45
MAX_DATA_BYTES = 10 * 1024


@dataclass(frozen=True)
class Action:
    """One REST operation: how it is called, what it fires, and how sure that is."""

    name: str
    method: Method
    path: str
    on_behalf_of: OnBehalfOf
    current: tuple[str, ...] = ()
    legacy: tuple[str, ...] = ()
    #: D: CometChat's trigger description; L: live-verified by a third-party harness; I: inference only.
    basis: str = "D+L"
    note: str | None = None

    def url(self, base: str, **params: str) -> str:
        """The full URL with the path parameters filled in (each one URL-encoded: a reaction is an emoji)."""
        if self.path.startswith(CONTROL_PREFIX):  # `emulate`'s own control API sits beside /v3, not under it
            base = base.rstrip("/").removesuffix("/v3")
        return base.rstrip("/") + self.path.format(**{key: quote(value, safe="") for key, value in params.items()})

    def triggers(self, legacy: bool) -> tuple[str, ...]:
        """The webhooks this call fires for an app on legacy or current webhooks."""
        return self.legacy if legacy else self.current


_A = Action
#: The operations of the sheet's §5, keyed by a short name; triggers and their basis from §7.
ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        _A("create_user", "POST", "/users", "none", basis="-"),
        _A("get_user", "GET", "/users/{uid}", "optional", basis="-"),
        _A("list_users", "GET", "/users", "none", basis="-"),
        _A("update_user", "PUT", "/users/{uid}", "none", basis="-"),
        _A("delete_user", "DELETE", "/users/{uid}", "none", basis="-"),
        _A("create_auth_token", "POST", "/users/{uid}/auth_tokens", "none", basis="-"),
        _A("get_message", "GET", "/messages/{id}", "optional", basis="-"),
        _A("get_group", "GET", "/groups/{guid}", "optional", basis="-"),
        _A("list_groups", "GET", "/groups", "optional", basis="-"),
        _A("list_members", "GET", "/groups/{guid}/members", "none", basis="-"),
        _A("send_message", "POST", "/messages", "optional", ("message_sent",), ("before_message", "after_message")),
        _A("edit_message", "PUT", "/messages/{id}", "optional", ("message_edited",), (), note="no legacy trigger is documented"),
        _A("delete_message", "DELETE", "/messages/{id}", "optional", ("message_deleted",), ()),
        _A("add_reaction", "POST", "/messages/{id}/reactions/{reaction}", "required", ("message_reaction_added",)),
        _A("remove_reaction", "DELETE", "/messages/{id}/reactions/{reaction}", "required", ("message_reaction_removed",)),
        _A(
            "pin_message", "POST", "/messages/{id}/pin", "optional", ("message_pinned",), basis="L"),
        _A(
            "unpin_message", "DELETE", "/messages/{id}/pin", "optional", ("message_unpinned",), basis="L"),
        _A(
            "create_group", "POST", "/groups", "optional", ("group_created",),
            note="whether members{...} in the body also fires group_member_added is unknown",
        ),
        _A("update_group", "PUT", "/groups/{guid}", "optional", ("group_updated",)),
        # The same call as update_group, with {"owner": uid} and no onBehalfOf (the OAS: owner is ignored with it).
        _A(
            "transfer_owner", "PUT", "/groups/{guid}", "none", ("group_owner_transferred",),
            note="sent with onBehalfOf, the owner is ignored and group_updated fires instead (seen live by a third party)",
        ),
        _A("delete_group", "DELETE", "/groups/{guid}", "optional", ("group_deleted",)),
        _A("add_members", "POST", "/groups/{guid}/members", "optional", ("group_member_added",)),
        _A("change_scope", "PUT", "/groups/{guid}/members/{uid}", "optional", ("group_member_scope_changed",)),
        _A("kick_member", "DELETE", "/groups/{guid}/members/{uid}", "optional", ("group_member_kicked",)),
        _A(
            "ban_member", "POST", "/groups/{guid}/bannedusers/{uid}", "optional", ("group_member_banned",),
            note="live, with onBehalfOf, data.members holds the acting user (a CometChat bug seen by a third party)",
        ),
        _A("unban_member", "DELETE", "/groups/{guid}/bannedusers/{uid}", "optional", ("group_member_unbanned",)),
        _A("block_users", "POST", "/users/{uid}/blockedusers", "none", ("user_blocked",)),
        _A("unblock_users", "DELETE", "/users/{uid}/blockedusers", "none", ("user_unblocked",)),
    )
}  # fmt: skip

#: Real Chat API (v3) operations `emulate` does not serve: it answers them with CometChat's 404 and says they are
#: real (not a typo). From CometChat's docs index of the Chat REST API (`cometchat/docs` rest-api/llms-chat-rest.mdx)
#: and its OpenAPI file; paths as the sheet writes them (§5), `{x}` one path segment.
NOT_EMULATED: tuple[tuple[Method, str, str], ...] = (
    ("GET", "/apikeys", "list API keys"), ("POST", "/apikeys", "create an API key"),
    ("GET", "/apikeys/{key}", "get an API key"), ("PUT", "/apikeys/{key}", "update an API key"),
    ("DELETE", "/apikeys/{key}", "delete an API key"),
    ("GET", "/users/{uid}/auth_tokens", "list auth tokens"), ("DELETE", "/users/{uid}/auth_tokens", "flush auth tokens"),
    ("GET", "/users/{uid}/auth_tokens/{token}", "get an auth token"),
    ("PUT", "/users/{uid}/auth_tokens/{token}", "update an auth token"),
    ("DELETE", "/users/{uid}/auth_tokens/{token}", "delete an auth token"),
    ("GET", "/roles", "list roles"), ("POST", "/roles", "create a role"), ("GET", "/roles/{role}", "get a role"),
    ("PUT", "/roles/{role}", "update a role"), ("DELETE", "/roles/{role}", "delete a role"),
    ("PUT", "/users", "reactivate users"), ("DELETE", "/users", "deactivate users"),
    ("GET", "/users/{uid}/blockedusers", "list blocked users"),
    ("GET", "/users/{uid}/friends", "list friends"), ("POST", "/users/{uid}/friends", "add friends"),
    ("DELETE", "/users/{uid}/friends", "remove friends"),
    ("GET", "/groups/{guid}/bannedusers", "list banned users"),
    ("GET", "/messages", "list messages"), ("GET", "/users/{uid}/messages", "list user messages"),
    ("GET", "/groups/{guid}/messages", "list group messages"),
    ("GET", "/messages/{id}/thread", "list threaded messages"), ("POST", "/messages/{id}/thread", "send a threaded message"),
    ("GET", "/messages/{id}/reactions", "list reactions"),
    ("GET", "/messages/{id}/reactions/{reaction}", "list reactions with one emoji"),
    ("GET", "/conversations", "list conversations"),
    ("GET", "/users/{uid}/conversation", "get a user conversation"),
    ("PUT", "/users/{uid}/conversation", "update a user conversation"),
    ("DELETE", "/users/{uid}/conversation", "delete a user conversation"),
    ("GET", "/groups/{guid}/conversation", "get a group conversation"),
    ("PUT", "/groups/{guid}/conversation", "update a group conversation"),
    ("DELETE", "/groups/{guid}/conversation", "delete a group conversation"),
    ("POST", "/users/{uid}/conversation/delivered", "mark a user conversation delivered"),
    ("POST", "/users/{uid}/conversation/read", "mark a user conversation read"),
    ("POST", "/groups/{guid}/conversation/delivered", "mark a group conversation delivered"),
    ("POST", "/groups/{guid}/conversation/read", "mark a group conversation read"),
)  # fmt: skip
#: Where `emulate`'s own control API lives (beside /v3 on the same server).
CONTROL_PREFIX = "/_emulator/"
#: What SDK clients cause and REST cannot (the sheet §7, last row; webhooks §10): `emulate` rehearses each through a
#: control endpoint of its own. The triggers depend on its state (a receipt that completes a group's `*_to_all`), so
#: the answer lists what was fired; there is no such call on a real app.
SDK_ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        _A("sdk_receipt", "POST", "/_emulator/receipts", "none", basis="L"),
        _A("sdk_join", "POST", "/_emulator/join", "none", basis="L"),
        _A("sdk_leave", "POST", "/_emulator/leave", "none", basis="L"),
        _A("sdk_presence", "POST", "/_emulator/presence", "none", basis="L"),
        _A("sdk_call", "POST", "/_emulator/calls", "none", basis="L"),
    )
}
SDK_NOTE = (
    "`emulate` stood in for an SDK client: on a real app only a client connected over CometChat's WebSocket causes "
    "these webhooks (third-party live observation)."
)
#: The mark every answer of those endpoints carries, so a REST server that is not `emulate` is told apart.
EMULATOR_MARK = {"emulator": "comethook"}


def action(name: str) -> Action:
    """A REST action (ACTIONS) or one of `emulate`'s SDK stand-ins (SDK_ACTIONS), by name."""
    return ACTIONS[name] if name in ACTIONS else SDK_ACTIONS[name]


def from_emulator(body: Any) -> bool:
    """Whether an answer comes from `emulate`'s SDK stand-ins (it carries EMULATOR_MARK)."""
    return isinstance(body, dict) and body.get("emulator") == EMULATOR_MARK["emulator"]


def sdk_fired(body: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(current, legacy): the triggers an SDK stand-in's answer says it fired, under the app's generation."""
    fired = body.get("triggers") if isinstance(body, dict) else None
    names = tuple(t for t in fired if isinstance(t, str)) if isinstance(fired, list) else ()
    return ((), names) if isinstance(body, dict) and body.get("generation") == "legacy" else (names, ())


#: A text that mentions someone also fires user_mentioned (current webhooks; D+L).
MENTION_TRIGGER = "user_mentioned"


def expected_triggers(action: str, legacy: bool, mentions: bool = False) -> tuple[str, ...]:
    """The webhooks a successful call of `action` fires (user_mentioned too when the text mentions someone)."""
    found = ACTIONS[action].triggers(legacy) if action in ACTIONS else ()
    if mentions and not legacy and action == "send_message":
        found = (*found, MENTION_TRIGGER)
    return found


#: An app id is the first label of the app's REST host, so it must be one DNS label (CometChat's are hex, 16 long).
_APP_ID = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def api_base(app_id: str, region: str) -> str:
    """The per-app REST host for an app id and region (InvalidSetting for an id no host name can carry)."""
    if not _APP_ID.fullmatch(app_id):
        raise InvalidSetting(
            "app_id", " is not a CometChat app id.", "Copy the App ID from the Dashboard (API & Auth Keys), e.g. {example}.",
            value=app_id, example="2379614bd4db65dd",
        )  # fmt: skip
    return API_BASE.format(app_id=app_id.lower(), region=region)


# --- errors ---------------------------------------------------------------------------------------------------

#: The codes a call gets when a before_message webhook (or an extension) dropped the message: an outcome, not a
#: failure. ERR_BLOCKED_BY_WEBHOOK for a REST send is the sheet's inference (§8); CometChat never shows it.
DROPPED_CODES = frozenset({"ERR_BLOCKED_BY_WEBHOOK", "ERR_BLOCKED_BY_EXTENSION"})
#: Codes whose use here is the sheet's inference, not CometChat's documentation (said next to them in output).
INFERRED_CODES = frozenset({"ERR_BLOCKED_BY_WEBHOOK", "ERR_API_NOT_FOUND"})

#: What to do about each error code (the user's next step).
HINTS: dict[str, str] = {
    "AUTH_ERR_EMPTY_APIKEY": "Set COMETCHAT_API_KEY to the app's REST API key (Dashboard → API & Auth Keys).",
    "AUTH_ERR_APIKEY_NOT_FOUND": "Check the key and the region: COMETCHAT_API_KEY must be a REST API key of this app, "
    "and COMETCHAT_REGION the app's region (us, eu, in).",
    "AUTH_ERR_NO_ACCESS": "The key lacks scope: use a fullAccess REST API key, not the authOnly Auth Key.",
    "AUTH_ERR_EMPTY_APPID": "Set COMETCHAT_APP_ID (or --app-id).",
    "AUTH_ERR_INVALID_APPID": "Check COMETCHAT_APP_ID and COMETCHAT_REGION: an app id in another region is not found.",
    "ERR_UID_NOT_FOUND": "Create the users first: `comethook trigger setup` (a deactivated user gives this too).",
    "ERR_UID_ALREADY_EXISTS": "The user exists already; `trigger setup` reuses it.",
    "ERR_GUID_NOT_FOUND": "Create the group first: `comethook trigger group create` or `comethook trigger setup`.",
    "ERR_GUID_ALREADY_EXISTS": "The group exists already; pick another --guid or reuse it.",
    "ERR_MESSAGE_ID_NOT_FOUND": "No such message: check the id, or send one first (`trigger message`, then --last).",
    "ERR_MSG_NOT_FOUND": "No such message: check the id, or send one first (`trigger message`, then --last).",
    "ERR_MESSAGE_NOT_A_SENDER": "Only the sender may edit or delete a message: pass --from with the sender's uid.",
    "ERR_NOT_A_MEMBER": "That user is not a member of the group: `trigger member add` first.",
    "ERR_ALREADY_JOINED": "That user is a member already.",
    "ERR_SAME_SCOPE": "The member has that scope already: pick another --scope.",
    "ERR_ALREADY_BANNED": "That user is banned already: `trigger member unban` first.",
    "ERR_NOT_A_BANNED_USER": "That user is not banned: `trigger member ban` first.",
    "ERR_CANNOT_BLOCK_SELF": "Pick two different users.",
    "ERR_BLOCKED_RECEIVER": "The sender has blocked the receiver: `trigger unblock` first.",
    "ERR_BLOCKED_SENDER": "The receiver has blocked the sender: `trigger unblock` first.",
    "ERR_EMPTY_MESSAGE_TEXT": "Give the message some --text.",
    "ERR_BAD_REQUEST": "CometChat refused the request body; see the details above.",
    "ERR_API_NOT_FOUND": "No such endpoint: check --api-base (it ends in /v3) and the region.",
    "ERR_TOO_MANY_REQUESTS": "Rate limited: wait a minute, or slow down (comethook already backed off on Retry-After).",
    "ERR_PLAN_RESTRICTION": "Your CometChat plan does not allow this.",
    "ERR_PLAN_QUOTA_RESTRICTION": "Your CometChat plan's quota is used up (from `emulate`: its state is full; "
    "POST /_emulator/reset empties it).",
    "ERR_SUBSCRIPTION_EXPIRED": "The app's subscription has expired.",
    "ERR_BLOCKED_BY_WEBHOOK": "Your before_message webhook dropped the message (do_not_propagate).",
    "ERR_BLOCKED_BY_EXTENSION": "An extension (e.g. moderation) blocked the message.",
    "ERR_REQUEST_REFUSED": "`emulate` answers only its loopback names and its --host address, and never another "
    "site's browser page: call it as http://127.0.0.1:PORT/v3 (or by its --host), without an Origin header.",
}
#: The hint when the code is unknown, by status (the sheet §2: statuses are third-party observation).
STATUS_HINTS = {
    401: "The REST API key was refused: check COMETCHAT_API_KEY and COMETCHAT_REGION.",
    403: "The key may lack scope: use a fullAccess REST API key.",
    404: "Something was not found: check the ids, the region and --api-base.",
    429: "Rate limited: wait and try again.",
}


def hint_for(code: str | None, status: int | None) -> str:
    """What to do next about a failed call."""
    if code and code in HINTS:
        return HINTS[code]
    if status in STATUS_HINTS:
        return STATUS_HINTS[status]
    if status is not None and status >= 500:
        return "CometChat had a problem; try again later (https://status.cometchat.com)."
    return "See CometChat's error guide: https://www.cometchat.com/docs/articles/error-guide"


@dataclass(frozen=True)
class ApiError:
    """CometChat's error body, read defensively: {"error": {"code", "message", "devMessage", "source", "details"?}}."""

    code: str | None
    message: str | None
    details: dict[str, Any] | None = None


def read_error(body: Any) -> ApiError | None:
    """The error in a parsed answer body, or None when it is not CometChat's error shape."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    message = error.get("message") or error.get("devMessage")
    details = error.get("details")
    return ApiError(
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else None,
        details if isinstance(details, dict) else None,
    )


def error_body(code: str, message: str, details: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """An error body in CometChat's shape (as third-party fixtures show it; CometChat's docs show none)."""
    error: dict[str, Any] = {"message": message, "devMessage": message, "source": "chat-api", "code": code}
    if details:
        error["details"] = details
    return {"error": error}


#: The status the emulator answers with for each code (the sheet §2: third-party observation; the rest inferred).
STATUS: dict[str, int] = {
    "AUTH_ERR_EMPTY_APIKEY": 401,
    "AUTH_ERR_APIKEY_NOT_FOUND": 401,
    "AUTH_ERR_NO_ACCESS": 403,
    "ERR_BAD_REQUEST": 400,
    "ERR_UID_ALREADY_EXISTS": 400,
    "ERR_GUID_ALREADY_EXISTS": 400,
    "ERR_EMPTY_MESSAGE_TEXT": 400,
    "ERR_EMPTY_RECEIVER": 400,
    "ERR_INVALID_RECEIVER_TYPE": 400,
    "ERR_INVALID_MESSAGE_TYPE": 400,
    "ERR_INVALID_CUSTOM_DATA": 400,
    "ERR_INVALID_METADATA": 400,
    "ERR_UID_NOT_FOUND": 404,
    "ERR_GUID_NOT_FOUND": 404,
    "ERR_MESSAGE_ID_NOT_FOUND": 404,
    "ERR_NOT_A_MEMBER": 404,
    "ERR_API_NOT_FOUND": 404,
    "ERR_TOO_MANY_REQUESTS": 429,
    "ERR_BLOCKED_BY_WEBHOOK": 403,
    #: The emulator's choices: a full state, and a request its guard refused (a code of its own, not CometChat's).
    "ERR_PLAN_QUOTA_RESTRICTION": 403,
    "ERR_REQUEST_REFUSED": 403,
    "ERR_EXCEPTION": 500,
    "ERR_PINNED_MESSAGES_LIMIT_EXCEEDED": 400,
}


#: Why a REST call got no usable answer: no connection, no answer in time, an answer that is not JSON, a broken exchange.
CallFailure = Literal["unreachable", "tls", "timeout", "not_json", "too_large", "protocol"]


@dataclass(frozen=True)
class RestCall:
    """One REST call and its answer: made by `trigger` (url is the full URL) or served by `emulate` (url is the path)."""

    action: str | None
    method: str
    url: str
    status: int | None
    body: Any
    latency_ms: float | None
    error: ApiError | None = None
    #: Set when there was no usable answer (then `status` may still be set, e.g. for not_json).
    failure: CallFailure | None = None
    failure_detail: str | None = None
    attempts: int = 1
    #: Seconds spent waiting on 429 Retry-After before the answer that counts.
    waited_s: float = 0.0
    request: Any = None
    on_behalf_of: str | None = None
    #: A last 429's Retry-After (seconds) that was not waited out: longer than a back-off, or than the time left.
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer with a JSON body."""
        return self.failure is None and self.status is not None and 200 <= self.status < 300

    @property
    def dropped(self) -> bool:
        """The answer says a webhook or an extension dropped the message (an outcome, not a failure)."""
        return self.error is not None and self.error.code in DROPPED_CODES


def status_for(code: str) -> int:
    """The HTTP status for an error code (400 unless the sheet or an inference says otherwise)."""
    return STATUS.get(code, 400)


def message_id(body: Any) -> str | None:
    """The id of the message a call was about: edit and delete answer with an action message whose
    `data.entities.on.entity.id` is the edited message (the sheet §6.2); a send answers with the message."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return None
    if data.get("category") == "action":
        on = _dig(data, "data", "entities", "on", "entity", "id")
        return str(on) if isinstance(on, (str, int)) else None
    found = data.get("id")
    return str(found) if isinstance(found, (str, int)) else None


def moderation_status(body: Any) -> str | None:
    """`data.data.moderation.status` of a send's answer: "pending" while moderation judges it (None: not said)."""
    status = _dig(body, "data", "data", "moderation", "status")
    return status if isinstance(status, str) else None


def injected(body: Any, webhook_id: str | None = None) -> Any:
    """`data.data.metadata["@injected"]["webhooks"]` of a send's answer (one webhook's part with `webhook_id`)."""
    webhooks = _dig(body, "data", "data", "metadata", "@injected", "webhooks")
    if webhook_id is None or not isinstance(webhooks, dict):
        return webhooks
    return webhooks.get(webhook_id)


def _dig(document: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document

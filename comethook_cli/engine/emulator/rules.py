"""What the emulator holds to: CometChat's limits, its own caps, the fixed names, its choices where CometChat is silent.

The other modules read a cap as `rules.MAX_USERS` (the module's attribute, at call time), so a test can lower one.
"""

from __future__ import annotations

#: The sender of a message sent without onBehalfOf (the sheet §5.1, observed live by a third party).
SYSTEM_USER = "app_system"
LEGACY_TRIGGERS = frozenset({"before_message", "after_message", "after_connection_status_changed"})
#: Triggers both generations fire under one name, each in its own shape (the webhooks sheet §2): a legacy app gets
#: the legacy shape.
BOTH_GENERATIONS = frozenset({"message_delivery_receipt", "message_read_receipt"})
#: The largest REST body accepted (CometChat: 10 KB for a POST's data, 65 KB for a whole message).
MAX_REST_BODY = 128 * 1024
#: What the emulator decides where CometChat documents nothing (docs/reference/cli/emulate.md repeats these).
CHOICES = {
    "hook_failure": "a before_message timeout, non-2xx or invalid answer lets the message pass (--on-hook-failure drop drops it)",
    "blocked_status": "a dropped send answers 403 with ERR_BLOCKED_BY_WEBHOOK (the code is the sheet's inference, the status a guess)",
    "injected_in_answer": "an injected answer appears in the REST answer and in after_message (inferred, not documented)",
    "create_members": "members{...} on create group fires no group_member_added (CometChat's behaviour is unknown)",
    "state_caps": "a full state (MAX_USERS, MAX_GROUPS, MAX_MESSAGES, MAX_STATE_BYTES) answers 403 ERR_PLAN_QUOTA_RESTRICTION",
    "pin_answer": "pin and unpin answer {success, message} (CometChat's answer is undocumented), and always fire",
    "transfer_member": "an ownership transfer needs the new owner to be a member (ERR_NOT_A_MEMBER), who becomes admin",
    "list_order": "GET /users, /groups and /groups/{guid}/members list by id; an auth token is <uid>_<hex>, not kept",
    "read_delivers": "a read receipt counts as delivered too, so it can complete message_delivered_to_all",
    "moderation_pending": "a moderated send answers data.moderation.status pending (the SDK docs' word; REST's is undocumented)",
    "blocked_silent": "a message moderation blocks gets no message_sent, after_message or user_mentioned (inferred)",
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

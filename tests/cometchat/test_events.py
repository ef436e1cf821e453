"""`events.describe`: the one-line summary of every trigger family, asserted as exact text on catalog payloads, and
what `listen` says of the documented and the live shapes."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from comethook_cli.cometchat.events import BAN_QUIRK, PREVIEW_CHARS, describe
from comethook_cli.cometchat.payloads import BuildOptions, IdSource, build, catalog, find_template, parse_set
from comethook_cli.models import EventInfo
from tests.cometchat.test_payloads import body_of
from tests.conftest import ndjson, post_json

# The catalog's people (payloads/people.py): cometchat-uid-1 is Andrew Joseph, cometchat-uid-2 George Alan.
A, G = "Andrew Joseph", "George Alan"


class CountingIds(IdSource):
    """Ids 500, 501, ... instead of random ones, so a summary can be asserted as an exact string."""

    def __init__(self) -> None:
        self.counter = itertools.count(500)

    def next(self) -> str:
        """The next message id."""
        return str(next(self.counter))


def body(trigger: str, legacy: bool = False, **options: Any) -> dict[str, Any]:
    """A catalog delivery with predictable ids (the first one is 500) and the text "hello"."""
    options.setdefault("text", "hello")
    return build(find_template(trigger, legacy=legacy), BuildOptions(**options), CountingIds(), now=1_700_000_000)


def info(trigger: str, legacy: bool = False, **options: Any) -> EventInfo:
    return describe(body(trigger, legacy, **options))


def short(session: str) -> str:
    """How a summary shortens a long call session id: its first 10 and last 6 characters."""
    return f"{session[:10]}…{session[-6:]}"


#: (trigger, generation) → its exact summary. Every catalog entry is here (test_every_catalog_trigger_is_pinned).
SUMMARIES = {
    # message family: sender → receiver, category/type, text preview, id
    ("before_message", "legacy"): f'{A} → {G} · "hello" · id not yet assigned',
    ("after_message", "legacy"): f'{A} → {G} · "hello" · message 500',
    ("message_sent", "current"): f'{A} → {G} · "hello" · message 500',
    ("user_mentioned", "current"): f'{A} → {G} · "Hi <@uid:cometchat-uid-2> hello" · message 500',
    # actions on an existing message: who did it, to which message, its text
    ("message_edited", "current"): f'{A} edited message 500: "hello"',
    ("message_deleted", "current"): f'{A} deleted message 500: "hello"',
    ("message_pinned", "current"): f'{A} pinned message 500: "hello"',
    ("message_unpinned", "current"): f'{A} unpinned message 500: "hello"',
    # receipts: who, what, which message, whose message (legacy and current shapes differ; the summary does not)
    ("message_delivery_receipt", "legacy"): "cometchat-uid-2 delivered message 500 (sent by cometchat-uid-1)",
    ("message_read_receipt", "legacy"): "cometchat-uid-2 read message 500 (sent by cometchat-uid-1)",
    ("message_delivery_receipt", "current"): f"{G} delivered message 500 (sent by cometchat-uid-1)",
    ("message_read_receipt", "current"): f"{G} read message 500 (sent by cometchat-uid-1)",
    ("message_delivered_to_all", "current"): "System deliveredToAll message 500 (sent by cometchat-uid-1)",
    ("message_read_by_all", "current"): "System readByAll message 500 (sent by cometchat-uid-1)",
    # reactions
    ("message_reaction_added", "current"): f"{A} reacted 👍 on message 500",
    ("message_reaction_removed", "current"): f"{A} removed reaction 👍 on message 500",
    # users: blocking, and the connection status (legacy and current)
    ("user_blocked", "current"): f"{A} blocked {G}",
    ("user_unblocked", "current"): f"{A} unblocked {G}",
    ("user_connection_status_changed", "current"): f"{A} disconnected (javascript), now offline",
    ("after_connection_status_changed", "legacy"): "cometchat-uid-1 connected (web), now online",
    # groups: the group itself, then its members
    ("group_created", "current"): f"group Hiking Group created by {A}",
    ("group_updated", "current"): "group Hiking Group updated by cometchat-uid-1",
    ("group_deleted", "current"): "group Hiking Group deleted by cometchat-uid-1",
    ("group_owner_transferred", "current"): "Hiking Group: owner cometchat-uid-1 → cometchat-uid-2",
    ("group_member_added", "current"): f"{G} added to Hiking Group (by {A})",
    ("group_member_joined", "current"): f"{G} joined Hiking Group",
    ("group_member_left", "current"): f"{G} left Hiking Group",
    ("group_member_kicked", "current"): f"{G} kicked from Hiking Group (by {A})",
    ("group_member_removed", "current"): f"{G} removed from Hiking Group (by {A})",
    ("group_member_banned", "current"): f"{G} banned from Hiking Group (by {A})",
    ("group_member_unbanned", "current"): f"{G} unbanned in Hiking Group (by {A})",
    ("group_member_scope_changed", "current"): f"{A} changed scope of {G} participant → admin in Hiking Group",
    # calls that carry a call message: `by` acted (the callee for rejected and busy), `for` is the other party
    ("call_initiated", "current"): f"{A} → {G} audio call initiated · call 500",
    ("call_cancelled", "current"): f"{A} → {G} audio call cancelled · call 500",
    ("call_unanswered", "current"): f"{A} → {G} audio call unanswered · call 500",
    ("call_rejected", "current"): f"{G} → {A} audio call rejected · call 500",
    ("call_busy", "current"): f"{G} → {A} audio call busy · call 500",
    # calls and meetings as sessions ({session} is the delivery's own sessionId, shortened)
    ("call_started", "current"): "session {session} started",
    ("call_participant_joined", "current"): f"{A} joined session {{session}}",
    ("call_participant_left", "current"): f"{A} left session {{session}}",
    ("call_ended", "current"): "session {session} ended after 95 s, 2 participant(s)",
    ("meeting_started", "current"): "session {session} started",
    ("meeting_participant_joined", "current"): f"{A} joined session {{session}}",
    ("meeting_participant_left", "current"): f"{A} left session {{session}}",
    ("meeting_ended", "current"): "session {session} ended after 95 s, 1 participant(s)",
    # CometChat sends the duration as a string, and the summary shows it as sent.
    ("recording_generated", "current"): "recording of session {session} ready (21.433000 s)",
    ("transcription_generated", "current"): "transcript of session {session} ready",
    # moderation: the moderated message with its status and rule, or the engine's failure
    ("moderation_engine_approved", "current"): f'{A} → {G} · "hello" · moderation approved · message 500',
    ("moderation_engine_blocked", "current"): (
        f'{A} → {G} · "hello" · moderation disapproved (rule profanity-filter) · message 500'
    ),
    ("moderation_manual_approved", "current"): f'{A} → {G} · "hello" · moderation approved · message 500',
    ("moderation_engine_failed", "current"): "moderation engine failed on message 500: http_5xx (HTTP 500), outcome approved",
    # campaigns, notifications, feed items, push notifications
    ("after_campaign_completed", "current"): "campaign Welcome Campaign completed: 100/100 sent, 0 failed",
    ("after_campaign_failed", "current"): "campaign Promo Campaign failed: 0/50 sent, 50 failed",
    ("after_notification_created", "current"): "notification weekly-digest dispatching to 3 target(s)",
    ("after_feed_item_sent", "current"): "feed item promo sent for cometchat-uid-2",
    ("after_feed_item_delivered", "current"): "feed item promo delivered for cometchat-uid-2",
    ("after_feed_item_read", "current"): "feed item promo read for cometchat-uid-2",
    ("after_feed_item_interacted", "current"): "feed item promo interacted for cometchat-uid-2 (cta_clicked)",
    ("after_push_notification_sent", "current"): "push notification summer-sale sent for cometchat-uid-2",
    ("after_push_notification_delivered", "current"): "push notification summer-sale delivered for cometchat-uid-2",
    ("after_push_notification_clicked", "current"): "push notification summer-sale clicked for cometchat-uid-2",
    ("push-notification-payload-generated", "current"): f'push (chat) for George Alan: "{A}: hello"',
    ("email-notification-payload-generated", "current"): f'email for George Alan, 1 message(s): "New messages from {A}"',
    ("sms-notification-payload-generated", "current"): (
        f'sms for George Alan, 1 message(s): "You\'ve received new messages from {A}!"'
    ),
}


def test_every_catalog_trigger_is_pinned() -> None:
    assert {(t.trigger, t.generation) for t in catalog()} == set(SUMMARIES)


@pytest.mark.parametrize(("trigger", "generation"), sorted(SUMMARIES))
def test_summary_of_each_trigger(trigger: str, generation: str) -> None:
    delivery = body(trigger, legacy=generation == "legacy")
    described = describe(delivery)
    session = delivery["data"].get("sessionId") if isinstance(delivery.get("data"), dict) else None
    expected = SUMMARIES[trigger, generation].format(session=short(session) if isinstance(session, str) else "")
    assert described.summary == expected
    assert (described.trigger, described.generation) == (trigger, generation)
    assert described.family == find_template(trigger, legacy=generation == "legacy").family
    # Read from the JSON as it goes over the wire, not only from the dict the builder made.
    assert describe(json.loads(json.dumps(delivery))).summary == expected


def test_a_session_id_is_shortened_only_when_long() -> None:
    assert info("meeting_started", sets=[("data.sessionId", "v1.us.123.abc")]).summary == "session v1.us.123.abc started"
    long_id = "v1.us.2379614bd4db65dd.17960133201472dcf7b5a43f4901107ab749e71d131b5"
    assert info("call_started", sets=[("data.sessionId", long_id)]).summary == "session v1.us.2379…d131b5 started"


def test_group_media_and_long_text_messages() -> None:
    image = info("message_sent", group="team-42", type="image", text=None)
    assert image.summary == f"{A} → team-42 · message/image · 1 attachment(s) · message 500"
    long = info("message_sent", text="word " * 30 + "\n\tend")
    preview = ("word " * 30)[: PREVIEW_CHARS - 1] + "…"
    assert long.summary == f'{A} → {G} · "{preview}" · message 500'
    spaced = info("after_message", legacy=True, text="two\n\nlines\t here")
    assert spaced.summary == f'{A} → {G} · "two lines here" · message 500'


def test_an_edit_names_the_original_message() -> None:
    assert info("message_edited", text="fixed typo", message_id="4242").summary == f'{A} edited message 4242: "fixed typo"'


def test_the_ban_quirk_is_flagged_when_the_actor_is_among_the_members() -> None:
    quirky = info("group_member_banned", sets=[("data.members", {"cometchat-uid-1": "cometchat-uid-1"})])
    assert quirky.summary == f"{A} banned from Hiking Group (by {A}) · {BAN_QUIRK}"
    assert BAN_QUIRK not in info("group_member_banned").summary


@pytest.mark.parametrize(
    ("payload", "summary"),
    [
        ({"trigger": "message_flagged", "data": {"flag": 1, "by": 2}}, "message_flagged (undocumented trigger; data: flag, by)"),
        ({"trigger": "message_flagged"}, "message_flagged (undocumented trigger; data: no data)"),
        ({"hello": 1, "world": 2}, "not a CometChat delivery (hello, world)"),
        ({"trigger": ""}, "not a CometChat delivery (trigger)"),
        ([1, 2], "not a CometChat delivery (list)"),
        (None, "not a CometChat delivery (NoneType)"),
    ],
)  # fmt: skip
def test_what_is_not_a_documented_delivery_says_so(payload: Any, summary: str) -> None:
    described = describe(payload)
    assert described.summary == summary and described.generation == "unknown" and described.family == "unknown"


@pytest.mark.parametrize("template", catalog(), ids=lambda t: f"{t.trigger}-{t.generation}")
def test_a_trimmed_delivery_never_breaks_the_summary(template: Any) -> None:
    # CometChat's own examples trim objects differently. What such a summary says is not pinned here
    # (today it reads "None reacted None on message None"); that describing it never raises is.
    for trimmed in ({"trigger": template.trigger, "data": {}}, {"trigger": template.trigger}, {"trigger": template.trigger, "data": []},
                    {"trigger": template.trigger, "data": {"message": {}, "call": {}, "members": [], "group": "g", "users": 1}}):  # fmt: skip
        described = describe(trimmed)
        assert described.trigger == template.trigger and isinstance(described.summary, str) and described.summary


# --- live shapes: what listen says of the documented and the live ones ------------------------------------------------


def test_listen_still_reads_the_documented_action_message_shape() -> None:
    documented = {
        "trigger": "message_edited",
        "data": {"message": {"id": "2", "category": "action", "type": "message", "sender": "cometchat-uid-1", "data": {
            "action": "edited",
            "entities": {
                "by": {"entity": {"uid": "cometchat-uid-1", "name": "Andrew Joseph"}, "entityType": "user"},
                "on": {"entity": {"id": "1", "data": {"text": "fixed typo"}, "editedBy": "cometchat-uid-1"},
                       "entityType": "message"},
            },
        }}},
    }  # fmt: skip
    assert describe(documented).summary == 'Andrew Joseph edited message 1: "fixed typo"'
    live = describe(body_of("message_edited", message_id="1", text="fixed typo"))
    assert live.summary == 'Andrew Joseph edited message 1: "fixed typo"'


def test_listen_summarises_live_shapes_and_flags_the_quirk(listen_process: Any) -> None:
    quirk = parse_set('data.members={"cometchat-uid-1": {"uid": "cometchat-uid-1", "name": "Andrew Joseph"}}')
    sent = [
        body_of("message_edited", text="new words", message_id="900"),
        body_of("call_rejected"),
        body_of("message_pinned", message_id="901"),
        body_of("group_member_banned", sets=(quirk,)),
        body_of("moderation_engine_blocked"),
    ]
    listener = listen_process("--max-events", str(len(sent)), "--no-history")
    for body in sent:
        status, _ = post_json(listener.url + "/webhook", json.dumps(body).encode(), {"Content-Type": "Application/json"})
        assert status == 200
    code, out, err = listener.finish()
    assert code == 0, err
    summaries = [line["summary"] for line in ndjson(out) if line["type"] == "event"]
    assert summaries[0] == 'Andrew Joseph edited message 900: "new words"'
    assert summaries[1].startswith("George Alan → Andrew Joseph audio call rejected")
    assert summaries[2].startswith("Andrew Joseph pinned message 901")
    assert summaries[3].endswith(BAN_QUIRK)
    assert "moderation disapproved (rule profanity-filter)" in summaries[4]

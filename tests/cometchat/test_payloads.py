"""The payload catalog: every documented trigger, documented shapes, the builder and --set, Bodies (the lean send
path's splicer), and fidelity to the live shapes (shared/cometchat-webhooks.md §9 and §10) with the key lists beside
the templates."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from comethook_cli.cometchat import payloads
from comethook_cli.cometchat.events import BAN_QUIRK, describe, get
from comethook_cli.cometchat.payloads import (
    Bodies,
    BuildOptions,
    IdSource,
    Template,
    build,
    catalog,
    encode,
    find_template,
    parse_set,
    set_path,
)
from comethook_cli.errors import UsageError
from tests.payload_shapes import shape_problems

# Triggers named in shared/cometchat-webhooks.md §1.1 and §1.2, and the two §9 saw delivered live.
LEGACY = {
    "before_message",
    "after_message",
    "message_delivery_receipt",
    "message_read_receipt",
    "after_connection_status_changed",
}
CURRENT = set(
    [
        "message_sent",
        "message_edited",
        "message_deleted",
        "message_delivery_receipt",
        "message_read_receipt",
        "message_delivered_to_all",
        "message_read_by_all",
        "message_reaction_added",
        "message_reaction_removed",
        "user_mentioned",
        "user_blocked",
        "user_unblocked",
        "user_connection_status_changed",
        "group_created",
        "group_updated",
        "group_deleted",
        "group_member_added",
        "group_member_removed",
        "group_member_joined",
        "group_member_left",
        "group_member_kicked",
        "group_member_banned",
        "group_member_unbanned",
        "group_member_scope_changed",
        "group_owner_transferred",
        "call_initiated",
        "call_started",
        "call_participant_joined",
        "call_participant_left",
        "call_ended",
        "call_busy",
        "call_cancelled",
        "call_rejected",
        "call_unanswered",
        "meeting_started",
        "meeting_participant_joined",
        "meeting_participant_left",
        "meeting_ended",
        "recording_generated",
        "transcription_generated",
        "moderation_engine_approved",
        "moderation_engine_blocked",
        "moderation_manual_approved",
        "moderation_engine_failed",
        "after_campaign_completed",
        "after_campaign_failed",
        "after_notification_created",
        "after_feed_item_sent",
        "after_feed_item_delivered",
        "after_feed_item_read",
        "after_feed_item_interacted",
        "after_push_notification_sent",
        "after_push_notification_delivered",
        "after_push_notification_clicked",
        "message_pinned",
        "message_unpinned",
        # §10: the custom notification providers' triggers (CometChat's notification docs; push confirmed live).
        "push-notification-payload-generated",
        "email-notification-payload-generated",
        "sms-notification-payload-generated",
    ]
)
MESSAGE_KEYS = ["conversationId", "sender", "receiverType", "receiver", "category", "type", "data", "sentAt", "updatedAt"]
USER_RECEIPT = [
    "receiver",
    "receiverType",
    "type",
    "sender",
    "messageSender",
    "body.action",
    "body.messageId",
    "body.user",
    "body.timestamp",
]
# Documented `data` keys per trigger (shared/cometchat-webhooks.md §2 table and §7 examples; §9's live shape where they differ).
DATA_KEYS: dict[str, list[str]] = {
    "message_sent": [
        "message.id",
        *(f"message.{k}" for k in MESSAGE_KEYS),
        "message.data.entities.sender.entity.uid",
        "message.data.entities.receiver.entityType",
    ],
    "user_mentioned": ["message.id", "message.data.text", "message.data.mentions"],
    "moderation_engine_approved": ["message.id", "message.data.moderation.status", "message.data.metadata.@injected"],
    "moderation_engine_blocked": [
        "message.id",
        "message.data.moderation.status",
        "message.data.moderation.rule.id",
        "moderation.0.rule.action",
    ],
    "moderation_manual_approved": [
        "message.id",
        "moderation.0.condition",
        "moderation.0.rule.id",
        "moderation.0.rule.action",
        "moderation.0.rule.blockedAt",
        "reviewed",
    ],
    "message_edited": ["message.id", "message.category", "message.data.text", "message.editedAt", "message.editedBy"],
    "message_deleted": ["message.id", "message.deletedAt", "message.deletedBy"],
    "message_pinned": ["message.id", "message.pinnedBy", "message.pinnedAt"],
    "message_unpinned": ["message.id", "message.unpinnedBy", "message.pinnedAt", "message.unpinnedAt"],
    "message_reaction_added": [
        "reaction.id",
        "reaction.messageId",
        "reaction.reaction",
        "reaction.uid",
        "reaction.reactedAt",
        "reaction.reactedBy.uid",
    ],
    "message_delivery_receipt": USER_RECEIPT,
    "message_read_receipt": USER_RECEIPT,
    "message_delivered_to_all": USER_RECEIPT,
    "message_read_by_all": USER_RECEIPT,
    "user_blocked": ["users", "by.uid"],
    "user_connection_status_changed": [
        "timestamp",
        "user.uid",
        "status",
        "currentConnection.action",
        "currentConnection.connectedAt",
        "userPresenceChanged",
    ],
    "group_created": ["group.guid", "members"],
    "group_updated": ["group.guid", "group.updatedBy"],
    "group_owner_transferred": ["group.owner", "group.oldOwner"],
    "group_member_added": ["group.guid", "members", "by.uid"],
    "group_member_scope_changed": ["group.guid", "members", "by.uid"],
    "group_member_joined": ["group.guid", "members"],
    "call_initiated": ["call.id", "call.category", "call.type", "call.data.action", "call.sentAt"],
    "call_started": ["sessionId", "created_at"],
    "call_participant_joined": ["sessionId", "occupant.uid", "occupant.joined_at", "occupant.audio_call", "occupant.name"],
    "call_participant_left": ["sessionId", "occupant.uid", "occupant.joined_at", "occupant.left_at"],
    "call_ended": ["sessionId", "all_occupants.0.uid", "created_at", "destroyed_at"],
    "meeting_ended": ["sessionId", "all_occupants.0.uid", "created_at", "destroyed_at"],
    "recording_generated": ["recordingDate", "duration", "startTime", "sessionId", "recording_url"],
    "transcription_generated": ["sessionId", "tid", "transcriptDate", "transcript_url", "startTime", "endTime"],
    "moderation_engine_failed": ["resource.id", "contentType", "outcome", "completedAt", "failures.0.category"],
    "after_campaign_completed": ["campaignId", "status", "totalTargets", "sentCount", "failedCount", "completedAt"],
    "after_feed_item_sent": ["id", "notificationId", "receiver", "status", "sentAt"],
    "after_push_notification_clicked": ["pushNotificationId", "receiver", "status", "clickedAt"],
    # §10's live-verified validators: the paths each one reads.
    "push-notification-payload-generated": [
        "to.uid",
        "notificationDetails.title",
        "notificationDetails.body",
        "notificationDetails.sender",
        "notificationDetails.type",
    ],
    "email-notification-payload-generated": ["to.uid", "messages.0.message", "senderDetails.uid", "subject"],
    "sms-notification-payload-generated": ["to.uid", "messages.0.message", "senderDetails.uid", "smsContent"],
}


def test_catalog_covers_every_documented_trigger() -> None:
    assert {t.trigger for t in catalog() if t.generation == "legacy"} == LEGACY
    assert {t.trigger for t in catalog() if t.generation == "current"} == CURRENT


@pytest.mark.parametrize("template", catalog(), ids=lambda t: t.key)
def test_every_entry_builds_with_the_documented_structure(template: Any) -> None:
    before = int(time.time())
    body = build(template, BuildOptions())
    # What goes on the wire is plain JSON (no tokens left behind).
    wire = json.dumps(body)
    assert "{{" not in wire and "$message" not in wire and "$user" not in wire
    assert body["trigger"] == template.trigger
    # A custom notification provider is called with webhook "custom" (CometChat's docs), never a configured webhook's id.
    assert body["webhook"] == ("custom" if template.family == "notification" else "comethook-dev")
    assert body["appId"] == "2379614bd4db65dd"
    if template.generation == "current" or template.trigger not in ("before_message", "after_message"):
        assert body["region"] == "us"
    else:
        assert "region" not in body and "origin" not in body
    if template.trigger in ("call_started", "call_ended", "call_participant_joined", "call_participant_left"):
        assert body["type"] == "call"
    if template.trigger.startswith("meeting_"):
        assert body["type"] == "meet"
    if template.generation == "current":
        for path in DATA_KEYS.get(template.trigger, []):
            assert get(body["data"], path) is not None, f"{template.key}: data.{path} missing"
    info = describe(body)
    assert info.trigger == template.trigger
    assert info.generation == template.generation
    assert info.summary and "None" not in info.summary
    for key in ("sentAt", "updatedAt"):
        for message in (get(body, "data"), get(body, "data.message"), get(body, "data.call")):
            if isinstance(message, dict) and key in message:
                assert before - 200 <= message[key] <= before + 5  # seconds, recent


def test_legacy_before_message_has_no_id_and_after_message_has_a_string_id() -> None:
    before = build(find_template("before_message"), BuildOptions())
    after = build(find_template("after_message"), BuildOptions())
    assert "id" not in before["data"]
    assert isinstance(after["data"]["id"], str) and after["data"]["id"].isdigit()
    for key in ("conversationId", "sender", "receiverType", "receiver", "category", "type", "sentAt", "updatedAt"):
        assert key in before["data"]
    assert before["data"]["data"]["entities"]["sender"]["entity"]["name"] == "Andrew Joseph"
    assert set(before) == {"trigger", "data", "appId", "webhook"}


def test_receipts_default_to_current_and_legacy_flag_picks_legacy_shape() -> None:
    current = build(find_template("message_read_receipt"), BuildOptions())
    legacy = build(find_template("message_read_receipt", legacy=True), BuildOptions())
    assert current["data"]["body"]["action"] == "read" and "receiptType" not in current["data"]
    assert legacy["data"]["receiptType"] == "read" and isinstance(legacy["data"]["readAt"], int)
    assert legacy["origin"] == {"platform": "WEBSOCKET"}


def test_connection_status_times_are_milliseconds() -> None:
    now = time.time()
    body = build(find_template("user_connection_status_changed"), BuildOptions())
    assert abs(body["data"]["timestamp"] - now * 1000) < 5000
    legacy = build(find_template("user_connection_status_change"), BuildOptions())
    assert legacy["trigger"] == "after_connection_status_changed"
    assert abs(legacy["data"]["event"]["at"] - now * 1000) < 5000


def test_fresh_ids_per_build() -> None:
    ids = IdSource()
    template = find_template("message_sent")
    seen = {build(template, BuildOptions(), ids)["data"]["message"]["id"] for _ in range(50)}
    assert len(seen) == 50


@pytest.mark.parametrize("kind", ["image", "video", "audio", "file"])
def test_media_types_carry_attachments_and_url(kind: str) -> None:
    message = build(find_template("message_sent"), BuildOptions(type=kind, text="caption"))["data"]["message"]
    assert message["type"] == kind and message["category"] == "message"
    attachment = message["data"]["attachments"][0]
    assert set(attachment) == {"url", "name", "mimeType", "extension", "size"}
    assert isinstance(attachment["size"], str)
    assert message["data"]["url"] == attachment["url"]
    assert re.match(r"https://data-us\.cometchat\.io/2379614bd4db65dd/media/\d+_\d+_[0-9a-f]+\.\w+$", attachment["url"])
    assert message["data"]["text"] == "caption"


def test_custom_type_and_group_receiver() -> None:
    message = build(find_template("message_sent"), BuildOptions(type="custom", group="team-42"))["data"]["message"]
    assert message["category"] == "custom" and isinstance(message["data"]["customData"], dict)
    assert message["receiverType"] == "group" and message["receiver"] == "team-42"
    assert message["conversationId"] == "group_team-42"
    assert message["data"]["entities"]["receiver"] == {
        "entity": message["data"]["entities"]["receiver"]["entity"],
        "entityType": "group",
    }
    assert message["data"]["entities"]["receiver"]["entity"]["guid"] == "team-42"


def test_options_fill_sender_receiver_ids_and_region() -> None:
    body = build(
        find_template("message_sent"),
        BuildOptions(
            sender="cometchat-uid-3", receiver="cometchat-uid-4", text="yo", webhook_id="wh1", app_id="abc", region="eu"
        ),
    )
    m = body["data"]["message"]
    assert (m["sender"], m["receiver"], m["data"]["text"]) == ("cometchat-uid-3", "cometchat-uid-4", "yo")
    assert m["data"]["entities"]["sender"]["entity"]["name"] == "Nancy Grace"
    assert m["conversationId"] == "cometchat-uid-3_user_cometchat-uid-4"
    assert (body["webhook"], body["appId"], body["region"]) == ("wh1", "abc", "eu")


def test_set_parses_json_values_and_add_creates_paths() -> None:
    sets = (parse_set("data.data.text=hello"), parse_set("data.sentAt=5"))
    adds = (parse_set("data.data.metadata.flag=true", "add"), parse_set("extra.list=[1,2]", "add"))
    body = build(find_template("before_message"), BuildOptions(sets=sets, adds=adds))
    assert body["data"]["data"]["text"] == "hello"
    assert body["data"]["data"]["metadata"] == {"flag": True}
    assert body["extra"] == {"list": [1, 2]}
    assert body["data"]["sentAt"] == 5
    doc = {"a": [{"b": 1}]}
    set_path(doc, "a.0.b", "x")
    assert doc == {"a": [{"b": "x"}]}


@pytest.mark.parametrize("bad", ["novalue", "=x", "a..b=1", ".a=1"])
def test_malformed_set_is_a_usage_error(bad: str) -> None:
    from comethook_cli.errors import InvalidSetting

    with pytest.raises(InvalidSetting, match="Malformed set=") as caught:  # cometchat/ names the setting, not a flag
        parse_set(bad)
    assert caught.value.named("flag")[0] == f"Malformed --set {bad!r}."  # as the CLI says it


def test_set_through_a_scalar_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="is a str, not an object"):
        set_path({"trigger": "x"}, "trigger.name", 1)
    with pytest.raises(UsageError, match="not an index"):
        set_path({"a": [1]}, "a.5", 1, create=True)


def test_unknown_trigger_suggests_close_matches() -> None:
    with pytest.raises(UsageError) as caught:
        find_template("mesage_sent")
    assert caught.value.hint is not None and "message_sent" in caught.value.hint
    with pytest.raises(UsageError, match="no legacy shape"):
        find_template("message_sent", legacy=True)


def test_cli_payloads_list_json_and_table(cli: Any) -> None:
    result = cli("payloads", "list", "--json")
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == len(catalog()) == 64
    assert all({"trigger", "generation", "family", "description"} <= set(r) for r in rows)
    table = cli("payloads", "list")
    assert table.exit_code == 0 and "before_message" in table.stdout and "campaign" in table.stdout


def test_cli_payloads_show_prints_valid_json(cli: Any) -> None:
    result = cli("payloads", "show", "before_message", "--text", "[bold]hi[/bold]", "--add", "data.data.metadata.x=1")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["data"]["data"]["text"] == "[bold]hi[/bold]"
    assert body["data"]["data"]["metadata"] == {"x": 1}
    bad = cli("payloads", "show", "nope_trigger")
    assert bad.exit_code == 2 and "Unknown trigger 'nope_trigger'" in bad.stderr
    bad_set = cli("payloads", "show", "message_sent", "--set", "oops")
    assert bad_set.exit_code == 2 and "Malformed --set" in bad_set.stderr
    bad_region = cli("payloads", "show", "message_sent", "--region", "mars")
    assert bad_region.exit_code == 2 and "Unknown region" in bad_region.stderr


# --- overrides: --set changes what exists, --add makes, --unset removes ---------------------------------------------


def test_set_on_a_missing_path_names_the_nearest_and_changes_nothing() -> None:
    from comethook_cli.cometchat.payloads.paths import apply, unset_path

    body = build(find_template("message_sent"), BuildOptions())
    before = json.dumps(body)
    with pytest.raises(UsageError) as typo:
        set_path(body, "data.mesage.id", "1")
    assert "(the nearest is data.message.id)" in typo.value.message and "--add" in (typo.value.hint or "")
    assert json.dumps(body) == before
    with pytest.raises(UsageError, match=r"the nearest is data\.message\.data"):
        set_path(body, "data.message.data.nothing.here", 1)  # no close name: the deepest part that exists
    with pytest.raises(UsageError, match=r"the nearest is data\.message\.sentAt"):
        unset_path(body, "data.message.sentat")
    apply(body, sets=[("data.mesage.id", 2)], adds=[("data.mesage.id", 1)], unsets=["data.message.updatedAt"])
    assert body["data"]["mesage"] == {"id": 2} and "updatedAt" not in body["data"]["message"]  # adds, sets, unsets


def test_build_applies_add_set_and_unset_and_refuses_a_typo() -> None:
    template = find_template("message_sent")
    with pytest.raises(UsageError, match="no such path"):
        build(template, BuildOptions(sets=(("data.message.data.txt", "x"),)))
    body = build(template, BuildOptions(adds=(("data.message.tags", ["a"]),), unsets=("data.message.data.entities",)))
    assert body["data"]["message"]["tags"] == ["a"] and "entities" not in body["data"]["message"]["data"]


# --- fixtures as data ---------------------------------------------------------------------------------------------------


def test_a_fixture_keeps_the_shape_and_replaces_what_identifies_people() -> None:
    from comethook_cli.cometchat.fixtures import fixture_of, template_of
    from comethook_cli.cometchat.payloads.shapes import shape

    live = build(find_template("group_member_added"), BuildOptions(sender="boss-uid-77", receiver="newbie-uid-88",
                                                                   group="secret-guid-99"))  # fmt: skip
    live["data"]["group"]["metadata"] = {"plan": "gold-SECRET", "seats": 123456}
    document = fixture_of(live, "joined")
    text = json.dumps(document)
    assert not any(secret in text for secret in ("boss-uid-77", "newbie-uid-88", "secret-guid-99", "gold-SECRET", "123456"))
    rebuilt = build(template_of("joined", document, "joined.json"), BuildOptions(sender="a", receiver="b", group="g"))
    assert shape(rebuilt) == shape(live)
    assert list(rebuilt["data"]["members"]) == ["b"] and rebuilt["data"]["group"]["guid"] == "g"
    kept = json.dumps(fixture_of(live, "joined", keep_values=True))
    assert "gold-SECRET" in kept and "boss-uid-77" not in kept  # people still become placeholders


@pytest.mark.parametrize(
    ("document", "said"),
    [
        ([], 'needs a "body" object'),
        ({"body": {"data": {}}}, 'no "trigger" name'),
        ({"body": {"trigger": "x", "data": "{{nope}}"}}, "placeholders comethook does not know: {{nope}}"),
        ({"body": {"trigger": "x", "data": {"$user": "admin"}}}, "has $user 'admin'"),
    ],
)
def test_a_file_that_is_not_a_fixture_is_a_usage_error_naming_it(document: Any, said: str) -> None:
    from comethook_cli.cometchat.fixtures import template_of

    with pytest.raises(UsageError, match=re.escape(said)) as caught:
        template_of("mine", document, "fixtures/mine.json")
    assert "fixtures/mine.json" in caught.value.message


def test_a_fixture_shadows_the_trigger_it_is_named_after() -> None:
    from comethook_cli.cometchat.fixtures import template_of

    mine = template_of("message_sent", {"body": {"trigger": "message_sent", "data": {"mine": True}}}, "m.json")
    assert find_template("message_sent", fixtures={"message_sent": mine}) is mine
    assert find_template("message_sent", legacy=False, fixtures={"other": mine}).fixture is None
    with pytest.raises(UsageError) as unknown:
        find_template("message_snd", fixtures={"message_snt": mine})
    assert "message_snt" in (unknown.value.hint or "")


def test_a_shape_names_list_items_and_uid_keyed_maps_alike() -> None:
    from comethook_cli.cometchat.payloads.shapes import shape

    body = {"data": {"members": {"uid-1": {"uid": "uid-1"}}, "by": {"uid": "u2"}, "u2": 1, "items": [{"a": 1}, {"a": "x"}]}}
    assert shape(body) == {
        "data": "object", "data.members": "object", "data.members.*": "object", "data.members.*.uid": "string",
        "data.by": "object", "data.by.uid": "string", "data.*": "integer", "data.items": "array",
        "data.items[]": "object", "data.items[].a": "integer",
    }  # fmt: skip


@pytest.mark.parametrize("template", catalog(), ids=lambda t: t.key)
def test_every_triggers_delivery_saves_as_a_fixture_that_rebuilds_its_shape_without_its_people(template: Any) -> None:
    from comethook_cli.cometchat.fixtures import fixture_of, template_of
    from comethook_cli.cometchat.payloads.shapes import shape

    live = build(template, BuildOptions(sender="s-uid-1", receiver="r-uid-2", text="secret words"))
    document = fixture_of(live, "saved")
    assert not any(secret in json.dumps(document) for secret in ("s-uid-1", "r-uid-2", "secret words"))
    assert shape(build(template_of("saved", document, "saved.json"), BuildOptions(sender="a", text="t"))) == shape(live)


# --- Bodies: byte for byte what build() gives ------------------------------------------------------------------


NOW = 1_750_000_000.0
OPTIONS = [
    BuildOptions(),
    BuildOptions(type="image", group="cometchat-guid-7", sender="cometchat-uid-3"),
    BuildOptions(type="custom", text="hé \u2028 \x1b", region="eu", adds=(("data.extra", [1, {"a": None}]),)),
    BuildOptions(message_id="4242", webhook_id="hook-2"),
]


@pytest.mark.parametrize("options", OPTIONS, ids=["default", "image-group", "custom-set", "fixed-id"])
def test_every_body_is_what_build_gives_for_the_same_ids_and_time(options: BuildOptions) -> None:
    # Times across ticks of a millisecond, a second and a day: each body must be the build at its own time.
    times = [NOW, NOW + 0.0004, NOW + 0.0011, NOW + 0.9, NOW + 1.2, NOW + 1.2, NOW + 86_400.5]
    for template in catalog():
        bodies = Bodies(template, options, IdSource(seed=7), clock=iter([NOW, *times]).__next__)
        assert bodies.exact, template.key
        reference = IdSource(seed=7)
        for now in times:
            assert bodies.next() == encode(build(template, options, reference, now)), (template.key, now)


def test_a_template_the_splice_cannot_reproduce_gets_a_real_build_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    template = next(t for t in catalog() if t.trigger == "message_sent")
    tokens = payloads._tokens

    def derived(*args: Any) -> dict[str, Any]:
        made = tokens(*args)
        made["text"] = f"message {made['id']} of {len(made['id'])} digits"  # a value computed from an id, not the id
        return made

    monkeypatch.setattr(payloads, "_tokens", derived)
    bodies = Bodies(template, BuildOptions(), IdSource(seed=3))
    assert not bodies.exact
    first, second = json.loads(bodies.next()), json.loads(bodies.next())
    assert first["data"]["message"]["id"] != second["data"]["message"]["id"]
    assert first["data"]["message"]["data"]["text"] == f"message {first['data']['message']['id']} of 7 digits"


# --- fidelity: live shapes from shared/cometchat-webhooks.md §9 and §10, the key lists beside the templates -----------


RINGING = ("call_initiated", "call_unanswered", "call_cancelled", "call_rejected", "call_busy")

CALLEE_ACTS = {"call_rejected", "call_busy"}

#: Every trigger whose live deliveries §9 says differ from the docs (the template sends the live shape).
LIVE_SHAPES = {
    "message_edited", "message_deleted", *RINGING, "call_participant_joined", "call_participant_left",
    "meeting_participant_joined", "meeting_participant_left", "call_ended", "meeting_ended", "moderation_engine_blocked",
    "after_feed_item_interacted", "after_feed_item_delivered",
}  # fmt: skip

CALLER, CALLEE = "cometchat-uid-3", "cometchat-uid-4"


def body_of(trigger: str, **options: Any) -> dict[str, Any]:
    return build(find_template(trigger), BuildOptions(**options))


# --- one source of truth: every template held to the key list kept beside it ---------------------------------


@pytest.mark.parametrize("template", catalog(), ids=lambda t: t.key)
def test_every_template_matches_its_documented_or_observed_keys(template: Template) -> None:
    assert template.keys, f"{template.key} has no key list"
    assert shape_problems(template, build(template, BuildOptions())) == []
    if template.trigger != "group_member_removed":  # shaped like kicked, so it follows kicked's keys
        assert shape_problems(template, build(template, BuildOptions(group="team-42"))) == []


def test_the_key_list_catches_a_missing_key_and_an_unmarked_one() -> None:
    template = find_template("message_edited")
    body = build(template, BuildOptions())
    del body["data"]["message"]["data"]["text"]
    body["data"]["message"]["invented"] = 1
    assert shape_problems(template, body) == [
        "data.message.data.text missing",
        "data.message.invented is neither documented, observed nor marked a guess",
    ]
    calls = find_template("call_rejected")
    rejected = build(calls, BuildOptions())
    del rejected["data"]["call"]["data"]["entities"]["on"]["entity"]["receiver"]  # deeper than paths_of looks
    assert shape_problems(calls, rejected) == ["data.call.data.entities.on.entity.receiver missing"]


def test_every_live_difference_is_noted_with_its_evidence() -> None:
    noted = {t.trigger: t.fidelity for t in catalog() if t.fidelity is not None}
    assert {trigger for trigger, f in noted.items() if f.shape == "live"} == LIVE_SHAPES
    assert {trigger for trigger, f in noted.items() if f.shape == "observed"} == {"message_pinned", "message_unpinned"}
    assert {trigger for trigger, f in noted.items() if f.shape == "docs"} == {
        "group_member_banned", "group_member_unbanned", "push-notification-payload-generated",
        "email-notification-payload-generated", "sms-notification-payload-generated",
    }  # fmt: skip
    for trigger, fidelity in noted.items():
        assert fidelity.note and "\n" not in fidelity.note and len(fidelity.note) < 200, trigger
        assert fidelity.evidence, f"{trigger}: a note without evidence"
        if fidelity.shape in ("live", "observed"):
            assert any("Amandubey-cometchat/" in source for source in fidelity.evidence), trigger


# --- §9, trigger by trigger -----------------------------------------------------------------------------------


def test_message_edited_carries_the_edited_message_with_the_originals_id() -> None:
    ids = IdSource()
    sent = build(find_template("message_sent"), BuildOptions(text="old text"), ids)["data"]["message"]
    edited = build(find_template("message_edited"), BuildOptions(text="new text", message_id=sent["id"]), ids)["data"]["message"]
    assert edited["id"] == sent["id"] and isinstance(edited["id"], str)
    assert edited["data"]["text"] == "new text" != sent["data"]["text"]
    assert edited["category"] == "message" and edited["type"] == "text" and "action" not in edited["data"]
    assert (edited["conversationId"], edited["sender"], edited["receiver"]) == (
        sent["conversationId"], sent["sender"], sent["receiver"],
    )  # fmt: skip
    assert edited["editedBy"] == sent["sender"] and edited["editedAt"] >= edited["sentAt"]
    # Without a message id the build still has one id only: no separate action message id any more.
    alone = body_of("message_edited")["data"]["message"]
    assert "on" not in alone["data"]["entities"] and alone["id"].isdigit()


def test_message_deleted_carries_the_deleted_message_id() -> None:
    deleted = body_of("message_deleted", message_id="4242")["data"]["message"]
    assert deleted["id"] == "4242" and deleted["category"] == "message"
    assert deleted["deletedBy"] == "cometchat-uid-1" and isinstance(deleted["deletedAt"], int)
    assert "action" not in deleted["data"]


@pytest.mark.parametrize("trigger", RINGING)
def test_ringing_calls_name_the_parties_and_by_is_who_acted(trigger: str) -> None:
    call = body_of(trigger, sender=CALLER, receiver=CALLEE)["data"]["call"]
    action = trigger.removeprefix("call_")
    entities = call["data"]["entities"]
    on = entities["on"]["entity"]
    assert entities["on"]["entityType"] == "call"
    # on.entity: the original call's parties, whoever acts now.
    assert (on["sender"], on["receiver"], on["status"], call["data"]["action"]) == (CALLER, CALLEE, action, action)
    assert on["sessionid"].startswith("v1.us.")
    acting, other = (CALLEE, CALLER) if trigger in CALLEE_ACTS else (CALLER, CALLEE)
    assert entities["by"]["entity"]["uid"] == acting
    assert entities["for"]["entity"]["uid"] == other
    assert (call["sender"], call["receiver"]) == (acting, other)


def test_ringing_parties_stay_the_same_across_the_call_events() -> None:
    entities = [body_of(t)["data"]["call"]["data"]["entities"]["on"]["entity"] for t in RINGING]
    assert {(on["sender"], on["receiver"]) for on in entities} == {("cometchat-uid-1", "cometchat-uid-2")}


@pytest.mark.parametrize(
    "trigger", ["call_participant_joined", "call_participant_left", "meeting_participant_joined", "meeting_participant_left"]
)
def test_occupants_carry_their_uid(trigger: str) -> None:
    data = body_of(trigger, sender=CALLER)["data"]
    assert data["occupant"]["uid"] == CALLER and data["occupant"]["name"] == "Nancy Grace"
    assert data["sessionId"].startswith("v1.")


@pytest.mark.parametrize("trigger", ["call_ended", "meeting_ended"])
def test_every_ended_occupant_carries_a_uid(trigger: str) -> None:
    occupants = body_of(trigger, sender=CALLER, receiver=CALLEE)["data"]["all_occupants"]
    assert occupants and all(isinstance(o.get("uid"), str) for o in occupants)
    assert {o["uid"] for o in occupants} <= {CALLER, CALLEE}


def test_moderation_engine_blocked_carries_the_rule_twice() -> None:
    data = body_of("moderation_engine_blocked")["data"]
    moderation = data["message"]["data"]["moderation"]
    assert moderation["status"] == "disapproved" and moderation["rule"]["id"]
    assert isinstance(data["moderation"], list) and data["moderation"]
    assert data["moderation"][0]["rule"]["id"] == moderation["rule"]["id"]
    assert "blockMessage" in data["moderation"][0]["rule"]["action"]


def test_feed_item_interaction_stays_sent_with_engagedat_and_topic() -> None:
    data = body_of("after_feed_item_interacted")["data"]
    assert data["status"] == "sent"
    assert isinstance(data["engagedAt"], int) and isinstance(data["topic"], str) and data["topic"]
    assert "interactedAt" not in data


@pytest.mark.parametrize(("trigger", "by_key"), [("message_pinned", "pinnedBy"), ("message_unpinned", "unpinnedBy")])
def test_pinned_and_unpinned_are_current_message_triggers(trigger: str, by_key: str) -> None:
    template = find_template(trigger)
    assert (template.generation, template.family) == ("current", "message")
    assert "observed live, not in CometChat's trigger list" in template.description
    message = body_of(trigger, sender=CALLER, message_id="77")["data"]["message"]
    assert message["id"] == "77" and message[by_key] == CALLER and isinstance(message["pinnedAt"], int)
    info = describe(body_of(trigger, sender=CALLER, text="keep this"))
    assert info.family == "message" and info.generation == "current"
    assert info.summary.startswith(f"Nancy Grace {trigger.removeprefix('message_')} message ")
    assert '"keep this"' in info.summary


def test_ban_keeps_the_documented_shape_and_the_quirk_is_flagged() -> None:
    documented = body_of("group_member_banned")
    assert "cometchat-uid-1" not in documented["data"]["members"]  # the actor
    assert BAN_QUIRK not in describe(documented).summary
    # The recipe of docs/concepts/fidelity.md for rehearsing the quirk.
    quirk = '{"cometchat-uid-1": {"uid": "cometchat-uid-1", "name": "Andrew Joseph"}}'
    for trigger in ("group_member_banned", "group_member_unbanned"):
        live = body_of(trigger, sets=(parse_set(f"data.members={quirk}"),))
        assert describe(live).summary.endswith(f"(by Andrew Joseph) · {BAN_QUIRK}")
    kicked = body_of("group_member_kicked", sets=(parse_set(f"data.members={quirk}"),))
    assert BAN_QUIRK not in describe(kicked).summary


# --- §10, the last live shapes and the custom notification providers -------------------------------------------


def test_message_unpinned_carries_unpinned_at_a_number_and_feed_delivered_says_read() -> None:
    unpinned = body_of("message_unpinned")["data"]["message"]
    assert isinstance(unpinned["unpinnedAt"], int) and not isinstance(unpinned["unpinnedAt"], bool)
    assert unpinned["unpinnedAt"] >= unpinned["pinnedAt"]
    delivered = body_of("after_feed_item_delivered")["data"]
    assert delivered["status"] == "read" and isinstance(delivered["readAt"], int)
    note = find_template("after_feed_item_delivered").note or ""
    assert "delivered" in note and "read" in note  # the caveat: the docs' status, and how the live one was seen


@pytest.mark.parametrize(
    ("trigger", "paths"),
    [
        ("push-notification-payload-generated", ("data.to.uid", "data.notificationDetails.title",
         "data.notificationDetails.body", "data.notificationDetails.sender", "data.notificationDetails.type")),
        ("email-notification-payload-generated", ("data.to.uid", "data.messages", "data.senderDetails", "data.subject")),
        ("sms-notification-payload-generated", ("data.to.uid", "data.messages", "data.senderDetails", "data.smsContent")),
    ],
)  # fmt: skip
def test_custom_provider_payloads_carry_what_the_live_validators_read(trigger: str, paths: tuple[str, ...]) -> None:
    delivered = body_of(trigger, sender=CALLER, receiver=CALLEE, text="see you")
    for path in paths:
        assert get(delivered, path) not in (None, "", []), path
    assert delivered["data"]["to"]["uid"] == CALLEE and isinstance(get(delivered, "data.messages") or [], list)
    assert delivered["webhook"] == "custom"  # CometChat's docs: every custom provider request says so
    template = find_template(trigger)
    assert template.family == "notification" and template.fidelity is not None and template.fidelity.shape == "docs"

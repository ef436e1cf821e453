"""CometChat fidelity: live shapes from shared/cometchat-webhooks.md §9, the key lists beside the
templates, the live Content-Type casing on the wire, and check's retry semantics."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
from aiohttp import web

from comethook_cli.cometchat.events import BAN_QUIRK, describe, get
from comethook_cli.cometchat.payloads import (
    BuildOptions,
    IdSource,
    Template,
    build,
    catalog,
    find_template,
    parse_set,
)
from tests.conftest import ndjson, post_json
from tests.payload_shapes import shape_problems

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


def test_payloads_show_notes_the_difference_on_stderr(cli: Any) -> None:
    result = cli("payloads", "show", "message_edited")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["data"]["message"]["category"] == "message"  # stdout stays the body alone
    note = result.stderr.strip()
    assert note == find_template("message_edited").note and "\n" not in note
    assert "docs show an action message" in note
    assert cli("payloads", "show", "message_sent").stderr == ""
    assert "not in CometChat's trigger list" in cli("payloads", "show", "message_pinned").stderr


# --- the Content-Type on the wire -----------------------------------------------------------------------------


async def raw_receiver(aiohttp_server: Any) -> tuple[str, list[str]]:
    """A receiver that records the Content-Type exactly as it arrived."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers["Content-Type"])
        await request.read()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", handle)
    server = await aiohttp_server(app)
    return str(server.make_url("/hook")), seen


async def test_send_puts_the_live_casing_on_the_wire(cli: Any, aiohttp_server: Any) -> None:
    url, seen = await raw_receiver(aiohttp_server)
    assert (await cli.run("send", "message_sent", "--to", url)).exit_code == 0
    assert (await cli.run("send", "message_sent", "--to", url, "--content-type", "application/json")).exit_code == 0
    assert (await cli.run("send", "message_sent", "--to", url, "--content-type", "x/y", "-H", "content-type: a/b")).exit_code == 0
    assert seen == ["Application/json", "application/json", "a/b"]


async def test_check_sends_the_live_casing_and_probes_the_documented_one(cli: Any, aiohttp_server: Any) -> None:
    url, seen = await raw_receiver(aiohttp_server)
    result = await cli.run("check", "--to", url, "--triggers", "message_sent", "--json")
    assert result.exit_code == 0, result.output
    assert seen.count("application/json") == 1 and set(seen) == {"Application/json", "application/json"}
    names = {line["name"] for line in ndjson(result.stdout) if line["type"] == "check"}
    assert "Content-Type: application/json accepted" in names


async def test_check_fails_a_receiver_that_only_takes_the_documented_casing(cli: Any, target: Any) -> None:
    async def strict(request: web.Request) -> web.Response:
        if request.headers.get("Content-Type") != "application/json":
            return web.json_response({"error": "unsupported media type"}, status=415)
        return web.json_response({})

    url, _ = await target(strict)
    result = await cli.run("check", "--to", url, "--triggers", "message_sent", "--json")
    assert result.exit_code == 3
    lines = {line["name"]: line for line in ndjson(result.stdout) if line["type"] == "check"}
    accepted = lines["message_sent (current) accepted"]
    assert (
        accepted["status"] == "fail" and "Application/json" in accepted["detail"] and "case-insensitively" in accepted["detail"]
    )
    assert lines["Content-Type: application/json accepted"]["status"] == "pass"


# --- check's retry semantics ----------------------------------------------------------------------------------


def acknowledging(before_message: Any = None) -> Any:
    """A healthy receiver: every acknowledgement carries a fresh UUID; before_message gets `before_message()`."""

    async def handle(request: web.Request) -> web.Response:
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return web.json_response({"error": "bad json"}, status=400)
        if payload.get("trigger") == "before_message" and before_message is not None:
            return web.json_response(before_message())
        return web.json_response({"ok": True, "id": str(uuid.uuid4())})

    return handle


async def test_check_passes_a_receiver_that_acknowledges_with_a_fresh_uuid(cli: Any, target: Any) -> None:
    url, _ = await target(acknowledging(before_message=dict))
    result = await cli.run("check", "--to", url, "--json")
    assert result.exit_code == 0, result.output
    lines = {line["name"]: line for line in ndjson(result.stdout) if line["type"] == "check"}
    assert {line["status"] for line in lines.values()} == {"pass", "warn"}  # warn: basic auth not tested
    assert "bodies differ, which CometChat ignores" in lines["retry of the same delivery"]["detail"]
    assert lines["before_message retry: same verdict"]["detail"] == "verdict PASS both times"


async def test_injected_content_may_differ_only_in_volatile_fields(cli: Any, target: Any) -> None:
    url, _ = await target(acknowledging(before_message=lambda: {"requestId": str(uuid.uuid4()), "tier": "gold"}))
    failing = await cli.run("check", "--to", url, "--triggers", "before_message", "--json")
    assert failing.exit_code == 3
    lines = {line["name"]: line for line in ndjson(failing.stdout) if line["type"] == "check"}
    retry = lines["before_message retry: same verdict"]
    assert retry["status"] == "fail" and "differs at requestId" in retry["detail"] and "--volatile" in retry["detail"]
    passing = await cli.run("check", "--to", url, "--triggers", "before_message", "--volatile", "requestId", "--json")
    assert passing.exit_code == 0, passing.output


async def test_a_verdict_that_changes_on_retry_fails(cli: Any, target: Any) -> None:
    answers = iter([{}, {"action": "do_not_propagate"}] * 10)
    url, _ = await target(acknowledging(before_message=lambda: next(answers)))
    result = await cli.run("check", "--to", url, "--triggers", "before_message", "--json")
    assert result.exit_code == 3
    lines = {line["name"]: line for line in ndjson(result.stdout) if line["type"] == "check"}
    assert lines["before_message retry: same verdict"]["status"] == "fail"
    assert "verdict" in lines["before_message retry: same verdict"]["detail"]


async def test_a_retry_that_gets_an_error_status_still_fails(cli: Any, target: Any) -> None:
    seen: set[bytes] = set()

    async def second_time_500(request: web.Request) -> web.Response:
        raw = await request.read()
        status = 500 if raw in seen else 200
        seen.add(raw)
        return web.json_response({}, status=status)

    url, _ = await target(second_time_500)
    result = await cli.run("check", "--to", url, "--triggers", "message_sent", "--json")
    assert result.exit_code == 3
    retry = {line["name"]: line for line in ndjson(result.stdout) if line["type"] == "check"}["retry of the same delivery"]
    assert retry["status"] == "fail" and "200 then 500" in retry["detail"]


@pytest.mark.parametrize("bad", ["", "a..b", "."])
def test_malformed_volatile_is_a_usage_error(cli: Any, bad: str) -> None:
    result = cli("check", "--to", "http://127.0.0.1:9/hook", "--volatile", bad)
    assert result.exit_code == 2 and "Malformed --volatile" in result.stderr


def test_volatile_paths_reach_into_nested_answers() -> None:
    from comethook_cli.engine.checks import differences
    from comethook_cli.engine.values import volatile as parse_volatile

    first = {"meta": {"id": "a", "at": 1}, "items": [{"id": "x", "v": 1}], "keep": True}
    second = copy.deepcopy(first) | {"meta": {"id": "b", "at": 2}, "items": [{"id": "y", "v": 1}]}
    assert differences(first, second) == ["meta.id", "meta.at", "items.0.id"]
    assert differences(first, second, [parse_volatile("meta"), parse_volatile("items.*.id")]) == []
    assert get(second, "keep") is True


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

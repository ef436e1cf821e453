"""`comethook payloads diff|save|list|show` end to end: a real `listen` stores live deliveries and comethook's own,
the diff finds exactly the shape differences of the live ones (and its --json report carries no value of theirs), a
saved fixture is sent with new values and fresh ids, and a project fixture shadows the catalog."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from comethook_cli.cometchat.payloads import BuildOptions, build, find_template
from comethook_cli.cometchat.payloads.paths import key_paths
from comethook_cli.errors import UsageError
from tests.conftest import ndjson

SECRET_TEXT = "my very private text 7781"
SECRET_PLAN = "gold-plan-SECRET-55"
SENDER = "alice-secret-uid-9"
#: Keys whose values are CometChat's vocabulary: a report may name those words (as a trigger or a type), not the rest.
VOCABULARY = {"trigger", "category", "type", "receiverType", "entityType", "status", "role", "region"}


def live_body() -> dict[str, Any]:
    """A real-looking live message_sent that differs from the template in three known ways."""
    body = build(find_template("message_sent"), BuildOptions(text=SECRET_TEXT, sender=SENDER, app_id="app-SECRET-id-1",
                                                              webhook_id="hook-SECRET-3"))  # fmt: skip
    message = body["data"]["message"]
    message["data"]["metadata"] = {"plan": SECRET_PLAN, "orderId": "ORD-SECRET-42"}  # carried live, not in the template
    del message["updatedAt"]  # the template has it, live lacks it
    message["sentAt"] = str(message["sentAt"])  # a type difference
    return body


def values_of(node: Any, key: str | None = None) -> set[str]:
    """Every value of a body worth hiding: strings (but the vocabulary) and numbers of 4 digits or more."""
    if isinstance(node, dict):
        return set().union(*(values_of(v, k) for k, v in node.items()))
    if isinstance(node, list):
        return set().union(*(values_of(v, key) for v in node))
    if isinstance(node, str) and key not in VOCABULARY:
        return {node}
    if isinstance(node, int) and not isinstance(node, bool) and abs(node) >= 1000:
        return {str(node)}
    return set()


def parsed(raw: bytes) -> dict[str, Any]:
    """A body `check` sent, or {} for its deliberately malformed ones."""
    try:
        body = json.loads(raw)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def post(url: str, body: dict[str, Any], **headers: str) -> None:
    async with aiohttp.ClientSession() as session:
        sent = {"Content-Type": "Application/json", **headers}
        async with session.post(url, data=json.dumps(body).encode(), headers=sent) as answer:
            assert answer.status == 200


@pytest.fixture
async def recorded(listen_process: Any, cli: Any) -> list[dict[str, Any]]:
    """A history of 3 live message_sent, 1 live before_message, and one delivery each from send, replay and emulate."""
    listener = listen_process("--no-tunnel")
    url = listener.url + "/webhook"
    bodies = [live_body() for _ in range(3)]
    for body in bodies:
        await post(url, body)
    await post(url, build(find_template("before_message"), BuildOptions()))
    sent = await cli.run("send", "message_sent", "--to", url, "--add", "data.fromsend=1")
    assert sent.exit_code == 0, sent.output
    replayed = await cli.run("replay", "--last", "--to", url)
    assert replayed.exit_code == 0, replayed.output
    emulated = build(find_template("message_sent"), BuildOptions(adds=(("data.fromemulate", 1),)))
    await post(url, emulated, **{"X-Comethook-Origin": "emulate"})
    listener.kill()
    return bodies


async def test_diff_finds_exactly_the_live_differences_and_leaves_comethooks_own_out(cli: Any, recorded: Any) -> None:
    result = await cli.run("payloads", "diff", "--json")
    assert result.exit_code == 0, result.output
    (report,) = ndjson(result.stdout)
    assert report["type"] == "payloads_diff" and report["live_deliveries"] == 4
    assert report["left_out"] == {"send": 1, "replay": 1, "emulate": 1}
    by_trigger = {t["trigger"]: t for t in report["triggers"]}
    assert set(by_trigger) == {"message_sent", "before_message"}
    assert by_trigger["before_message"]["findings"] == []  # a live one that matches its template exactly
    sent = by_trigger["message_sent"]
    assert (sent["deliveries"], sent["template"], sent["variant"]) == (3, "current/message_sent", "text")
    assert sent["content_types"] == {"Application/json": 3}
    assert sent["findings"] == [
        {"kind": "live_only", "path": "data.message.data.metadata", "deliveries": 3, "of": 3, "live_types": ["object"]},
        {"kind": "template_only", "path": "data.message.updatedAt", "deliveries": 3, "of": 3, "template_type": "integer"},
        {"kind": "type", "path": "data.message.sentAt", "deliveries": 3, "of": 3, "live_types": ["string"],
         "template_type": "integer"},
    ]  # fmt: skip
    assert "fromsend" not in result.stdout and "fromemulate" not in result.stdout


async def test_the_json_report_holds_no_value_from_the_deliveries(cli: Any, recorded: list[dict[str, Any]]) -> None:
    result = await cli.run("payloads", "diff", "--json")
    hidden = set().union(*(values_of(body) for body in recorded))
    assert {SECRET_TEXT, SECRET_PLAN, SENDER, "ORD-SECRET-42", "app-SECRET-id-1"} <= hidden
    leaked = [value for value in hidden if value in result.stdout]
    assert leaked == []


async def test_the_human_diff_says_each_finding_with_its_counts(cli: Any, recorded: Any) -> None:
    result = await cli.run("payloads", "diff", "--trigger", "message_sent")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "message_sent (current, text): 3 live deliveries" in out and "before_message" not in out
    assert "+ data.message.data.metadata  object  in 3 of 3" in out
    assert "- data.message.updatedAt  integer  in 3 of 3" in out
    assert "~ data.message.sentAt  live string, template integer  in 3 of 3" in out
    assert "Content-Type: Application/json (3)" in out
    assert SECRET_TEXT not in out


def test_diff_with_no_live_deliveries_says_how_to_collect_some(cli: Any) -> None:
    result = cli("payloads", "diff")
    assert result.exit_code == 0, result.output
    assert "No live deliveries in the history" in result.stdout and "comethook listen" in result.stdout
    as_json = cli("payloads", "diff", "--json")
    assert ndjson(as_json.stdout)[0]["triggers"] == [] and "comethook listen" in as_json.stderr


# --- save, and fixtures found by name -------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def live_id(cli: Any) -> str:
    listed = ndjson(cli("history", "list", "--json", "--trigger", "message_sent").stdout)
    return str(
        next(e["id"] for e in listed if e["body"]["data"].get("fromsend") is None and "fromemulate" not in e["body"]["data"])
    )


async def test_save_then_send_sends_the_saved_shape_with_new_values_and_fresh_ids(
    cli: Any, recorded: list[dict[str, Any]], project: Path, target: Any
) -> None:
    saved = cli("payloads", "save", live_id(cli), "order_message")
    assert saved.exit_code == 0, saved.output
    path = project / "comethook" / "fixtures" / "order_message.json"
    text = path.read_text()
    assert [value for value in values_of(recorded[0]) if value in text] == []  # nothing identifying stays
    url, received = await target(lambda request: web.json_response({}))
    result = await cli.run("send", "order_message", "--to", url, "--text", "x", "--sender", "y")
    assert result.exit_code == 0, result.output
    body = json.loads(received[0][1])
    original = recorded[0]
    assert set(key_paths(body)) == set(key_paths(original))  # the saved shape, metadata and all
    message = body["data"]["message"]
    assert (message["data"]["text"], message["sender"], message["data"]["entities"]["sender"]["entity"]["uid"]) == ("x", "y", "y")
    assert message["id"] != original["data"]["message"]["id"] and message["data"]["metadata"]["plan"] != SECRET_PLAN


async def test_a_value_survives_only_with_keep_values(cli: Any, recorded: Any, project: Path, target: Any) -> None:
    exchange = live_id(cli)
    assert cli("payloads", "save", exchange, "kept", "--keep-values").exit_code == 0
    assert SECRET_PLAN in (project / "comethook" / "fixtures" / "kept.json").read_text()
    again = cli("payloads", "save", exchange, "kept")
    assert again.exit_code == 2 and "exists already" in again.stderr and "--force" in again.stderr
    url, received = await target(lambda request: web.json_response({}))
    assert (await cli.run("send", "kept", "--to", url)).exit_code == 0
    assert json.loads(received[0][1])["data"]["message"]["data"]["metadata"]["plan"] == SECRET_PLAN


async def test_a_fixture_named_like_a_trigger_shadows_it_in_send_check_list_and_show(
    cli: Any, recorded: Any, project: Path, target: Any
) -> None:
    assert cli("payloads", "save", live_id(cli), "message_sent").exit_code == 0
    listed = ndjson(cli("payloads", "list", "--json").stdout)
    mine = [row for row in listed if row.get("fixture") == "message_sent"]
    assert len(mine) == 1 and mine[0]["shadows"] is True
    assert [row for row in listed if row["trigger"] == "message_sent" and "fixture" not in row] == []
    assert "shadows the catalog's message_sent" in cli("payloads", "list").stdout
    shown = json.loads(cli("payloads", "show", "message_sent").stdout)
    assert "metadata" in shown["data"]["message"]["data"]
    url, received = await target(lambda request: web.json_response({}))
    assert (await cli.run("send", "message_sent", "--to", url)).exit_code == 0
    checked = await cli.run("check", "--to", url, "--triggers", "message_sent", "--json")
    assert checked.exit_code in (0, 3), checked.output
    sent = [body for body in map(parsed, (raw for _, raw in received)) if body.get("trigger") == "message_sent"]
    assert len(sent) >= 2 and all("metadata" in b["data"]["message"]["data"] for b in sent)


def test_a_project_file_names_the_fixtures_directory(cli: Any, project: Path) -> None:
    (project / "comethook.toml").write_text('[payloads]\nfixtures = "shapes"\n')
    (project / "shapes").mkdir()
    document = {"body": {"trigger": "message_sent", "data": {"message": {"id": "{{id}}", "data": {"text": "{{text}}"}}}}}
    (project / "shapes" / "tiny.json").write_text(json.dumps(document))
    shown = cli("payloads", "show", "tiny", "--text", "hello")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["data"]["message"]["data"]["text"] == "hello"


def test_a_broken_fixture_is_a_warning_naming_it_and_the_rest_still_work(cli: Any, project: Path) -> None:
    folder = project / "comethook" / "fixtures"
    folder.mkdir(parents=True)
    (folder / "bad.json").write_text('{"body": {"trigger": "x", "data": "{{no_such_token}}"}}')
    (folder / "worse.json").write_bytes(b"\xff\xfe not json")
    listed = cli("payloads", "list")
    assert listed.exit_code == 0
    assert "bad.json uses placeholders comethook does not know: {{no_such_token}}" in " ".join(listed.stderr.split())
    assert "worse.json is not JSON" in listed.stderr and "Traceback" not in listed.output


@pytest.mark.timeout(30)
def test_a_cloned_projects_fixtures_never_follow_a_link_nor_hang_on_a_fifo(cli: Any, project: Path, tmp_path: Path) -> None:
    """A fixture that links out of the project, or is a FIFO (a read that never ends), is left out with a warning; a
    fixtures directory that is itself a link is not read, and `payloads save` will not write through it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"body": {"trigger": "message_sent", "data": {}}}')
    folder = project / "comethook" / "fixtures"
    folder.mkdir(parents=True)
    (folder / "linked.json").symlink_to(outside / "secret.json")
    os.mkfifo(folder / "pipe.json")
    listed = cli("payloads", "list")
    assert listed.exit_code == 0, listed.output
    said = " ".join(listed.stderr.split())
    assert "linked.json: not a regular file: left out." in said and "pipe.json: not a regular file: left out." in said
    assert "linked" not in listed.stdout
    for entry in folder.iterdir():
        entry.unlink()
    folder.rmdir()
    folder.symlink_to(outside, target_is_directory=True)
    listed = cli("payloads", "list")
    assert "is a link: left out" in " ".join(listed.stderr.split()) and "secret" not in listed.stdout
    from comethook_cli.engine.fixtures import save

    with pytest.raises(UsageError, match="is a link"):
        save(folder, "mine", {"body": {}})
    assert sorted(p.name for p in outside.iterdir()) == ["secret.json"]


def test_a_fixture_name_is_whole_letters_digits_and_dots() -> None:
    from comethook_cli.cometchat.fixtures import check_name

    with pytest.raises(UsageError):
        check_name("abc\n")


# --- --set, --add, --unset --------------------------------------------------------------------------------------


def test_set_on_a_missing_path_exits_2_naming_the_nearest(cli: Any) -> None:
    typo = cli("payloads", "show", "message_sent", "--set", "data.mesage.id=1")
    assert typo.exit_code == 2 and typo.stdout == ""
    said = " ".join(typo.stderr.split())
    assert "--set data.mesage.id: no such path in the body (the nearest is data.message.id)." in said
    assert "Hint: Did you mean data.message.id? To create a new path on purpose, use --add PATH=VALUE." in said
    added = cli("payloads", "show", "message_sent", "--add", "data.mesage.id=1")
    assert added.exit_code == 0 and json.loads(added.stdout)["data"]["mesage"] == {"id": 1}
    removed = cli("payloads", "show", "message_sent", "--unset", "data.message.updatedAt")
    assert removed.exit_code == 0 and "updatedAt" not in json.loads(removed.stdout)["data"]["message"]
    missing = cli("payloads", "show", "message_sent", "--unset", "data.message.updatedat")
    assert missing.exit_code == 2 and "the nearest is data.message.updatedAt" in " ".join(missing.stderr.split())


async def test_send_and_replay_refuse_a_set_on_a_missing_path_before_sending(cli: Any, target: Any) -> None:
    url, received = await target(lambda request: web.json_response({}))
    typo = await cli.run("send", "message_sent", "--to", url, "--set", "data.message.data.txt=hi")
    assert typo.exit_code == 2 and "data.message.data.text" in typo.stderr and received == []
    assert (await cli.run("send", "message_sent", "--to", url, "--unset", "data.message.muid")).exit_code == 2
    assert (await cli.run("send", "message_sent", "--to", url, "--unset", "data.message.updatedAt")).exit_code == 0
    assert "updatedAt" not in json.loads(received[0][1])["data"]["message"]


async def test_replay_takes_add_and_unset_and_refuses_a_set_on_a_missing_path(cli: Any, recorded: Any, target: Any) -> None:
    url, received = await target(lambda request: web.json_response({}))
    typo = await cli.run("replay", "--last", "--to", url, "--set", "data.mesage.id=1")
    assert typo.exit_code == 2 and "the nearest is data.message.id" in " ".join(typo.stderr.split()) and received == []
    changed = await cli.run("replay", "--last", "--to", url, "--add", "data.extra=1", "--unset", "data.message.updatedAt")
    assert changed.exit_code == 0, changed.output
    body = json.loads(received[0][1])
    assert body["data"]["extra"] == 1 and "updatedAt" not in body["data"]["message"]


def test_payloads_show_notes_the_difference_on_stderr(cli: Any) -> None:
    result = cli("payloads", "show", "message_edited")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["data"]["message"]["category"] == "message"  # stdout stays the body alone
    note = result.stderr.strip()
    assert note == find_template("message_edited").note and "\n" not in note
    assert "docs show an action message" in note
    assert cli("payloads", "show", "message_sent").stderr == ""
    assert "not in CometChat's trigger list" in cli("payloads", "show", "message_pinned").stderr

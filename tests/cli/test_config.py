"""comethook.toml: discovery, precedence (flag > env > file > default), validation, secrets, `config show`, `init`."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from comethook_cli.cli.init import STARTER
from comethook_cli.engine import configfile
from tests.conftest import delivery, ndjson, post_json


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh repository (a `.git` directory stops the search) as the current directory."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    monkeypatch.chdir(root)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("COMETHOOK_CONFIG", "WEBHOOK_AUTH"):
        monkeypatch.delenv(name, raising=False)
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def settings(
    cli: Any, *args: str, env: dict[str, str] | None = None, root: tuple[str, ...] = ()
) -> dict[tuple[str, str], dict[str, Any]]:
    result = cli(*root, "config", "show", "--json", *args, env=env)
    assert result.exit_code == 0, result.output
    return {(row["section"], row["key"]): row for row in ndjson(result.stdout)}


# --- discovery -----------------------------------------------------------------------------------------


def test_found_upward_and_the_search_stops_at_the_repository_root(project: Path, tmp_path: Path) -> None:
    nested = project / "src" / "app"
    nested.mkdir(parents=True)
    write(project / "comethook.toml", "[listen]\nport = 9001\n")
    assert configfile.find(nested) == project / "comethook.toml"
    # A file above the repository root (or above home) is never picked up.
    write(tmp_path / "comethook.toml", "[listen]\nport = 1\n")
    (project / "comethook.toml").unlink()
    assert configfile.find(nested) is None
    outside = tmp_path / "home" / "me" / "work"
    outside.mkdir(parents=True)
    write(tmp_path / "home" / "comethook.toml", "")
    assert configfile.find(outside, home=tmp_path / "home" / "me") is None
    assert configfile.find(outside, home=tmp_path / "home") == tmp_path / "home" / "comethook.toml"


@pytest.mark.parametrize("how", ["writable by everyone", "another user's"])
def test_a_file_in_a_shared_or_foreign_parent_is_not_read(
    tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    shared = tmp_path / "shared"  # a stand-in for /tmp
    below = shared / "project" / "src"
    below.mkdir(parents=True)
    write(shared / "comethook.toml", "[listen]\nport = 9333\n")
    if how == "writable by everyone":
        shared.chmod(0o1777)
    elif os.geteuid() == 0:
        os.chown(shared, 65534, 65534)
    else:
        pytest.skip("giving a directory to another user needs root")
    monkeypatch.chdir(below)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("COMETHOOK_CONFIG", raising=False)
    assert configfile.find(below) is None
    result = cli("config", "show", "--json", "listen")
    assert result.exit_code == 0
    port = {row["key"]: row for row in ndjson(result.stdout)}["port"]
    assert (port["value"], port["source"]) == (8765, "default")
    assert f"Not reading {shared / 'comethook.toml'}" in " ".join(result.stderr.split())
    # Named, it is read: the user chose it.
    assert settings(cli, "listen", root=("--config", str(shared / "comethook.toml")))[("listen", "port")]["value"] == 9333


def test_pyproject_tool_table_and_comethook_toml_wins_beside_it(project: Path, cli: Any) -> None:
    write(project / "pyproject.toml", '[project]\nname = "team-app"\n\n[tool.comethook.send]\nsender = "cometchat-uid-7"\n')
    rows = settings(cli, "send")
    assert rows[("send", "sender")]["value"] == "cometchat-uid-7"
    assert rows[("send", "sender")]["source"] == "pyproject.toml:5"
    write(project / "comethook.toml", '[send]\nsender = "cometchat-uid-4"\n')
    assert settings(cli, "send")[("send", "sender")]["value"] == "cometchat-uid-4"
    # A pyproject.toml without [tool.comethook] is not a project file.
    (project / "comethook.toml").unlink()
    write(project / "pyproject.toml", '[project]\nname = "team-app"\n')
    assert settings(cli, "send")[("send", "sender")]["source"] == "default"


def test_config_flag_env_and_no_config(project: Path, cli: Any, tmp_path: Path) -> None:
    write(project / "comethook.toml", "[listen]\nport = 9001\n")
    other = write(tmp_path / "elsewhere.toml", "[listen]\nport = 9002\n")
    assert settings(cli, "listen")[("listen", "port")]["value"] == 9001
    assert settings(cli, "listen", root=("--config", str(other)))[("listen", "port")]["value"] == 9002
    assert settings(cli, "listen", env={"COMETHOOK_CONFIG": str(other)})[("listen", "port")]["value"] == 9002
    port = settings(cli, "listen", root=("--no-config",))[("listen", "port")]
    assert (port["value"], port["source"]) == (8765, "default")
    missing = cli("--config", str(tmp_path / "nope.toml"), "payloads", "list")
    assert missing.exit_code == 2 and "nope.toml" in missing.stderr and "Hint:" in missing.stderr


# --- precedence, with real deliveries -------------------------------------------------------------------


async def test_send_takes_its_target_and_payload_options_from_the_file(project: Path, cli: Any, target: Any) -> None:
    url, received = await target(lambda request: web.json_response({}))
    write(project / "comethook.toml", f'[send]\nto = "{url}"\nsender = "cometchat-uid-9"\napp-id = "team-app"\n')
    result = await cli.run("send", "message_sent", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(received[-1][1])
    assert body["data"]["message"]["sender"] == "cometchat-uid-9" and body["appId"] == "team-app"
    # A flag beats the file.
    result = await cli.run("send", "message_sent", "--sender", "cometchat-uid-2", "--json")
    assert result.exit_code == 0 and json.loads(received[-1][1])["data"]["message"]["sender"] == "cometchat-uid-2"


def test_flag_beats_env_beats_file_beats_default(project: Path, cli: Any, tmp_path: Path) -> None:
    ngrok = write(project / "bin" / "ngrok", "")
    write(project / "comethook.toml", '[listen]\nport = 9001\nmax-body = 2048\n\n[tunnel]\nngrok-path = "bin/ngrok"\n')
    rows = settings(cli, "listen", "--port", "9100", env={"COMETHOOK_NGROK_PATH": "/opt/ngrok"})
    assert (rows[("listen", "port")]["value"], rows[("listen", "port")]["source"]) == (9100, "flag")
    assert (rows[("tunnel", "ngrok-path")]["value"], rows[("tunnel", "ngrok-path")]["source"]) == (
        "/opt/ngrok",
        "env COMETHOOK_NGROK_PATH",
    )
    assert (rows[("listen", "max-body")]["value"], rows[("listen", "max-body")]["source"]) == (2048, "comethook.toml:3")
    assert (rows[("listen", "delay")]["value"], rows[("listen", "delay")]["source"]) == (0.0, "default")
    # A relative path in the file is relative to the file, wherever comethook runs from (ngrok-path needs trust).
    assert cli("trust").exit_code == 0
    rows = settings(cli, "listen")
    assert rows[("tunnel", "ngrok-path")]["value"] == str(ngrok.resolve())


def test_ngrok_authtoken_in_the_environment_beats_the_file(project: Path, cli: Any) -> None:
    write(project / "comethook.toml", '[tunnel]\nngrok-authtoken = { env = "TEAM_NGROK" }\n')
    rows = settings(cli, "listen", env={"TEAM_NGROK": "file-token-value", "NGROK_AUTHTOKEN": "env-token-value"})
    assert rows[("tunnel", "ngrok-authtoken")]["source"] == "env NGROK_AUTHTOKEN"
    assert rows[("tunnel", "ngrok-authtoken")]["value"] == "[redacted]"


async def test_basic_auth_from_an_env_reference_reaches_the_endpoint(project: Path, cli: Any, target: Any) -> None:
    url, received = await target(lambda request: web.json_response({}))
    write(project / "comethook.toml", f'[send]\nto = "{url}"\nbasic-auth = {{ env = "WEBHOOK_AUTH" }}\n')
    result = await cli.run("send", "message_sent", env={"WEBHOOK_AUTH": "team:s3cret-pass"})
    assert result.exit_code == 0, result.output
    assert received[-1][0].headers["Authorization"] == "Basic " + base64.b64encode(b"team:s3cret-pass").decode()
    assert "s3cret-pass" not in result.output
    unset = await cli.run("send", "message_sent")
    assert unset.exit_code == 2
    said = " ".join(unset.output.replace("│", " ").split())  # click's usage-error box wraps the line
    assert "comethook.toml:3: [send] basic-auth reads $WEBHOOK_AUTH, which is not set" in said


def test_a_flag_for_basic_auth_beats_a_basic_auth_file_in_the_file(project: Path, cli: Any) -> None:
    from comethook_cli.cli import project as project_config
    from comethook_cli.cli.options import basic_auth

    write(project / "auth.txt", "team:from-file\n").chmod(0o600)
    write(project / "comethook.toml", '[send]\nbasic-auth-file = "auth.txt"\n')
    assert cli("payloads", "list").exit_code == 0  # the root callback has read the file for this run
    loaded = project_config.active()
    assert loaded is not None
    from_file = loaded.default_map["send"]["basic_auth_file"]
    assert basic_auth(None, from_file) == "team:from-file"
    assert basic_auth("flag:given", from_file) == "flag:given"  # not "Both ... give credentials"


# --- validation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "hint"),
    [
        ("[listen]\nforwrd-to = [\"8000\"]\n", "comethook.toml:2: unknown key 'forwrd-to' in [listen]", "Did you mean 'forward-to'?"),
        ("[lissen]\nport = 1\n", "comethook.toml: unknown section [lissen]", "Did you mean 'listen'?"),
        ("[listen]\ndomain = \"x.ngrok.app\"\n", "unknown key 'domain' in [listen]", "'domain' belongs in [tunnel]"),
        ("[listen]\nport = \"8000\"\n", "comethook.toml:2: [listen] port: expected an integer, got a string ('8000')", "--help"),
        ("[listen]\nport = 70000\n", "comethook.toml:2: [listen] port: Input should be less than or equal to 65535", ""),
        ("[listen]\nforward-timeout = 0\n", "[listen] forward-timeout: Input should be greater than or equal to 0.001", ""),
        ("[listen]\nquiet = \"yes\"\n", "[listen] quiet: expected a boolean, got a string", ""),
        ("[send]\nheader = 3\n", "[send] header: expected a string, got an integer", ""),
        ("[check]\nto = [\"a\", \"b\"]\n", "[check] to: expected one value, got an array", ""),
        ("[send]\nbasic-auth = { file = \"x\" }\n", "[send] basic-auth: a table here must be { env = \"NAME\" }", "env"),
        ("[listen]\nport = \n", "comethook.toml is not valid TOML", "toml.io"),
        ("port = 1\n", "unknown section [port]", ""),
        ("[[listen.rules]]\nmatch = { trigger = \"before_message\" }\naction = \"explode\"\n",
         "comethook.toml:1: [[listen.rules]] rule 1: unknown action 'explode'", "pass, drop"),
    ],
)  # fmt: skip
def test_a_bad_file_is_a_usage_error_naming_file_section_and_key(
    project: Path, cli: Any, text: str, expected: str, hint: str
) -> None:
    write(project / "comethook.toml", text)
    result = cli("config", "show")  # it reads every section
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert expected in message
    assert hint in message and "Hint:" in message and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("[history]\nhistory-max-mb = inf\n", ("listen", "--no-tunnel", "--port", "0", "--timeout", "1")),
        ("[history]\nhistory-max-age = nan\n", ("listen", "--no-tunnel", "--port", "0", "--timeout", "1")),
        ("[listen]\nport = inf\n", ("listen", "--no-tunnel", "--timeout", "1")),
        ("[listen]\nmax-events = -inf\n", ("listen", "--no-tunnel", "--port", "0", "--timeout", "1")),
        ("[send]\ntimeout = nan\n", ("send", "message_sent", "--to", "1")),
        ("[check]\ntimeout = nan\n", ("check", "--to", "1")),
        ("", ("listen", "--no-tunnel", "--port", "0", "--timeout", "1", "--history-max-mb", "inf")),
    ],
)
def test_inf_and_nan_are_usage_errors(project: Path, cli: Any, text: str, args: tuple[str, ...]) -> None:
    write(project / "comethook.toml", text)
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "expected a finite number" in result.stderr and "Hint:" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    "text",
    [
        "[listen]\nport = " + "[" * 5000 + "]" * 5000 + "\n",
        "[listen]\nforward-to = " + "[" * 900 + "]" * 900 + "\n",
        "[[listen.rules]]\nmatch = {}\naction = " + "{ inject = " * 400 + "1" + " }" * 400 + "\n",
    ],
)
def test_a_file_nested_too_deep_is_a_usage_error(project: Path, cli: Any, text: str) -> None:
    write(project / "comethook.toml", text)
    result = cli("config", "show")  # it reads every section
    assert result.exit_code == 2, result.output
    assert "nests arrays or tables too deeply" in result.stderr and "Hint:" in result.stderr


@pytest.mark.parametrize(
    ("text", "blocked", "free"),
    [
        (
            "[check]\ntriggers = 5\n",
            ("check", "--to", "http://127.0.0.1:9"),
            ("send", "message_sent", "--to", "1", "--timeout", "0.1"),
        ),
        ("[listen]\nportt = 1\n", ("listen", "--no-tunnel", "--port", "0", "--timeout", "1"), ("check", "--help")),
        ('[history]\nhistory-max-mb = "x"\n', ("history", "list"), ("send", "--help")),
        ("[listen\n", ("send", "message_sent", "--to", "1"), ("trust", "--help")),
    ],
    ids=["check-section", "listen-section", "history-section", "not-toml"],
)
def test_a_broken_file_blocks_only_the_commands_that_read_the_broken_section(
    project: Path, cli: Any, text: str, blocked: tuple[str, ...], free: tuple[str, ...]
) -> None:
    """--help, --version and the commands that read nothing of it work; the hint says how to leave the file out."""
    write(project / "comethook.toml", text)
    for args in (("--version",), ("listen", "--help"), ("payloads", "--help"), free):  # `payloads list` reads [payloads]
        result = cli(*args)
        assert "comethook.toml" not in result.stderr, (args, result.output)
        assert result.exit_code != 2 or args[0] == "send", (args, result.output)
    result = cli(*blocked)
    assert result.exit_code == 2, result.output
    assert "comethook.toml" in result.stderr and "comethook --no-config COMMAND" in " ".join(result.stderr.split())
    assert cli("--no-config", *blocked[:1], "--help").exit_code == 0


def test_the_pyproject_table_is_named_as_written(project: Path, cli: Any) -> None:
    write(project / "pyproject.toml", "[tool.comethook.listen]\nprot = 1\n")
    result = cli("config", "show")  # it reads every section
    assert result.exit_code == 2
    assert "pyproject.toml:2: unknown key 'prot' in [tool.comethook.listen]" in result.stderr
    assert "Did you mean 'port'?" in " ".join(result.stderr.split())


# --- secrets --------------------------------------------------------------------------------------------


def test_a_literal_secret_in_a_repository_gets_a_warning_naming_the_key(project: Path, cli: Any, tmp_path: Path) -> None:
    write(project / "comethook.toml", '[listen]\nbasic-auth = "team:hunter2"\n\n[tunnel]\nngrok-authtoken = "2abcTOKEN"\n')
    result = cli("payloads", "list")
    assert result.exit_code == 0
    err = " ".join(result.stderr.split())
    assert "comethook.toml:2: [listen] basic-auth holds a literal secret" in err
    assert "comethook.toml:5: [tunnel] ngrok-authtoken holds a literal secret" in err
    assert "hunter2" not in result.output and "2abcTOKEN" not in result.output
    # Read from the environment: no warning. Outside a repository: no warning either.
    write(project / "comethook.toml", '[listen]\nbasic-auth = { env = "WEBHOOK_AUTH" }\n')
    assert "secret" not in cli("payloads", "list").stderr
    outside = write(tmp_path / "loose" / "comethook.toml", '[listen]\nbasic-auth = "team:hunter2"\n')
    assert "secret" not in cli("--config", str(outside), "payloads", "list").stderr


def test_config_show_redacts_secrets_and_names_each_source(project: Path, cli: Any) -> None:
    write(project / "comethook.toml", '[send]\nbasic-auth = { env = "WEBHOOK_AUTH" }\ntimeout = 3\n')
    result = cli("config", "show", "send", "--count", "2", env={"WEBHOOK_AUTH": "team:s3cret-pass"})
    assert result.exit_code == 0
    assert "s3cret-pass" not in result.output
    lines = {line.split()[1]: line for line in result.stdout.splitlines()}
    assert re.search(r"team:\[redacted\]\s+comethook\.toml:2 \(env WEBHOOK_AUTH\)$", lines["basic-auth"])
    assert re.search(r"3\.0\s+comethook\.toml:3$", lines["timeout"])
    assert re.search(r"2\s+flag$", lines["count"])
    assert lines["concurrency"].endswith("default")
    assert "Project file: comethook.toml" in result.stderr
    tokens = settings(cli, "listen", "--ngrok-authtoken", "flag-token")
    assert tokens[("tunnel", "ngrok-authtoken")] == {
        "type": "setting", "section": "tunnel", "key": "ngrok-authtoken", "value": "[redacted]", "source": "flag",
    }  # fmt: skip


def test_config_show_redacts_credential_headers_and_url_passwords(project: Path, cli: Any) -> None:
    headers = '["Authorization: Bearer tok-1", "X-Api-Key: key-2", "Cookie: sid=c-3", "X-Webhook-Secret: s-4", "X-Trace: 7"]'
    write(
        project / "comethook.toml", f'[send]\nheader = {headers}\n\n[listen]\nforward-to = ["http://me:pw-5@127.0.0.1:9/hook"]\n'
    )
    result = cli("config", "show")
    assert result.exit_code == 0, result.output
    for secret in ("tok-1", "key-2", "c-3", "s-4", "pw-5"):
        assert secret not in result.output
    rows = settings(cli)
    assert rows[("send", "header")]["value"] == [
        "Authorization: [redacted]", "X-Api-Key: [redacted]", "Cookie: [redacted]", "X-Webhook-Secret: [redacted]", "X-Trace: 7",
    ]  # fmt: skip
    assert rows[("listen", "forward-to")]["value"] == ["http://me:***@127.0.0.1:9/hook"]


def test_config_show_lists_every_section_and_refuses_a_command_without_settings(project: Path, cli: Any) -> None:
    sections = {section for section, _ in settings(cli)}
    assert sections == {"listen", "tunnel", "history", "send", "check", "emulate", "payloads"}
    result = cli("config", "show", "history", "clear")
    assert result.exit_code == 2 and "takes no settings" in result.stderr
    assert cli("config", "show", "lisen").exit_code == 2


# --- inline rules ---------------------------------------------------------------------------------------


def test_inline_rules_answer_a_real_listen(project: Path, listen_process: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        project / "comethook.toml",
        '[[listen.rules]]\nmatch = { trigger = "before_message", text = "(?i)buy now" }\naction = "drop"\n\n'
        '[[listen.rules]]\nmatch = {}\naction = { inject = { "checked" = true } }\n',
    )
    monkeypatch.setenv("COMETHOOK_CONFIG", str(path))
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))  # the subprocess runs from the project
    listener = listen_process("--max-events", "2", "--no-history")
    assert post_json(listener.url + "/webhook", delivery(text="BUY NOW cheap")) == (200, b'{"action": "do_not_propagate"}')
    assert post_json(listener.url + "/webhook", delivery(text="hello"))[1] == b'{"checked": true}'
    code, _, err = listener.finish()
    assert code == 0, err


def test_rules_flag_replaces_the_inline_rules(project: Path, cli: Any) -> None:
    from comethook_cli.cli import project as project_config
    from comethook_cli.cli.listen import answer_config

    write(project / "comethook.toml", '[[listen.rules]]\nmatch = {}\naction = "drop"\n')
    rows = settings(cli, "listen")
    assert rows[("listen", "rules")] == {"type": "setting", "section": "listen", "key": "rules",
                                         "value": "1 inline rule(s)", "source": "comethook.toml:1"}  # fmt: skip
    assert project_config.active() is not None
    defaults = {"respond": "pass", "drop_if": None, "delay": 0.0, "status": 200}
    from comethook_cli.engine import values

    assert answer_config(rules=None, **defaults).rules == values.rules([{"match": {}, "action": "drop"}], "")
    (project / "other.json").write_text('[{"match": {"sender": "a"}, "action": "pass"}]')
    assert answer_config(rules=str(project / "other.json"), **defaults).rules == values.rules(
        [{"match": {"sender": "a"}, "action": "pass"}], ""
    )


# --- init -----------------------------------------------------------------------------------------------


def test_init_writes_a_starter_that_loads_with_every_line_uncommented(project: Path, cli: Any) -> None:
    result = cli("init")
    assert result.exit_code == 0, result.output
    written = (project / "comethook.toml").read_text()
    assert written == STARTER
    assert settings(cli)[("listen", "port")]["source"] == "default"  # all commented out: nothing changes
    # Every commented example is a valid setting: uncomment them all and the file still loads.
    uncommented = re.sub(r"(?m)^# (\[|[a-z-]+ = )", r"\1", written)
    assert uncommented.count("\n[") >= 5 and "forward-to = " in uncommented
    (project / "comethook.toml").write_text(uncommented)
    rows = settings(cli, env={"COMETHOOK_WEBHOOK_AUTH": "team:pass"})
    assert rows[("listen", "forward-to")]["value"] == ["8000"]
    assert rows[("listen", "rules")]["value"] == "1 inline rule(s)"
    assert rows[("check", "junit")]["value"] == str(project.resolve() / "check-report.xml")


def test_init_never_overwrites(project: Path, cli: Any) -> None:
    write(project / "comethook.toml", "[listen]\nport = 9001\n")
    result = cli("init")
    assert result.exit_code == 1
    assert "comethook.toml already exists" in result.stderr and "Hint:" in result.stderr
    assert (project / "comethook.toml").read_text() == "[listen]\nport = 9001\n"


def test_config_show_changed_lists_only_what_is_not_at_its_default(project: Path, cli: Any) -> None:
    write(project / "comethook.toml", "[listen]\nport = 9100\n[check]\ntimeout = 3\n")
    result = cli("config", "show", "--changed", "--json", env={"COMETHOOK_BASIC_AUTH": "u:p"})
    rows = {(r["section"], r["key"]): r["source"] for r in ndjson(result.stdout)}
    assert rows[("listen", "port")] == "comethook.toml:2" and rows[("check", "timeout")] == "comethook.toml:4"
    assert all(source != "default" for source in rows.values()) and ("send", "basic-auth") in rows
    assert len(rows) < len(settings(cli)) / 5  # about 80 settings in all
    human = cli("config", "show", "--changed", "listen", "--port", "9000")
    assert [line.split()[:3] for line in human.stdout.splitlines()] == [["[listen]", "port", "9000"]]

"""The ngrok tunnel: real pyngrok driving a stand-in agent on loopback (tests/fake_ngrok.py). No network, no download."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import delivery, ndjson, pid_alive, post_json

TOKEN = "2abcSECRETtoken_do_not_print"


def agent_pids(agent: Any) -> list[int]:
    return [run["pid"] for run in agent.runs() if run["argv"][:1] == ["start"]]


def assert_no_agent_left(agent: Any) -> None:
    deadline = time.monotonic() + 5
    while any(pid_alive(pid) for pid in agent_pids(agent)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(pid) for pid in agent_pids(agent))


def test_end_to_end_through_the_public_url(listen_process: Any, fake_ngrok: Any, cli: Any) -> None:
    fake_ngrok.mode("token")  # the agent refuses to start unless the token reaches it
    listener = listen_process("--tunnel", "--ngrok-path", str(fake_ngrok.path), "--ngrok-authtoken", TOKEN)
    public = listener.ready["public_url"]
    assert public.startswith("http://127.0.0.1:") and public != listener.url
    assert listener.ready["webhook_url"] == public + "/webhook"
    assert post_json(listener.ready["webhook_url"], delivery(text="through the tunnel")) == (200, b"{}")
    event = json.loads(listener.readline())
    assert event["type"] == "event" and event["trigger"] == "before_message" and event["verdict"] == "pass"
    assert event["body"]["data"]["data"]["text"] == "through the tunnel"
    (run,) = fake_ngrok.runs()
    # The token reached the agent through a private config file, removed once it started: not its command
    # line (`ps` shows that), not the environment (everything comethook starts later would inherit it).
    assert run["argv"][:2] == ["start", "--none"] and TOKEN not in " ".join(run["argv"])
    assert run["env_token"] is None and TOKEN in run["config_text"]
    assert not Path(run["config"]).exists()
    listener.proc.send_signal(signal.SIGINT)
    code, out, err = listener.finish()
    assert code == 0, err
    assert ndjson(out)[-1] == {"type": "stopped", "events": 1}
    assert TOKEN not in out + err
    assert_no_agent_left(fake_ngrok)
    with socket.socket() as probe:  # the public port is closed
        assert probe.connect_ex(("127.0.0.1", int(public.rsplit(":", 1)[1]))) != 0
    stored = ndjson(cli("history", "list", "--json").stdout)
    assert [e["id"] for e in stored] == [event["id"]]


def test_auto_mode_opens_a_tunnel_when_a_token_is_in_the_environment(
    listen_process: Any, fake_ngrok: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)
    listener = listen_process("--ngrok-path", str(fake_ngrok.path), "--max-events", "1")
    assert listener.ready["public_url"] is not None
    assert post_json(listener.ready["webhook_url"], delivery())[0] == 200
    code, out, err = listener.finish()
    assert code == 0 and TOKEN not in out + err
    assert_no_agent_left(fake_ngrok)


def test_auto_mode_finds_the_token_in_the_users_ngrok_config(
    listen_process: Any, fake_ngrok: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "xdg" / "ngrok" / "ngrok.yml"
    config.parent.mkdir(parents=True)
    config.write_text(f"version: '3'\nagent:\n  authtoken: {TOKEN}\n")
    fake_ngrok.mode("token")
    listener = listen_process("--ngrok-path", str(fake_ngrok.path), "--max-events", "1")
    assert listener.ready["public_url"] is not None  # the agent saw the token (via --config)
    post_json(listener.ready["webhook_url"], delivery())
    assert listener.finish()[0] == 0


def test_auto_mode_without_a_token_listens_locally_and_says_how(cli: Any, fake_ngrok: Any) -> None:
    result = cli("listen", "--port", "0", "--ngrok-path", str(fake_ngrok.path), "--max-events", "1", "--timeout", "0.3", "--json")
    assert result.exit_code == 4
    assert ndjson(result.stdout)[0]["public_url"] is None
    assert "set NGROK_AUTHTOKEN" in result.stderr
    assert fake_ngrok.runs() == []  # no agent started


def test_no_tunnel_never_starts_the_agent(cli: Any, fake_ngrok: Any) -> None:
    result = cli("listen", "--port", "0", "--no-tunnel", "--ngrok-path", str(fake_ngrok.path), "--ngrok-authtoken", TOKEN,
                 "--max-events", "1", "--timeout", "0.2")  # fmt: skip
    assert result.exit_code == 4 and fake_ngrok.runs() == []


def run_tunnel(cli: Any, agent: Any, *extra: str, token: str | None = TOKEN) -> tuple[Any, float]:
    args = ["listen", "--port", "0", "--no-history", "--tunnel", "--ngrok-path", str(agent), *extra]
    if token:
        args += ["--ngrok-authtoken", token]
    started = time.monotonic()
    result = cli(*args)
    return result, time.monotonic() - started


@pytest.mark.parametrize(
    ("mode", "extra", "message", "hint"),
    [
        ("4018", (), "ngrok needs a verified account and authtoken (ERR_NGROK_4018)", "NGROK_AUTHTOKEN"),
        ("108", (), "limit of agent sessions (ERR_NGROK_108)", "dashboard.ngrok.com/agents"),
        ("334", ("--domain", "taken.ngrok.app"), "already online in another ngrok session (ERR_NGROK_334)", "another --domain"),
        ("exit", (), "exited at once", "version"),
        ("offline", ("--tunnel-timeout", "1"), "ngrok's cloud is unreachable", "internet connection"),
        # pyngrok only checks its timeout between agent lines: a silent agent is killed at the outer deadline,
        # --tunnel-timeout plus tunnel.DEADLINE_SLACK (shortened from 3 s to 0.5 s here so the test need not wait).
        ("silent", ("--tunnel-timeout", "1"), "was not ready within 1 s (+0.5 s of grace); it was stopped", "ngrok v3 agent"),
    ],
)
def test_failure_modes_exit_1_in_bounded_time_and_leave_no_agent(
    cli: Any, fake_ngrok: Any, monkeypatch: pytest.MonkeyPatch, mode: str, extra: tuple[str, ...], message: str, hint: str
) -> None:
    from comethook_cli.engine import tunnel

    # Only the silent agent meets the outer deadline; the others fail on what pyngrok reads, well before it.
    if mode == "silent":
        monkeypatch.setattr(tunnel, "DEADLINE_SLACK", 0.5)
    fake_ngrok.mode(mode)
    result, elapsed = run_tunnel(cli, fake_ngrok.path, *extra)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert hint in result.stderr.split("Hint:", 1)[1]
    assert "Traceback" not in result.output and TOKEN not in result.output
    assert "lvl=" not in result.output  # agent log lines never leak raw
    assert elapsed < 15
    assert_no_agent_left(fake_ngrok)


def test_token_required_agent_without_any_token(cli: Any, fake_ngrok: Any) -> None:
    fake_ngrok.mode("token")
    result, _ = run_tunnel(cli, fake_ngrok.path, token=None)
    assert result.exit_code == 1 and "ERR_NGROK_4018" in result.stderr


def test_missing_agent_names_the_path_and_never_downloads(cli: Any, tmp_path: Any) -> None:
    missing = tmp_path / "nowhere" / "ngrok"
    result, elapsed = run_tunnel(cli, missing)
    assert result.exit_code == 1
    assert f"The ngrok agent was not found at {missing}" in result.stderr and "--install-ngrok" in result.stderr
    assert not missing.parent.exists() and elapsed < 5
    assert result.stdout == ""


def test_non_executable_agent(cli: Any, tmp_path: Any) -> None:
    agent = tmp_path / "ngrok"
    agent.write_text("#!/bin/sh\n")
    agent.chmod(stat.S_IRUSR | stat.S_IWUSR)
    result, _ = run_tunnel(cli, agent)
    assert result.exit_code == 1 and f"{agent} is not executable" in result.stderr and "chmod +x" in result.stderr


def test_auto_mode_falls_back_to_local_with_a_warning(cli: Any, fake_ngrok: Any) -> None:
    fake_ngrok.mode("4018")
    result = cli("listen", "--port", "0", "--ngrok-path", str(fake_ngrok.path), "--ngrok-authtoken", TOKEN,
                 "--max-events", "1", "--timeout", "0.3", "--json")  # fmt: skip
    assert result.exit_code == 4  # it kept listening (locally) until --timeout
    assert ndjson(result.stdout)[0]["public_url"] is None
    assert "ERR_NGROK_4018" in result.stderr and "Listening locally only" in result.stderr
    assert_no_agent_left(fake_ngrok)


def test_agent_dying_mid_session_is_reported_and_exits_1(listen_process: Any, fake_ngrok: Any, monkeypatch: Any) -> None:
    fake_ngrok.mode("die")
    monkeypatch.setenv("FAKE_NGROK_DIE_AFTER", "1")
    listener = listen_process("--tunnel", "--ngrok-path", str(fake_ngrok.path), "--ngrok-authtoken", TOKEN)
    code, out, err = listener.finish(timeout=20)
    assert code == 1
    lines = ndjson(out)
    assert lines[-2]["type"] == "error" and "The ngrok agent died" in lines[-2]["message"]
    assert lines[-1] == {"type": "stopped", "events": 0}
    assert "The ngrok agent died" in err and "Traceback" not in err


def test_a_token_from_the_environment_never_reaches_the_agents_command_line(
    listen_process: Any, fake_ngrok: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pyngrok reads NGROK_AUTHTOKEN itself and would pass it on as --authtoken, where `ps` shows it.
    fake_ngrok.mode("token")
    monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)
    listener = listen_process("--tunnel", "--ngrok-path", str(fake_ngrok.path))
    assert listener.ready["public_url"].startswith("http://127.0.0.1:")
    (run,) = fake_ngrok.runs()
    assert "--authtoken" not in run["argv"] and TOKEN not in " ".join(run["argv"])
    assert run["env_token"] == TOKEN  # the agent reads it from the environment it inherits
    listener.proc.send_signal(signal.SIGINT)
    code, _, err = listener.finish()
    assert code == 0, err


async def test_a_missing_agent_is_downloaded_only_after_a_yes(tmp_path: Any) -> None:
    from comethook_cli.engine.config import TunnelConfig
    from comethook_cli.engine.tunnel import open_for
    from comethook_cli.errors import TunnelError

    asked: list[str] = []

    def decline(prompt: str) -> bool:
        asked.append(prompt)
        return False

    missing = tmp_path / "ngrok-bin" / "ngrok"
    config = TunnelConfig(mode="on", ngrok_path=str(missing), ngrok_authtoken=TOKEN)
    with pytest.raises(TunnelError, match="was not found"):
        await open_for(8765, config, print, decline)
    assert asked and str(missing) in asked[0] and "Download" in asked[0]  # asked, said no, nothing fetched
    assert not missing.exists()


def test_the_agent_never_inherits_comethooks_secrets(
    listen_process: Any, fake_ngrok: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The agent's environment lasts as long as it runs, and it needs none of comethook's settings.
    monkeypatch.setenv("COMETHOOK_BASIC_AUTH", "cc:basic-LEAK")
    monkeypatch.setenv("COMETHOOK_WEBHOOK_AUTH", "cc:webhook-LEAK")
    monkeypatch.setenv("COMETCHAT_API_KEY", "api-key-LEAK")
    monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)
    listener = listen_process("--tunnel", "--ngrok-path", str(fake_ngrok.path))
    assert listener.ready["public_url"].startswith("http://127.0.0.1:")
    (run,) = fake_ngrok.runs()
    assert "LEAK" not in json.dumps(run["env"])
    assert not [name for name in run["env"] if name.startswith(("COMETHOOK_", "COMETCHAT_"))]
    assert run["env"]["NGROK_AUTHTOKEN"] == TOKEN and run["env"]["PATH"] == os.environ["PATH"]  # the rest is inherited
    listener.proc.send_signal(signal.SIGINT)
    code, _, err = listener.finish()
    assert code == 0, err


def test_start_up_progress_and_a_changed_url_over_two_runs(listen_process: Any, fake_ngrok: Any) -> None:
    """The stand-in agent gives each run a new public URL, as ngrok's free tunnels do."""
    args = ("--tunnel", "--ngrok-path", str(fake_ngrok.path), "--ngrok-authtoken", TOKEN, "--no-inspector")
    banners, urls = [], []
    for _ in range(2):
        listener = listen_process(*args, json_out=False)
        banners.append("".join(listener.lines))
        urls.append(re.search(r"^  Public +(\S+)$", banners[-1], re.MULTILINE).group(1))  # type: ignore[union-attr]
        listener.proc.send_signal(signal.SIGINT)
        assert listener.finish()[0] == 0
    assert urls[0] != urls[1]
    first, second = banners
    # In a pipe: one line as the agent starts, one once the tunnel is open, with the time it took.
    assert re.search(r"^opening the ngrok tunnel…\nngrok tunnel open \(\d+\.\d s\)\n", first, re.MULTILINE)
    assert f"ngrok agent {fake_ngrok.path} (--ngrok-path); authtoken from --ngrok-authtoken" in first
    assert "Paste it in the CometChat Dashboard" in first and "URL changed" not in first
    assert f"URL changed  the last run announced {urls[0]}: CometChat still calls that one" in second
    assert "--domain" in second and "https://dashboard.ngrok.com/domains" in second


def path_with(monkeypatch: pytest.MonkeyPatch, *folders: Path) -> None:
    monkeypatch.setenv("PATH", os.pathsep.join([*(str(f) for f in folders), os.environ["PATH"]]))


def test_an_agent_on_path_and_the_token_in_ngroks_config_are_found_used_and_named(
    listen_process: Any, fake_ngrok: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "xdg" / "ngrok" / "ngrok.yml"
    config.parent.mkdir(parents=True)
    config.write_text(f"version: '3'\nagent:\n  authtoken: {TOKEN}\n")
    fake_ngrok.mode("token")  # it opens the tunnel only when the token reached it
    path_with(monkeypatch, fake_ngrok.path.parent)
    listener = listen_process("--no-inspector", "--max-events", "1", json_out=False)
    banner = "".join(listener.lines)
    assert f"ngrok agent {fake_ngrok.path} (found on PATH); authtoken from {config}" in banner
    assert TOKEN not in banner
    listener.kill()
    assert [run["argv"][0] for run in fake_ngrok.runs()] == ["version", "start"]  # asked what it is, then started


def test_pyngroks_downloader_script_on_path_is_never_run_or_taken_for_the_agent(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from comethook_cli.engine.config import TunnelConfig
    from comethook_cli.engine.tunnel import find_agent, is_real_agent

    folder = tmp_path / "venv-bin"
    folder.mkdir()
    ran = tmp_path / "it-ran"
    script = folder / "ngrok"  # what pip puts in a venv's bin/ beside comethook
    script.write_text(f"#!/usr/bin/env python3\nfrom pyngrok.ngrok import main\nopen({str(ran)!r}, 'w')\nmain()\n")
    script.chmod(0o755)
    other = tmp_path / "liar" / "ngrok"  # an executable named ngrok that is not the agent
    other.parent.mkdir()
    other.write_text("#!/bin/sh\necho hello\n")
    other.chmod(0o755)
    path_with(monkeypatch, folder, other.parent)
    assert not is_real_agent(script) and not is_real_agent(other)
    path, where = find_agent(TunnelConfig())
    assert path != script and path != other and where == "installed by pyngrok"
    result = cli("listen", "--port", "0", "--tunnel", "--ngrok-authtoken", TOKEN)
    assert result.exit_code == 1 and "The ngrok agent was not found" in result.stderr
    assert not ran.exists()


def test_domain_with_no_tunnel_is_a_usage_error(cli: Any, fake_ngrok: Any) -> None:
    result = cli("listen", "--port", "0", "--no-tunnel", "--domain", "me.ngrok.app", "--ngrok-path", str(fake_ngrok.path),
                 "--timeout", "0.2")  # fmt: skip
    assert result.exit_code == 2
    assert "--domain names the ngrok domain of a tunnel, and --no-tunnel opens none" in result.stderr
    assert "Hint: Drop --no-tunnel" in result.stderr and fake_ngrok.runs() == []


def test_an_agent_path_that_is_a_directory_is_said_with_the_flag_where_the_cli_says_it(cli: Any, tmp_path: Path) -> None:
    """The engine names the ngrok_path setting; the CLI says --ngrok-path, in the error and in auto mode's warning."""
    required, _ = run_tunnel(cli, tmp_path)
    assert required.exit_code == 1
    said = f"Error: --ngrok-path {tmp_path} is a directory, not the ngrok agent.\nHint: Point it at the ngrok executable.\n"
    assert required.stderr.endswith(said)
    auto = cli("listen", "--port", "0", "--no-history", "--ngrok-path", str(tmp_path), "--ngrok-authtoken", TOKEN,
               "--max-events", "1", "--timeout", "0.3")  # fmt: skip
    assert auto.exit_code == 4
    assert (
        f"Warning: --ngrok-path {tmp_path} is a directory, not the ngrok agent. Listening locally only. "
        "Point it at the ngrok executable.\n"
    ) in auto.stderr


async def test_a_tunnel_errors_text_names_settings_not_flags(tmp_path: Path) -> None:
    from comethook_cli.cli.app import said
    from comethook_cli.engine.config import TunnelConfig
    from comethook_cli.engine.tunnel import _ensure_agent
    from comethook_cli.errors import TunnelError

    missing = tmp_path / "ngrok"
    with pytest.raises(TunnelError) as caught:
        await _ensure_agent(missing, TunnelConfig(mode="on"), None)
    assert caught.value.hint == (
        "Install ngrok (https://ngrok.com/download) and pass ngrok_path (or COMETHOOK_NGROK_PATH), "
        "or add install_ngrok to let comethook download it."
    )
    assert said(caught.value)[1] == (
        "Install ngrok (https://ngrok.com/download) and pass --ngrok-path (or COMETHOOK_NGROK_PATH), "
        "or add --install-ngrok to let comethook download it."
    )

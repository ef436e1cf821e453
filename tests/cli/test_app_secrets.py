"""Secrets stay out of `ps` and out of output: env vars, --basic-auth-file, a password prompt, a warning for argv."""

from __future__ import annotations

import base64
import json
import os
import pty
import re
import select
import sys
import termios
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

PASSWORD = "pa55-w0rd:with-colon"
CREDENTIALS = f"cc:{PASSWORD}"
TOKEN = "2abcSECRETngrokTOKEN_xyz"
ARGV_WARNING = "on the command line is visible to every local user"


def expected_authorization(credentials: str = CREDENTIALS) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def assert_no_secret(output: str, *secrets: str) -> None:
    for secret in (PASSWORD, TOKEN, base64.b64encode(CREDENTIALS.encode()).decode(), *secrets):
        assert secret not in output


@pytest.fixture
async def recording_target(target: Any) -> tuple[str, list[Any]]:
    def guarded(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != expected_authorization():
            return web.Response(status=401)
        return web.json_response({})

    return await target(guarded)  # type: ignore[no-any-return]


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "basic-auth"
    path.write_text(CREDENTIALS + "\n")
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("command", ["send", "check"])
async def test_argv_warns_once_and_env_or_file_do_not(
    command: str, cli: Any, recording_target: tuple[str, list[Any]], secret_file: Path
) -> None:
    url, received = recording_target
    args = ["send", "message_sent", "--to", url] if command == "send" else ["check", "--to", url, "--triggers", "message_sent"]
    on_argv = await cli.run(*args, "--basic-auth", CREDENTIALS)
    from_env = await cli.run(*args, env={"COMETHOOK_BASIC_AUTH": CREDENTIALS})
    from_file = await cli.run(*args, "--basic-auth-file", str(secret_file))
    for result in (on_argv, from_env, from_file):
        assert result.exit_code == 0, result.output
        assert_no_secret(result.output)
    assert on_argv.stderr.count(ARGV_WARNING) == 1
    assert "--basic-auth USER:PASS" in on_argv.stderr and "COMETHOOK_BASIC_AUTH" in on_argv.stderr
    assert ARGV_WARNING not in from_env.stderr and ARGV_WARNING not in from_file.stderr
    # Each way delivered the same credentials (check also sends deliberately wrong ones).
    sent = {request.headers.get("Authorization") for request, _ in received}
    assert expected_authorization() in sent


def test_listen_warns_for_a_password_and_a_token_on_argv(cli: Any) -> None:
    quick = ["listen", "--port", "0", "--no-tunnel", "--no-history", "--max-events", "1", "--timeout", "0.2"]
    on_argv = cli(*quick, "--basic-auth", CREDENTIALS, "--ngrok-authtoken", TOKEN)
    from_env = cli(*quick, env={"COMETHOOK_BASIC_AUTH": CREDENTIALS, "NGROK_AUTHTOKEN": TOKEN})
    for result in (on_argv, from_env):
        assert result.exit_code == 4, result.output  # nothing arrived before --timeout
        assert_no_secret(result.output)
        assert "on (credentials required)" in result.stderr
    assert on_argv.stderr.count(ARGV_WARNING) == 2
    assert "--basic-auth USER:PASS" in on_argv.stderr and "--ngrok-authtoken" in on_argv.stderr
    assert "NGROK_AUTHTOKEN" in on_argv.stderr
    assert ARGV_WARNING not in from_env.stderr


async def test_replay_warns_for_argv_too(cli: Any) -> None:
    result = await cli.run("replay", "--last", "--to", "http://127.0.0.1:9/", "--basic-auth", CREDENTIALS)
    assert ARGV_WARNING in result.stderr
    assert_no_secret(result.output)


async def test_a_basic_auth_file_open_to_others_warns_and_still_works(
    cli: Any, recording_target: tuple[str, list[Any]], secret_file: Path
) -> None:
    url, received = recording_target
    secret_file.chmod(0o644)
    result = await cli.run("send", "message_sent", "--to", url, "--basic-auth-file", str(secret_file))
    assert result.exit_code == 0, result.output
    assert "is open to other users (mode 0644): chmod 600 it" in result.stderr
    assert_no_secret(result.output)
    assert received[-1][0].headers["Authorization"] == expected_authorization()


@pytest.mark.parametrize(
    ("content", "env", "message"),
    [
        ("only-a-password\n", {}, "is not USER:PASS"),
        ("", {}, "is not USER:PASS"),
        (CREDENTIALS, {"COMETHOOK_BASIC_AUTH": "x:y"}, "Both --basic-auth-file and --basic-auth"),
        (None, {}, "Cannot read --basic-auth-file"),
    ],
    ids=["password-only", "empty", "also-env", "missing"],
)
def test_bad_basic_auth_files_are_usage_errors_that_never_quote_the_file(
    cli: Any, tmp_path: Path, content: str | None, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "credentials"
    if content is not None:
        path.write_text(content)
        path.chmod(0o600)
    result = cli("send", "message_sent", "--to", "http://127.0.0.1:9/", "--basic-auth-file", str(path), env=env)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Hint:" in result.stderr
    assert_no_secret(result.output, "only-a-password")


def test_user_alone_without_a_terminal_is_a_usage_error(cli: Any) -> None:
    result = cli("send", "message_sent", "--to", "http://127.0.0.1:9/", "--basic-auth", "cc")
    assert result.exit_code == 2
    assert "no terminal to ask for the password" in result.stderr
    assert ARGV_WARNING not in result.stderr  # USER alone is no secret


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str | None] = []  # noqa: RUF012 - one list per test, reset by the fixture

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append(self.headers.get("Authorization"))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def threaded_target() -> Iterator[tuple[str, list[str | None]]]:
    """A real app in a thread, so a blocking test can talk to a subprocess on a terminal meanwhile."""
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Recorder.seen
    server.shutdown()
    server.server_close()


def run_on_a_terminal(args: list[str], password: str, timeout: float = 20) -> tuple[int, str]:
    """Run comethook on a real pseudo-terminal; type `password` at the prompt once echo is off."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once
        os.execv(sys.executable, [sys.executable, "-m", "comethook_cli", *args])
    output, typed = b"", False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not typed and b"Password for cc" in output and not termios.tcgetattr(fd)[3] & termios.ECHO:
                os.write(fd, password.encode() + b"\r")
                typed = True
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode("utf-8", errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_user_alone_on_a_terminal_asks_for_the_password_without_echo(threaded_target: tuple[str, list[str | None]]) -> None:
    url, seen = threaded_target
    code, output = run_on_a_terminal(["send", "message_sent", "--to", url, "--basic-auth", "cc"], PASSWORD)
    assert code == 0, output
    assert "Password for cc" in output and re.search(r"<-- (\x1b\[[0-9;]*m)*200", output)
    assert seen == [expected_authorization()]
    assert ARGV_WARNING not in output
    assert_no_secret(output)


SECRET_QUERY = "?token=t0k-SECRET&keep=1&API_KEY=ak-SECRET&client_secret=cs-SECRET"
SECRET_HEADERS = {"apikey": "hdr1-SECRET", "X-Api-Key": "hdr2-SECRET", "X-Auth-Token": "hdr3-SECRET"}
#: Every value the delivery below carries that no display, export or (by default) history may show.
SECRET_VALUES = ("t0k-SECRET", "ak-SECRET", "cs-SECRET", *SECRET_HEADERS.values())


def forward_one_delivery(listen_process: Any, app: str, *flags: str) -> tuple[dict[str, Any], str]:
    """One delivery with secrets in its headers and query through `listen --forward-to --json`: (its event line, stderr)."""
    from tests.conftest import delivery, ndjson, post_json

    listener = listen_process("--forward-to", app, "--max-events", "1", *flags)
    status, _ = post_json(listener.url + "/webhook" + SECRET_QUERY, delivery(), SECRET_HEADERS)
    assert status == 200
    code, out, err = listener.finish()
    assert code == 0, err
    return ndjson(out)[0], err


def assert_redacted(text: str) -> None:
    for secret in SECRET_VALUES:
        assert secret not in text
    assert "[redacted]" in text


async def test_api_keys_and_secret_query_values_are_redacted_in_every_display_and_export(
    cli: Any, target: Any, listen_process: Any
) -> None:
    import asyncio

    url, received = await target(lambda r: web.json_response({}))
    event, err = await asyncio.to_thread(forward_one_delivery, listen_process, url.rsplit("/", 1)[0])
    # The app gets the delivery exactly: redaction is for what comethook shows and keeps.
    request = received[0][0]
    assert request.query_string == SECRET_QUERY[1:] and request.headers["X-Api-Key"] == "hdr2-SECRET"
    assert_redacted(json.dumps(event))
    assert not any(secret in err for secret in SECRET_VALUES)
    assert event["path"] == "/webhook?token=[redacted]&keep=1&API_KEY=[redacted]&client_secret=[redacted]"
    headers = {name.lower(): value for name, value in event["headers"].items()}
    assert headers["apikey"] == headers["x-api-key"] == headers["x-auth-token"] == "[redacted]"
    assert event["forwarded_to"].endswith("/webhook?token=[redacted]&keep=1&API_KEY=[redacted]&client_secret=[redacted]")
    for args in (["history", "show", event["id"]], ["history", "show", event["id"], "--json"], ["history", "list", "--json"],
                 ["history", "export", "--format", "har"], ["history", "export", "--format", "ndjson"]):  # fmt: skip
        shown = await cli.run(*args)
        assert shown.exit_code == 0, shown.output
        assert_redacted(shown.output)
    curl = await cli.run("history", "export", "--format", "curl")
    assert curl.exit_code == 0 and "keep=1" in curl.stdout
    assert "[redacted]" not in curl.stdout and not any(s in curl.stdout for s in SECRET_VALUES)  # left out, never sent
    from comethook_cli.engine.history.reader import History

    with History() as history:
        stored = history.last()
    assert_redacted(repr(stored))  # the history holds no secret either


async def test_keep_secrets_stores_the_query_exactly_for_replays_and_a_replay_without_it_says_what_it_left_out(
    cli: Any, target: Any, listen_process: Any
) -> None:
    import asyncio

    from comethook_cli.engine.history.reader import History

    url, received = await target(lambda r: web.json_response({}))
    app = url.rsplit("/", 1)[0]
    _, err = await asyncio.to_thread(forward_one_delivery, listen_process, app)
    assert "--keep-secrets" not in err
    replayed = await cli.run("replay", "--last")
    assert replayed.exit_code == 0, replayed.output
    assert received[-1][0].query_string == "keep=1"  # never `[redacted]` sent as if it were the token
    assert "left out of the replay" in replayed.stderr and "?token=" in replayed.stderr and "X-Api-Key" in replayed.stderr
    given = await cli.run("replay", "--last", "-H", "X-Api-Key: again", "-H", "apikey: again", "-H", "X-Auth-Token: again")
    assert given.exit_code == 0 and "X-Api-Key" not in given.stderr and "?token=" in given.stderr  # what -H gives is sent
    assert received[-1][0].headers["X-Api-Key"] == "again"

    kept_event, kept_err = await asyncio.to_thread(forward_one_delivery, listen_process, app, "--keep-secrets")
    assert "--keep-secrets" in kept_err and "in clear" in kept_err  # said once, at start-up
    assert_redacted(json.dumps(kept_event))  # displays still redact
    with History() as history:
        stored = history.get(kept_event["id"])
    assert stored.query == SECRET_QUERY[1:]  # the history kept the query exactly
    for args in (["show", kept_event["id"]], ["show", kept_event["id"], "--json"], ["list", "--json"],
                 ["export", "--format", "har"], ["export", "--format", "ndjson"]):  # fmt: skip
        shown = await cli.run("history", *args)
        assert shown.exit_code == 0, shown.output
        assert_redacted(shown.output)  # displays and exports redact what the history kept
    curl = await cli.run("history", "export", "--format", "curl", "--id", kept_event["id"])
    assert curl.exit_code == 0 and not any(s in curl.stdout for s in SECRET_VALUES)
    again = await cli.run("replay", kept_event["id"])
    assert again.exit_code == 0, again.output
    assert received[-1][0].query_string == SECRET_QUERY[1:]
    assert "?token=" not in again.stderr and "t0k-SECRET" not in again.output


def test_a_forward_url_with_a_password_on_argv_warns_without_showing_it(cli: Any) -> None:
    quick = ["listen", "--port", "0", "--no-tunnel", "--no-history", "--max-events", "1", "--timeout", "0.2"]
    result = cli(*quick, "--forward-to", f"http://app:{PASSWORD}@127.0.0.1:9/hook", "--forward-to", "http://127.0.0.1:9/copy")
    assert result.exit_code == 4, result.output
    assert result.stderr.count(ARGV_WARNING) == 1 and "comethook.toml" in result.stderr
    assert "--forward-to http://app:***@127.0.0.1:9/hook: a password" in result.stderr
    assert_no_secret(result.output)


def test_a_route_url_with_a_password_on_argv_warns_without_showing_it(cli: Any) -> None:
    quick = ["listen", "--port", "0", "--no-tunnel", "--no-history", "--max-events", "1", "--timeout", "0.2"]
    result = cli(
        *quick, "--forward-to", "http://127.0.0.1:9/hook", "--route", f"after_message=http://app:{PASSWORD}@127.0.0.1:9/x"
    )
    assert result.exit_code == 4, result.output
    assert "--route after_message=http://app:***@127.0.0.1:9/x: a password" in result.stderr
    assert_no_secret(result.output)

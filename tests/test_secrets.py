"""Secrets stay out of `ps` and out of output: env vars, --basic-auth-file, a password prompt, a warning for argv."""

from __future__ import annotations

import base64
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

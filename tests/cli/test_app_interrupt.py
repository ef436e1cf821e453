"""Ctrl-C across commands is always honoured (exit 130): at the "Download ngrok?" question, while the tunnel is still opening (the
agent is killed), and at the `history clear` question. Real subprocesses, a pty where a question needs a terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import pid_alive

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Any, limit: float = 10) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def default_sigint() -> None:
    """In the child: Ctrl-C as a user's shell leaves it (a test runner started in the background may ignore it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def on_pty(args: list[str], prompt: str) -> tuple[int, str]:
    """Run comethook on a pty, send SIGINT once `prompt` shows, and return (exit code, output)."""
    parent, child = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "comethook_cli", *args], stdin=child, stdout=child, stderr=child, cwd=ROOT, env=env,
        preexec_fn=default_sigint,
    )  # fmt: skip
    os.close(child)
    text, sent, last = "", 0, 0.0
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([parent], [], [], 0.1)
            if ready:
                try:
                    text += os.read(parent, 65536).decode("utf-8", "replace")
                except OSError:
                    break
            # Ctrl-C once the question is up (again after a second, at most twice more, should the first land
            # before the read began): the old code hung, or exited 1, whatever the number of Ctrl-Cs.
            if prompt in text and sent < 3 and time.monotonic() - last > 1:
                sent, last = sent + 1, time.monotonic()
                proc.send_signal(signal.SIGINT)
        code = proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(parent)
    assert sent, text
    return code, text


def test_ctrl_c_at_the_download_ngrok_question_exits_130(tmp_path: Path) -> None:
    code, text = on_pty(["listen", "--port", "0", "--tunnel", "--ngrok-path", str(tmp_path / "missing" / "ngrok")], "?")
    assert code == 130, text
    assert "Traceback" not in text


def test_ctrl_c_at_the_history_clear_question_exits_130(cli: Any) -> None:
    from comethook_cli.engine.history.files import default_path
    from comethook_cli.engine.history.writer import HistoryWriter

    HistoryWriter(default_path()).close()
    code, text = on_pty(["history", "clear"], "Delete")
    assert code == 130, text
    assert "Interrupted." in text and "Traceback" not in text


def test_ctrl_c_while_the_tunnel_opens_stops_at_once_and_kills_the_agent(fake_ngrok: Any) -> None:
    fake_ngrok.mode("silent")  # starts, never says it is ready: without Ctrl-C, comethook would wait 30 s and more
    env = {**os.environ, "NGROK_AUTHTOKEN": "test-token"}
    command = [sys.executable, "-m", "comethook_cli", "listen", "--port", "0", "--tunnel", "--tunnel-timeout", "30"]
    proc = subprocess.Popen(
        [*command, "--ngrok-path", str(fake_ngrok.path)], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint,
    )  # fmt: skip
    try:
        assert wait_for(lambda: bool(fake_ngrok.runs())), "the stand-in agent never started"
        agent = fake_ngrok.runs()[0]["pid"]
        assert pid_alive(agent)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(8)  # far below the 30 s the agent was given: Ctrl-C was not left waiting for it
        stderr = proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 130, stderr
    assert "Interrupted." in stderr and "Traceback" not in stderr
    assert wait_for(lambda: not pid_alive(agent), 5), "the agent outlived comethook"
    assert json.dumps(fake_ngrok.runs())  # the log is readable JSON lines

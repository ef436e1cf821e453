"""engine/runtime.py: a running `listen` is named in a private file of its history home while it serves, the file
goes when it stops, and a file whose process is gone is stale."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from typing import Any

from comethook_cli.engine import runtime


def test_a_running_listen_is_named_in_its_home_and_the_file_goes_when_it_stops(listen_process: Any) -> None:
    assert runtime.running() == (None, False)
    listener = listen_process("--no-tunnel", "--inspector-port", "0")
    found, stale = runtime.running()
    assert found is not None and not stale
    assert found.pid == listener.proc.pid and found.local_url == listener.url
    assert found.webhook_url == listener.ready["webhook_url"] and found.inspector_url == listener.ready["inspector_url"]
    assert found.public_url is None and found.history is True
    assert stat.S_IMODE(runtime.path().stat().st_mode) == 0o600  # the inspector's URL and more: the user's own
    listener.proc.send_signal(signal.SIGINT)
    code, _, _ = listener.finish()
    assert code == 0
    assert not runtime.path().exists() and runtime.running() == (None, False)


def test_a_file_whose_process_is_gone_is_stale() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    runtime.announce(runtime.Running(gone.pid, "http://127.0.0.1:1", "http://127.0.0.1:1/webhook"))
    found, stale = runtime.running()
    assert found is not None and found.pid == gone.pid and stale


def test_a_file_whose_pid_now_names_a_younger_process_is_stale() -> None:
    """A kill -9, then the pid reused by another program: it is alive, but it started after the listener did."""
    parent = os.getppid()  # alive, and started long after this instant of 1970
    runtime.announce(runtime.Running(parent, "http://127.0.0.1:3", "http://127.0.0.1:3/webhook", started_at=1_000_000.0))
    found, stale = runtime.running()
    assert found is not None and found.pid == parent and stale
    assert runtime.started(parent) is not None  # the suite runs on Linux, where /proc says when a process started
    runtime.announce(runtime.Running(os.getpid(), "http://127.0.0.1:3", "http://127.0.0.1:3/webhook", started_at=time.time()))
    assert runtime.running() == (runtime.read(), False)  # this process started before it wrote the file


def test_a_listen_removes_only_its_own_file() -> None:
    other = os.getppid()  # alive, and not this process
    runtime.announce(runtime.Running(other, "http://127.0.0.1:2", "http://127.0.0.1:2/webhook"))
    runtime.withdraw()
    assert runtime.running() == (runtime.read(), False) and runtime.read() is not None
    runtime.withdraw(other)
    assert runtime.read() is None


def test_a_file_that_is_not_ours_is_no_listener() -> None:
    runtime.path().parent.mkdir(parents=True, exist_ok=True)
    for text in ("not json", "[1, 2]", '{"pid": 1, "surprise": true}', "{" * 100_000):
        runtime.path().write_text(text)
        assert runtime.running() == (None, False)


def test_the_file_follows_the_health_of_the_app_behind_forward_to(listen_process: Any) -> None:
    import socket
    import time

    with socket.socket() as probe:  # a free port, nothing listening yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listen_process("--no-tunnel", "--no-inspector", "--forward-to", f"http://127.0.0.1:{port}")
    found = runtime.read()
    assert found is not None and found.health["app"]["state"] == "down"
    with socket.socket() as app:  # the app comes up: the watch sees it, and the file says so
        app.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        app.bind(("127.0.0.1", port))
        app.listen(16)
        deadline = time.monotonic() + 30  # the watch connects every 3 s: room for a loaded machine
        while time.monotonic() < deadline:
            found = runtime.read()
            if found is not None and found.health["app"]["state"] == "up":
                break
            time.sleep(0.2)
        assert found is not None and found.health["app"]["state"] == "up"
        assert found.health["app"]["url"] == f"http://127.0.0.1:{port}"

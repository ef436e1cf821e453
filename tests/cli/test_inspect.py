"""The inspector as a user starts it: `listen` serves it by default (banner, `ready` line), `--no-inspector`,
`--inspector-port`, and `comethook inspect` on the stored history."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

from tests.conftest import delivery, post_json


def fetch(url: str) -> tuple[int, str, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.read().decode(), dict(answer.headers)


@contextlib.contextmanager
def pair_with_next_taken() -> Iterator[int]:
    """A free loopback port whose next port is held (listening) for the duration."""
    for _ in range(50):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1] - 1
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                busy.close()
                continue
        try:
            yield port
        finally:
            busy.close()
        return
    raise AssertionError("no free port below a free port in 50 tries")


def test_listen_serves_the_inspector_and_says_where(listen_process: Any) -> None:
    listener = listen_process("--max-events", "1")
    url = listener.ready["inspector_url"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/")
    assert url != listener.url + "/"
    status, page, headers = fetch(url)
    assert status == 200 and "comethook inspector" in page and "script-src 'self'" in headers["Content-Security-Policy"]
    post_json(listener.url + "/webhook", delivery(text="seen by the inspector"))
    code, _, err = listener.finish()
    assert code == 0, err
    with socket.socket() as probe:  # the inspector stopped with the listener
        assert probe.connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1].strip("/")))) != 0


def test_the_banner_has_an_inspector_row_and_no_inspector_turns_it_off(listen_process: Any) -> None:
    human = listen_process(json_out=False)
    rows = [line for line in human.lines if line.strip().startswith("Inspector")]
    assert len(rows) == 1 and "http://127.0.0.1:" in rows[0]
    human.proc.send_signal(signal.SIGINT)
    assert human.finish()[0] == 0
    off = listen_process("--no-inspector", "--max-events", "1")
    assert off.ready["inspector_url"] is None and set(off.ready) >= {"local_url", "public_url", "webhook_url"}
    post_json(off.url + "/webhook", delivery())
    assert off.finish()[0] == 0


def test_inspector_port_is_used_and_a_taken_one_is_an_error(listen_process: Any, cli: Any) -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    listener = listen_process("--inspector-port", str(port), "--max-events", "1")
    assert listener.ready["inspector_url"] == f"http://127.0.0.1:{port}/"
    post_json(listener.url + "/webhook", delivery())
    assert listener.finish()[0] == 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        result = cli("listen", "--port", "0", "--no-history", "--inspector-port", str(taken))
    assert result.exit_code == 1
    assert f"port {taken} is already in use" in result.stderr and "--inspector-port" in result.stderr
    assert "Stopped" not in result.stderr  # it never served: no "Stopped after 0 events." before the error


def test_the_default_port_is_the_listeners_plus_one_and_falls_back_when_taken(cli: Any) -> None:
    with pair_with_next_taken() as port:  # the listener's port is free, its port + 1 is taken
        result = cli("listen", "--port", str(port), "--no-history", "--json", "--max-events", "1", "--timeout", "0.3")
    assert result.exit_code == 4  # --timeout: it started, served, gave up
    ready = json.loads(result.stdout.splitlines()[0])
    assert ready["local_url"] == f"http://127.0.0.1:{port}" and ready["inspector_url"] != f"http://127.0.0.1:{port + 1}/"
    assert f"Port {port + 1} is taken" in result.stderr


def test_inspect_serves_the_stored_history_without_listening(listen_process: Any, tmp_path: Any) -> None:
    listener = listen_process("--max-events", "1", "--no-inspector")
    post_json(listener.url + "/webhook", delivery(text="from an earlier session"))
    assert listener.finish()[0] == 0
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    command = [sys.executable, "-m", "comethook_cli", "inspect", "--inspector-port", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert f"Inspector  http://127.0.0.1:{port}/" in first
        status, page, _ = fetch(f"http://127.0.0.1:{port}/api/exchanges")
        records = json.loads(page)["exchanges"]
        assert status == 200 and len(records) == 1 and "from an earlier session" in records[0]["summary"]
        _, session, _ = fetch(f"http://127.0.0.1:{port}/api/rules")
        assert json.loads(session) == {"editable": False, "answering": None}
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0 and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_inspect_without_a_history_says_so(cli: Any) -> None:
    result = cli("inspect", "--inspector-port", "0")
    assert result.exit_code == 1 and "No history yet" in result.stderr and "comethook listen" in result.stderr


def test_inspect_port_suggests_the_inspector_port(cli: Any) -> None:
    result = cli("inspect", "--port", "0")
    assert result.exit_code == 2
    assert "No such option: --port" in result.stderr and "Did you mean --inspector-port?" in result.stderr


def test_a_change_of_answers_made_in_the_inspector_is_said_on_listen_s_stderr(listen_process: Any) -> None:
    listener = listen_process("--max-events", "1")
    base = listener.ready["inspector_url"]
    _, session, _ = fetch(base + "api/session")
    headers = {"X-Comethook-Token": json.loads(session)["token"], "Origin": base.rstrip("/"), "Content-Type": "application/json"}
    for respond in ("drop", {"via": "the page\x1b[31m"}):
        body = json.dumps({"respond": respond}).encode()
        with urllib.request.urlopen(
            urllib.request.Request(base + "api/rules", body, headers, method="PUT"), timeout=10
        ) as answer:
            assert answer.status == 200
    status, answer = post_json(listener.url + "/webhook", delivery(text="after the change"))
    assert status == 200 and json.loads(answer) == {"via": "the page\x1b[31m"}
    code, _, err = listener.finish()
    assert code == 0, err
    assert "Answers changed in the inspector: before_message → drop" in err
    assert 'Answers changed in the inspector: before_message → inject {"via": "the page' in err
    assert "\x1b[31m" not in err  # the page's text reaches the terminal escaped

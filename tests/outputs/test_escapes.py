"""Text from the network never drives the terminal: control, C1, DEL and bidi characters are shown escaped.

Each test sends a real delivery (or a real answer) that would set the window title, clear the screen
and draw a fake DROP if printed raw, then asserts that no raw control character reaches stdout or
stderr and that the escaped form is visible instead.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiohttp import web

from comethook_cli.cometchat.payloads import BuildOptions, build, find_template
from comethook_cli.outputs.escapes import safe
from tests.conftest import ndjson

TITLE, CLEAR, FAKE_DROP = "\x1b]0;PWNED\x07", "\x1b[2J", "\x1b[1;33mDROP"
HOSTILE = f"{TITLE}{CLEAR}{FAKE_DROP} c1\x9b del\x7f bidi\u202e"
SHOWN = ["\\x1b]0;PWNED\\x07", "\\x1b[2J", "\\x1b[1;33mDROP", "c1\\x9b", "del\\x7f", "bidi\\u202e"]
RAW = ["\x1b", "\x07", "\x9b", "\x7f", "\u202e"]
AUTH = "cc:s3cret"


def assert_inert(*outputs: str) -> None:
    """No raw terminal control character in any of the outputs."""
    for output in outputs:
        for char in RAW:
            assert char not in output, f"raw {char!r} reached the terminal: {output!r}"


def delivery(text: str = HOSTILE, trigger: str = "message_sent") -> dict[str, Any]:
    return build(find_template(trigger), BuildOptions(text=text))


def raw_post(url: str, path: bytes, body: bytes, headers: bytes = b"") -> int:
    """POST with exact bytes in the request line and headers (urllib would refuse or re-encode them)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + headers + b"Content-Length: %d\r\n\r\n" % len(body) + body
        )  # fmt: skip
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def authorization() -> bytes:
    return b"Authorization: Basic " + base64.b64encode(AUTH.encode()) + b"\r\n"


def hostile_session(listen_process: Any, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[str, str]:
    """A human-output listener gets a 401 for an escape-laden path, then one hostile delivery; returns (stdout, stderr)."""
    monkeypatch.setenv("COMETHOOK_BASIC_AUTH", AUTH)
    listener = listen_process("-v", "--max-events", "1", *args, json_out=False)
    assert raw_post(listener.url, b"/hook%1b]0;PWNED%07", b"{}") == 401
    # C1 through UTF-8, and a raw 0x9b byte, which aiohttp hands over as a lone surrogate.
    note = b"X-Note: \xc2\x9b c1 raw\x9b \xe2\x80\xae bidi\r\n"
    body = json.dumps(delivery(), ensure_ascii=False).encode()  # DEL, C1, U+202E raw inside JSON strings
    # A path that decodes to control characters is refused outright (CometChat never posts one).
    assert raw_post(listener.url, b"/webhook%1b[2J", body, authorization() + note) == 400
    assert raw_post(listener.url, b"/webhook", body, authorization() + note) == 200
    code, out, err = listener.finish()
    assert code == 0, err
    return out, "".join(listener.lines) + err


def test_listen_event_line_details_and_rejections_are_escaped(listen_process: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    out, err = hostile_session(listen_process, monkeypatch)
    assert_inert(out, err)
    assert "Warning: rejected POST /hook%1b]0;PWNED%07 with 401" in err  # the raw path, as it arrived
    assert "Warning: rejected POST /webhook%1b[2J with 400" in err
    event = out.splitlines()[0]
    assert "message_sent" in event and "200" in event
    for shown in SHOWN:
        assert shown in event, event
    assert "X-Note: \\x9b c1 raw\ufffd \\u202e bidi" in out  # -v headers
    body = out[out.index("{") : out.index("    answer:")]
    assert json.loads(body)["data"]["message"]["data"]["text"] == HOSTILE  # -v body: escaped, and the same value
    assert "\\u001b]0;PWNED\\u0007" in body and "\\u009b" in body and "\\u007f" in body and "\\u202e" in body
    assert AUTH.split(":")[1] not in out + err


def test_history_list_and_show_are_escaped(listen_process: Any, monkeypatch: pytest.MonkeyPatch, cli: Any) -> None:
    hostile_session(listen_process, monkeypatch)
    listed = cli("history", "list", env={"COLUMNS": "300"})
    assert listed.exit_code == 0, listed.output
    assert_inert(listed.output)
    assert all(shown in listed.stdout for shown in SHOWN), listed.stdout
    exchange_id = re.search(r"^(\w{6,})  ", listed.stdout, re.MULTILINE)
    assert exchange_id is not None
    shown = cli("history", "show", exchange_id.group(1))
    assert shown.exit_code == 0, shown.output
    assert_inert(shown.output)
    assert "POST /webhook\n" in shown.stdout
    assert "X-Note: \\x9b c1 raw\ufffd \\u202e bidi" in shown.stdout
    assert all(escaped in shown.stdout for escaped in SHOWN)


class _HostileApp(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        answer = f"line one {HOSTILE}\nline two\tend\r\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hostile_app() -> Iterator[str]:
    """A real app (threaded, so a blocking test can drive a listener subprocess) answering text full of escapes."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileApp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_a_forwarded_apps_text_answer_is_escaped_with_its_lines_kept(
    listen_process: Any, monkeypatch: pytest.MonkeyPatch, hostile_app: str
) -> None:
    out, err = hostile_session(listen_process, monkeypatch, "--forward-to", hostile_app)
    assert_inert(out, err)
    answer = out[out.index("    answer:") :]
    assert "line one \\x1b]0;PWNED\\x07\\x1b[2J\\x1b[1;33mDROP c1\\x9b del\\x7f bidi\\u202e\nline two " in answer
    assert re.search(r"line two +end\\r\n", answer), answer  # the tab stays a tab (rich expands it); CR shows


async def test_send_shows_a_text_answer_escaped(target: Any, cli: Any) -> None:
    url, _ = await target(lambda request: web.Response(text=f"{HOSTILE}\nsecond line"))
    result = await cli.run("send", "message_sent", "--to", url)
    assert result.exit_code == 0, result.output
    assert_inert(result.output)
    assert "\\x1b]0;PWNED\\x07\\x1b[2J\\x1b[1;33mDROP c1\\x9b del\\x7f bidi\\u202e\nsecond line" in result.stdout


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
async def test_send_shows_a_json_answer_escaped(target: Any, cli: Any, terminal: bool) -> None:
    answer = json.dumps({"note": HOSTILE}, ensure_ascii=False)  # DEL, C1 and U+202E raw inside the string: valid JSON
    url, _ = await target(lambda request: web.Response(text=answer, content_type="application/json"))
    env = {"TTY_COMPATIBLE": "1"} if terminal else {}
    result = await cli.run("send", "before_message", "--to", url, env=env)
    assert result.exit_code == 0, result.output
    for raw in (TITLE, CLEAR, FAKE_DROP, "\x9b", "\x7f", "\u202e", "\x07"):  # on a terminal rich adds its own styles
        assert raw not in result.output
    if not terminal:
        assert_inert(result.output)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    assert '"note": "\\u001b]0;PWNED\\u0007\\u001b[2J\\u001b[1;33mDROP c1\\u009b del\\u007f bidi\\u202e"' in plain
    assert "INJECT" in plain  # the resulting metadata is shown the same way
    assert plain.count("\\u001b[1;33mDROP") == 2


async def test_check_details_are_escaped_and_never_markup(target: Any, cli: Any) -> None:
    answer = json.dumps({"action": "[bold]x[/bold]\x1b[2J\x9b"})
    url, _ = await target(lambda request: web.Response(text=answer, content_type="application/json"))
    result = await cli.run("check", "--to", url, env={"COLUMNS": "300"})
    assert result.exit_code == 3, result.output
    assert_inert(result.output)
    assert "unknown action '[bold]x[/bold]\\x1b[2J\\x9b'" in result.stdout


def test_json_lines_escape_del_c1_and_bidi_and_stay_exact(listen_process: Any) -> None:
    listener = listen_process("--max-events", "2")
    spliced = delivery()  # one line of raw UTF-8 JSON: spliced into the event line as it came
    reencoded = delivery(trigger="before_message")
    for payload, pretty in ((spliced, None), (reencoded, 2)):  # a body with newlines is re-encoded instead
        body = json.dumps(payload, ensure_ascii=False, indent=pretty).encode()
        assert raw_post(listener.url, b"/webhook%e2%80%ae", body) == 200
    code, out, err = listener.finish()
    assert code == 0, err
    assert_inert(out)
    events = [line for line in ndjson(out) if line["type"] == "event"]
    assert [event["body"] for event in events] == [spliced, reencoded]
    assert all(event["path"] == "/webhook%e2%80%ae" for event in events)  # the raw path, as it arrived
    lines = [line for line in out.splitlines() if '"type":"event"' in line]
    assert all("bidi\\u202e" in line and '"path":"/webhook%e2%80%ae"' in line for line in lines) and len(lines) == 2


def test_safe_keeps_emoji_and_newlines_where_a_layout_allows_them() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467 \u0645\u0631\u062d\u0628\u0627 ok"  # ZWJ sequence, Arabic
    assert safe(family) == family
    assert safe("a\nb\tc\rd") == "a\\nb\\tc\\rd"
    assert safe("a\nb\tc\rd", multiline=True) == "a\nb\tc\\rd"
    assert safe("\x00\x1b\x7f\x85\x9f\u2028\u2066\ud800") == "\\x00\\x1b\\x7f\\x85\\x9f\\u2028\\u2066\\ud800"
    assert safe(safe(HOSTILE)) == safe(HOSTILE)

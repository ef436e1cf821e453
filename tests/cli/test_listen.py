"""`comethook listen` as a user runs it: a real subprocess (and CliRunner), --max-events, SIGINT, errors, history."""

from __future__ import annotations

import base64
import json
import re
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BANNER_END, delivery, ndjson, post_json


def test_max_events_json_lines_and_exit_0(listen_process: Any) -> None:
    listener = listen_process("--max-events", "2")
    assert listener.ready["public_url"] is None
    assert listener.ready["webhook_url"] == listener.url + "/webhook"
    assert post_json(listener.url + "/webhook", delivery()) == (200, b"{}")
    assert post_json(listener.url + "/webhook", b"oops")[0] == 400
    assert post_json(listener.url + "/cometchat?x=1", delivery("message_sent"))[0] == 200
    code, out, err = listener.finish()
    assert code == 0, err
    lines = ndjson(out)
    assert [line["type"] for line in lines] == ["event", "rejected", "event", "stopped"]
    first, rejected, second, stopped = lines
    assert {"id", "received_at", "method", "path", "headers", "trigger", "generation", "summary", "body", "response",
            "verdict", "latency_ms"} <= set(first)  # fmt: skip
    assert (
        first["trigger"] == "before_message" and first["verdict"] == "pass" and first["response"] == {"status": 200, "body": {}}
    )
    assert first["body"]["data"]["data"]["text"] == "hello"
    assert rejected == {"type": "rejected", "status": 400, "reason": "body is not JSON", "method": "POST", "path": "/webhook"}
    assert second["path"] == "/cometchat?x=1" and second["verdict"] is None
    assert stopped == {"type": "stopped", "events": 2}


def test_sigint_stops_cleanly_with_the_event_count(listen_process: Any) -> None:
    listener = listen_process(json_out=False)
    banner = "".join(listener.lines)
    assert banner.startswith(f"comethook listening on {listener.url}\n") and banner.rstrip().endswith(BANNER_END)
    assert re.search(rf"^  Webhook URL +{re.escape(listener.url)}/webhook$", banner, re.MULTILINE)
    assert post_json(listener.url + "/webhook", delivery(text="[red]not markup[/red]"))[0] == 200
    line = listener.readline()
    assert "before_message" in line and "[red]not markup[/red]" in line and "PASS" in line
    listener.proc.send_signal(signal.SIGINT)
    code, _, err = listener.finish()
    assert code == 0
    assert "Stopped after 1 event." in err
    assert "Traceback" not in err
    with socket.socket() as probe:  # the port is released
        port = int(listener.url.rsplit(":", 1)[1])
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_ctrl_c_on_listen_json_into_a_pipe_whose_reader_is_gone_stops_quietly(listen_process: Any) -> None:
    """Ctrl-C on `listen --json | jq` stops jq too: the last records then meet a closed pipe. Before, the output
    thread printed a BrokenPipeError traceback and then "Event loop is closed"."""
    listener = listen_process("--no-inspector")
    assert listener.proc.stdout is not None and listener.proc.stderr is not None
    listener.proc.stdout.close()  # the reader is gone
    listener.proc.send_signal(signal.SIGINT)
    listener.proc.wait(15)
    err = listener.proc.stderr.read()
    assert listener.proc.returncode == 0, err
    assert "Traceback" not in err and "Exception" not in err and "Stopped after 0 events." in err


def test_banner_of_a_local_listener_says_how_to_get_a_public_url_and_never_to_paste_the_local_one(
    listen_process: Any,
) -> None:
    listener = listen_process("--max-events", "1", json_out=False)
    post_json(listener.url + "/webhook", delivery())
    code, _, err = listener.finish()
    banner = "".join(listener.lines) + err
    assert code == 0
    for expected in ("Webhook URL", "NGROK_AUTHTOKEN", "ngrok config add-authtoken", "--public-url", "Ctrl-C", "History"):
        assert expected in banner, expected
    # A loopback URL pasted in the Dashboard never works: the banner must not ask for it.
    assert "Paste it" not in banner and "Settings → Webhooks" not in banner
    assert "not for the CometChat Dashboard" in banner


def test_port_in_use_exits_1_with_a_hint(cli: Any) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("listen", "--port", str(port), "--no-history")
    assert result.exit_code == 1
    assert f"Port {port} is already in use" in result.stderr and "--port 0" in result.stderr


def test_timeout_before_max_events_exits_4(cli: Any) -> None:
    started = time.monotonic()
    result = cli("listen", "--port", "0", "--max-events", "1", "--timeout", "0.5", "--json")
    assert result.exit_code == 4
    assert "Only 0 of 1 events arrived within 0.5 s" in result.stderr
    assert time.monotonic() - started < 10
    lines = ndjson(result.stdout)
    assert lines[-1] == {"type": "stopped", "events": 0}
    # The agent contract: the error as one record too (before the last line, `stopped`), with its exit code and hint.
    assert [line for line in lines if line["type"] == "error"] == [lines[-2]]
    assert lines[-2]["hint"] == "Check the webhook URL and triggers in the CometChat Dashboard, or raise --timeout."
    assert lines[-2]["exit_code"] == 4 and "Only 0 of 1 events" in lines[-2]["message"] and lines[-2]["hint"]


def test_verbose_shows_headers_redacted(listen_process: Any) -> None:
    credentials = {"Authorization": "Basic " + base64.b64encode(b"cc:s3cret").decode()}
    listener = listen_process("--max-events", "1", "--timeout", "10", "-v", "--basic-auth", "cc:s3cret", json_out=False)
    assert post_json(listener.url + "/webhook", delivery(), credentials)[0] == 200
    code, out, err = listener.finish()
    assert code == 0, err
    output = out + err + "".join(listener.lines)
    assert "Authorization: Basic [redacted]" in out
    assert "s3cret" not in output and base64.b64encode(b"cc:s3cret").decode() not in output
    assert '"text": "hello"' in out


def test_bad_listen_options_are_usage_errors(cli: Any) -> None:
    for args, message in (
        (["--respond", "nope"], "Unknown --respond"),
        (["--drop-if", "("], "invalid regular expression"),
        (["--drop-if", r"(\w+) \1"], "uses a backreference"),
        (["--rules", "/nonexistent.json"], "Cannot read --rules"),
        (["--basic-auth", "nocolon"], "Malformed Basic auth"),
        (["--status", "42"], "not an HTTP status code"),
    ):
        result = cli("listen", "--port", "0", "--no-history", *args)
        assert result.exit_code == 2, args
        assert message in result.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--public-url", "ftp://x"], "Error: --public-url 'ftp://x' is not an http:// or https:// URL.\n"),
        (["--public-url", "http://"], "Error: --public-url 'http://' names no host.\n"),
        (["--public-url", "not a url"], "Error: --public-url 'not a url' is not an http:// or https:// URL.\n"),
        (["--forward-to", "ftp://x"], "Error: Unsupported URL 'ftp://x'.\nHint: Use an http:// or https:// URL.\n"),
        (
            ["--forward-to", ""],
            "Error: No URL given to forward to.\nHint: Give your app's URL, e.g. --forward-to http://localhost:8000/webhook.\n",
        ),
        (["--status", "700"], "Error: --status 700 is not an HTTP status code.\nHint: Use 100-599, e.g. --status 503.\n"),
    ],
)
def test_a_setting_the_engine_refuses_is_said_with_its_flag(cli: Any, args: list[str], said: str) -> None:
    result = cli("listen", "--no-tunnel", "--no-history", *args)
    assert result.exit_code == 2 and result.stderr.startswith(said)
    if args[0] == "--public-url":
        assert result.stderr.endswith(
            "Hint: Give the public address of your own tunnel, e.g. --public-url https://hooks.example.com.\n"
        )


def test_a_bad_rule_is_said_where_the_rules_file_holds_it(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "hooks.json"
    path.write_text('[{"match": {}, "action": {"status": 700}}]')
    result = cli("listen", "--no-tunnel", "--no-history", "--rules", str(path))
    assert result.exit_code == 2
    assert (
        result.stderr
        == f'Error: --rules {path} rule 1: status must be an HTTP status code (100-599).\nHint: e.g. {{"status": 503}}\n'
    )


def test_history_survives_a_killed_listener(listen_process: Any, cli: Any) -> None:
    listener = listen_process()
    ids = []
    for n in range(20):
        assert post_json(listener.url + "/webhook", delivery(text=f"message {n}"))[0] == 200
        ids.append(json.loads(listener.readline())["id"])
    listener.proc.send_signal(signal.SIGKILL)
    listener.proc.wait(timeout=10)
    result = cli("history", "list", "--json", "--limit", "100")
    assert result.exit_code == 0, result.output
    stored = ndjson(result.stdout)
    assert sorted(e["id"] for e in stored) == sorted(ids)
    assert {e["body"]["data"]["data"]["text"] for e in stored} == {f"message {n}" for n in range(20)}


def test_listener_stops_quietly_when_its_reader_goes_away(listen_process: Any) -> None:
    listener = listen_process()
    assert listener.proc.stdout is not None
    listener.proc.stdout.close()  # like `comethook listen --json | head -1` after its line
    for n in range(3):
        try:
            post_json(listener.url + "/webhook", delivery(text=f"to nobody {n}"), timeout=2)
        except OSError:
            break  # the listener has stopped
    listener.proc.wait(timeout=10)
    err = listener.proc.stderr.read() if listener.proc.stderr else ""
    assert listener.proc.returncode == 0
    assert "reader of the output went away" in err and "Traceback" not in err and "Exception" not in err


def test_binding_beyond_loopback_warns(cli: Any) -> None:
    result = cli("listen", "--host", "0.0.0.0", "--port", "0", "--no-history", "--max-events", "1", "--timeout", "0.2")
    assert result.exit_code == 4
    assert "listening on 0.0.0.0: anyone who can reach this machine can post to it" in result.stderr


def test_a_browser_origin_is_refused_and_comethook_s_own_clients_send_none(listen_process: Any, cli: Any) -> None:
    page = {"Origin": "https://evil.example"}
    opted_in = listen_process("--allow-browser-origin", "--max-events", "1")
    assert post_json(opted_in.url + "/webhook", delivery(text="from a page"), page)[0] == 200
    assert opted_in.finish()[0] == 0
    (stored,) = ndjson(cli("history", "list", "--json").stdout)
    listener = listen_process()
    url = listener.url + "/webhook"
    assert post_json(url, delivery(), page)[0] == 403
    # send, check and replay (even of a delivery stored with an Origin) are CometChat's stand-ins: never refused.
    assert cli("send", "before_message", "--to", url).exit_code == 0
    assert cli("check", "--to", url).exit_code == 0
    assert cli("replay", stored["id"], "--to", url).exit_code == 0
    listener.proc.send_signal(signal.SIGINT)
    code, out, err = listener.finish()
    assert code == 0, err
    # (check's own malformed bodies are refused with 400, as they should be)
    refused = [line for line in ndjson(out) if line["type"] == "rejected" and line["status"] == 403]
    assert refused == [
        {"type": "rejected", "status": 403, "method": "POST", "path": "/webhook",
         "reason": "sent by a web browser (Origin: 'https://evil.example'), never by CometChat; --allow-browser-origin accepts it"}
    ]  # fmt: skip


def test_a_second_ctrl_c_says_how_many_deliveries_in_flight_it_dropped(listen_process: Any) -> None:
    import threading

    # Each answer waits 10 s (--delay), longer than the 3 s shutdown grants the answers in flight.
    listener = listen_process("--no-inspector", "--delay", "10000", json_out=False)
    answers: list[Any] = []

    def deliver() -> None:
        try:
            answers.append(post_json(listener.url + "/webhook", delivery(), timeout=20))
        except OSError as error:
            answers.append(error)

    senders = [threading.Thread(target=deliver, daemon=True) for _ in range(2)]
    for sender in senders:
        sender.start()
    port = int(listener.url.rsplit(":", 1)[1])
    time.sleep(0.5)  # both bodies in (they are small); the answers wait on --delay
    listener.proc.send_signal(signal.SIGINT)
    # The first Ctrl-C closes the port, then waits for the answers in flight: that is when the second one comes.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                break
        time.sleep(0.02)
    listener.proc.send_signal(signal.SIGINT)
    code, _, err = listener.finish()
    for sender in senders:
        sender.join(10)
    assert code == 0, err
    assert "Stopped without waiting: 2 deliveries in flight dropped unanswered" in err
    assert "retryOnFailure" in err and "Traceback" not in err
    assert "Stopped after 0 events." in err
    assert all(not isinstance(answer, tuple) or answer[0] != 200 for answer in answers)

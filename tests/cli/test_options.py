"""Options and usage errors across commands: nonsense refused at start-up (exit 2 with a hint), every error with a Hint line,
case-insensitive triggers, --set making lists, `listen --timeout` without --max-events, history export filters."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from comethook_cli.cometchat.events import describe
from comethook_cli.cometchat.payloads import BuildOptions, build, find_template
from comethook_cli.engine.history.files import default_path
from comethook_cli.engine.history.writer import HistoryWriter
from comethook_cli.models import Exchange
from tests.conftest import ndjson


def assert_usage(result: Any, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: ") and lines[1].startswith("Hint: "), result.stderr
    assert all(word in result.stderr for word in words), result.stderr
    assert "Traceback" not in result.output and "╭" not in result.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("listen", "-f", "http://"), ("Malformed URL 'http://'", "names no host")),
        (
            ("listen", "--route", "before_mesage=:9000"),
            ("Unknown trigger 'before_mesage' in --route", "Did you mean before_message"),
        ),
        (("listen", "--fallback", "maybe"), ("Unknown --fallback 'maybe'",)),
        (("listen", "--region", "xx"), ("Unknown --region 'xx'", "ngrok's regions: us, eu, ap, au, sa, jp, in")),
        (("listen", "--domain", "https://a/b.ngrok.app/"), ("Malformed --domain",)),
        (("listen", "--events", "before_mesage"), ("Unknown trigger 'before_mesage' in --events", "Did you mean")),
        (("send", "message_sent", "--to", "http//host/hook"), ("Malformed URL 'http//host/hook'", "http://")),
        (("send", "message_sent", "--to", "http://localhost:99999/"), ("the port is not a number",)),
        (
            ("send", "message_sent", "--to", ":1", "--expect-json", "foo"),
            ("Malformed --expect-json 'foo'", "--expect-json status"),
        ),
    ],
)
def test_refused_at_start_up(cli: Any, args: tuple[str, ...], words: tuple[str, ...]) -> None:
    result = cli(*args, "--no-tunnel") if args[0] == "listen" and "--region" not in args else cli(*args)
    assert_usage(result, *words)
    assert "listening on" not in result.stderr  # nothing started


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("listen", "--status", "abc"), ("--status", "valid integer", "comethook listen --help")),
        (("listen", "--port", "70000"), ("--port", "65535", "comethook listen --help")),
        (("send", "--count", "0"), ("--count", "comethook send --help")),
        (("send", "--prot", "1"), ("No such option: --prot",)),
        (("history", "lst"), ("No such command 'lst'", "Did you mean 'list'", "its commands")),
    ],
)
def test_typer_usage_errors_come_through_the_funnel_with_a_hint(cli: Any, args: tuple[str, ...], words: tuple[str, ...]) -> None:
    assert_usage(cli(*args), *words)


def test_trigger_names_are_case_insensitive(cli: Any) -> None:
    shown = cli("payloads", "show", "BEFORE_MESSAGE")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["trigger"] == "before_message"
    assert find_template(" Message_Sent ").trigger == "message_sent"


def test_set_with_a_numeric_segment_makes_a_list(cli: Any) -> None:
    made = cli("payloads", "show", "message_sent", "--add", "data.message.data.attachments.0.url=x")
    assert json.loads(made.stdout)["data"]["message"]["data"]["attachments"] == [{"url": "x"}]
    out_of_range = cli("payloads", "show", "message_sent", "--add", "data.message.data.attachments.5.url=x")
    assert_usage(out_of_range, "not an index of the list there (it has 0 item(s))")
    assert "{'5'" not in out_of_range.output and '"5"' not in out_of_range.output


def test_listen_timeout_without_max_events_stops_with_exit_0_as_the_help_says(cli: Any) -> None:
    stopped = cli("listen", "--port", "0", "--no-tunnel", "--timeout", "0.3")
    assert stopped.exit_code == 0 and "Stopped after 0 events." in stopped.stderr
    missing = cli("listen", "--port", "0", "--no-tunnel", "--timeout", "0.3", "--max-events", "1")
    assert missing.exit_code == 4 and "Hint: " in missing.stderr
    helped = " ".join(cli("listen", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "Stop after SECONDS: exit 4 when --max-events were asked for and have not all arrived, else exit 0." in helped


def test_an_empty_edited_body_has_a_hint(cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    store([exchange("message_sent", time.time())])
    editor = tmp_path / "empty.sh"
    editor.write_text('#!/bin/sh\n: > "$1"\n')
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    result = cli("replay", "--last", "--edit", "--to", ":1")
    assert_usage(result, "the edited body is empty", "Nothing was sent")


def exchange(trigger: str, at: float, n: int = 0) -> Exchange:
    payload = build(find_template(trigger), BuildOptions())
    return Exchange(
        id=f"evt_{int(at * 1000):012x}{n:08x}", received_at=at, method="POST", path="/webhook", query="", headers=(),
        body=json.dumps(payload).encode(), info=describe(payload), response_status=200, response_body=b"{}", latency_ms=1.0,
    )  # fmt: skip


def store(exchanges: list[Exchange]) -> None:
    writer = HistoryWriter(default_path())
    writer._write(exchanges)
    writer.close()


def test_history_export_filters_and_says_how_many_it_wrote(cli: Any, tmp_path: Any) -> None:
    now = time.time()
    kept = [
        exchange("message_sent", now - 3 * 86400, 1),
        exchange("before_message", now - 3600, 2),
        exchange("message_sent", now - 60, 3),
        exchange("message_sent", now - 30, 4),
    ]
    store(kept)
    ids = lambda result: [e["id"] for e in ndjson(result.stdout)]  # noqa: E731
    assert ids(cli("history", "export", "--trigger", "message_sent")) == [kept[0].id, kept[2].id, kept[3].id]
    assert ids(cli("history", "export", "--since", "2h")) == [e.id for e in kept[1:]]
    assert ids(cli("history", "export", "--limit", "2")) == [kept[2].id, kept[3].id]
    assert ids(cli("history", "export", "--id", kept[1].id[-8:])) == [kept[1].id]
    written = cli("history", "export", "--trigger", "message_sent", "--since", "1d", "-o", str(tmp_path / "out.ndjson"))
    assert written.exit_code == 0 and "Wrote 2 exchange(s) to" in written.stderr
    assert len((tmp_path / "out.ndjson").read_text().splitlines()) == 2
    assert_usage(cli("history", "export", "--since", "yesterday"), "Malformed --since 'yesterday'")

"""The terminal output (outputs/terminal.py) and what each command shows: the event line, the banner, `history list`,
`payloads list` and `--help` fitted to 60, 80, 120 and 200 columns (exact lines where the layout is the point), through
the real renderer, the real CLI and a pty; and what check, send, listen and replay show on a terminal and in --json: who
is sending, -v request bodies, assertion records, failures after the summary, one line per repeated retry answer,
names in summaries, filtered events, and the original answer beside a replayed one."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from comethook_cli import __version__
from comethook_cli.cometchat.events import describe
from comethook_cli.cometchat.payloads import BuildOptions, build, find_template
from comethook_cli.engine.history.files import default_path
from comethook_cli.engine.history.reader import History
from comethook_cli.engine.history.writer import HistoryWriter
from comethook_cli.models import AnsweredBy, EventInfo, Exchange, Verdict
from comethook_cli.outputs.eventline import event_spans, shorter_summaries
from comethook_cli.outputs.layout import cut_at_word
from comethook_cli.outputs.terminal import Renderer
from tests.conftest import ListenProcess, delivery, ndjson

WIDTHS = (60, 80, 120, 200)
CLOCK = re.compile(r"^\d\d:\d\d:\d\d ")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def exchange(trigger: str = "before_message", verdict: Verdict | None = Verdict("pass"), **fields: Any) -> Exchange:
    payload = build(find_template(trigger), BuildOptions(text="a somewhat long message text to preview here"))
    defaults: dict[str, Any] = dict(
        id="evt_01a22ad624e3615f63a8", received_at=time.time(), method="POST", path="/webhook", query="", headers=(),
        body=b"{}", info=describe(payload), response_status=200, response_body=b"{}", latency_ms=2.8, verdict=verdict,
    )  # fmt: skip
    defaults.update(fields)
    return Exchange(**defaults)


def event_lines(e: Exchange, width: int | None) -> list[Text]:
    """The event lines as rich Text, as Console.print would get them (the listener writes event_spans itself)."""
    return [line if isinstance(line, Text) else Text.assemble(*line) for line in event_spans(e, width)]


def plain(width: int | None, e: Exchange) -> list[str]:
    return [line.plain for line in event_lines(e, width)]


class CountingStream(io.StringIO):
    """A log file (not a terminal) that counts how often it is asked whether it is one."""

    asked = 0

    def isatty(self) -> bool:
        self.asked += 1
        return False


def test_the_event_line_asks_whether_stdout_is_a_terminal_once_not_per_delivery() -> None:
    """rich asks the environment and the stream (a system call through BackgroundStream) each time: the listener's
    display asks once per console, and a console swapped in is asked again."""
    stream = CountingStream()
    renderer = Renderer(stream=stream)
    asked = stream.asked
    for _ in range(20):
        renderer.event(exchange())
    assert stream.asked == asked
    assert stream.getvalue().count("\n") == 20 and "\x1b" not in stream.getvalue()
    swapped = CountingStream()
    renderer.out = Console(file=swapped, highlight=False, soft_wrap=True)
    asked = swapped.asked  # rich asks while it makes the console
    renderer.event(exchange())
    renderer.event(exchange())
    assert swapped.asked == asked + 1 and swapped.getvalue().count("\n") == 2


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("trigger", ["before_message", "after_connection_status_changed", "message_sent", "group_member_joined"])
def test_the_event_line_fits_and_keeps_status_verdict_latency_and_trigger(width: int, trigger: str) -> None:
    verdict = Verdict("pass") if trigger == "before_message" else None
    e = exchange(trigger, verdict)
    (line,) = plain(width, e)
    assert cell_len(line) <= width
    assert f"--> {trigger}" in line and "200" in line and "2.8 ms" in line
    if verdict:
        assert "200 PASS 2.8 ms" in line
    # The summary (or a shorter form: first names, no message id) is whole or cut after a word: what is shown is a
    # prefix of one of them ending at a word.
    shown = line.split("2.8 ms", 1)[1].removeprefix("  ")
    forms = [e.info.summary, *shorter_summaries(e.info.summary)]
    assert not line.endswith(" ")
    if shown.startswith(e.info.summary[:5]):
        head = shown.split("  webhook")[0].split("  evt_")[0]
        if head.endswith("…"):
            assert any(form.startswith(head[:-1]) and form[len(head) - 1] == " " for form in forms), head
        else:
            assert any(form.startswith(head) for form in forms), head


def test_exact_lines_at_each_width() -> None:
    e = exchange()
    clock = plain(None, e)[0][:9]
    # Narrow: first names, then no message id, before the text is cut (the text tells two deliveries apart).
    assert plain(60, e) == ['--> before_message  200 PASS 2.8 ms  Andrew → George · "a…']
    assert plain(80, e) == [clock + '--> before_message  200 PASS 2.8 ms  Andrew → George · "a somewhat…']
    assert plain(120, e) == [
        clock + '--> before_message [legacy]  200 PASS 2.8 ms  Andrew → George · "a somewhat long message text to preview here"'
    ]
    wide = plain(200, e)[0]
    assert cell_len(wide) <= 200 and wide.endswith('here" · id not yet assigned  webhook comethook-dev  evt_01a22ad624e3615f63a8')
    # A pipe (no width) gets everything, on one line.
    (full,) = plain(None, e)
    assert full.endswith(
        '"a somewhat long message text to preview here" · id not yet assigned  webhook comethook-dev  evt_01a22ad624e3615f63a8'
    )


def test_an_invalid_answer_says_its_reason_once_without_double_parentheses() -> None:
    reason = "HTTP 503 is not a 2xx answer (CometChat's handling is undocumented)"
    (line,) = plain(200, exchange(verdict=Verdict("invalid", reason), response_status=503))
    assert f"503 INVALID 2.8 ms  {reason} · Andrew → George" in line
    assert "((" not in line and "))" not in line


def test_a_fallback_answer_says_fallback_not_from_the_app() -> None:
    e = exchange(
        forwarded_to="http://localhost:9198/webhook",
        forward_error="connection refused",
        answered_by="comethook (fallback pass)",
        outcome=AnsweredBy.FALLBACK_PASS,
    )
    _, back = plain(200, e)
    assert "<-- 200 PASS 2.8 ms  fallback pass: http://localhost:9198/webhook connection refused" in back
    assert " from " not in back
    _, answer = plain(200, exchange(forwarded_to="http://localhost:9198/webhook"))
    assert answer.endswith("<-- 200 PASS 2.8 ms  from http://localhost:9198/webhook")


def test_cut_at_word() -> None:
    from rich.text import Text

    assert cut_at_word(Text("alpha beta gamma"), 16).plain == "alpha beta gamma"
    assert cut_at_word(Text("alpha beta gamma"), 15).plain == "alpha beta…"
    assert cut_at_word(Text("alphabetagamma"), 6) is None  # not even one word fits: left out, never cut mid-word
    assert cut_at_word(Text("alpha"), 1) is None


def stored(count: int = 3) -> list[Exchange]:
    writer = HistoryWriter(default_path())
    kept = []
    for n, trigger in enumerate(["after_connection_status_changed", "before_message", "message_sent"][:count]):
        e = exchange(trigger, Verdict("invalid", "bad") if trigger == "before_message" else None, id=f"evt_01a22ad6{n:016x}")
        if trigger == "before_message":
            e = exchange(trigger, Verdict("invalid", "bad"), id=f"evt_01a22ad6{n:016x}", response_status=502)
        writer._write([e])
        kept.append(e)
    writer.close()
    return kept


@pytest.mark.parametrize("width", WIDTHS)
def test_history_list_columns_line_up_and_fit(cli: Any, width: int) -> None:
    kept = stored()
    result = cli("history", "list", env={"COLUMNS": str(width)})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and all(cell_len(line) <= width for line in lines)
    # Every column starts at the same place on every line: the answer column most of all.
    starts = {line.index("answer" if n == 0 else ("502" if "before_message" in line else "200 ")) for n, line in enumerate(lines)}
    assert len(starts) == 1
    with History() as history:
        short = history.short_ids([e.id for e in kept])
    assert all(len(s) == 6 for s in short.values())
    assert [line.split()[0] for line in lines[1:]] == [short[e.id] for e in reversed(kept)]
    if width >= 80:
        assert "after_connection_status_changed" in result.stdout  # the long trigger is never cut at 80 and wider


def test_the_short_id_is_accepted_by_history_show(cli: Any) -> None:
    kept = stored(1)
    listed = cli("history", "list").stdout.splitlines()[1].split()[0]
    shown = cli("history", "show", listed)
    assert shown.exit_code == 0 and kept[0].id in shown.stdout


def test_history_list_with_no_database_is_exit_0(cli: Any) -> None:
    assert not default_path().exists()
    result = cli("history", "list")
    assert result.exit_code == 0 and result.stdout == "" and "No history yet" in result.stderr


@pytest.mark.parametrize("width", WIDTHS)
def test_payloads_list_never_wraps_a_trigger_name(cli: Any, width: int) -> None:
    result = cli("payloads", "list", env={"COLUMNS": str(width)})
    lines = result.stdout.splitlines()
    assert all(cell_len(line) <= width for line in lines)
    first_words = {line.split()[0] for line in lines[1:]}
    assert "after_push_notification_delivered" in first_words and "after_connection_status_changed" in first_words
    assert len(lines) == 65  # the header and one line per catalog entry: nothing wrapped


@pytest.mark.parametrize("width", (60, 80))
@pytest.mark.parametrize(
    "command",
    [(), ("listen",), ("send",), ("replay",), ("check",), ("history",), ("history", "export"), ("payloads", "show")],
)
def test_help_reads_well(cli: Any, width: int, command: tuple[str, ...]) -> None:
    result = cli(*command, "--help", env={"COLUMNS": str(width)})
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith(f"Usage: comethook {' '.join(command)}".rstrip())
    assert all(cell_len(line) <= width for line in out.splitlines())
    assert "<bool>" not in out and "<int" not in out and "[[" not in out and "{ID}" not in out and "╭" not in out
    for name in re.findall(r"COMETHOOK_[A-Z_]+", out):
        assert name in ("COMETHOOK_BASIC_AUTH", "COMETHOOK_NGROK_PATH", "COMETHOOK_CONFIG"), name  # never cut


def test_listen_help_at_80_columns_exact_rows(cli: Any) -> None:
    out = cli("listen", "--help", env={"COLUMNS": "80"}).stdout
    assert "\nTunnel\n  --tunnel / --no-tunnel      Require an ngrok tunnel / never open one. Default:\n" in out
    assert "  --respond pass|drop|inject:JSON|inject:@FILE\n                              Answer to before_message." in out
    assert "\n  -p, --port N                Port; 0 picks a free one. [default: 8765]\n" in out
    panels = [line for line in out.splitlines() if line and not line.startswith(" ") and not line.startswith("Usage")]
    assert panels == ["Options", "Listener", "Answers", "Forwarding", "Tunnel", "History", "Inspector"]


# --- the real thing on a pty ---------------------------------------------------------------------------------


def run_on_pty(args: list[str], width: int, until: str, then: Any = None, timeout: float = 20) -> str:
    """Run comethook on a pseudo-terminal `width` columns wide; call `then(text)` once `until` shows; return all output."""
    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 50, width, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR")}
    env["TERM"] = "xterm"
    proc = subprocess.Popen(
        [sys.executable, "-m", "comethook_cli", *args], stdin=child, stdout=child, stderr=child, env=env,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    os.close(child)
    text, called, deadline = "", False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([parent], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(parent, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                text += chunk.decode("utf-8", "replace")
            if not called and until in text:
                called = True
                if then is not None:
                    then(text)
            if proc.poll() is not None and not ready:
                break
    finally:
        proc.kill() if proc.poll() is None else None
        proc.wait(5)
        os.close(parent)
    return ANSI.sub("", text).replace("\r\n", "\n")


@pytest.mark.parametrize("width", (60, 80, 120))
def test_listen_on_a_real_terminal_never_wraps(width: int) -> None:
    def deliver(text: str) -> None:
        url = re.search(r"listening on (http://[0-9.:]+)", ANSI.sub("", text))
        assert url is not None
        for trigger in ("before_message", "after_connection_status_changed"):
            body = build(find_template(trigger), BuildOptions(text="long enough to need cutting at eighty columns, surely"))
            request = urllib.request.Request(url.group(1) + "/webhook", data=__import__("json").dumps(body).encode())
            urllib.request.urlopen(request, timeout=10).read()

    out = run_on_pty(["listen", "--port", "0", "--no-tunnel", "--max-events", "2", "--timeout", "15"], width, "Ctrl-C", deliver)
    lines = out.splitlines()
    assert all(cell_len(line) <= width for line in lines), [line for line in lines if cell_len(line) > width]
    events = [line for line in lines if "--> " in line]
    assert (
        len(events) == 2
        and "200 PASS" in events[0]
        and re.search(r"after_connection_status_changed( \[legacy\])?  200", events[1])
    )
    # The banner wraps at words: the local-only sentences are all there, every line of them a whole set of words.
    banner = " ".join(line.strip() for line in lines if line.startswith("  "))
    assert "On this machine only: for `comethook send` and your tests, not for the CometChat Dashboard." in banner
    assert "pass its address with --public-url." in banner
    assert "Stopped after 2 events." in out


def test_event_info_of_an_unknown_delivery_still_fits() -> None:
    info = EventInfo("x" * 70, "unknown", "unknown", "not a CometChat delivery (a, b)")
    (line,) = plain(60, exchange(info=info, verdict=None))
    assert "x" * 70 in line and "200 2.8 ms" in line  # the trigger and status stay whole even when they overflow


async def test_send_says_who_it_is_and_shows_the_request_body_with_v(cli: Any, target: Any) -> None:
    url, received = await target(lambda request: web.json_response({"ok": True}))
    result = await cli.run("send", "message_sent", "--to", url, "-v", "--text", "look at this body")
    assert result.exit_code == 0
    assert received[0][0].headers["User-Agent"] == f"comethook/{__version__}"
    out = result.stdout
    assert out.index("request body:") < out.index('"look at this body"') < out.index("<-- 200")


async def test_assertions_say_so_on_a_terminal_line_and_in_json(cli: Any, target: Any) -> None:
    url, _ = await target(lambda request: web.json_response({"status": "queued"}))
    passed = await cli.run("send", "message_sent", "--to", url, "--expect", "ok", "--expect-json", "status=queued")
    assert passed.exit_code == 0
    assert "✓ assertions held: --expect ok, --expect-json status=queued" in passed.stdout
    failed = await cli.run("send", "message_sent", "--to", url, "--expect-json", "status=done", "--json")
    assert failed.exit_code == 3
    (record,) = [r for r in ndjson(failed.stdout) if r["type"] == "assertion"]
    assert record == {
        "type": "assertion", "ok": False, "asserted": ["--expect-json status=done"],
        "failures": ['expected answer status = "done", got "queued"'],
    }  # fmt: skip
    assert "Hint: " in failed.stderr
    plain = await cli.run("send", "message_sent", "--to", url, "--json")
    assert not [r for r in ndjson(plain.stdout) if r["type"] == "assertion"]  # nothing asserted, nothing said


async def test_failures_of_a_run_come_after_the_summary_under_a_heading(cli: Any, target: Any) -> None:
    calls = iter(range(100))
    url, _ = await target(lambda request: web.json_response({}, status=500 if next(calls) % 2 else 200))
    result = await cli.run("send", "message_sent", "--to", url, "--count", "14")
    assert result.exit_code == 1
    out = result.stdout
    assert out.index("count") < out.index("Failed deliveries (the first 5 of 7):")
    assert out.split("Failed deliveries (the first 5 of 7):\n", 1)[1].count("500 ") == 5


async def test_a_retry_that_got_the_same_answer_is_one_line(cli: Any, target: Any) -> None:
    url, _ = await target(lambda request: web.json_response({"moderation": {"score": 0.1}}))
    result = await cli.run("send", "before_message", "--to", url, "--simulate-retries", "--retry-delays", "0,0")
    assert result.exit_code == 0
    assert result.stdout.count("resulting data.metadata") == 1 and result.stdout.count('"score"') <= 2
    assert [line.endswith("  same answer") for line in result.stdout.splitlines()].count(True) == 2  # one per retry
    assert "Retries: same answer on all 3 attempts" in result.stdout


def test_summaries_use_names_and_a_documented_trigger_is_never_undocumented() -> None:
    body = json.loads(delivery("group_created"))
    assert describe(body).summary == "group Hiking Group created by Andrew Joseph"
    assert describe({"trigger": "message_sent"}).summary == "message_sent without data.message (data: no data)"
    assert "undocumented" in describe({"trigger": "brand_new_trigger"}).summary


def post(url: str, body: bytes, agent: str | None = None) -> None:
    request = urllib.request.Request(url + "/webhook", data=body, headers={"User-Agent": agent} if agent else {})
    urllib.request.urlopen(request, timeout=10).read()


def test_listen_events_stores_and_shows_only_those(cli: Any) -> None:
    listening = ListenProcess("--no-tunnel", "--events", "BEFORE_MESSAGE", "--max-events", "1", "--timeout", "20")
    post(listening.url, delivery("message_sent"))
    post(listening.url, delivery("before_message"))
    code, out, _ = listening.finish()
    assert code == 0
    records = ndjson(out)
    assert [r["type"] for r in records] == ["event", "stopped"] and records[0]["trigger"] == "before_message"
    stored = ndjson(cli("history", "export").stdout)
    assert [e["trigger"] for e in stored] == ["before_message"]


def test_listen_events_shows_the_others_as_one_dim_line_and_marks_probes() -> None:
    listening = ListenProcess("--no-tunnel", "--events", "legacy", "--max-events", "1", "--timeout", "20", json_out=False)
    post(listening.url, delivery("message_sent"))
    post(listening.url, delivery("before_message"), agent=f"comethook-check/{__version__}")
    code, out, _ = listening.finish()
    assert code == 0
    lines = out.splitlines()
    assert " --- message_sent (not in --events; answered 200)" in lines[0]
    assert "--> before_message [legacy] check probe  200 PASS" in lines[1]


async def test_replay_shows_the_original_answer_beside_the_new_one(cli: Any, target: Any) -> None:
    import time as clock

    from comethook_cli.engine.history.files import default_path
    from comethook_cli.engine.history.writer import HistoryWriter
    from comethook_cli.models import Exchange

    body = delivery("message_sent")
    stored = Exchange(
        id="evt_01a22ad6000000000001", received_at=clock.time(), method="POST", path="/webhook", query="", headers=(),
        body=body, info=describe(json.loads(body)), response_status=200, response_body=b'{"a": 1, "b": true}', latency_ms=1.5,
    )  # fmt: skip
    writer = HistoryWriter(default_path())
    writer._write([stored])
    writer.close()
    answers = iter([{"a": 1, "b": True}, {"a": 2, "b": True}])
    url, _ = await target(lambda request: web.json_response(next(answers)))
    same = await cli.run("replay", "--last", "--to", url)
    assert same.exit_code == 0 and "Original: 200 in 1.5 ms  now: 200  same answer" in same.stdout
    changed = await cli.run("replay", "--last", "--to", url)
    assert "Original: 200 in 1.5 ms  now: 200  the answer changed" in changed.stdout
    assert '-  "a": 1,\n+  "a": 2,' in changed.stdout


def test_listens_event_line_says_an_acknowledgement_will_be_injected() -> None:
    from comethook_cli.cometchat.verdict import judge

    verdict = judge({"trigger": "before_message"}, 200, b'{"status": "ok"}')
    [line] = event_lines(exchange(verdict=verdict, response_body=b'{"status": "ok"}'), None)
    assert "INJECT" in line.plain and "looks like an acknowledgement" in line.plain
    styles = {str(span.style) for span in line.spans if "acknowledgement" in line.plain[span.start : span.end]}
    assert styles == {"yellow"}  # a warning, not the red of an INVALID answer


def test_at_80_columns_names_shorten_before_the_message_text_is_cut() -> None:
    """The text tells two before_message rows apart: first names, then no message id, before the text gives way."""
    payload = build(find_template("before_message"), BuildOptions(text="Are we still on for lunch tomorrow at noon"))
    e = exchange(info=describe(payload))
    [line] = plain(80, e)
    assert len(line) <= 80 and "Andrew → George" in line and '"Are we still' in line, line
    [wide] = plain(None, e)
    assert "Andrew Joseph → George Alan" in wide  # whole in a log or a pipe


# --- the event line written without rich's print pipeline: the bytes Console.print gives ------------------------------


CONSOLES = [
    dict(force_terminal=False, color_system=None),
    dict(force_terminal=True, color_system="truecolor"),
    dict(force_terminal=True, color_system="256"),
    dict(force_terminal=True, color_system="standard"),
    dict(force_terminal=True, color_system="truecolor", no_color=True),
]


def exchanges() -> list[Any]:
    return [
        exchange(),
        exchange(verdict=Verdict("drop", "blocked word")),
        exchange("message_sent", None, latency_ms=1234.5),
        exchange(response_status=500, verdict=Verdict("invalid", "not JSON")),
        exchange(forwarded_to="http://127.0.0.1:3000/hook", answered_by="your app", outcome=AnsweredBy.APP),
        exchange(
            forwarded_to="http://127.0.0.1:3000/hook",
            answered_by="comethook (fallback pass)",
            outcome=AnsweredBy.FALLBACK_PASS,
            forward_error="refused",
        ),
        exchange("group_member_joined", None, id="evt_wide_字字字字字字字字字字字字_😀😀"),
    ]


@pytest.mark.parametrize("settings", CONSOLES, ids=lambda s: "-".join(str(v) for v in s.values()))
@pytest.mark.parametrize("width", [60, 80, 200, None])
def test_the_event_line_is_written_as_console_print_would(settings: dict[str, Any], width: int | None) -> None:
    """The listener writes its event lines as spans (or a Text when one had to be cut), on a console without colours
    without Console.print: the bytes are the same as printing the Text that event_lines() gives, on every console."""
    for e in exchanges():
        lines, fast = event_lines(e, width), event_spans(e, width)
        assert len(lines) == len(fast)
        for line, spans in zip(lines, fast, strict=True):
            for given in (line, spans):
                expected, got = io.StringIO(), io.StringIO()
                reference = Console(file=expected, width=width or 400, highlight=False, soft_wrap=width is None, **settings)
                reference.print(line)
                renderer = Renderer(stream=got)
                renderer.out = Console(file=got, width=width or 400, highlight=False, soft_wrap=width is None, **settings)
                renderer.print_line(given)
                renderer.print_line(given)
                assert got.getvalue() == expected.getvalue() * 2
                assert got.getvalue().count("\n") == 2


def test_a_recording_console_still_records_the_line() -> None:
    renderer = Renderer(stream=io.StringIO())
    renderer.out = Console(file=io.StringIO(), record=True, width=120)
    (line,) = event_lines(exchange(), 120)
    renderer.print_line(line)
    assert "--> before_message" in renderer.out.export_text()

"""`comethook check` against real aiohttp endpoints that pass everything, and ones that fail each check in turn; its
retry semantics (volatile fields) and its GitHub Actions output."""

from __future__ import annotations

import asyncio
import base64
import copy
import http.server
import json
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiohttp import web

from comethook_cli import __version__
from comethook_cli.cometchat.events import get
from comethook_cli.cometchat.payloads import find_template
from tests.conftest import ndjson

GOOD_AUTH = "Basic " + base64.b64encode(b"cc:s3cret").decode()


def endpoint(
    *, auth: bool = True, on_malformed: int = 400, content_type_strict: bool = False, before_answer: Any = None,
    delay: float = 0.0, status: int = 200, counter: bool = False,
) -> Any:  # fmt: skip
    seen: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        if auth and request.headers.get("Authorization") != GOOD_AUTH:
            return web.json_response({"error": "unauthorized"}, status=401)
        # Strict like a receiver written against what CometChat sends, not what it documents.
        if content_type_strict and request.headers.get("Content-Type") != "Application/json":
            return web.json_response({"error": "unsupported media type"}, status=415)
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return web.json_response({"error": "bad json"}, status=on_malformed)
        if delay:
            await asyncio.sleep(delay)
        if counter:
            seen.append(1)
            return web.json_response({"n": len(seen)})
        if payload.get("trigger") == "before_message" and before_answer is not None:
            return web.Response(text=before_answer) if isinstance(before_answer, str) else web.json_response(before_answer)
        return web.json_response({}, status=status)

    return handle


def statuses(result: Any) -> dict[str, str]:
    return {line["name"]: line["status"] for line in ndjson(result.stdout) if line["type"] == "check"}


async def test_a_good_endpoint_passes_everything_and_writes_junit(cli: Any, target: Any, tmp_path: Path) -> None:
    url, _ = await target(endpoint())
    junit = tmp_path / "report.xml"
    result = await cli.run("check", "--to", url, "--basic-auth", "cc:s3cret", "--json", "--junit", str(junit))
    assert result.exit_code == 0, result.output
    got = statuses(result)
    assert set(got.values()) == {"pass"}
    assert set(got) == {
        "before_message (legacy) accepted", "after_message (legacy) accepted", "message_sent (current) accepted",
        "before_message answer usable", "missing credentials refused", "wrong credentials refused",
        "retry of the same delivery", "malformed body gets a 4xx", "Content-Type: application/json accepted",
        "before_message retry: same verdict",
    }  # fmt: skip
    summary = ndjson(result.stdout)[-1]
    assert summary["type"] == "summary" and summary["failed"] == 0 and summary["passed"] == 10
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "10" and suite.get("failures") == "0"
    assert len(suite.findall("testcase")) == 10 and not suite.findall("testcase/failure")
    assert "s3cret" not in result.output and "s3cret" not in junit.read_text()


@pytest.mark.parametrize(
    ("kwargs", "failing", "detail"),
    [
        ({"status": 500}, "message_sent (current) accepted", "answered 500"),
        ({"before_answer": "ok"}, "before_message answer usable", "INVALID: the answer is not JSON"),
        ({"before_answer": {"action": "nuke"}}, "before_message answer usable", "unknown action 'nuke'"),
        ({"auth": False}, "missing credentials refused", "anyone can post to this URL"),
        ({"on_malformed": 500}, "malformed body gets a 4xx", "crashes on bad JSON"),
        ({"content_type_strict": True}, "Content-Type: application/json accepted", "answered 415"),
        ({"counter": True}, "before_message retry: same verdict", "injected content differs at n"),
    ],
)
async def test_each_failing_check_is_named_and_exits_3(
    cli: Any, target: Any, tmp_path: Path, kwargs: dict[str, Any], failing: str, detail: str
) -> None:
    url, _ = await target(endpoint(**kwargs))
    junit = tmp_path / "report.xml"
    result = await cli.run("check", "--to", url, "--basic-auth", "cc:s3cret", "--json", "--junit", str(junit))
    assert result.exit_code == 3, result.output
    lines = {line["name"]: line for line in ndjson(result.stdout) if line["type"] == "check"}
    assert lines[failing]["status"] == "fail" and detail in lines[failing]["detail"]
    assert "check(s) failed: " in result.stderr and failing in result.stderr
    failed_cases = [case.get("name") for case in ET.parse(junit).getroot().iter("testcase") if case.find("failure") is not None]
    assert failing in failed_cases


@pytest.mark.parametrize(("strict", "hinted"), [(True, True), (False, False)], ids=["casing-matters", "fails-anyway"])
async def test_the_casing_hint_is_given_only_when_the_two_casings_are_answered_differently(
    cli: Any, target: Any, strict: bool, hinted: bool
) -> None:
    """An endpoint that answers 500 to everything fails the Content-Type check too, but its casing is not the cause."""
    url, _ = await target(endpoint(content_type_strict=strict, status=200 if strict else 500))
    result = await cli.run("check", "--to", url, "--basic-auth", "cc:s3cret", "--json")
    row = next(line for line in ndjson(result.stdout) if line["name"] == "Content-Type: application/json accepted")
    assert row["status"] == "fail"
    assert ("case-insensitively" in row["detail"]) is hinted, row["detail"]
    if not hinted:
        assert row["detail"] == "answered 500, as it does in the Application/json casing: the casing is not the cause"


async def test_an_acknowledgement_answer_to_before_message_is_a_warning(cli: Any, target: Any) -> None:
    url, _ = await target(endpoint(before_answer={"status": "ok"}))
    result = await cli.run("check", "--to", url, "--basic-auth", "cc:s3cret", "--json")
    row = next(line for line in ndjson(result.stdout) if line["name"] == "before_message answer usable")
    assert row["status"] == "warn" and "acknowledgement" in row["detail"] and "answer {}" in row["detail"]


async def test_slow_endpoint_fails_the_budget(target: Any) -> None:
    """An answer slower than the budget fails its check (CometChat's 2 s; 100 ms here, to not wait 2 s)."""
    from comethook_cli.engine.checks import run_checks

    url, _ = await target(endpoint(auth=False, delay=0.3))
    run = await run_checks(url, [find_template("message_sent")], budget_ms=100)
    (accepted,) = [r for r in run.results if r.name == "message_sent (current) accepted"]
    assert accepted.status == "fail" and "over CometChat's 2 s budget" in accepted.detail
    run = await run_checks(url, [find_template("message_sent")])
    (accepted,) = [r for r in run.results if r.name == "message_sent (current) accepted"]
    assert accepted.status == "pass"  # 0.3 s is within the real budget


async def test_hanging_endpoint_ends_in_bounded_time(cli: Any, target: Any) -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response({})

    url, _ = await target(hang)
    started = time.monotonic()
    result = await cli.run("check", "--to", url, "--timeout", "0.5", "--json")
    assert time.monotonic() - started < 5
    assert result.exit_code == 3
    assert all(status != "pass" for status in statuses(result).values())
    assert "timed out after 0.5 s" in result.stdout


async def test_unreachable_endpoint_exits_4(cli: Any, closed_port: int) -> None:
    result = await cli.run("check", "--to", f"http://127.0.0.1:{closed_port}/hook")
    assert result.exit_code == 4
    assert "could not be reached" in result.stderr


async def test_human_table_and_trigger_selection(cli: Any, target: Any) -> None:
    url, received = await target(endpoint(auth=False))
    result = await cli.run("check", "--to", url, "--triggers", "legacy")
    assert result.exit_code == 0, result.output
    assert "PASS" in result.stdout and "WARN" in result.stdout and "basic auth enforced" in result.stdout
    assert "passed, 0 failed" in result.stdout
    triggers = {json.loads(raw)["trigger"] for _, raw in received if raw.startswith(b'{"trigger"') and raw.endswith(b"}")}
    assert {"before_message", "after_message", "message_delivery_receipt", "after_connection_status_changed"} <= triggers
    bad = await cli.run("check", "--to", url, "--triggers", "nope")
    assert bad.exit_code == 2 and "Unknown trigger" in bad.stderr


async def test_comethook_listen_itself_passes_check(cli: Any, listen_process: Any) -> None:
    # --quiet: nobody reads this subprocess's stdout, so it must not fill the pipe
    listener = await asyncio.to_thread(listen_process, "--basic-auth", "cc:s3cret", "--no-history", "--quiet", json_out=False)
    result = await cli.run("check", "--to", listener.url + "/webhook", "--basic-auth", "cc:s3cret", "--triggers", "all", "--json")
    assert result.exit_code == 0, result.output
    assert set(statuses(result).values()) == {"pass"}


async def test_checks_are_marked_so_a_listen_in_front_files_them_apart_from_cometchat(cli: Any, target: Any) -> None:
    url, received = await target(lambda r: web.json_response({}))
    await cli.run("check", "--to", url, "--triggers", "message_sent", "--json")
    assert received and all(request.headers.get("X-Comethook-Origin") == "check" for request, _ in received)


async def test_url_credentials_are_the_endpoints_basic_auth_and_not_a_second_one(cli: Any, target: Any) -> None:
    expected = "Basic " + base64.b64encode(b"cc:s3cret").decode()
    url, received = await target(
        lambda r: web.json_response({}) if r.headers.get("Authorization") == expected else web.Response(status=401)
    )
    with_user = url.replace("http://", "http://cc:s3cret@")
    twice = await cli.run("check", "--to", with_user, "--basic-auth", "cc:s3cret", "--triggers", "message_sent")
    assert twice.exit_code == 2 and "Two sets of credentials" in twice.stderr and "--basic-auth" in twice.stderr
    assert "Traceback" not in twice.output and "s3cret" not in twice.output and not received
    # Alone, they are the credentials the checks send, and the auth checks run (wrong and missing ones are refused).
    alone = await cli.run("check", "--to", with_user, "--triggers", "message_sent", "--json")
    assert alone.exit_code == 0, alone.output
    results = {line["name"]: line["status"] for line in ndjson(alone.stdout) if line.get("type") == "check"}
    assert results["wrong credentials refused"] == "pass" and results["missing credentials refused"] == "pass"
    assert "s3cret" not in alone.output


async def test_the_junit_report_is_private_whatever_the_umask(cli: Any, target: Any, tmp_path: Path) -> None:
    import os
    import stat

    url, _ = await target(endpoint())
    junit = tmp_path / "report.xml"
    junit.write_text("an older report, readable by all")
    junit.chmod(0o644)
    previous = os.umask(0)
    try:
        result = await cli.run("check", "--to", url, "--basic-auth", "cc:s3cret", "--json", "--junit", str(junit))
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(junit.stat().st_mode) == 0o600  # it names the endpoint and what it answered
    assert ET.parse(junit).getroot().find("testsuite") is not None


class _Counting(http.server.BaseHTTPRequestHandler):
    """A handler that records how many requests are being handled at once (the server is threaded, so a burst shows)."""

    lock = threading.Lock()
    active = 0
    most = 0
    agents: ClassVar[list[str]] = []
    status = 200

    def do_POST(self) -> None:
        cls = type(self)
        with cls.lock:
            cls.active += 1
            cls.most = max(cls.most, cls.active)
            cls.agents.append(self.headers.get("User-Agent", ""))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        threading.Event().wait(0.02)
        with cls.lock:
            cls.active -= 1
        status = cls.status
        body = b"{}" if status < 400 else b'{"error": "auth"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def counting() -> Iterator[tuple[str, type[_Counting]]]:
    handler = type("Handler", (_Counting,), {"active": 0, "most": 0, "agents": [], "status": 200, "lock": threading.Lock()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


def test_check_keeps_at_most_concurrency_requests_in_flight(cli: Any, counting: tuple[str, Any]) -> None:
    url, handler = counting
    result = cli("check", "--to", url, "--triggers", "all", "--json")
    assert result.exit_code == 0  # healthy: no false "over CometChat's 2 s budget" failures from a burst
    assert 1 < handler.most <= 4  # the default, documented --concurrency
    handler.most = 0
    cli("check", "--to", url, "--triggers", "current", "--concurrency", "1", "--json")
    assert handler.most == 1
    assert set(handler.agents) == {f"comethook-check/{__version__}"}


def test_check_against_an_endpoint_that_wants_credentials(cli: Any, counting: tuple[str, Any]) -> None:
    url, handler = counting
    handler.status = 401
    result = cli("check", "--to", url, "--json")
    assert result.exit_code == 3
    checks = {c["name"]: c for c in ndjson(result.stdout) if c["type"] == "check"}
    assert not any(c["status"] == "pass" for c in checks.values())  # a 401 passes nothing, not even the malformed body
    assert checks["malformed body gets a 4xx"]["detail"] == "answered 401 before reading the body: pass --basic-auth"
    assert result.stderr.count("the endpoint wants Basic auth") == 1
    assert "Hint: The endpoint wants Basic auth: pass --basic-auth USER:PASS." in result.stderr


def test_a_refused_connection_says_connection_refused(cli: Any, closed_port: int) -> None:
    result = cli("check", "--to", f"http://127.0.0.1:{closed_port}/hook", "--json")
    assert result.exit_code == 4
    details = [c["detail"] for c in ndjson(result.stdout) if c["type"] == "check" and c["status"] == "fail"]
    assert details and all("connection refused" in d for d in details)
    assert not any("a hang, or a dropped connection" in d for d in details)
    sent = cli("send", "message_sent", "--to", f"http://127.0.0.1:{closed_port}/hook")
    assert sent.exit_code == 4 and "connection refused" in sent.stderr


async def test_in_a_pipe_each_check_is_one_whole_line_and_one_cause_is_said_once(cli: Any, target: Any) -> None:
    """Before, a CI log got a detail column 9 characters wide with words split (`credentia / ls`), and 61 rows for one
    415. CliRunner's stdout is not a terminal, as in a pipe."""
    url, _ = await target(endpoint(status=500, auth=False))
    result = await cli.run("check", "--to", url, "--triggers", "all")
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    rows = [line for line in lines if line[:4] in ("PASS", "FAIL", "WARN")]
    assert any(line.endswith("recommends Basic auth)") and line.startswith("WARN  basic auth enforced") for line in rows)
    [cause] = [line for line in rows if "one cause" in line]
    assert cause.startswith("FAIL  ") and "checks (accepted), one cause: answered 500" in cause
    names = lines[lines.index(cause) + 1]
    assert names.startswith("      ") and "after_message (legacy), " in names and " accepted" not in names
    assert len(rows) < 15  # not a row per trigger


def test_on_a_terminal_the_check_table_fits_its_width_and_wraps_at_words() -> None:
    from rich.console import Console

    from comethook_cli.engine.checks import CheckResult
    from comethook_cli.outputs.tables import check_table
    from comethook_cli.outputs.wire import CheckSummary

    detail = "not tested: give credentials (COMETHOOK_BASIC_AUTH or --basic-auth-file; CometChat recommends Basic auth)"
    results = [CheckResult("Content-Type: application/json accepted", "warn", 1.0, detail)]
    console = Console(force_terminal=True, width=80, record=True, color_system=None)
    check_table(console, "http://x/hook", results, CheckSummary(1, 0, 0, 1, 0.1))
    lines = console.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert all(any(word in line for line in lines) for word in detail.split()), lines  # no word split across lines
    assert len(lines) <= 7, lines  # title, header, 4 lines of detail (it has room: not 9 cells wide), the summary


async def test_checks_defaults_have_one_home_that_the_cli_the_help_and_the_engine_read(cli: Any) -> None:
    import inspect

    from comethook_cli.cli.check import check
    from comethook_cli.engine import checks
    from comethook_cli.engine.config import Checking, default
    from comethook_cli.errors import InvalidSetting

    engine = inspect.signature(checks.run_checks).parameters
    command = inspect.signature(check).parameters
    for name in ("timeout", "concurrency"):
        assert engine[name].default == command[name].default == default(Checking, name)
    shown = " ".join(cli("check", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert f"[default: {default(Checking, 'timeout'):g}]" in shown and f"[default: {default(Checking, 'concurrency')}]" in shown
    # The section checks its own invariant, for every caller: a Python caller of the engine meets the same error.
    with pytest.raises(InvalidSetting) as caught:
        Checking(concurrency=0)
    assert caught.value.named("keyword") == ("concurrency=0 sends nothing.", "Use 1 or more (default 4).")
    with pytest.raises(InvalidSetting, match="concurrency=0 sends nothing"):
        await checks.run_checks("http://127.0.0.1:9/", [find_template("message_sent")], concurrency=0)


# --- on GitHub Actions: annotations and a job summary (outputs/github.py) ---------------------------------------------


async def test_check_on_github_actions_annotates_and_writes_a_job_summary(cli: Any, target: Any, tmp_path: Path) -> None:
    async def answer(request: web.Request) -> web.Response:
        body = await request.read()
        if b'"before_message"' in body:
            return web.Response(status=500, text="boom")
        try:
            json.loads(body)
        except ValueError:
            return web.json_response({"error": "not JSON"}, status=400)
        return web.json_response({})

    url, _ = await target(answer)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    result = await cli.run("check", "--to", url, "--triggers", "before_message,message_sent", "--json", env=env)
    assert result.exit_code == 3
    records = ndjson(result.stdout)  # --json stays pure NDJSON: the workflow commands go to stderr
    assert {r["type"] for r in records} == {"check", "summary", "error"}  # the error record: why it exits 3
    assert records[-1]["type"] == "error" and records[-1]["exit_code"] == 3
    errors = [line for line in result.stderr.splitlines() if line.startswith("::error ")]
    failed = [r["name"] for r in records if r["type"] == "check" and r["status"] == "fail"]
    assert len(errors) == len(failed) >= 2, errors
    assert any(
        line.startswith("::error title=comethook check%3A before_message (legacy) accepted::answered 500") for line in errors
    ), errors
    written = summary.read_text()
    assert written.startswith("earlier step\n## comethook check: `" + url + "`")  # appended, not replaced
    done = records[-2]  # the summary, before the error record
    assert f"{done['passed']} of {done['total']} checks passed" in written
    assert written.count("❌ FAIL") == len(failed)
    # Off GitHub Actions nothing of it; --github turns it on anywhere, --no-github off.
    plain = await cli.run("check", "--to", url, "--triggers", "message_sent")
    assert plain.exit_code == 0 and "::" not in plain.stderr
    forced = await cli.run("check", "--to", url, "--triggers", "message_sent", "--github")
    assert "::warning title=comethook check%3A basic auth enforced::not tested" in forced.stderr  # a warning, not an error
    assert "::" not in (await cli.run("check", "--to", url, "--triggers", "message_sent", "--no-github", env=env)).stderr


# --- retries: an acknowledgement may differ only in volatile fields, a changed verdict fails --------------------------


def acknowledging(before_message: Any = None) -> Any:
    """A healthy receiver: every acknowledgement carries a fresh UUID; before_message gets `before_message()`."""

    async def handle(request: web.Request) -> web.Response:
        try:
            payload = json.loads(await request.read())
        except ValueError:
            return web.json_response({"error": "bad json"}, status=400)
        if payload.get("trigger") == "before_message" and before_message is not None:
            return web.json_response(before_message())
        return web.json_response({"ok": True, "id": str(uuid.uuid4())})

    return handle


async def test_check_passes_a_receiver_that_acknowledges_with_a_fresh_uuid(cli: Any, target: Any) -> None:
    url, _ = await target(acknowledging(before_message=dict))
    result = await cli.run("check", "--to", url, "--json")
    assert result.exit_code == 0, result.output
    lines = {line["name"]: line for line in ndjson(result.stdout) if line["type"] == "check"}
    assert {line["status"] for line in lines.values()} == {"pass", "warn"}  # warn: basic auth not tested
    assert "bodies differ, which CometChat ignores" in lines["retry of the same delivery"]["detail"]
    assert lines["before_message retry: same verdict"]["detail"] == "verdict PASS both times"


async def test_injected_content_may_differ_only_in_volatile_fields(cli: Any, target: Any) -> None:
    url, _ = await target(acknowledging(before_message=lambda: {"requestId": str(uuid.uuid4()), "tier": "gold"}))
    failing = await cli.run("check", "--to", url, "--triggers", "before_message", "--json")
    assert failing.exit_code == 3
    lines = {line["name"]: line for line in ndjson(failing.stdout) if line["type"] == "check"}
    retry = lines["before_message retry: same verdict"]
    assert retry["status"] == "fail" and "differs at requestId" in retry["detail"] and "--volatile" in retry["detail"]
    passing = await cli.run("check", "--to", url, "--triggers", "before_message", "--volatile", "requestId", "--json")
    assert passing.exit_code == 0, passing.output


async def test_a_verdict_that_changes_on_retry_fails(cli: Any, target: Any) -> None:
    answers = iter([{}, {"action": "do_not_propagate"}] * 10)
    url, _ = await target(acknowledging(before_message=lambda: next(answers)))
    result = await cli.run("check", "--to", url, "--triggers", "before_message", "--json")
    assert result.exit_code == 3
    lines = {line["name"]: line for line in ndjson(result.stdout) if line["type"] == "check"}
    assert lines["before_message retry: same verdict"]["status"] == "fail"
    assert "verdict" in lines["before_message retry: same verdict"]["detail"]


async def test_a_retry_that_gets_an_error_status_still_fails(cli: Any, target: Any) -> None:
    seen: set[bytes] = set()

    async def second_time_500(request: web.Request) -> web.Response:
        raw = await request.read()
        status = 500 if raw in seen else 200
        seen.add(raw)
        return web.json_response({}, status=status)

    url, _ = await target(second_time_500)
    result = await cli.run("check", "--to", url, "--triggers", "message_sent", "--json")
    assert result.exit_code == 3
    retry = {line["name"]: line for line in ndjson(result.stdout) if line["type"] == "check"}["retry of the same delivery"]
    assert retry["status"] == "fail" and "200 then 500" in retry["detail"]


@pytest.mark.parametrize("bad", ["", "a..b", "."])
def test_malformed_volatile_is_a_usage_error(cli: Any, bad: str) -> None:
    result = cli("check", "--to", "http://127.0.0.1:9/hook", "--volatile", bad)
    assert result.exit_code == 2 and "Malformed --volatile" in result.stderr


def test_volatile_paths_reach_into_nested_answers() -> None:
    from comethook_cli.engine.checks import differences
    from comethook_cli.engine.values import volatile as parse_volatile

    first = {"meta": {"id": "a", "at": 1}, "items": [{"id": "x", "v": 1}], "keep": True}
    second = copy.deepcopy(first) | {"meta": {"id": "b", "at": 2}, "items": [{"id": "y", "v": 1}]}
    assert differences(first, second) == ["meta.id", "meta.at", "items.0.id"]
    assert differences(first, second, [parse_volatile("meta"), parse_volatile("items.*.id")]) == []
    assert get(second, "keep") is True

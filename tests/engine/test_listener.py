"""The listener in-process: a real aiohttp server on port 0, real aiohttp clients, real SQLite history."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from comethook_cli.cli.options import load_rules, respond_action
from comethook_cli.cometchat.payloads import BuildOptions, build, catalog
from comethook_cli.cometchat.rules import Responder, compile_regex, parse_rules
from comethook_cli.engine.history.reader import History
from comethook_cli.engine.history.writer import HistoryWriter
from comethook_cli.engine.listener import Listener, ListenerConfig
from comethook_cli.engine.values import action as parse_respond
from comethook_cli.models import AnsweredBy, Exchange, Rejection, parse_body
from comethook_cli.outputs import wire
from tests.conftest import delivery, hub_for


class Running:
    def __init__(self, listener: Listener, exchanges: list[Exchange], rejections: list[Rejection], db: Path) -> None:
        self.listener, self.exchanges, self.rejections, self.db = listener, exchanges, rejections, db
        self.url = listener.local_url + "/webhook"


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    started: list[tuple[Listener, HistoryWriter]] = []

    async def _start(responder: Responder | None = None, **config: Any) -> Running:
        exchanges: list[Exchange] = []
        rejections: list[Rejection] = []
        db = tmp_path / f"history-{len(started)}.db"
        writer = HistoryWriter(db)
        listener = Listener(
            ListenerConfig(port=0, **config),
            responder or Responder(),
            hub_for(exchanges.append, rejections.append, print, writer),
        )
        await listener.start()
        started.append((listener, writer))
        return Running(listener, exchanges, rejections, db)

    yield _start
    for listener, writer in started:
        await listener.stop()
        writer.close()


async def post(url: str, body: bytes | str, headers: dict[str, str] | None = None, method: str = "POST") -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(method, url, data=body, headers=headers) as response:
        raw = await response.read()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw


@pytest.mark.parametrize("template", catalog(), ids=lambda t: t.key)
async def test_every_documented_trigger_is_received_described_and_stored(start: Any, template: Any) -> None:
    running = await start()
    body = json.dumps(build(template, BuildOptions())).encode()
    status, answer = await post(running.url, body, {"Content-Type": "application/json"})
    assert (status, answer) == (200, {})
    (exchange,) = running.exchanges
    assert exchange.info.trigger == template.trigger and exchange.info.generation == template.generation
    assert exchange.body == body
    assert (exchange.verdict is not None) == (template.trigger == "before_message")
    stored = History(running.db).get(exchange.id)
    assert stored.body == body and stored.info.summary == exchange.info.summary


async def test_unknown_and_non_cometchat_json_still_display_as_unknown(start: Any) -> None:
    running = await start()
    assert (await post(running.url, b'{"hello": "world"}'))[0] == 200
    assert (await post(running.url, b'{"trigger": "message_flagged", "data": {"x": 1}}'))[0] == 200
    assert (await post(running.url, b"[1, 2, 3]"))[0] == 200
    assert [e.info.trigger for e in running.exchanges] == ["unknown", "message_flagged", "unknown"]
    assert running.exchanges[1].info.generation == "unknown"
    assert "undocumented trigger" in running.exchanges[1].info.summary


@pytest.mark.parametrize(
    ("body", "headers", "method", "status", "reason"),
    [
        (b"not json", {}, "POST", 400, "body is not JSON"),
        (b"", {}, "POST", 400, "empty body"),
        (b"   \n", {}, "POST", 400, "empty body"),
        (b'{"a": "\xff\xfe"}', {}, "POST", 400, "not valid UTF-8"),
        (b"{}", {}, "PUT", 405, "method PUT not allowed"),
        (b"", {}, "DELETE", 405, "method DELETE not allowed"),
        (b"x" * 2048, {}, "POST", 413, "byte limit"),
    ],
)
async def test_bad_input_gets_a_4xx_and_the_listener_keeps_serving(
    start: Any, body: bytes, headers: dict[str, str], method: str, status: int, reason: str
) -> None:
    running = await start(max_body=1024)
    got, answer = await post(running.url, body, headers, method)
    assert got == status
    assert reason in answer["error"]
    assert running.rejections[0].status == status and reason in running.rejections[0].reason
    assert running.exchanges == []  # not counted as an event
    ok, _ = await post(running.url, b'{"trigger": "after_message", "data": {}}')
    assert ok == 200 and len(running.exchanges) == 1


async def test_absurdly_nested_json_is_400_not_a_crash(start: Any) -> None:
    running = await start()
    status, answer = await post(running.url, b"[" * 200_000 + b"]" * 200_000)
    assert status == 400 and answer["error"] == "body is not JSON"
    assert (await post(running.url, b'{"trigger": "after_message"}'))[0] == 200


async def test_oversized_chunked_body_is_413(start: Any) -> None:
    running = await start(max_body=1024)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 512

    async with aiohttp.ClientSession() as session, session.post(running.url, data=chunks()) as response:
        assert response.status == 413


async def test_get_root_is_a_status_and_other_gets_are_405(start: Any) -> None:
    running = await start()
    status, answer = await post(running.listener.local_url + "/", b"", method="GET")
    assert status == 200 and answer["status"] == "ok" and answer["service"] == "comethook"
    assert (await post(running.url, b"", method="GET"))[0] == 405
    assert running.rejections[-1].status == 405


@pytest.mark.parametrize("content_type", ["Application/json", "application/json; charset=utf-8", "text/plain", None])
async def test_json_is_parsed_whatever_the_content_type(start: Any, content_type: str | None) -> None:
    running = await start()
    headers = {"Content-Type": content_type} if content_type else {}
    status, _ = await post(running.url, b'{"trigger": "message_sent", "data": {}}', headers)
    assert status == 200 and running.exchanges[0].info.trigger == "message_sent"


def basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({}, 401, "missing Basic auth credentials"),
        (basic("cc:wrong"), 401, "wrong Basic auth credentials"),
        (basic("other:s3cret"), 401, "wrong"),
        ({"Authorization": "Basic !!!notbase64"}, 401, "wrong"),
        ({"Authorization": "Bearer s3cret"}, 401, "wrong"),
        (basic("cc:s3cret"), 200, None),
    ],
)
async def test_basic_auth_matrix(start: Any, headers: dict[str, str], status: int, reason: str | None) -> None:
    running = await start(basic_auth="cc:s3cret")
    got, answer = await post(running.url, b'{"trigger": "after_message", "data": {}}', headers)
    assert got == status
    if reason:
        assert reason in answer["error"] and running.exchanges == []
    else:
        (exchange,) = running.exchanges
        assert dict(exchange.headers)["Authorization"] == "Basic [redacted]"
        raw_db = running.db.read_bytes() + (
            running.db.with_name(running.db.name + "-wal").read_bytes()
            if running.db.with_name(running.db.name + "-wal").exists()
            else b""
        )
        assert b"s3cret" not in raw_db and base64.b64encode(b"cc:s3cret") not in raw_db


async def test_respond_drop_and_inject(start: Any) -> None:
    drop = await start(Responder(parse_respond("drop")))
    assert await post(drop.url, delivery()) == (200, {"action": "do_not_propagate"})
    assert drop.exchanges[0].verdict is not None and drop.exchanges[0].verdict.kind == "drop"
    inject = await start(Responder(parse_respond('inject:{"tag": "vip"}')))
    assert await post(inject.url, delivery()) == (200, {"tag": "vip"})
    verdict = inject.exchanges[0].verdict
    assert verdict is not None and verdict.kind == "inject"
    assert verdict.metadata == {"@injected": {"webhooks": {"comethook-dev": {"tag": "vip"}}}}
    # Other triggers are answered {} whatever --respond says.
    assert await post(drop.url, b'{"trigger": "message_sent", "data": {}}') == (200, {})


async def test_a_changed_answer_reaches_the_next_delivery(start: Any) -> None:
    """The responder makes each answer once and hands it to every delivery it decides alike: a change to its action
    or its status (the inspector's, while serving) is what the next delivery gets."""
    responder = Responder()
    running = await start(responder)
    assert await post(running.url, delivery()) == (200, {})
    assert await post(running.url, delivery()) == (200, {})
    responder.action = parse_respond("drop")
    assert await post(running.url, delivery()) == (200, {"action": "do_not_propagate"})
    responder.status = 503
    assert await post(running.url, delivery()) == (503, {"action": "do_not_propagate"})
    assert await post(running.url, b'{"trigger": "message_sent", "data": {}}') == (503, {})
    assert [e.answered_by for e in running.exchanges] == [
        "comethook (--respond pass)", "comethook (--respond pass)", "comethook (--respond drop)",
        "comethook (--respond drop)", "comethook (default)",
    ]  # fmt: skip


async def test_drop_if_regex_only_drops_matching_text(start: Any) -> None:
    running = await start(Responder(drop_if=compile_regex("(?i)spam", "--drop-if")))
    assert await post(running.url, delivery(text="buy SPAM now")) == (200, {"action": "do_not_propagate"})
    assert await post(running.url, delivery(text="hello")) == (200, {})
    assert [e.verdict.kind for e in running.exchanges if e.verdict] == ["drop", "pass"]


async def test_rules_first_match_wins_with_status_and_delay(start: Any, tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([
        {"match": {"trigger": "before_message", "text": "^block"}, "action": "drop"},
        {"match": {"sender": "cometchat-uid-3"}, "action": {"inject": {"vip": True}}},
        {"match": {"trigger": ["message_sent", "after_message"]}, "action": {"status": 503, "body": {"error": "down"}}},
        {"match": {"trigger": "before_message", "text": "slow"}, "action": {"pass": True, "delay_ms": 150}},
    ]))  # fmt: skip
    running = await start(Responder(rules=load_rules(str(rules))))
    assert await post(running.url, delivery(text="block me")) == (200, {"action": "do_not_propagate"})
    assert await post(running.url, delivery(text="hi", sender="cometchat-uid-3")) == (200, {"vip": True})
    assert await post(running.url, b'{"trigger": "after_message", "data": {}}') == (503, {"error": "down"})
    assert await post(running.url, delivery(text="slow one")) == (200, {})
    assert running.exchanges[3].latency_ms >= 140
    assert [e.answered_by for e in running.exchanges] == [f"comethook (rule {n})" for n in (1, 2, 3, 4)]


async def test_each_answer_says_who_made_it_as_a_type_and_a_stored_one_says_it_again(start: Any) -> None:
    """A rule, --drop-if, --respond and the default answer each carry their AnsweredBy beside the text people see;
    the history keeps the text only, and a stored exchange reads back with the same AnsweredBy."""
    rules = parse_rules([{"match": {"sender": "cometchat-uid-3"}, "action": "drop"}], "--rules")
    running = await start(Responder(parse_respond("pass"), compile_regex("spam", "--drop-if"), rules))
    await post(running.url, delivery(text="hi", sender="cometchat-uid-3"))
    await post(running.url, delivery(text="spam"))
    await post(running.url, delivery(text="hello"))
    await post(running.url, delivery("message_sent"))
    assert [(e.outcome, e.answered_by) for e in running.exchanges] == [
        (AnsweredBy.RULE, "comethook (rule 1)"),
        (AnsweredBy.CANNED, "comethook (--drop-if)"),
        (AnsweredBy.CANNED, "comethook (--respond pass)"),
        (AnsweredBy.CANNED, "comethook (default)"),
    ]
    assert all(e.outcome.fallback is None for e in running.exchanges)
    history = History(running.db)
    assert [history.get(e.id).outcome for e in running.exchanges] == [e.outcome for e in running.exchanges]


async def test_an_answer_is_parsed_once_however_many_outputs_show_it(start: Any) -> None:
    """judge() parses a before_message answer; the NDJSON line, a second encoding of it (the inspector's) and the
    terminal's -v all show that very value instead of parsing the bytes again. Another trigger's answer is parsed the
    first time an output asks, and kept."""
    running = await start(Responder(parse_respond('inject:{"flag": [1, 2]}')))
    await post(running.url, delivery(text="hi"))
    await post(running.url, delivery("message_sent"))
    judged, other = running.exchanges
    assert judged.verdict is not None and judged.verdict.kind == "inject"
    assert judged.answer == {"flag": [1, 2]} == parse_body(judged.response_body)
    assert judged.answer is judged.verdict.answer_json  # judge's parse, not a second one
    for _ in range(2):
        assert wire.Event(judged).to_json()["response"]["body"] is judged.answer
    first = other.answer
    assert first == {} and other.answer is first and wire.Event(other).to_json()["response"]["body"] is first


async def test_status_and_delay_apply_to_every_canned_answer(start: Any) -> None:
    running = await start(Responder(status=500, delay=0.1))
    assert await post(running.url, delivery()) == (500, {})
    exchange = running.exchanges[0]
    assert exchange.latency_ms >= 95
    assert exchange.verdict is not None and exchange.verdict.kind == "invalid" and "HTTP 500" in (exchange.verdict.reason or "")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not valid JSON"),
        ('{"match": {}}', "must hold a JSON list"),
        ('[{"match": {"colour": "red"}, "action": "pass"}]', "unknown match key(s) colour"),
        ('[{"match": {}, "action": "explode"}]', "unknown action 'explode'"),
        ('[{"match": {}, "action": {"status": 99}}]', "status must be an HTTP status code"),
        ('[{"match": {"text": "("}, "action": "drop"}]', "invalid regular expression"),
        ('[{"action": {"inject": [1]}}]', "inject needs a JSON object"),
    ],
)
def test_bad_rules_files_are_usage_errors(tmp_path: Path, content: str, message: str) -> None:
    from comethook_cli.errors import UsageError

    path = tmp_path / "rules.json"
    path.write_text(content)
    with pytest.raises(UsageError) as caught:
        load_rules(str(path))
    assert message in caught.value.message


@pytest.mark.parametrize("spec", ["maybe", "inject:", "inject:[1]", "inject:{}", "inject:@/nonexistent/file.json"])
def test_bad_respond_specs_are_usage_errors(spec: str) -> None:
    from comethook_cli.errors import UsageError

    with pytest.raises(UsageError):
        parse_respond(spec)


def test_respond_inject_file_is_read_by_the_adapter_with_the_same_messages(tmp_path: Path) -> None:
    from comethook_cli.errors import UsageError

    answer = tmp_path / "answer.json"
    answer.write_text('{"tag": "vip"}')
    assert respond_action(f"inject:@{answer}").body == b'{"tag": "vip"}'
    assert respond_action("drop").label == "drop"
    with pytest.raises(UsageError) as caught:
        respond_action(f"inject:@{tmp_path / 'missing.json'}")
    assert caught.value.message.startswith("Cannot read --respond file ") and "No such file" in caught.value.message
    # cometchat/ does no I/O: without the adapter's reader, inject:@FILE is refused and the file is not opened.
    with pytest.raises(UsageError) as caught:
        parse_respond(f"inject:@{answer}")
    assert "no file is read here" in caught.value.message


def test_rules_and_inject_files_are_bounded(tmp_path: Path) -> None:
    from comethook_cli.cli.options import MAX_USER_FILE
    from comethook_cli.errors import UsageError

    big = tmp_path / "big.json"
    big.write_bytes(b"[" + b" " * MAX_USER_FILE + b"]")
    with pytest.raises(UsageError) as caught:
        load_rules(str(big))
    assert caught.value.message == f"--rules {str(big)!r} is larger than 1 MiB."
    with pytest.raises(UsageError) as caught:
        respond_action(f"inject:@{big}")
    assert "is larger than 1 MiB" in caught.value.message


def test_rules_data_is_parsed_without_a_file() -> None:
    from comethook_cli.errors import UsageError

    rules = parse_rules([{"match": {"text": "^x"}, "action": "drop"}], "--rules r.json")
    assert [r.action.label for r in rules] == ["drop"]
    with pytest.raises(UsageError) as caught:
        parse_rules({"match": {}}, "--rules r.json")
    assert "must hold a JSON list of rules" in caught.value.message


async def test_history_database_is_wal_and_holds_exact_bytes(start: Any) -> None:
    running = await start()
    raw = b'{ "trigger":"after_message",   "data": {"text": "odd  spacing \\u00e9"} }'
    await post(running.url, raw)
    connection = sqlite3.connect(running.db)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("SELECT body FROM exchanges").fetchone()[0] == raw


async def test_one_unstorable_exchange_does_not_cost_the_rest_of_its_batch(tmp_path: Path) -> None:
    import asyncio
    import dataclasses

    from comethook_cli.cometchat.events import describe
    from comethook_cli.errors import ComethookError

    writer = HistoryWriter(tmp_path / "h.db")
    base = Exchange("evt_1", 1.0, "POST", "/", "", (), b"{}", describe({}), 200, b"{}", 1.0)
    duplicate = dataclasses.replace(base)  # same id: the UNIQUE constraint refuses it
    other = dataclasses.replace(base, id="evt_2")
    results = await asyncio.gather(writer.record(base), writer.record(duplicate), writer.record(other), return_exceptions=True)
    writer.close()
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ComethookError) and "UNIQUE" in results[1].message
    assert sorted(e.id for e in History(tmp_path / "h.db").iter_all()) == ["evt_1", "evt_2"]


# --- patterns meet a sender's text: RE2, never a backtracking engine ---------------------------------------------------
#: Each stalled Python's re for seconds to minutes on its text; the listener's loop with it.
CATASTROPHIC = [("(a+)+$", "a" * 27 + "!"), (r"^(\w+\s?)*$", "a" * 44 + "!")]


async def test_a_backtracking_pattern_never_freezes_the_listener() -> None:
    from comethook import Listener as ApiListener

    (drop_if, hostile), (rule, hostile_too) = CATASTROPHIC
    rules = [{"match": {"text": rule}, "action": {"inject": {"rule": True}}}]
    async with ApiListener(drop_if=drop_if, rules=rules) as listener, aiohttp.ClientSession() as session:
        # A hang detector, not a speed test: 22 deliveries on loopback take well under a second; one frozen match, minutes.
        async with asyncio.timeout(5):
            for text in [hostile, hostile_too] + [f"message {n}" for n in range(20)]:
                async with session.post(listener.url, data=delivery(text=text)) as response:
                    assert response.status == 200
                    await response.read()
            events = await listener.wait_for(22)
    # The hostile texts are matched as Python's re would match them: neither matches.
    assert [e.answered_by for e in events[:2]] == ["comethook (--respond pass)"] * 2
    assert {e.answered_by for e in events[2:]} == {"comethook (rule 1)"}  # "message N" is words and spaces


@pytest.mark.parametrize(
    ("pattern", "texts"),
    [
        ("(?i)spam", ["buy SPAM now", "Spam", "sp am", "spa", "\u017fpam", "SPAMMER"]),
        (r"\bbuy now\b", ["please buy now!", "buy nowhere", "rebuy now", "BUY NOW", "buy now"]),
        (r"^block", ["block me", " block", "unblock", "block"]),
        (r"\d{4}-\d{4}", ["card 1234-5678", "12-34", "x1234-5678y"]),
        (r"(?i)^(hello|hi)\b", ["Hello there", "hi", "high", "oh hi"]),
        ("café", ["un café noir", "cafe"]),
        (r"https?://\S+", ["see http://x.example/y", "https:/no", "visit https://a"]),
        (r"^\s*$", ["", "   ", " a "]),
    ],
)
def test_patterns_users_write_match_as_they_did(pattern: str, texts: list[str]) -> None:
    import re

    compiled = compile_regex(pattern, "--drop-if")
    assert compiled.pattern == pattern
    assert [compiled.search(t) for t in texts] == [re.search(pattern, t) is not None for t in texts]


def test_a_lone_surrogate_in_the_text_or_the_pattern_is_matched_as_the_replacement_character() -> None:
    # JSON can carry "\ud800"; UTF-8 (and so RE2) cannot: it must never raise on the listener's loop.
    assert compile_regex("a.b", "--drop-if").search("a\ud800b") is True
    assert compile_regex("x\ud800", "[[listen.rules]]").search("x\udfff") is True
    assert compile_regex("^spam$", "--drop-if").search("spam\ud800") is False


async def test_a_lone_surrogate_in_a_senders_text_is_answered(start: Any) -> None:
    running = await start(Responder(drop_if=compile_regex("(?i)spam", "--drop-if")))
    hostile = delivery(text="SPAM").replace(b'"SPAM"', b'"SPAM \\ud800"')
    assert b"\\ud800" in hostile
    assert await post(running.url, hostile) == (200, {"action": "do_not_propagate"})


def test_matching_long_text_is_bounded() -> None:
    from comethook_cli.cometchat.rules import MATCH_LIMIT

    # RE2 is linear in the text; the text itself is bounded too (CometChat's messages stay under 64 KB).
    assert compile_regex("tail$", "--drop-if").search("x" * MATCH_LIMIT + "tail") is False
    assert compile_regex("^x+$", "--drop-if").search("x" * (4 * MATCH_LIMIT)) is True


@pytest.mark.parametrize(
    ("pattern", "construct", "instead"),
    [
        (r"(\w+) \1", r"a backreference (\1, (?P=name))", "match the repeated text itself"),
        (r"(?P<w>\w+) (?P=w)", "a backreference", "match the repeated text itself"),
        (r"spam(?!ish)", "a lookahead or lookbehind", "put a rule for it first"),
        (r"(?<!no )spam", "a lookahead or lookbehind", "put a rule for it first"),
        (r"(?>spam)", "an atomic group or possessive repeat", "RE2 never backtracks"),
        (r"spam\Z", r"uses \Z", r"write \z"),
    ],
)
def test_constructs_re2_lacks_are_named_with_an_alternative(pattern: str, construct: str, instead: str) -> None:
    from comethook_cli.errors import UsageError

    with pytest.raises(UsageError) as caught:
        compile_regex(pattern, "--drop-if")
    assert caught.value.message.startswith(f"--drop-if: {pattern!r} uses ") and construct in caught.value.message
    assert "RE2" in caught.value.message and instead in caught.value.hint


# --- a browser's request (it carries Origin; CometChat's never does) ---------------------------------------------------
async def test_a_request_from_a_web_page_is_refused_and_never_reaches_the_app(aiohttp_server: Any) -> None:
    from aiohttp import web

    from comethook import Listener as ApiListener

    relayed: list[bytes] = []

    async def app_handler(request: web.Request) -> web.Response:
        relayed.append(await request.read())
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{tail:.*}", app_handler)
    server = await aiohttp_server(app)
    forged = delivery(text="forged by a page")
    async with ApiListener(forward_to=f"http://127.0.0.1:{server.port}") as listener:
        status, answer = await post(listener.url, forged, {"Origin": "https://evil.example"})
        assert status == 403
        assert "web browser" in answer["error"] and "'https://evil.example'" in answer["error"]
        assert "--allow-browser-origin" in answer["error"]
        (rejection,) = listener.rejections
        assert (rejection.status, rejection.method, rejection.reason) == (403, "POST", answer["error"])
        assert relayed == [] and listener.events == []
        assert (await post(listener.url, delivery(text="from CometChat")))[0] == 200  # no Origin: relayed as ever
        assert len(relayed) == 1 and b"from CometChat" in relayed[0]
    async with ApiListener(forward_to=f"http://127.0.0.1:{server.port}", allow_browser_origin=True) as opted_in:
        assert (await post(opted_in.url, forged, {"Origin": "https://evil.example"}))[0] == 200
        assert relayed[-1] == forged and opted_in.rejections == []


async def test_a_browser_origin_is_checked_after_basic_auth(start: Any) -> None:
    running = await start(basic_auth="cc:s3cret")
    # Without the credentials a page learns only that they are missing, as any other caller does.
    assert (await post(running.url, delivery(), {"Origin": "https://evil.example"}))[0] == 401
    credentials = {"Authorization": "Basic " + base64.b64encode(b"cc:s3cret").decode()}
    assert (await post(running.url, delivery(), {**credentials, "Origin": "null"}))[0] == 403
    assert [r.status for r in running.rejections] == [401, 403] and running.exchanges == []
    allowed = await start(allow_browser_origin=True)
    assert (await post(allowed.url, delivery(), {"Origin": "null"}))[0] == 200

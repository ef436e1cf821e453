"""The public Python API (`import comethook`): payloads, triggers, the verdict, one delivery, the in-process listener."""

from __future__ import annotations

import asyncio
import base64
import json
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import comethook
from comethook import Listener, UsageError, build_payload, deliver, judge, triggers
from comethook_cli.cometchat.payloads import find_template
from tests.payload_shapes import shape_problems

ROOT = Path(__file__).resolve().parents[2]


def test_the_public_surface_is_small_documented_and_typed() -> None:
    assert sorted(comethook.__all__) == sorted(
        ["ComethookError", "Delivery", "Exchange", "InvalidSetting", "Listener", "Trigger", "UsageError", "Verdict", "__version__",
         "build_payload", "deliver", "judge", "triggers"]
    )  # fmt: skip
    for name in comethook.__all__:
        if name != "__version__":
            assert getattr(comethook, name).__doc__, name
    assert (ROOT / "comethook" / "py.typed").is_file() and (ROOT / "comethook_cli" / "py.typed").is_file()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert set(project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]) == {"comethook", "comethook_cli"}


def test_build_payload_takes_the_options_of_send() -> None:
    body = build_payload("before_message", text="buy cheap pills", sender="cometchat-uid-3")
    message = body["data"]
    assert body["trigger"] == "before_message" and message["sender"] == "cometchat-uid-3"
    assert message["data"]["text"] == "buy cheap pills"
    assert shape_problems(find_template("before_message"), body) == []
    group = build_payload("message_sent", text="hi", group="cometchat-guid-1", app_id="team-app", region="eu")
    assert group["data"]["message"]["receiverType"] == "group" and group["data"]["message"]["receiver"] == "cometchat-guid-1"
    assert group["appId"] == "team-app" and group["region"] == "eu"
    image = build_payload("message_sent", type="image")
    assert image["data"]["message"]["type"] == "image" and image["data"]["message"]["data"]["url"].startswith("https://")


def test_set_overrides_and_legacy() -> None:
    body = build_payload("message_sent", set={"data.message.data.text": "changed"}, add={"data.extra": {"n": 1}})
    assert body["data"]["message"]["data"]["text"] == "changed" and body["data"]["extra"] == {"n": 1}
    legacy = build_payload("message_read_receipt", legacy=True)
    current = build_payload("message_read_receipt")
    assert shape_problems(find_template("message_read_receipt", legacy=True), legacy) == []
    assert set(legacy) != set(current)


def test_a_seed_makes_the_payload_deterministic() -> None:
    for trigger in ("before_message", "message_sent", "call_started"):
        first = build_payload(trigger, seed=7, type="image" if trigger == "message_sent" else "text")
        again = build_payload(trigger, seed=7, type="image" if trigger == "message_sent" else "text")
        assert first == again, trigger
    assert build_payload("message_sent", seed=7) != build_payload("message_sent", seed=8)
    assert build_payload("message_sent") != build_payload("message_sent")  # fresh ids without a seed
    assert build_payload("message_sent", seed=7, now=1_800_000_000)["data"]["message"]["sentAt"] == 1_800_000_000


def test_bad_input_raises_usage_error_with_a_hint() -> None:
    with pytest.raises(UsageError) as unknown:
        build_payload("before_mesage")
    assert "Did you mean before_message" in (unknown.value.hint or "")
    with pytest.raises(UsageError, match="region"):
        build_payload("message_sent", region="mars")
    with pytest.raises(UsageError, match="message type"):
        build_payload("message_sent", type="hologram")
    with pytest.raises(UsageError, match="has no legacy shape"):
        build_payload("call_started", legacy=True)


def test_triggers_list_the_catalog() -> None:
    every = triggers()
    names = {t.name for t in every}
    assert {"before_message", "after_message", "message_sent", "call_started"} <= names
    assert {t.generation for t in triggers("legacy")} == {"legacy"}
    assert len(triggers("legacy")) + len(triggers("current")) == len(every)
    for trigger in every:
        build_payload(trigger.name, legacy=trigger.generation == "legacy")  # every listed entry builds


def test_judge_gives_cometchat_verdict() -> None:
    body = build_payload("before_message", webhook_id="moderation")
    assert judge(body, status=200, answer={"action": "do_not_propagate"}).kind == "drop"
    assert judge(body, answer={}).kind == "pass"
    injected = judge(body, answer=b'{"score": 0.97}')
    assert injected.kind == "inject"
    assert injected.metadata == {"@injected": {"webhooks": {"moderation": {"score": 0.97}}}}
    assert judge(json.dumps(body).encode(), answer='{"score": 1}').webhook_id == "moderation"
    invalid = judge(body, status=500, answer={})
    assert invalid.kind == "invalid" and "HTTP 500" in (invalid.reason or "")
    assert judge(None, answer="[1, 2]").reason == "the answer is JSON array, not an object"


async def test_deliver_posts_like_cometchat_and_returns_the_delivery(aiohttp_server: Any) -> None:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.json_response({"action": "do_not_propagate"})

    app = web.Application()
    app.router.add_post("/hook", handler)
    server = await aiohttp_server(app)
    body = build_payload("before_message", seed=1)
    delivery = await deliver(f"http://127.0.0.1:{server.port}/hook", body, basic_auth="team:pass", timeout=5)
    assert delivery.ok and delivery.status == 200 and delivery.verdict is not None and delivery.verdict.kind == "drop"
    headers, raw = seen[0]
    assert json.loads(raw) == body
    assert headers["Content-Type"] == "Application/json"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"team:pass").decode()


async def test_deliver_reports_an_unreachable_endpoint_without_raising(closed_port: int) -> None:
    delivery = await deliver(f"http://127.0.0.1:{closed_port}/hook", b'{"trigger": "message_sent"}', timeout=5)
    assert not delivery.ok and delivery.failure == "unreachable" and delivery.status is None


async def test_listener_answers_records_and_waits(tmp_path: Path) -> None:
    rules = [{"match": {"text": "(?i)spam"}, "action": "drop"}]
    async with Listener(port=0, respond={"checked": True}, rules=rules) as listener:
        assert listener.url == f"http://127.0.0.1:{listener.port}/webhook"
        spam = await deliver(listener.url, build_payload("before_message", text="SPAM here"))
        fine = await deliver(listener.url, build_payload("before_message", text="hello"))
        other = await deliver(listener.url, build_payload("message_sent"))
        refused = await deliver(listener.url, b"not json")
        events = await listener.wait_for(3, timeout=10)
        assert [e.info.trigger for e in events] == ["before_message", "before_message", "message_sent"]
        assert spam.verdict is not None and spam.verdict.kind == "drop"
        assert fine.verdict is not None and fine.verdict.metadata is not None and fine.response == {"checked": True}
        assert other.ok and refused.status == 400 and len(listener.rejections) == 1
        with pytest.raises(TimeoutError, match=r"3 of 4 deliveries arrived within 0\.2 s"):
            await listener.wait_for(4, timeout=0.2)
    assert not (tmp_path / "home" / "history.db").exists()  # no history unless asked for
    with pytest.raises(RuntimeError, match="not running"):
        _ = listener.url


async def test_listener_waits_for_deliveries_still_to_come() -> None:
    async with Listener() as listener:
        waiting = asyncio.ensure_future(listener.wait_for(2, timeout=10))
        await asyncio.sleep(0)
        assert not waiting.done()
        for _ in range(2):
            await deliver(listener.url, build_payload("message_sent"))
        assert len(await waiting) == 2


async def test_listener_relays_to_an_app(aiohttp_server: Any) -> None:
    async def app_handler(request: web.Request) -> web.Response:
        return web.json_response({"from": "app"})

    app = web.Application()
    app.router.add_post("/hook", app_handler)
    server = await aiohttp_server(app)
    async with Listener(forward_to=f"http://127.0.0.1:{server.port}/hook") as listener:
        delivery = await deliver(listener.url, build_payload("before_message"))
    assert delivery.response == {"from": "app"} and delivery.verdict is not None and delivery.verdict.kind == "inject"
    assert listener.events[0].forwarded_to == f"http://127.0.0.1:{server.port}/hook"


async def test_the_listeners_memory_budgets_are_keywords(aiohttp_server: Any) -> None:
    """body_budget and answer_budget bound what `listen` holds at once (64 MiB each unless given)."""

    async def big_answer(request: web.Request) -> web.Response:
        return web.json_response({"filler": "x" * 4096})

    app = web.Application()
    app.router.add_post("/hook", big_answer)
    server = await aiohttp_server(app)
    big = json.dumps({"trigger": "after_message", "data": {"text": "x" * 4096}}).encode()
    async with (
        Listener(body_budget=1024) as listener,
        aiohttp.ClientSession() as client,
        client.post(listener.url, data=big) as answer,
    ):
        assert answer.status == 503 and answer.headers["Retry-After"] == "5"  # its Content-Length does not fit
    async with Listener() as listener, aiohttp.ClientSession() as client, client.post(listener.url, data=big) as answer:
        assert answer.status == 200
    app_url = f"http://127.0.0.1:{server.port}/hook"
    async with Listener(forward_to=app_url, answer_budget=1024) as listener:
        delivery = await deliver(listener.url, build_payload("before_message"))
    assert delivery.status == 502  # the fallback (error): the app's answer did not fit in the budget
    assert any("memory budget" in warning for warning in listener.warnings)
    async with Listener(forward_to=app_url) as listener:
        delivery = await deliver(listener.url, build_payload("before_message"))
    assert delivery.status == 200 and delivery.response == {"filler": "x" * 4096}


async def test_the_listeners_connection_cap_is_a_keyword() -> None:
    """max_connections caps the open connections (past it, idle ones are closed); deliveries are still answered."""
    async with Listener(max_connections=4) as listener:
        idle = [await asyncio.open_connection("127.0.0.1", listener.port) for _ in range(10)]
        try:
            reads = [asyncio.ensure_future(reader.read()) for reader, _ in idle]
            done, _ = await asyncio.wait(reads, timeout=10, return_when=asyncio.FIRST_COMPLETED)
            assert done and all(read.result() == b"" for read in done)  # closed by the listener, long before 15 s idle
            delivery = await deliver(listener.url, build_payload("message_sent"))
            assert delivery.status == 200
        finally:
            for read in reads:
                read.cancel()
            for _, writer in idle:
                writer.close()


async def test_a_body_slower_than_body_min_rate_gets_408_once_a_short_body_grace_is_spent() -> None:
    """body_grace and body_min_rate are keywords: a body trickling in slower than the rate is refused with 408."""
    async with Listener(body_grace=0.5, body_min_rate=2048) as listener:
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
        answer = b""
        try:
            async with asyncio.timeout(20):  # the default 5 s grace would answer too; the reason names the rate given
                while not answer:
                    try:
                        answer = await asyncio.wait_for(reader.read(65536), 0.2)
                    except TimeoutError:
                        writer.write(b" ")  # five bytes a second
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.1 408 ") and b"body slower than 2,048 bytes/s" in answer, answer[:200]
        assert [(r.status, r.reason) for r in listener.rejections] == [(408, "body slower than 2,048 bytes/s")]
        assert any("slower than 2,048 bytes/s (after 0.5 s) get 408" in w for w in listener.warnings), listener.warnings
        delivery = await deliver(listener.url, build_payload("message_sent"))
        assert delivery.status == 200  # a delivery's body arrives with its headers: it never waits on the grace


@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [
        ("body_grace", 0, "body_grace=0 is not a number of seconds above 0."),
        ("body_grace", -1.5, "body_grace=-1.5 is not a number of seconds above 0."),
        ("body_min_rate", 0, "body_min_rate=0 is not a whole number of bytes per second of 1 or more."),
        ("body_min_rate", -1024, "body_min_rate=-1024 is not a whole number of bytes per second of 1 or more."),
    ],
    ids=["grace-zero", "grace-negative", "rate-zero", "rate-negative"],
)
def test_a_body_grace_or_min_rate_of_zero_or_less_is_refused_naming_the_keyword(keyword: str, value: float, message: str) -> None:
    with pytest.raises(comethook.InvalidSetting) as refused:
        Listener(**{keyword: value})
    assert refused.value.message == message and refused.value.hint is not None and f"{keyword}=" in refused.value.hint


@pytest.mark.parametrize("bound", ["max_connections", "body_budget", "answer_budget"])
def test_a_bound_below_one_is_a_usage_error(bound: str) -> None:
    with pytest.raises(UsageError, match=f"{bound}=0 admits nothing"):
        Listener(**{bound: 0})


def test_a_bad_listener_argument_is_refused_at_once_naming_the_keyword() -> None:
    """The engine names settings, not flags: a Python caller reads its own keyword argument, before anything starts."""
    with pytest.raises(comethook.InvalidSetting) as status:
        Listener(status=700)
    assert isinstance(status.value, ValueError) and isinstance(status.value, UsageError)
    assert (status.value.message, status.value.hint) == (
        "status=700 is not an HTTP status code.",
        "Use 100-599, e.g. status=503.",
    )
    assert "--" not in str(status.value)
    with pytest.raises(comethook.InvalidSetting) as fallback:
        Listener(forward_to="8000", fallback="explode")
    assert (fallback.value.message, fallback.value.hint) == (
        "Unknown fallback='explode'.",
        "Use one of: error, pass, drop.",
    )
    with pytest.raises(comethook.InvalidSetting, match=r"^respond inject: needs a non-empty JSON object\.$"):
        Listener(respond={})
    with pytest.raises(comethook.InvalidSetting, match=r"^Unsupported forward_to='ftp://x'\.$"):
        Listener(forward_to="ftp://x")
    with pytest.raises(comethook.InvalidSetting, match=r"^rules rule 1: status must be an HTTP status code \(100-599\)\.$"):
        Listener(rules=[{"action": {"status": 700}}])
    with pytest.raises(comethook.InvalidSetting, match=r"^Unknown region='mars'\.$"):
        build_payload("before_message", region="mars")
    assert '"region": "eu"' in json.dumps(build_payload("message_sent", region="eu"))


async def test_respond_as_a_dict_is_held_as_an_action_without_a_round_trip_through_text() -> None:
    listener = Listener(respond={"flag": True, "note": "é"})
    action = listener.config.answers.action
    assert action.label == "inject" and json.loads(action.body) == {"flag": True, "note": "é"}
    assert action.body == json.dumps({"flag": True, "note": "é"}).encode()
    async with listener:
        delivery = await deliver(listener.url, build_payload("before_message"))
    assert delivery.response == {"flag": True, "note": "é"}
    assert Listener(fallback="pass").config.forward.fallback == "pass"


def test_a_bad_listener_option_is_a_usage_error() -> None:
    async def start() -> None:
        async with Listener(rules=[{"match": {"colour": "red"}, "action": "drop"}]):
            pass

    with pytest.raises(UsageError, match="unknown match key"):
        asyncio.run(start())


async def test_the_listener_never_acknowledges_what_its_history_could_not_store() -> None:
    """With history=True, a write that fails (here the WAL made immutable mid-run: even root cannot append to it) is
    answered 503 with Retry-After, recorded as a rejection, and warned about once; a history it cannot write at all
    stops the start."""
    import contextlib
    import subprocess

    from comethook_cli.engine.history.files import default_path

    wal = Path(f"{default_path()}-wal")

    def chattr(flag: str, path: Path) -> bool:
        return subprocess.run(["chattr", flag, str(path)], capture_output=True, check=False).returncode == 0

    body = json.dumps(build_payload("message_sent", text="hi")).encode()
    async with Listener(history=True) as listener, aiohttp.ClientSession() as client:
        async with client.post(listener.url, data=body) as answer:
            assert answer.status == 200
        if not chattr("+i", wal):
            pytest.skip("chattr +i is not supported here")
        try:
            for _ in range(3):
                async with client.post(listener.url, data=body) as answer:
                    assert answer.status == 503 and answer.headers["Retry-After"] == "5"
                    assert "stored" in (await answer.json())["error"]
        finally:
            chattr("-i", wal)
        assert len(listener.events) == 1  # only the stored one is an event
        assert [r.status for r in listener.rejections] == [503, 503, 503]
        assert all(r.reason.startswith("not stored: ") and r.counted for r in listener.rejections)
        assert len([w for w in listener.warnings if "could not store a delivery" in w]) == 1
    db = default_path()
    with contextlib.ExitStack() as undo:
        if not chattr("+i", db):
            pytest.skip("chattr +i is not supported here")
        undo.callback(chattr, "-i", db)
        with pytest.raises(comethook.ComethookError, match="Cannot write the history database"):
            async with Listener(history=True):
                pass


async def test_a_warning_names_the_listeners_keyword_arguments_not_flags(closed_port: int) -> None:
    async with Listener(forward_to=str(closed_port)) as listener:
        for _ in range(200):  # said at start-up, after a connect attempt to the app (refused at once on loopback)
            if listener.warnings:
                break
            await asyncio.sleep(0.05)
    warning = listener.warnings[0]
    assert warning.startswith(f"forward_to http://localhost:{closed_port}: nothing listens there")
    assert "deliveries get the fallback answer (error)." in warning and "--" not in warning

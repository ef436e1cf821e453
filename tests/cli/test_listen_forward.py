"""`listen --forward-to`: exact bytes to the developer's app, its answer back unchanged, fan-out, routes, fallback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from comethook_cli.cometchat.events import describe
from comethook_cli.cometchat.rules import Responder
from comethook_cli.engine.forwarder import Forwarder, destination
from comethook_cli.engine.listener import Listener, ListenerConfig
from comethook_cli.models import AnsweredBy, Exchange, Incoming
from tests.conftest import forward_config, hub_for

ODD = b'{ "trigger" :"before_message",\n\t"data":{"text":"caf\\u00e9  odd   spacing", "n": 1.50}, "webhook":"wh-7" }'


class App:
    """A developer's app on loopback that records what it received."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, dict[str, str], bytes]] = []

    def record(self, handler: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            self.received.append((request.method, request.path_qs, dict(request.headers), await request.read()))
            result = handler(request)
            return await result if asyncio.iscoroutine(result) else result  # type: ignore[no-any-return]

        return wrapped


@pytest.fixture
async def app_server(aiohttp_server: Any) -> Callable[..., Any]:
    async def start(handler: Callable[[web.Request], Any]) -> tuple[str, App]:
        app = App()
        application = web.Application()
        application.router.add_route("*", "/{tail:.*}", app.record(handler))
        server = await aiohttp_server(application, host="127.0.0.1")
        return f"http://127.0.0.1:{server.port}", app

    return start


@pytest.fixture
async def listen(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    running: list[tuple[Listener, Forwarder]] = []

    async def start(
        *targets: str, routes: tuple[str, ...] = (), fallback: str = "error", timeout: float = 5
    ) -> tuple[str, list[Exchange], list[str]]:
        exchanges: list[Exchange] = []
        warnings: list[str] = []
        forwarder = Forwarder.from_config(
            forward_config(tuple(targets), tuple(routes), timeout, fallback), warnings.append, Responder()
        )
        listener = Listener(ListenerConfig(port=0), forwarder, hub_for(exchanges.append, None, warnings.append))
        await listener.start()
        running.append((listener, forwarder))
        return listener.local_url, exchanges, warnings

    yield start
    for listener, forwarder in running:
        await listener.stop()
        await forwarder.close()


async def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status, await response.read(), dict(response.headers)


async def test_exact_bytes_path_query_and_headers_reach_the_app(app_server: Any, listen: Any) -> None:
    app_url, app = await app_server(lambda r: web.json_response({"seen": True}, headers={"X-App": "1"}))
    local, exchanges, _ = await listen(app_url)
    status, body, headers = await post(local + "/cc/hook?x=1&y=2", ODD,
                                       {"Content-Type": "Application/json", "Authorization": "Basic dTpw", "X-Trace": "t1"})  # fmt: skip
    assert status == 200 and json.loads(body) == {"seen": True} and headers["X-App"] == "1"
    method, path, sent_headers, raw = app.received[0]
    assert (method, path, raw) == ("POST", "/cc/hook?x=1&y=2", ODD)  # byte for byte
    assert sent_headers["Content-Type"] == "Application/json" and sent_headers["X-Trace"] == "t1"
    assert sent_headers["Authorization"] == "Basic dTpw"  # the app checks CometChat's credentials itself
    (exchange,) = exchanges
    assert exchange.forwarded_to == app_url + "/cc/hook?x=1&y=2" and exchange.answered_by == "your app"
    assert exchange.outcome is AnsweredBy.APP and exchange.outcome.fallback is None
    assert exchange.verdict is not None and exchange.verdict.kind == "inject"
    assert exchange.verdict.metadata == {"@injected": {"webhooks": {"wh-7": {"seen": True}}}}


async def test_an_app_slower_than_the_budget_gets_a_warning(
    app_server: Any, listen: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """listen's view warns when the app took longer than the budget to answer (CometChat's 2 s; 100 ms here)."""
    from comethook_cli.outputs.views import HumanView

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.json_response({})

    app_url, _ = await app_server(slow)
    local, exchanges, _ = await listen(app_url)
    status, _, _ = await post(local + "/webhook", ODD)
    (exchange,) = exchanges
    assert status == 200 and exchange.latency_ms > 200
    HumanView(budget_ms=100).on_exchange(exchange)
    err = capsys.readouterr().err
    assert f"{exchange.id}: your app took" in err and "over CometChat's 2 s budget" in err
    HumanView().on_exchange(exchange)
    assert "budget" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("answer", "kind", "reason"),
    [
        (web.json_response({"action": "do_not_propagate"}), "drop", None),
        (web.json_response({}), "pass", None),
        (web.Response(text="<html>garbage</html>", content_type="text/html"), "invalid", "not JSON"),
        (web.Response(status=500, text="boom"), "invalid", "HTTP 500"),
    ],
)
async def test_the_apps_answer_goes_back_unchanged_with_its_verdict(
    app_server: Any, listen: Any, answer: web.Response, kind: str, reason: str | None
) -> None:
    expected = answer.body
    app_url, _ = await app_server(lambda r: answer)
    local, exchanges, _ = await listen(app_url)
    status, body, _ = await post(local + "/hook", ODD)
    assert status == answer.status and body == expected
    verdict = exchanges[0].verdict
    assert verdict is not None and verdict.kind == kind
    assert (reason is None and verdict.reason is None) or (reason is not None and reason in (verdict.reason or ""))


async def test_a_target_with_its_own_path_keeps_it(app_server: Any, listen: Any) -> None:
    app_url, app = await app_server(lambda r: web.json_response({}))
    local, _, _ = await listen(app_url + "/api/cometchat")
    await post(local + "/webhook", ODD)
    assert app.received[0][1] == "/api/cometchat"


@pytest.mark.parametrize(
    ("fallback", "status", "body"),
    [
        ("error", 502, None),
        ("pass", 200, {}),
        ("drop", 200, {"action": "do_not_propagate"}),
    ],
)
async def test_fallback_when_the_app_is_down(listen: Any, closed_port: int, fallback: str, status: int, body: Any) -> None:
    down = f"http://127.0.0.1:{closed_port}"
    local, exchanges, _ = await listen(down, fallback=fallback)
    got, raw, _ = await post(local + "/hook", ODD)
    assert got == status
    answer = json.loads(raw)
    if body is None:
        assert "could not reach your app" in answer["error"]
    else:
        assert answer == body
    assert exchanges[0].forward_error is not None and "refused" in exchanges[0].forward_error
    assert exchanges[0].answered_by == f"comethook (fallback {fallback})"
    assert exchanges[0].outcome is AnsweredBy[f"FALLBACK_{fallback.upper()}"] and exchanges[0].outcome.fallback == fallback
    # the listener keeps serving
    assert (await post(local + "/hook", ODD))[0] == status


async def test_fallback_when_the_app_is_too_slow(app_server: Any, listen: Any) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.json_response({})

    app_url, _ = await app_server(slow)
    local, exchanges, _ = await listen(app_url, fallback="pass", timeout=0.3)
    started = time.monotonic()
    status, body, _ = await post(local + "/hook", ODD)
    assert (status, json.loads(body)) == (200, {}) and time.monotonic() - started < 2
    assert "no answer within 0.3 s" in (exchanges[0].forward_error or "")


async def test_fan_out_copies_arrive_without_delaying_the_primary(app_server: Any, listen: Any) -> None:
    primary_url, primary = await app_server(lambda r: web.json_response({"from": "primary"}))
    release = asyncio.Event()

    async def slow_copy(request: web.Request) -> web.Response:
        await asyncio.wait_for(release.wait(), 30)  # answers only once the primary's answer is back
        return web.json_response({"from": "copy"})

    copy_url, copy = await app_server(slow_copy)
    local, exchanges, _ = await listen(primary_url, copy_url)
    # No time slack to tune: the copy cannot answer before the delivery is answered, so an answer that waited
    # for the copy never comes, and the timeout (a hang detector, far above any real answer) says so.
    async with asyncio.timeout(10):
        status, body, _ = await post(local + "/hook", ODD)
    assert (status, json.loads(body)) == (200, {"from": "primary"})
    release.set()
    for _ in range(200):
        if copy.received:
            break
        await asyncio.sleep(0.05)
    assert copy.received[0][3] == ODD and primary.received[0][3] == ODD
    assert exchanges[0].forwarded_to == primary_url + "/hook"


async def test_a_failing_copy_only_warns(app_server: Any, listen: Any, closed_port: int) -> None:
    primary_url, _ = await app_server(lambda r: web.json_response({}))
    local, _, warnings = await listen(primary_url, f"http://127.0.0.1:{closed_port}")
    assert (await post(local + "/hook", ODD))[0] == 200
    for _ in range(40):
        if warnings:
            break
        await asyncio.sleep(0.05)
    assert "copy to" in warnings[0] and "failed" in warnings[0]


async def test_routes_send_a_trigger_to_its_own_primary(app_server: Any, listen: Any) -> None:
    main_url, main = await app_server(lambda r: web.json_response({"app": "main"}))
    mod_url, moderation = await app_server(lambda r: web.json_response({"action": "do_not_propagate"}))
    local, _exchanges, _ = await listen(main_url, routes=(f"before_message={mod_url}/moderate",))
    assert json.loads((await post(local + "/hook", ODD))[1]) == {"action": "do_not_propagate"}
    assert json.loads((await post(local + "/hook", b'{"trigger": "message_sent", "data": {}}'))[1]) == {"app": "main"}
    assert moderation.received[0][1] == "/moderate" and main.received[0][1] == "/hook"


async def test_routes_without_forward_to_leave_other_triggers_to_canned_answers(app_server: Any, listen: Any) -> None:
    mod_url, _ = await app_server(lambda r: web.json_response({"k": 1}))
    local, exchanges, _ = await listen(routes=(f"before_message={mod_url}",))
    assert json.loads((await post(local + "/hook", ODD))[1]) == {"k": 1}
    assert json.loads((await post(local + "/hook", b'{"trigger": "message_sent"}'))[1]) == {}
    assert exchanges[1].forwarded_to is None


@pytest.mark.parametrize(
    ("target", "expected"),
    [("8000", "http://localhost:8000"), (":8000/hook", "http://localhost:8000/hook"), ("/hook", "http://localhost:8000/hook"),
     ("localhost:3000", "http://localhost:3000"), ("https://app.example.com/h", "https://app.example.com/h")],
)  # fmt: skip
def test_forward_to_shorthands(target: str, expected: str) -> None:
    forwarder = Forwarder.from_config(forward_config((target,), (), 1, "error"), print)
    assert forwarder.primary == expected


def test_bad_forwarding_options_are_usage_errors(cli: Any) -> None:
    from comethook_cli.errors import UsageError

    with pytest.raises(UsageError, match="Unknown fallback='explode'"):
        forward_config(("8000",), (), 1, "explode")
    with pytest.raises(UsageError, match="Malformed route='before_message'"):
        forward_config(("8000",), ("before_message",), 1, "error")
    for flags, said in ((("--fallback", "explode"), "Unknown --fallback 'explode'."),
                        (("--route", "before_message"), "Malformed --route 'before_message'.")):  # fmt: skip
        refused = cli("listen", "--no-tunnel", "--no-history", *flags)
        assert refused.exit_code == 2 and said in refused.stderr


def test_destination_keeps_a_target_path_and_appends_the_incoming_query_unless_the_target_has_one() -> None:
    incoming = Incoming("POST", "/a", "q=1", (), b"{}", {}, describe({}))
    assert destination("http://h:1", incoming) == "http://h:1/a?q=1"
    assert destination("http://h:1/", incoming) == "http://h:1/a?q=1"
    assert destination("http://h:1/x", incoming) == "http://h:1/x?q=1"
    assert destination("http://h:1/x?k=2", incoming) == "http://h:1/x?k=2"


@contextlib.asynccontextmanager
async def relaying(
    target: str, fallback: str = "pass", basic_auth: str | None = None
) -> AsyncIterator[tuple[str, Forwarder, list[Exchange], list[str]]]:
    """A listener forwarding to `target` (url, its forwarder, what it stored, its warnings), stopped afterwards."""
    exchanges: list[Exchange] = []
    warnings: list[str] = []
    forwarder = Forwarder.from_config(forward_config((target,), (), 5, fallback), warnings.append, Responder())
    listener = Listener(
        ListenerConfig(port=0, basic_auth=basic_auth), forwarder, hub_for(exchanges.append, None, warnings.append)
    )
    await listener.start()
    try:
        yield listener.local_url, forwarder, exchanges, warnings
    finally:
        await listener.stop()
        await forwarder.close()


async def test_url_credentials_replace_the_deliverys_authorization_and_the_delivery_is_stored(app_server: Any) -> None:
    # CometChat's Authorization is its credential for comethook (--basic-auth); the URL's user info is the app's.
    app_url, app = await app_server(lambda r: web.json_response({"seen": True}))
    target = app_url.replace("http://", "http://app-user:p%40ss:w0rd@") + "/hook"
    comethooks = "Basic " + base64.b64encode(b"cc:secret").decode()
    async with relaying(target, basic_auth="cc:secret") as (local, _, exchanges, warnings):
        status, body, _ = await post(local + "/webhook?x=1", ODD, {"Authorization": comethooks})
    assert status == 200 and json.loads(body) == {"seen": True}  # the app's answer, not a 500 nor the fallback
    _, path, sent_headers, raw = app.received[0]
    assert (path, raw) == ("/hook?x=1", ODD)
    assert sent_headers["Authorization"] == "Basic " + base64.b64encode(b"app-user:p@ss:w0rd").decode()
    (exchange,) = exchanges
    assert exchange.forward_error is None and exchange.answered_by == "your app"
    assert exchange.forwarded_to == app_url.replace("http://", "http://app-user:***@") + "/hook?x=1"
    assert dict(exchange.headers)["Authorization"] == "Basic [redacted]"
    assert "w0rd" not in repr(exchange) and not warnings


async def test_any_error_aiohttp_raises_while_relaying_gets_the_fallback_and_is_stored(app_server: Any) -> None:
    # Whatever aiohttp raises (here from a trace hook, a real aiohttp feature, an error no handler expects), the
    # delivery gets --fallback's answer and is stored with the error, instead of a bare 500 and nothing stored.
    async def unusual(*_: Any) -> None:
        raise LookupError("something aiohttp was never meant to raise")

    app_url, _ = await app_server(lambda r: web.json_response({}))
    async with relaying(app_url, fallback="drop") as (local, forwarder, exchanges, _):
        tracing = aiohttp.TraceConfig()
        tracing.on_request_headers_sent.append(unusual)
        forwarder._session = aiohttp.ClientSession(auto_decompress=False, trace_configs=[tracing])
        status, body, _ = await post(local + "/hook", ODD)
    assert status == 200 and json.loads(body) == {"action": "do_not_propagate"}
    (exchange,) = exchanges
    assert exchange.answered_by == "comethook (fallback drop)"
    assert exchange.forward_error == "LookupError: something aiohttp was never meant to raise"


def test_an_app_that_is_down_at_start_up_is_said_with_the_flags(cli: Any, closed_port: int) -> None:
    """The engine's warning names forward_to and fallback; the CLI says them as the flags the user gave."""
    result = cli("listen", "--no-tunnel", "--no-history", "--port", "0", "--forward-to", str(closed_port), "--timeout", "1")
    assert (
        f"Warning: --forward-to http://localhost:{closed_port}: nothing listens there" in result.stderr
        and "Start your app; until then deliveries get the --fallback answer (error). A line says when it is up." in result.stderr
    )

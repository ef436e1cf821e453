"""The inspector's server without a browser: the Host/Origin/token guard, paging, SSE resume and overflow, replay,
send, the canned answer switched live, the HAR export, and the listener's port serving none of it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from comethook_cli.cli.inspect import start_for_session
from comethook_cli.engine import values
from comethook_cli.engine.config import AnswerConfig, ForwardConfig, ListenConfig, ListenerConfig, TunnelConfig
from comethook_cli.engine.session import Session
from comethook_cli.inspector.server import Inspector
from tests.conftest import delivery, forward_config, post_json

STATIC = Path(__file__).resolve().parents[2] / "comethook_cli" / "inspector" / "static"


class Live:
    """A running session with its inspector, and a client that talks to both."""

    def __init__(self, session: Session, inspector: Inspector, client: aiohttp.ClientSession) -> None:
        self.session = session
        self.inspector = inspector
        self.client = client
        self.base = inspector.url.rstrip("/")
        self.origin = self.base
        self.headers = {"X-Comethook-Token": inspector.token, "Origin": self.origin}

    async def deliver(self, trigger: str = "before_message", text: str = "hello", **options: Any) -> Any:
        async with self.client.post(self.session.webhook_url, data=delivery(trigger, text, **options)) as answer:
            assert answer.status == 200
            return await answer.json()

    async def get(self, path: str, **headers: str) -> tuple[int, Any]:
        async with self.client.get(self.base + path, headers=headers) as answer:
            text = await answer.text()
            return answer.status, json.loads(text) if answer.content_type == "application/json" else text

    async def change(self, method: str, path: str, document: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.client.request(
            method, self.base + path, json=document, headers=self.headers if headers is None else headers
        ) as answer:
            return answer.status, await answer.json()


async def running(answers: AnswerConfig | None = None, forward: ForwardConfig | None = None) -> AsyncIterator[Live]:
    config = ListenConfig(
        listener=ListenerConfig(port=0), answers=answers or AnswerConfig(), forward=forward or ForwardConfig(),
        tunnel=TunnelConfig(mode="off"),
    )  # fmt: skip
    async with Session(config) as session, aiohttp.ClientSession() as client:
        inspector = await start_for_session(session, 0, lambda note: None)
        try:
            yield Live(session, inspector, client)
        finally:
            await inspector.stop()


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    async for started in running(AnswerConfig(values.action({"flag": True}), values.drop_if("spam"))):
        yield started


async def test_the_host_check_refuses_every_name_but_loopback(live: Live) -> None:
    port = live.inspector.port
    assert (await live.get("/api/exchanges", Host="evil.example:80"))[0] == 403
    assert (await live.get("/", Host=f"rebound.attacker.test:{port}"))[0] == 403
    assert (await live.get("/api/exchanges", Host="127.0.0.1:1"))[0] == 403  # another port is another origin
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        assert (await live.get("/api/exchanges", Host=host))[0] == 200, host


async def test_changes_need_the_token_and_a_same_origin_origin(live: Live) -> None:
    token = live.inspector.token
    wrong = [
        {},  # a cross-site form post carries neither
        {"Origin": live.origin},
        {"X-Comethook-Token": token},
        {"X-Comethook-Token": token, "Origin": "http://evil.example"},
        {"X-Comethook-Token": token, "Origin": "null"},
        {"X-Comethook-Token": token + "x", "Origin": live.origin},
    ]
    for headers in wrong:
        status, document = await live.change("PUT", "/api/rules", {"respond": "drop"}, headers)
        assert status == 403 and "error" in document, headers
        assert (await live.change("POST", "/api/send", {"trigger": "before_message"}, headers))[0] == 403
    assert await live.deliver(text="still injects") == {"flag": True}  # nothing changed
    # The page gets the token on load; it is this run's only.
    status, page = await live.get("/")
    assert status == 200 and f'content="{token}"' in page


async def test_switching_the_canned_answer_changes_the_next_answer(live: Live) -> None:
    status, rules = await live.get("/api/rules")
    assert status == 200 and rules["editable"] and rules["respond"] == "inject" and rules["respond_body"] == {"flag": True}
    status, rules = await live.change("PUT", "/api/rules", {"respond": "drop"})
    assert status == 200 and rules["respond"] == "drop"
    assert await live.deliver() == {"action": "do_not_propagate"}
    status, refused = await live.change("PUT", "/api/rules", {"respond": "inject:[1]"})
    assert status == 400 and "non-empty JSON object" in refused["error"] and refused["hint"]
    assert (await live.change("PUT", "/api/rules", {"respond": "inject:@/etc/passwd"}))[0] == 400
    assert await live.deliver() == {"action": "do_not_propagate"}  # a refused change changes nothing
    await live.change("PUT", "/api/rules", {"respond": 'inject:{"n": 2}'})  # the older text form still works
    assert await live.deliver() == {"n": 2}
    status, rules = await live.change("PUT", "/api/rules", {"respond": {"n": 3, "tags": ["a"]}})  # the object itself
    assert status == 200 and rules["respond"] == "inject" and rules["respond_body"] == {"n": 3, "tags": ["a"]}
    assert await live.deliver() == {"n": 3, "tags": ["a"]}
    status, refused = await live.change("PUT", "/api/rules", {"respond": {}})
    assert status == 400 and refused["error"] == "respond inject: needs a non-empty JSON object."
    assert await live.deliver(text="spam spam") == {"action": "do_not_propagate"}  # --drop-if still comes first


async def test_pages_are_newest_first_with_a_cursor_and_filters_narrow_them(live: Live) -> None:
    for n in range(5):
        await live.deliver(text=f"message {n}")
    await live.deliver(text="spam offer")
    await live.deliver("message_sent", text="a current one")
    seen: list[str] = []
    before = ""
    while True:
        status, page = await live.get(f"/api/exchanges?limit=3{before}")
        assert status == 200 and all(record["type"] == "event" for record in page["exchanges"])
        seen += [re.findall(r'"([^"]*)"', record["summary"])[0] for record in page["exchanges"]]
        if page["next"] is None:
            break
        before = f"&before={page['next']}"
    assert seen == ["a current one", "spam offer", *(f"message {n}" for n in reversed(range(5)))]
    _, dropped = await live.get("/api/exchanges?verdict=drop")
    assert [e["summary"] for e in dropped["exchanges"]] == [
        next(e["summary"] for e in (await live.get("/api/exchanges?q=spam"))[1]["exchanges"])
    ]
    _, both = await live.get("/api/exchanges?trigger=message_sent,before_message")
    _, sent = await live.get("/api/exchanges?trigger=message_sent")
    assert len(both["exchanges"]) == 7 and [e["trigger"] for e in sent["exchanges"]] == ["message_sent"]
    assert len((await live.get("/api/exchanges?status=2xx"))[1]["exchanges"]) == 7
    assert (await live.get("/api/exchanges?status=5xx"))[1]["exchanges"] == []
    # Quoted, as the text stands in the body and the summary: a bare `message 3` also finds "message 3…" ids.
    found = (await live.get("/api/exchanges?q=%22message%203%22"))[1]["exchanges"]
    assert [e["body"]["data"]["data"]["text"] for e in found] == ["message 3"]
    for bad in ("verdict=maybe", "status=7xx", "limit=many", "before=x"):
        status, error = await live.get(f"/api/exchanges?{bad}")
        assert status == 400 and error["error"], bad


async def test_one_exchange_in_full_with_the_raw_bytes_the_metadata_and_curl(live: Live) -> None:
    await live.deliver(text="inject me")
    _, page = await live.get("/api/exchanges?limit=1")
    key = page["exchanges"][0]["id"]
    status, full = await live.get(f"/api/exchanges/{key}")
    assert status == 200
    assert json.loads(base64.b64decode(full["raw_base64"]))["data"]["data"]["text"] == "inject me"
    assert full["verdict"] == "inject" and full["metadata"]["@injected"]["webhooks"][full["webhook_id"]] == {"flag": True}
    assert full["curl"].startswith("curl -X POST") and ["Content-Type", "application/json"] in full["response_headers"]
    assert (await live.get("/api/exchanges/evt_nothing_like_it"))[0] == 404


async def read_events(response: aiohttp.ClientResponse, count: int) -> list[tuple[str | None, dict[str, Any]]]:
    """The next `count` SSE messages (id, data), skipping comments and the retry line."""
    found: list[tuple[str | None, dict[str, Any]]] = []
    event_id: str | None = None
    async with asyncio.timeout(10):
        while len(found) < count:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                found.append((event_id, json.loads(line[6:])))
                event_id = None
    return found


async def test_the_stream_resumes_from_last_event_id_without_gaps_or_duplicates(live: Live) -> None:
    async with live.client.get(live.base + "/api/stream") as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        await live.deliver(text="first")
        [(first_id, first)] = await read_events(stream, 1)
    assert first["type"] == "event" and first["id"] == first_id and first["body"]["data"]["data"]["text"] == "first"
    for n in range(3):  # while no page listens
        await live.deliver(text=f"missed {n}")
    async with live.client.get(live.base + "/api/stream", headers={"Last-Event-ID": first_id}) as stream:
        missed = await read_events(stream, 3)
        await live.deliver(text="live again")
        [(_, after)] = await read_events(stream, 1)
    texts = [record["body"]["data"]["data"]["text"] for _, record in missed]
    assert texts == ["missed 0", "missed 1", "missed 2"] and after["body"]["data"]["data"]["text"] == "live again"
    assert all(event_id == record["id"] for event_id, record in missed)
    # An id the history does not hold (pruned, cleared): the page is told to reload.
    async with live.client.get(live.base + "/api/stream?after=evt_gone") as stream:
        [(_, reload)] = await read_events(stream, 1)
    assert reload["type"] == "reload"


async def test_a_stream_that_falls_behind_is_told_to_reload_and_the_hub_never_waits_for_it() -> None:
    from comethook_cli.engine.history.reader import History

    async for live in running():
        live.inspector.queue_size = 1
        async with live.client.get(live.base + "/api/stream") as stream:
            await live.deliver(text="one")
            await read_events(stream, 1)
            assert live.session.history is not None
            with History(live.session.history.path) as history:
                stored = history.last()
            # Three in one loop iteration: the stream cannot take them off its queue of one in between.
            for _ in range(3):
                live.session.hub.publish(stored)
            records = [record for _, record in await read_events(stream, 2)]
        assert [record["type"] for record in records] == ["event", "reload"]


async def test_a_frozen_stream_client_costs_no_answer() -> None:
    async for live in running():
        live.inspector.queue_size = 4
        frozen = socket.create_connection(("127.0.0.1", live.inspector.port))
        frozen.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        frozen.sendall(f"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:{live.inspector.port}\r\n\r\n".encode())
        try:
            async with asyncio.timeout(10):
                while not live.inspector._streams:
                    await asyncio.sleep(0.01)
            [subscription] = live.inspector._streams
            big = "x" * 20_000  # fills the frozen client's socket quickly
            answers = await asyncio.gather(*(live.deliver(text=f"{n} {big}") for n in range(150)))
            assert answers == [{}] * 150
            assert live.session.events == 150
            # It fell behind, so it was cut off (its queue no longer grows), and it is told to reload if it ever reads.
            assert subscription.overflowed
        finally:
            frozen.close()


async def test_replay_to_another_server_and_to_the_listener_itself_makes_linked_exchanges(live: Live, target: Any) -> None:
    from aiohttp import web

    url, received = await target(lambda request: web.json_response({"app": "answer"}))
    await live.deliver(text="original")
    _, page = await live.get("/api/exchanges?limit=1")
    original = page["exchanges"][0]["id"]
    edited = page["exchanges"][0]["body"]
    edited["data"]["data"]["text"] = "edited"
    status, result = await live.change("POST", f"/api/exchanges/{original}/replay", {"to": url, "body": edited})
    assert status == 200 and result["replay_of"] == original
    assert result["delivery"]["status"] == 200 and result["delivery"]["verdict"] == "inject"
    assert json.loads(received[0][1])["data"]["data"]["text"] == "edited"
    assert received[0][0].headers["X-Comethook-Replay-Of"] == original
    new = result["exchange"]
    assert new["id"] != original and new["forwarded_to"] == url and new["response"]["body"] == {"app": "answer"}
    _, full = await live.get(f"/api/exchanges/{new['id']}")
    assert full["replay_of"] == original  # stored, and linked
    from comethook_cli.models import AnsweredBy

    assert live.inspector.history is not None and live.inspector.history.get(new["id"]).outcome is AnsweredBy.REPLAY
    # No target given and never forwarded: back to this listener, which records it as it records every delivery.
    status, result = await live.change("POST", f"/api/exchanges/{original}/replay", {"to": None})
    assert status == 200 and result["exchange"]["headers"]["X-Comethook-Replay-Of"] == original
    assert result["exchange"]["response"]["body"] == {"flag": True} and result["exchange"]["answered_by"].startswith("comethook")
    status, refused = await live.change("POST", f"/api/exchanges/{original}/replay", {"to": 5})
    assert status == 400 and "URL" in refused["error"]


async def test_send_fires_a_canned_delivery_at_the_listener_or_a_url(live: Live) -> None:
    status, result = await live.change(
        "POST", "/api/send", {"trigger": "before_message", "to": None, "options": {"text": "from the page", "sets": ["data.x=1"]}}
    )
    assert status == 200 and result["delivery"]["verdict"] == "inject" and result["delivery"]["response"] == {"flag": True}
    assert result["exchange"]["body"]["data"]["data"]["text"] == "from the page" and result["exchange"]["body"]["data"]["x"] == 1
    status, error = await live.change("POST", "/api/send", {"trigger": "before_mesage"})
    assert status == 400 and "before_message" in error["hint"]
    status, error = await live.change("POST", "/api/send", {"trigger": "message_sent", "options": {"colour": "red"}})
    assert status == 400 and "colour" in error["error"]
    status, error = await live.change("POST", "/api/send", [1, 2])
    assert status == 400


async def test_the_har_export_streams_what_the_filters_select(live: Live) -> None:
    await live.deliver(text="keep me")
    await live.deliver("message_sent", text="not me")
    status, har = await live.get("/api/export.har?trigger=before_message")
    assert status == 200
    document = json.loads(har) if isinstance(har, str) else har
    assert document["log"]["version"] == "1.2"
    assert [entry["request"]["method"] for entry in document["log"]["entries"]] == ["POST"]
    assert "keep me" in document["log"]["entries"][0]["request"]["postData"]["text"]
    status, empty = await live.get("/api/export.har?trigger=call_ended")
    assert (json.loads(empty) if isinstance(empty, str) else empty)["log"]["entries"] == []


async def test_the_listener_port_serves_none_of_the_inspector(live: Live) -> None:
    for path in (
        "/",
        "/app.js",
        "/detail.js",
        "/panels.js",
        "/app.css",
        "/api/exchanges",
        "/api/stream",
        "/api/rules",
        "/api/session",
        "/api/export.har",
    ):
        async with live.client.get(live.session.local_url + path) as answer:
            body = await answer.read()
            assert "Content-Security-Policy" not in answer.headers, path
            assert b"comethook inspector" not in body and b"token" not in body, path
            assert answer.status == 405 or (path == "/" and json.loads(body)["service"] == "comethook"), path
    # A POST to an API path is a delivery like any other there, answered by the canned answer, not by the API.
    status, answer = await asyncio.to_thread(post_json, live.session.local_url + "/api/rules", b'{"respond": "drop"}')
    assert status == 200 and json.loads(answer) == {}
    assert await live.deliver() == {"flag": True}


def test_the_page_has_no_inline_script_or_style_and_writes_payloads_as_text() -> None:
    page = (STATIC / "index.html").read_text()
    scripts = ["app.js", "detail.js", "panels.js"]  # app.js first: the other two use its globals
    assert re.findall(r"<script\b[^>]*>", page) == [f'<script src="/{name}" defer>' for name in scripts]
    assert not re.search(r"\son[a-z]+\s*=", page) and not re.search(r"\sstyle\s*=", page)
    script = "".join((STATIC / name).read_text() for name in scripts)
    for forbidden in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        'setAttribute("style',
    ):
        assert forbidden not in script, forbidden
    assert "http://" not in (STATIC / "app.css").read_text() and "@import" not in (STATIC / "app.css").read_text()


async def test_records_queued_together_go_out_together_in_order_and_whole(live: Live) -> None:
    """Under a flood the stream writes everything queued meanwhile at once (a wait and a write per record halved the
    listener's throughput with three pages open): each event still arrives whole, once, in order, with its id."""
    async with live.client.get(live.base + "/api/stream") as stream:
        await live.deliver(text="first")
        [(_, first)] = await read_events(stream, 1)
        assert live.session.history is not None
        from comethook_cli.engine.history.reader import History

        with History(live.session.history.path) as history:
            stored = history.last()
        copies = [replace(stored, id=f"{stored.id}_{n:02d}") for n in range(40)]
        for copy in copies:  # in one loop iteration: they reach the stream's queue together
            live.session.hub.publish(copy)
        got = await read_events(stream, 40)
    assert [event_id for event_id, _ in got] == [copy.id for copy in copies]
    assert all(record["id"] == event_id and record["type"] == "event" for event_id, record in got)
    assert first["body"]["data"]["data"]["text"] == "first"


async def test_a_read_from_another_sites_page_needs_the_token(live: Live) -> None:
    await live.deliver(text="private")
    token = live.inspector.token
    for path in ("/api/export.har", "/api/exchanges?q=private", "/api/session", "/api/stream"):
        # What a no-cors <img>/<script> or fetch of another tab carries: refused before any history is read.
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}, {"Origin": "http://evil.example"}):
            status, document = await live.get(path, **headers)
            assert status == 403 and "token" in document["error"], (path, headers)
    # The page's own reads (same-origin), a typed address (none), curl (no header), and a holder of the token pass.
    for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {},
                    {"Sec-Fetch-Site": "cross-site", "X-Comethook-Token": token}):  # fmt: skip
        status, har = await live.get("/api/export.har", **headers)
        assert status == 200 and "private" in json.dumps(har), headers


async def test_streamed_responses_carry_the_same_security_headers(live: Live) -> None:
    await live.deliver()
    for path in ("/api/export.har", "/api/exchanges", "/"):
        async with live.client.get(live.base + path) as answer:
            assert answer.status == 200
            assert "default-src 'none'" in answer.headers["Content-Security-Policy"], path
            assert answer.headers["X-Content-Type-Options"] == "nosniff", path
            assert answer.headers["Cache-Control"] == "no-store", path
    async with live.client.get(live.base + "/api/stream") as stream:
        assert stream.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'none'" in stream.headers["Content-Security-Policy"]
        assert stream.headers["Cache-Control"] == "no-store"


async def test_numeric_query_parameters_answer_400_never_500(live: Live) -> None:
    await live.deliver()
    for query in ("before=99999999999999999999999", "before=-1", "before=1e3", "before=%C2%B2", "limit=%C2%B2",
                  "limit=99999999999999999999999", "status=%C2%B2xx"):  # fmt: skip
        status, document = await live.get(f"/api/exchanges?{query}")
        assert status == 400 and document["error"], query
    status, document = await live.get("/api/exchanges?before=9223372036854775807&limit=100000")
    assert status == 200 and len(document["exchanges"]) == 1  # the largest cursor, and a limit clamped to the page


async def test_past_the_stream_cap_the_oldest_page_is_told_to_reload() -> None:
    async for live in running():
        live.inspector.max_streams = 2
        async with live.client.get(live.base + "/api/stream") as oldest:
            assert (await oldest.content.readuntil(b"\n\n")).startswith(b"retry:")
            async with live.client.get(live.base + "/api/stream") as second, live.client.get(live.base + "/api/stream") as third:
                for stream in (second, third):
                    assert (await stream.content.readuntil(b"\n\n")).startswith(b"retry:")
                [(_, reload)] = await read_events(oldest, 1)
                assert reload["type"] == "reload"
                assert len(live.inspector._streams) == 2
                await live.deliver(text="still live")
                for stream in (second, third):
                    [(_, event)] = await read_events(stream, 1)
                    assert event["type"] == "event"


async def test_past_the_connection_cap_the_oldest_idle_connections_are_closed() -> None:
    async for live in running():
        live.inspector._cap.limit = 4
        port = live.inspector.port
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(12)]
        try:
            await asyncio.sleep(0.2)
            for sock in idle[:8]:  # the oldest: closed by the server (end of file, or a reset)
                sock.settimeout(10)
                with contextlib.suppress(ConnectionResetError):
                    assert sock.recv(1) == b""
            status, _ = await live.get("/api/session")
            assert status == 200  # the page still gets its answer
        finally:
            for sock in idle:
                sock.close()


async def test_a_replay_the_history_cannot_store_is_said_not_silent(live: Live, target: Any) -> None:
    from aiohttp import web

    url, received = await target(lambda request: web.json_response({}))
    await live.deliver(text="original")
    _, page = await live.get("/api/exchanges?limit=1")
    original = page["exchanges"][0]["id"]

    class Full:
        async def record(self, exchange: Any) -> None:
            raise OSError(28, "No space left on device")

    warnings: list[str] = []
    hub = live.session.hub
    hub.sink, hub.on_warning = Full(), warnings.append  # type: ignore[assignment]
    status, _ = await live.change("POST", f"/api/exchanges/{original}/replay", {"to": url})
    assert status == 200 and len(received) == 1  # the replay went out
    assert any(f"of {original} not stored" in w and "No space left" in w for w in warnings), warnings


async def test_the_session_api_and_the_stream_carry_the_health_of_the_app_behind_forward_to() -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    config = ListenConfig(
        listener=ListenerConfig(port=0), forward=forward_config((f"http://127.0.0.1:{port}",)),
        tunnel=TunnelConfig(mode="off"),
    )  # fmt: skip
    async with Session(config, app_interval=0.2) as session, aiohttp.ClientSession() as client:
        inspector = await start_for_session(session, 0, lambda note: None)
        live = Live(session, inspector, client)
        try:
            status, info = await live.get("/api/session")
            assert status == 200
            assert info["health"] == {
                "app": {"state": "down", "url": f"http://127.0.0.1:{port}", "detail": info["health"]["app"]["detail"]}
            }
            assert "nothing listens there" in info["health"]["app"]["detail"]
            async with live.client.get(live.base + "/api/stream") as stream:
                app = await asyncio.start_server(lambda reader, writer: writer.close(), "127.0.0.1", port)
                try:
                    record = None
                    async with asyncio.timeout(10):
                        while record is None:
                            line = (await stream.content.readline()).decode()
                            if line.startswith("data: "):
                                record = json.loads(line[6:])
                finally:
                    app.close()
            assert record["type"] == "app" and record["state"] == "up" and record["url"] == f"http://127.0.0.1:{port}"
            assert (await live.get("/api/session"))[1]["health"]["app"]["state"] == "up"
        finally:
            await inspector.stop()


async def test_the_canned_answer_cannot_be_switched_while_before_message_goes_to_an_app() -> None:
    app = "http://127.0.0.1:9/hook"
    for forward in (forward_config((app,)), forward_config((), (f"before_message={app}",))):
        async for live in running(forward=forward):
            status, rules = await live.get("/api/rules")
            assert status == 200 and rules["forwarded_to"] == app and not rules["editable"], rules
            status, refused = await live.change("PUT", "/api/rules", {"respond": "drop"})
            assert status == 409 and f"forwarded to {app}" in refused["error"] and "--route" in refused["hint"]
            assert live.session.responder is not None and live.session.responder.action.label == "pass"
    # The app's password stays out of what the page gets.
    async for live in running(forward=forward_config(("http://user:s3cret@127.0.0.1:9/hook",))):
        status, rules = await live.get("/api/rules")
        assert rules["forwarded_to"] == "http://user:***@127.0.0.1:9/hook"
        status, refused = await live.change("PUT", "/api/rules", {"respond": "drop"})
        assert status == 409 and "s3cret" not in json.dumps(refused)
    # Only another trigger routed: before_message still gets the canned answer, which the page may switch.
    async for live in running(forward=forward_config((), (f"message_sent={app}",))):
        status, rules = await live.change("PUT", "/api/rules", {"respond": "drop"})
        assert status == 200 and rules["editable"] and rules["forwarded_to"] is None
        assert await live.deliver() == {"action": "do_not_propagate"}

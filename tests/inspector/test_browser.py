"""The inspector page in a real headless Chromium (Playwright driving Debian's `chromium`).

Locally, a missing Playwright or Chromium skips these with a message; in CI (CI=true) it fails them.
A real listen session runs on an event loop of its own in a thread; the page talks to its inspector.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from comethook_cli.cli.inspect import start_for_session
from comethook_cli.engine import values
from comethook_cli.engine.config import AnswerConfig, ForwardConfig, ListenConfig, ListenerConfig, TunnelConfig
from comethook_cli.engine.hub import Hub
from comethook_cli.engine.session import Session
from comethook_cli.inspector.server import Inspector
from tests.conftest import delivery, forward_config, post_json

pytestmark = pytest.mark.browser
CHROMIUM = os.environ.get("COMETHOOK_CHROMIUM", "/usr/bin/chromium")
ROWS = ".viewport .row:not([hidden])"


def missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI must run the browser tests (.ci/run installs Debian's chromium).")
    pytest.skip(f"{reason}. To run these: pip install playwright; apt-get install chromium (or set COMETHOOK_CHROMIUM).")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright for Python is not installed")
    if not Path(CHROMIUM).exists():
        missing(f"No Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


class Threaded:
    """An event loop in a thread, for the server side while Playwright's sync API owns the test's thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(20)

    def end(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


#: AnswerConfig's fields from what a test writes (as the CLI parses its flags).
PARSERS: dict[str, Any] = {"respond": values.action, "drop_if": values.drop_if}


class LiveListen(Threaded):
    """`listen` with its inspector, from Python."""

    def __init__(self, forward: ForwardConfig | None = None, **answers: Any) -> None:
        super().__init__()
        parsed = {"action" if name == "respond" else name: PARSERS[name](value) for name, value in answers.items()}
        answer_config = AnswerConfig(**parsed)
        config = ListenConfig(
            listener=ListenerConfig(port=0), answers=answer_config, forward=forward or ForwardConfig(),
            tunnel=TunnelConfig(mode="off"),
        )  # fmt: skip
        self.session = Session(config)
        self.run(self.session.startup())
        self.inspector: Inspector = self.run(start_for_session(self.session, 0, lambda note: None))
        self.url = self.inspector.url

    def post(self, text: str, trigger: str = "before_message", **options: Any) -> Any:
        status, body = post_json(self.session.webhook_url, delivery(trigger, text, **options))
        assert status == 200
        return json.loads(body)

    def close(self) -> None:
        self.run(self.inspector.stop())
        self.run(self.session.shutdown())
        self.end()


@pytest.fixture
def listen() -> Iterator[Any]:
    started: list[LiveListen] = []

    def start(forward: ForwardConfig | None = None, **answers: Any) -> LiveListen:
        started.append(LiveListen(forward, **answers))
        return started[-1]

    yield start
    for live in started:
        live.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.errors = errors
    yield opened
    context.close()
    assert not errors, errors  # no script error, and no CSP violation turned into one


def expect_rows(page: Any, count: int) -> None:
    from playwright.sync_api import expect

    expect(page.locator(ROWS)).to_have_count(count)


def test_a_delivery_appears_live_without_a_reload(listen: Any, page: Any) -> None:
    from playwright.sync_api import expect

    live = listen()
    page.goto(live.url)
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#empty")).to_be_visible()
    live.post("Are we still on for lunch?")
    row = page.locator(ROWS, has_text="Are we still on for lunch?")
    expect(row).to_be_visible()
    expect(row.locator(".badge")).to_have_text("PASS")
    live.post("a group one", trigger="group_member_joined", group="cometchat-guid-1")
    expect(page.locator(ROWS).first).to_contain_text("group_member_joined")


def test_the_detail_pane_shows_the_injected_metadata_and_the_drop_verdict(listen: Any, page: Any) -> None:
    from playwright.sync_api import expect

    live = listen(respond='inject:{"tag": "from-the-test"}', drop_if="spam")
    assert live.post("keep this") == {"tag": "from-the-test"}
    live.post("spam offer")
    page.goto(live.url)
    page.locator(ROWS, has_text="keep this").click()
    verdict = page.locator(".card.verdict")
    expect(verdict.locator(".verdict-line.inject")).to_contain_text('["@injected"]["webhooks"]')
    expect(verdict.locator(".tree")).to_contain_text('"tag": "from-the-test"')
    expect(verdict.locator(".tree")).to_contain_text('"@injected"')
    page.locator(ROWS, has_text="spam offer").click()
    expect(page.locator(".verdict-line.drop")).to_have_text("Dropped: the message is not delivered to anyone.")
    expect(page.locator(".detail-head .badge")).to_have_text("DROP")
    expect(page.locator(".card.answer")).to_contain_text('"do_not_propagate"')


def test_edit_and_replay_makes_a_new_exchange_linked_to_its_original(listen: Any, page: Any) -> None:
    from playwright.sync_api import expect

    live = listen(respond="drop", drop_if=None)
    live.post("original words")
    page.goto(live.url)
    page.locator(ROWS, has_text="original words").click()
    page.get_by_role("button", name="Edit and replay…").click()
    editor = page.locator("#edit-body")
    body = editor.input_value()
    editor.fill("{not json")
    expect(page.locator("#edit-submit")).to_be_disabled()
    expect(page.locator("#edit-validity")).to_have_class(re.compile("bad"))
    editor.fill(body.replace("original words", "edited words"))
    expect(page.locator("#edit-submit")).to_be_enabled()
    page.locator("#edit-submit").click()
    replayed = page.locator(ROWS, has_text="edited words")
    expect(replayed).to_be_visible()
    expect(replayed.locator(".marker.replay")).to_be_visible()
    expect(page.locator(ROWS)).to_have_count(2)
    compare = page.locator(".card.replay")
    expect(compare.locator(".compare .column")).to_have_count(2)
    expect(compare).to_contain_text("Original answer")
    expect(page.locator(".detail-head .summary")).to_contain_text("edited words")
    compare.get_by_role("button", name="open the original").click()
    expect(page.locator(".detail-head .summary")).to_contain_text("original words")


def test_filters_and_search_narrow_the_list_and_the_url_reproduces_them(listen: Any, page: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    live = listen(drop_if="spam")
    live.post("alpha message")
    live.post("spam beta")
    live.post("gamma sent", trigger="message_sent")
    page.goto(live.url)
    expect_rows(page, 3)
    page.locator("#q").fill("alpha")
    expect_rows(page, 1)
    expect(page.locator(ROWS)).to_contain_text("alpha message")
    assert "q=alpha" in page.url
    page.locator("#clear-filters").click()
    expect_rows(page, 3)
    page.locator("#verdict").select_option("drop")
    expect_rows(page, 1)
    expect(page.locator(ROWS)).to_contain_text("spam beta")
    page.locator("#verdict").select_option("")
    page.locator("#trigger-summary").click()
    page.locator("#trigger-list label", has_text=re.compile(r"^message_sent$")).locator("input").check()
    expect_rows(page, 1)
    expect(page.locator(ROWS)).to_contain_text("gamma sent")
    assert "trigger=message_sent" in page.url
    assert "trigger=message_sent" in (page.locator("#har-link").get_attribute("href") or "")
    # The same URL in a new tab shows the same view.
    again = page.context.new_page()
    again.goto(page.url)
    expect(again.locator(ROWS)).to_have_count(1)
    expect(again.locator(ROWS)).to_contain_text("gamma sent")
    expect(again.locator("#trigger-summary")).to_have_text("message_sent")
    # A delivery that does not match the filters does not appear; one that does, does.
    live.post("delta", trigger="before_message")
    live.post("epsilon sent", trigger="message_sent")
    expect(again.locator(ROWS)).to_have_count(2)
    expect(again.locator(ROWS).first).to_contain_text("epsilon sent")


def test_keyboard_navigation_j_k_enter_and_slash(listen: Any, page: Any) -> None:
    from playwright.sync_api import expect

    live = listen()
    for text in ("first one", "second one", "third one"):
        live.post(text)
    page.goto(live.url)
    expect_rows(page, 3)
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(page.locator(".row.cursor")).to_contain_text("second one")
    page.keyboard.press("Enter")
    expect(page.locator(".detail-head .summary")).to_contain_text("second one")
    page.keyboard.press("k")
    page.keyboard.press("Enter")
    expect(page.locator(".detail-head .summary")).to_contain_text("third one")
    assert "id=evt_" in page.url  # the open exchange is part of the link too
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "q"
    page.keyboard.type("first")
    expect_rows(page, 1)
    page.keyboard.press("Escape")
    page.keyboard.press("j")  # back in the list: the key moves, it does not type
    expect(page.locator("#q")).to_have_value("first")
    expect(page.locator(".row.cursor")).to_contain_text("first one")


XSS = ('<img src=x onerror="window.__xss = 1">', "</script><script>window.__xss = 2</script>", '<svg onload="window.__xss = 3">')


def test_payload_text_that_looks_like_html_stays_text(listen: Any, page: Any) -> None:
    from playwright.sync_api import expect

    live = listen(respond='inject:{"note": "<img src=y onerror=\\"window.__xss = 4\\">"}')
    for text in XSS:
        live.post(text, sender=f"<b>{text}</b>")
    page.goto(live.url)
    expect_rows(page, 3)
    for text in XSS:
        page.locator(ROWS, has_text=text).click()
        expect(page.locator(".detail-head .summary")).to_contain_text(text)
        expect(page.locator(".verdict-line.inject")).to_be_visible()
        page.locator(".body-bar button", has_text="raw").first.click()
    assert page.evaluate("window.__xss") is None
    assert page.locator("img, svg, b").count() == 0


def test_a_reconnect_resumes_without_gaps_or_duplicates(listen: Any, page: Any) -> None:
    from playwright.sync_api import expect

    live = listen()
    page.goto(live.url)
    live.post("before the cut")
    expect_rows(page, 1)
    live.loop.call_soon_threadsafe(live.inspector.drop_streams)  # the server ends the stream (a restart, a proxy)
    for n in range(3):
        live.post(f"while away {n}")  # nobody subscribed: these are only in the history now
    for n in range(3):
        expect(page.locator(ROWS, has_text=f"while away {n}")).to_have_count(1)
    live.post("after the cut")
    expect(page.locator(ROWS, has_text="after the cut")).to_have_count(1)
    ids = page.evaluate("state.rows.map(row => row.id)")
    assert len(ids) == 5 == len(set(ids))
    expect(page.locator("#live")).to_have_text("live")


def test_switching_the_canned_answer_changes_the_next_answer(listen: Any, page: Any) -> None:
    from playwright.sync_api import expect

    live = listen()
    page.goto(live.url)
    expect(page.locator("#rules-button")).to_have_text("Answers: PASS")
    assert live.post("before the switch") == {}
    page.locator("#rules-button").click()
    page.locator('input[name="respond"][value="drop"]').check()
    page.locator("#rules-submit").click()
    expect(page.locator("#rules-button")).to_have_text("Answers: DROP")
    assert live.post("after the switch") == {"action": "do_not_propagate"}
    expect(page.locator(ROWS, has_text="after the switch").locator(".badge")).to_have_text("DROP")
    page.locator("#rules-button").click()
    page.locator('input[name="respond"][value="inject"]').check()
    page.locator("#rules-inject").fill('{"via": "the page"}')
    page.locator("#rules-submit").click()
    expect(page.locator("#rules-button")).to_have_text("Answers: INJECT")
    assert live.post("injected now") == {"via": "the page"}


def test_fifty_thousand_stored_exchanges_render_as_a_window_and_page_in_as_you_scroll(page: Any, tmp_path: Path) -> None:
    import sqlite3

    from playwright.sync_api import expect

    from comethook_cli.engine.history.files import default_path
    from comethook_cli.engine.history.reader import History
    from comethook_cli.engine.history.rows import INSERT, connect, to_row
    from tests.engine.history.test_reader import exchange

    path = default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    connect(path).close()
    template = exchange("evt_template", text="stored earlier")
    with sqlite3.connect(path) as db:
        base = to_row(template)
        db.executemany(INSERT, ((f"evt_{n:020d}", 1_700_000_000 + n, *base[2:]) for n in range(50_000)))
    server = Threaded()
    inspector = Inspector(Hub(), History(path))
    server.run(inspector.start())
    try:
        page.goto(inspector.url)
        expect(page.locator("#count")).to_have_text("200+ exchanges")
        assert page.locator(".viewport .row").count() < 80  # a window of rows, not 50,000
        for _ in range(3):
            page.locator("#viewport").evaluate("node => { node.scrollTop = node.scrollHeight; }")
            page.wait_for_timeout(200)
        expect(page.locator("#count")).not_to_have_text("200+ exchanges")
        loaded = page.evaluate("state.rows.length")
        assert 400 <= loaded < 50_000 and page.locator(".viewport .row").count() < 80
        page.locator("#viewport").evaluate("node => { node.scrollTop = 0; }")
        expect(page.locator(ROWS).first).to_contain_text("stored earlier")
        page.locator(ROWS).first.click()
        expect(page.locator(".detail-head")).to_contain_text("evt_00000000000000049999")  # newest first
    finally:
        server.run(inspector.stop())
        server.end()


def test_another_sites_page_cannot_read_the_api_or_flood_the_history(listen: Any, page: Any) -> None:
    from aiohttp import web

    live = listen()
    live.post("private text")

    # Another site on this machine (another dev server; a public one Chromium's Private Network Access stops itself).
    async def other(request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>other</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/", other)
    runner = web.AppRunner(app)

    async def serve() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    port = live.run(serve())
    statuses: dict[str, int] = {}
    page.on("response", lambda response: statuses.__setitem__(response.url, response.status))
    try:
        page.goto(f"http://localhost:{port}/")
        har, search = live.url + "api/export.har", live.url + "api/exchanges?q=private"
        page.evaluate(
            """async ([har, search]) => {
                for (const url of [har, search]) { try { await fetch(url, {mode: "no-cors"}); } catch (e) {} }
                const image = new Image(); image.src = har;
                await new Promise((done) => { image.onerror = done; image.onload = done; });
            }""",
            [har, search],
        )
        assert statuses.get(har) == 403 and statuses.get(search) == 403, statuses
        # The inspector's own page still reads and exports.
        page.goto(live.url)
        expect_rows(page, 1)
        with page.expect_response(lambda response: response.url.startswith(har)) as exported:
            page.evaluate("(url) => fetch(url).then((r) => r.text())", har)
        assert exported.value.status == 200
    finally:
        live.run(runner.cleanup())


def test_the_header_badge_shows_an_app_that_is_down_and_clears_when_it_is_up(page: Any) -> None:
    from playwright.sync_api import expect

    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    live = Threaded()
    config = ListenConfig(
        listener=ListenerConfig(port=0), forward=forward_config((f"http://127.0.0.1:{port}",)),
        tunnel=TunnelConfig(mode="off"),
    )  # fmt: skip
    session = Session(config, app_interval=0.2)
    live.run(session.startup())
    inspector = live.run(start_for_session(session, 0, lambda note: None))
    app: Any = None
    try:
        page.goto(inspector.url)
        badge = page.locator("#health")
        expect(badge).to_have_text("APP DOWN")
        expect(badge).to_have_attribute("title", re.compile("nothing listens there"))

        async def serve() -> Any:
            return await asyncio.start_server(lambda reader, writer: writer.close(), "127.0.0.1", port)

        app = live.run(serve())
        expect(badge).to_be_hidden()  # the stream said it is up: no tunnel to show, nothing down
    finally:
        if app is not None:
            app.close()
        live.run(inspector.stop())
        live.run(session.shutdown())
        live.end()


def free_port() -> int:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        return int(spare.getsockname()[1])


def test_an_empty_object_or_list_shows_whole_not_as_an_open_fold(listen: Any, page: Any) -> None:
    from playwright.sync_api import expect

    live = listen()
    assert live.post("answered with nothing") == {}
    page.goto(live.url)
    page.locator(ROWS, has_text="answered with nothing").click()
    answer = page.locator(".card.answer .tree")
    expect(answer).to_have_text("{}", use_inner_text=True)
    assert answer.locator("details").count() == 0  # nothing to fold
    page.evaluate("document.body.appendChild(tree({a: {}, b: [], c: [1]}, true)).id = 'probe'")
    expect(page.locator("#probe")).to_contain_text('"a": {}', use_inner_text=True)
    expect(page.locator("#probe")).to_contain_text('"b": []', use_inner_text=True)


def test_send_to_an_unreachable_url_says_what_failed_with_no_verdict(listen: Any, page: Any) -> None:
    from playwright.sync_api import expect

    live = listen()
    page.goto(live.url)
    page.locator("#send-button").click()
    page.locator("#send-to").fill(f"http://127.0.0.1:{free_port()}/webhook")
    page.locator("#send-submit").click()
    result = page.locator("#send-result")
    expect(result).to_contain_text("could not connect")
    expect(result).to_contain_text("No answer")
    assert result.locator(".badge").count() == 0
    assert "null" not in result.inner_text()


def summary_widths(page: Any) -> list[float]:
    return [box["width"] for box in (row.bounding_box() for row in page.locator(ROWS + " .c-summary").all()) if box]


def test_at_800_px_the_summary_stays_and_an_empty_detail_pane_gives_way(listen: Any, page: Any) -> None:
    from playwright.sync_api import expect

    live = listen(drop_if="spam")
    live.post("the first words of a message")
    live.post("spam again", trigger="before_message")
    for width in (800, 1280):
        page.set_viewport_size({"width": width, "height": 700})
        page.goto(live.url)
        expect_rows(page, 2)
        detail = page.locator("#detail").bounding_box()
        assert detail is not None and detail["width"] <= 0.3 * width, (width, detail)
        assert min(summary_widths(page)) >= 150, (width, summary_widths(page))
        page.locator(ROWS).first.click()
        expect(page.locator(".detail-head")).to_be_visible()
        detail = page.locator("#detail").bounding_box()
        assert detail is not None and detail["width"] >= 0.35 * width, (width, detail)
        assert min(summary_widths(page)) >= 120, (width, summary_widths(page))
        expect(page.locator(ROWS).first.locator(".badge")).to_be_visible()
        # Nothing spills out of the bars: the page never scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_the_answers_chip_says_the_app_answers_while_before_message_is_forwarded(listen: Any, page: Any) -> None:
    from playwright.sync_api import expect

    app = f"http://127.0.0.1:{free_port()}/hook"
    live = listen(forward_config((app,)))
    page.goto(live.url)
    chip = page.locator("#rules-button")
    expect(chip).to_have_text("Answers: YOUR APP")
    chip.click()
    expect(page.locator("#rules-now")).to_contain_text(f"before_message is forwarded to {app}")
    for choice in page.locator('input[name="respond"]').all():
        expect(choice).to_be_disabled()
    expect(page.locator("#rules-submit")).to_be_disabled()

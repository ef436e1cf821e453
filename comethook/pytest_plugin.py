"""comethook's pytest plugin: test your own webhook handler with realistic CometChat deliveries.

Installed with comethook (the `pytest11` entry point), or loaded with `-p comethook.pytest_plugin`:

* `cometchat_payload("message_sent", text="hi", group="cometchat-guid-1")`: a delivery body (`comethook.build_payload`);
* `cometchat_delivery("before_message", text="hi")`: `(headers, body)` as CometChat POSTs them (Content-Type
  `Application/json`, and Basic auth from `--cometchat-basic-auth`, the `cometchat_basic_auth` ini value or
  `COMETHOOK_BASIC_AUTH`), ready for any test client;
* `comethook_listener`: a running in-process listener on a free port (`ListenerThread`); configure it with
  `@pytest.mark.comethook_listener(respond="drop", ...)`;
* `assert_verdict(response, "drop")`: CometChat's verdict on a handler's answer, or a readable failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

if TYPE_CHECKING:
    from comethook import Exchange, Listener, Verdict

VERDICTS = ("pass", "inject", "drop", "invalid")
_WHY = {
    "pass": "the answer {} lets the message through unchanged",
    "drop": 'the answer {"action": "do_not_propagate"} drops the message',
    "inject": "CometChat injects this JSON object into the message's metadata (@injected.webhooks.<webhook id>)",
}
_HOW = {
    "pass": "answer a 2xx with {} to let the message through",
    "drop": 'answer a 2xx with {"action": "do_not_propagate"} to drop the message',
    "inject": 'answer a 2xx with a JSON object (not the drop action) to inject it, e.g. {"score": 0.9}',
    "invalid": "an invalid answer is a non-2xx status, an empty body, or a body that is not a JSON object",
}


class CometChatDelivery(NamedTuple):
    """A delivery as CometChat POSTs it: `headers, body = delivery`."""

    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


def pytest_addoption(parser: pytest.Parser) -> None:
    """--cometchat-basic-auth, and the ini value behind it."""
    group = parser.getgroup("comethook", "comethook: CometChat webhook deliveries")
    group.addoption(
        "--cometchat-basic-auth",
        metavar="USER:PASS",
        default=None,
        help="Basic auth the cometchat_delivery fixture sends (default: the cometchat_basic_auth ini value, "
        "else COMETHOOK_BASIC_AUTH).",
    )
    parser.addini("cometchat_basic_auth", "Basic auth USER:PASS the cometchat_delivery fixture sends.", default=None)


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker that configures comethook_listener."""
    config.addinivalue_line(
        "markers", "comethook_listener(**options): options of the comethook_listener fixture (those of comethook.Listener)"
    )


# --- the fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def cometchat_payload(request: pytest.FixtureRequest) -> Callable[..., dict[str, Any]]:
    """A factory of delivery bodies: `cometchat_payload(trigger, **options)` is `comethook.build_payload`, with the
    project's fixtures (comethook/fixtures beside comethook.toml, or its `[payloads] fixtures`) found by name."""
    from comethook import build_payload

    folder = project_fixtures_directory(request.config.rootpath)

    def make(trigger: str, **options: Any) -> dict[str, Any]:
        options.setdefault("fixtures", folder)
        return build_payload(trigger, **options)

    return make


def project_fixtures_directory(root: Any) -> str:
    """The fixtures directory of the project pytest runs in: `[payloads] fixtures` of its comethook.toml (relative to
    the file), else comethook/fixtures beside the file, else under the rootdir."""
    from pathlib import Path

    from comethook_cli.engine import configfile, fixtures

    found = configfile.find(Path(root))
    configured = None
    if found is not None:
        settings = configfile.read(found).settings
        configured = next((s.value for s in settings if (s.section, s.key) == ("payloads", "fixtures")), None)
    return str(fixtures.directory(configured if isinstance(configured, str) else None, found, Path(root)))


@pytest.fixture
def cometchat_delivery(request: pytest.FixtureRequest) -> Callable[..., CometChatDelivery]:
    """A factory of `(headers, body)` as CometChat POSTs a delivery: `cometchat_delivery(trigger, **options)`.

    `basic_auth="USER:PASS"` (or None for none) overrides the configured credentials for one delivery;
    the other options are `build_payload`'s."""
    from comethook import build_payload
    from comethook_cli.cometchat.payloads import encode
    from comethook_cli.engine.auth import basic_auth_header
    from comethook_cli.engine.sender import CONTENT_TYPE

    configured = (
        request.config.getoption("cometchat_basic_auth")
        or request.config.getini("cometchat_basic_auth")
        or os.environ.get("COMETHOOK_BASIC_AUTH")
    )
    unset = object()
    folder = project_fixtures_directory(request.config.rootpath)

    def make(trigger: str, *, basic_auth: Any = unset, content_type: str = CONTENT_TYPE, **options: Any) -> CometChatDelivery:
        credentials = configured if basic_auth is unset else basic_auth
        headers = {"Content-Type": content_type}
        if credentials:
            headers["Authorization"] = basic_auth_header(credentials)
        options.setdefault("fixtures", folder)  # the project's fixtures, as cometchat_payload finds them
        return CometChatDelivery(headers, encode(build_payload(trigger, **options)))

    return make


@pytest.fixture
def comethook_listener(request: pytest.FixtureRequest) -> Iterator[ListenerThread]:
    """A running comethook listener on a free loopback port, for code that sends webhooks onward (or a relay).

    `@pytest.mark.comethook_listener(respond="drop", rules=[...], forward_to=URL, ...)` sets its options."""
    marker = request.node.get_closest_marker("comethook_listener")
    listener = ListenerThread(**(marker.kwargs if marker else {}))
    listener.start()
    try:
        yield listener
    finally:
        listener.stop()


@pytest.fixture(name="assert_verdict")
def assert_verdict_fixture() -> Callable[..., Verdict]:
    """`assert_verdict(response, "drop")`: CometChat's verdict on a handler's answer, or a readable failure."""
    return assert_verdict


# --- what the fixtures hand out ------------------------------------------------------------------------


class ListenerThread:
    """A `comethook.Listener` on an event loop of its own, in a thread: usable from synchronous tests (requests,
    Flask, Django) and from asynchronous ones (whose own loop it never blocks)."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="comethook-listener", daemon=True)
        self._listener: Listener | None = None

    def start(self) -> None:
        """Start listening (returns once the port is bound)."""
        from comethook import Listener

        self._thread.start()
        listener = Listener(**self.options)
        asyncio.run_coroutine_threadsafe(listener.__aenter__(), self._loop).result(30)
        self._listener = listener

    def stop(self) -> None:
        """Stop listening and end the thread."""
        try:
            if self._listener is not None:
                asyncio.run_coroutine_threadsafe(self._listener.__aexit__(None, None, None), self._loop).result(30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop.close()

    @property
    def listener(self) -> Listener:
        """The running listener."""
        if self._listener is None:
            raise RuntimeError("start() the listener first.")
        return self._listener

    @property
    def url(self) -> str:
        """The webhook URL to POST to (any path is accepted)."""
        return self.listener.url

    @property
    def port(self) -> int:
        """The port it listens on."""
        return self.listener.port

    @property
    def events(self) -> list[Exchange]:
        """Every delivery answered so far (a copy)."""
        return list(self.listener.events)

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[Exchange]:
        """Block until `count` deliveries have been answered; returns them (TimeoutError after `timeout` seconds)."""
        future = asyncio.run_coroutine_threadsafe(self.listener.wait_for(count, timeout), self._loop)
        return future.result(timeout + 10)

    async def wait_for_async(self, count: int = 1, timeout: float = 10.0) -> list[Exchange]:
        """`wait_for` for an async test: awaits without blocking the test's own event loop."""
        future = asyncio.run_coroutine_threadsafe(self.listener.wait_for(count, timeout), self._loop)
        return await asyncio.wrap_future(future)


def assert_verdict(response: Any, expected: str, *, request: Any = None, injected: Any = None) -> Verdict:
    """Assert what CometChat would do with a handler's answer to a before_message delivery; returns the Verdict.

    `response` is a test client's response (requests, httpx, Starlette/FastAPI, Flask, Django: `.status_code`
    and `.content`/`.data`; aiohttp: `.status` and `.body`, or a read ClientResponse) or a `(status, body)`
    tuple. `expected` is pass, inject, drop or invalid. `request`, the delivery's body, names the webhook an
    injected answer is filed under; `injected` also asserts the injected object.
    """
    __tracebackhide__ = True
    from comethook import judge

    if expected not in VERDICTS:
        raise ValueError(f"expected must be one of {', '.join(VERDICTS)}, not {expected!r}")
    status, body = _status_and_body(response)
    verdict = judge(request, status=status, answer=body)
    if verdict.kind != expected:
        why = verdict.reason or _WHY.get(verdict.kind, "")
        raise AssertionError(
            f"CometChat's verdict on this answer is {verdict.kind.upper()}, not {expected.upper()}.\n"
            f"  status: {status}\n  answer: {_shown(body)}\n  why:    {why}\n  to {expected}: {_HOW[expected]}"
        )
    if verdict.kind == "inject" and verdict.reason:  # {"status": "ok"}: passes as asked, but is almost never meant
        warnings.warn(f"{_shown(body)}: {verdict.reason}", UserWarning, stacklevel=2)
    if injected is not None:
        metadata = verdict.metadata or {}
        got = metadata.get("@injected", {}).get("webhooks", {}).get(verdict.webhook_id)
        if got != injected:
            raise AssertionError(f"CometChat would inject {_shown(got)}, not {_shown(injected)}.")
    return verdict


def _status_and_body(response: Any) -> tuple[int | None, bytes]:
    __tracebackhide__ = True
    if isinstance(response, tuple) and len(response) == 2:
        status, body = response
    else:
        status = getattr(response, "status_code", None) or getattr(response, "status", None)
        body = next(
            (
                value
                for name in ("content", "data", "body", "_body")
                if isinstance(value := getattr(response, name, None), (bytes, str))
            ),
            None,
        )
        if body is None and callable(getattr(response, "get_data", None)):
            body = response.get_data()
        if body is None:
            raise TypeError(
                f"assert_verdict cannot read the body of a {type(response).__name__}: "
                "pass (status, body), e.g. (response.status, await response.read())."
            )
    if not isinstance(status, int):
        raise TypeError(f"assert_verdict found no HTTP status on {type(response).__name__}: pass (status, body).")
    return status, body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _shown(value: Any, limit: int = 300) -> str:
    """A value for a failure message: JSON in ASCII (no terminal control can get through), cut when long."""
    if isinstance(value, bytes):
        try:
            value = json.loads(value)
        except ValueError:
            text = repr(value.decode("utf-8", errors="replace")) if value else "(empty body)"
            return text if len(text) <= limit else text[:limit] + "…"
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= limit else text[:limit] + "…"

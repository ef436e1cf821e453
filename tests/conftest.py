"""Shared fixtures: a clean terminal environment, a temp COMETHOOK_HOME, the CLI runner, loopback targets."""

from __future__ import annotations

import os

# Typer reads these once, at the first help/error rendering: set before anything imports typer.rich_utils.
os.environ["_TYPER_FORCE_DISABLE_TERMINAL"] = "1"

import asyncio
import contextlib
import fcntl
import json
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from typer.testing import CliRunner

from comethook_cli.cli import app
from comethook_cli.cometchat.payloads import BuildOptions, build, find_template
from comethook_cli.cometchat.rules import Responder
from comethook_cli.engine.forwarder import Forwarder
from comethook_cli.engine.history.files import default_path
from comethook_cli.engine.history.writer import HistoryWriter
from comethook_cli.engine.listener import Listener, ListenerConfig
from comethook_cli.models import Exchange, Rejection
from tests.hostile import HostileServer


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject's addopts) starts two workers a core: most of a test's time is spent waiting on loopback
    sockets and subprocesses, not computing, so two a core is what brings the suite down (measured in
    CONTRIBUTING.md's "The test suite")."""
    explicit = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")  # xdist's own override, which this hook replaces
    if explicit and explicit.isdigit():
        return int(explicit)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 2 * usable  # the cores this process may use (a CI container's share), not the host's


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Under pytest-xdist, a test marked `serial` runs alone: every other test holds a shared lock on one file for
    the run, a serial one an exclusive lock. The serial ones measure what load distorts (memory peaks, file sizes under
    a flood, the share answered under attack), so the other workers wait while one runs."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:  # one process: nothing runs beside the test anyway
        yield
        return
    mode = fcntl.LOCK_EX if item.get_closest_marker("serial") else fcntl.LOCK_SH
    with open(Path(tempfile.gettempdir()) / f"comethook-tests-{run}.lock", "a") as lock:
        fcntl.flock(lock, mode)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def plain_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "FORCE_COLOR",
        "PY_COLORS",
        "GITHUB_ACTIONS",
        "TTY_COMPATIBLE",
        "TTY_INTERACTIVE",
        "COMETHOOK_BASIC_AUTH",
        "NGROK_AUTHTOKEN",
        "COMETHOOK_NGROK_PATH",
        "PYNGROK_NGROK_PATH",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("COMETHOOK_HOME", str(tmp_path / "home"))
    # Never let a test touch the user's real ngrok config.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


class Cli:
    """The real CLI through CliRunner, callable from sync and async tests."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Any:
        return self.runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)

    async def run(self, *args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Any:
        return await asyncio.to_thread(self, *args, input=input, env=env)


@pytest.fixture
def cli() -> Cli:
    return Cli()


def ndjson(text: str) -> list[dict[str, Any]]:
    """Parse NDJSON output, failing on any line that is not a JSON object."""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all(isinstance(line, dict) for line in lines)
    return lines


def delivery(trigger: str = "before_message", text: str = "hello", **options: Any) -> bytes:
    """A catalog delivery as the bytes CometChat posts; `options` are further BuildOptions fields (sender=...)."""
    return json.dumps(build(find_template(trigger), BuildOptions(text=text, **options))).encode()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses every connection for the whole test.

    Picking a free port and releasing it races with anything else on the machine that binds port 0; this
    socket keeps the port bound (so nobody can take it) but never calls listen(), so connections are refused.
    """
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


Handler = Callable[[web.Request], Any]


@pytest.fixture
async def target(aiohttp_server: Any) -> Callable[..., Any]:
    """Start a real aiohttp server on loopback with one handler; returns (url, received list)."""

    async def start(handler: Handler) -> tuple[str, list[tuple[web.Request, bytes]]]:
        received: list[tuple[web.Request, bytes]] = []

        async def record(request: web.Request) -> web.StreamResponse:
            received.append((request, await request.read()))
            result = handler(request)
            if asyncio.iscoroutine(result):
                result = await result
            return result  # type: ignore[no-any-return]

        application = web.Application()
        application.router.add_route("*", "/{tail:.*}", record)
        server = await aiohttp_server(application, host="127.0.0.1")
        return f"http://127.0.0.1:{server.port}/hook", received

    return start


#: The last line of `listen`'s start-up banner (cli/listen.py): the whole banner has been read once it came.
BANNER_END = "Press Ctrl-C to stop."


class ListenProcess:
    """`comethook listen` as a real subprocess; reads its output line by line.

    Every read goes through the same buffered file objects (`proc.stdout`, `proc.stderr`). Reading a line
    can pull later lines into their buffers, and `communicate()` reads the raw pipes underneath, so mixing
    the two loses those lines (the banner test failed 2 times in 7 that way).
    """

    def __init__(self, *args: str, json_out: bool = True) -> None:
        import subprocess
        import sys

        self.json_out = json_out
        command = [sys.executable, "-m", "comethook_cli", "listen", "--port", "0", *args]
        if json_out:
            command.append("--json")
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        #: Human mode: the stderr lines read while waiting for the start, up to the end of the banner.
        self.lines: list[str] = []
        self.url = self._wait_ready()

    def _wait_ready(self) -> str:
        import re

        stream = self.proc.stdout if self.json_out else self.proc.stderr
        assert stream is not None
        url: str | None = None
        for line in stream:
            if self.json_out:
                document = json.loads(line)
                if document["type"] == "ready":
                    self.ready = document
                    return str(document["local_url"])
            else:
                self.lines.append(line)
                found = re.search(r"listening on (http://\S+)", line)
                url = found.group(1) if found else url
                if url is not None and line.strip() == BANNER_END:
                    return url
        raise AssertionError(f"listener never became ready: {self.proc.stderr.read() if self.proc.stderr else ''}")

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def finish(self, timeout: float = 15) -> tuple[int, str, str]:
        """Wait for the exit; return the exit code and what stdout and stderr said that was not read yet."""
        import subprocess
        import threading

        drained: dict[str, str] = {}

        def drain(name: str, stream: Any) -> None:
            drained[name] = stream.read() if stream is not None and not stream.closed else ""

        # Both streams at once, each in its own thread, so that neither pipe can fill up and stall the process.
        readers = [
            threading.Thread(target=drain, args=item, daemon=True)
            for item in (("out", self.proc.stdout), ("err", self.proc.stderr))
        ]
        for reader in readers:
            reader.start()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # which ends the reads too
            raise
        for reader in readers:
            reader.join(timeout)
        assert set(drained) == {"out", "err"}, "the listener exited but its output stayed open"
        return self.proc.returncode, drained["out"], drained["err"]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def listen_process() -> Any:
    started: list[ListenProcess] = []

    def start(*args: str, json_out: bool = True) -> ListenProcess:
        process = ListenProcess(*args, json_out=json_out)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        for stream in (process.proc.stdout, process.proc.stderr):
            if stream is not None:
                stream.close()


def forward_config(
    targets: tuple[str, ...], routes: tuple[str, ...] = (), timeout: float = 5, fallback: str = "error", **more: Any
) -> Any:
    """A ForwardConfig from what a test writes as `listen` flags, parsed as the CLI parses them (engine.values)."""
    from comethook_cli.engine import values
    from comethook_cli.engine.config import ForwardConfig

    return ForwardConfig(
        values.targets(targets), values.routes(routes, lambda warning: None), timeout, values.fallback(fallback), **more
    )


def post_json(url: str, body: bytes, headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, bytes]:
    """A blocking POST (urllib) for tests that drive a subprocess."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def fake_ngrok(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An executable stand-in agent at tmp_path/bin/ngrok; returns a helper to pick its mode."""
    import stat
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    agent = bin_dir / "ngrok"
    stand_in = Path(__file__).resolve().parent / "fake_ngrok.py"
    agent.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{stand_in}" "$@"\n')
    agent.chmod(agent.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "fake_ngrok.log"
    monkeypatch.setenv("FAKE_NGROK_LOG", str(log))
    monkeypatch.setenv("FAKE_NGROK_MODE", "ok")

    class Agent:
        path = agent
        log_path = log

        def mode(self, mode: str) -> None:
            monkeypatch.setenv("FAKE_NGROK_MODE", mode)

        def runs(self) -> list[dict[str, Any]]:
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

        def stop_forwarding(self) -> None:
            """From now on the public URLs answer ERR_NGROK_3200 instead of reaching the listener."""
            pause.touch()

        def resume_forwarding(self) -> None:
            pause.unlink(missing_ok=True)

    pause = tmp_path / "fake_ngrok.pause"
    monkeypatch.setenv("FAKE_NGROK_PAUSE_FILE", str(pause))
    return Agent()


def pid_alive(pid: int) -> bool:
    """Whether a process still runs (zombies count as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat_file:
            return stat_file.read().split()[2] != "Z"
    except OSError:
        return False


def hub_for(
    on_exchange: Callable[[Any], None] | None = None,
    on_rejected: Callable[[Any], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    history: Any = None,
) -> Any:
    """A real event hub (history first, then the callbacks) for tests that run a Listener directly."""
    from comethook_cli.engine.hub import Hub
    from comethook_cli.models import RecordHandler

    hub = Hub(history, on_warning)

    class Route(RecordHandler):
        def on_exchange(self, exchange: Exchange) -> None:
            if on_exchange is not None:
                on_exchange(exchange)

        def on_rejection(self, rejection: Rejection) -> None:
            if on_rejected is not None:
                on_rejected(rejection)

    hub.subscribe(Route())
    return hub


class ThreadedListener:
    """A real listener on its own event loop in a thread, for synchronous (hypothesis) tests; `show` sees each exchange."""

    def __init__(self, db: Path, show: Callable[[Any], None] | None = None) -> None:
        import threading

        from comethook_cli.cometchat.rules import Responder
        from comethook_cli.engine.config import ListenerConfig
        from comethook_cli.engine.history.writer import HistoryWriter
        from comethook_cli.engine.listener import Listener

        self.exchanges: list[Any] = []
        self.rejections: list[Any] = []
        self.warnings: list[str] = []
        self.db = db
        self.loop = asyncio.new_event_loop()
        self.writer = HistoryWriter(db)

        def on_exchange(exchange: Any) -> None:
            self.exchanges.append(exchange)
            if show is not None:
                show(exchange)

        self.listener = Listener(
            ListenerConfig(port=0, max_body=64 * 1024), Responder(),
            hub_for(on_exchange, self.rejections.append, self.warnings.append, self.writer),
        )  # fmt: skip
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.listener.start(), self.loop).result(10)
        self.port = self.listener.port

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.listener.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.writer.close()


@pytest.fixture
def without_speedups(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """orjson and uvloop off (COMETHOOK_NO_SPEEDUPS=1), as where they are not installed."""
    from comethook_cli import speedups

    monkeypatch.setenv("COMETHOOK_NO_SPEEDUPS", "1")
    speedups._orjson.cache_clear()
    speedups._loop_factory.cache_clear()
    yield
    monkeypatch.delenv("COMETHOOK_NO_SPEEDUPS")
    speedups._orjson.cache_clear()
    speedups._loop_factory.cache_clear()


# A listener in the test's own event loop, and what tests post to it (several test files use these).

AFTER = b'{"trigger": "after_message", "data": {"data": {"text": "hello there"}}}'
MIB = 1024 * 1024


class Running:
    def __init__(self, listener: Listener, forwarder: Forwarder | None) -> None:
        self.listener, self.forwarder = listener, forwarder
        self.exchanges: list[Exchange] = []
        self.rejections: list[Rejection] = []
        self.warnings: list[str] = []

    @property
    def url(self) -> str:
        return self.listener.local_url + "/webhook"


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Any]]:
    """A listener in this event loop that stores to the default history (so the CLI reads what it stored)."""
    started: list[tuple[Running, HistoryWriter]] = []

    async def _start(forward: dict[str, Any] | None = None, **config: Any) -> Running:
        writer = HistoryWriter(default_path())
        holder: list[Running] = []
        forwarder = None
        if forward is not None:
            forwarder = Forwarder(
                forward.pop("primary"), forward.pop("copies", ()), {}, forward.pop("timeout", 5), forward.pop("fallback", "error"),
                lambda w: holder[0].warnings.append(w), Responder(), **forward,
            )  # fmt: skip
        hub = hub_for(
            lambda e: holder[0].exchanges.append(e), lambda r: holder[0].rejections.append(r),
            lambda w: holder[0].warnings.append(w), writer,
        )  # fmt: skip
        listener = Listener(ListenerConfig(port=0, **config), forwarder or Responder(), hub)
        holder.append(Running(listener, forwarder))
        await listener.start()
        started.append((holder[0], writer))
        return holder[0]

    yield _start
    for running, writer in started:
        await running.listener.stop()
        if running.forwarder is not None:
            await running.forwarder.close()
        writer.close()


async def post(
    url: str, body: bytes = AFTER, headers: dict[str, str] | None = None, timeout: float = 20
) -> tuple[int, bytes, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)) as response,
    ):
        return response.status, await response.read(), response.headers


async def eventually(condition: Callable[[], bool], within: float = 10) -> None:
    """Wait (bounded, generously) until the condition holds."""
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
async def hostile() -> AsyncIterator[HostileServer]:
    """A hostile HTTP server on loopback (tests/hostile.py): the request path picks how it misbehaves."""
    server = await HostileServer().start()
    yield server
    await server.stop()

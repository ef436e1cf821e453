"""Shared fixtures: a clean terminal environment, a temp COMETHOOK_HOME, the CLI runner, loopback targets."""

from __future__ import annotations

import os

# Typer reads these once, at the first help/error rendering: set before anything imports typer.rich_utils.
os.environ["_TYPER_FORCE_DISABLE_TERMINAL"] = "1"

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from typer.testing import CliRunner

from comethook_cli.cli import app


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

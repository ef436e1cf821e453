"""`comethook mcp`, the command: without the SDK it says how to install it (exit 2); with it, stdout carries the
protocol and nothing else, and the server ends cleanly when its client closes stdin. (The tools: tests/mcp/.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_mcp(args: list[str], stdin: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "comethook_cli", "mcp", *args], input=stdin, capture_output=True, text=True,
        env={**os.environ, **env}, timeout=timeout,
    )  # fmt: skip


def test_an_sdk_too_old_says_to_upgrade_and_exits_2(tmp_path: Path) -> None:
    # An mcp 1.x ahead of the installed SDK (its package and its metadata): it has no mcp.server.mcpserver.
    shadow = tmp_path / "shadow"
    (shadow / "mcp").mkdir(parents=True)
    (shadow / "mcp" / "__init__.py").write_text("")
    (shadow / "mcp-1.9.0.dist-info").mkdir()
    (shadow / "mcp-1.9.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: mcp\nVersion: 1.9.0\n")
    result = run_mcp([], "", {"PYTHONPATH": str(shadow)})
    assert result.returncode == 2
    assert result.stdout == ""
    said = " ".join(result.stderr.split())
    assert "needs the MCP SDK 2.3 or later; mcp 1.9.0 is installed" in said and "Upgrade it: pip install 'comethook[mcp]'" in said
    assert "Traceback" not in result.stderr


def test_without_the_sdk_the_error_says_how_to_install_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    from comethook_cli.cli.mcp import missing_sdk

    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)  # no environment here lacks the test extra's SDK
    message, hint = missing_sdk()
    assert message == "`comethook mcp` needs the MCP SDK, which is not installed."
    assert hint.startswith("Install the extra: pip install 'comethook[mcp]'")


def test_it_answers_initialize_on_stdout_only_and_ends_when_stdin_closes(tmp_path: Path) -> None:
    initialize = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}},
    }  # fmt: skip
    result = run_mcp(["--read-only"], json.dumps(initialize) + "\n", {"COMETHOOK_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]  # every stdout line is a protocol message
    assert answers[0]["id"] == 1 and answers[0]["result"]["serverInfo"]["name"] == "comethook"
    assert "tools" in answers[0]["result"]["capabilities"] and "resources" in answers[0]["result"]["capabilities"]
    assert "Traceback" not in result.stderr

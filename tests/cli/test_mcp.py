"""`comethook mcp`, the command: without the SDK it says how to install it (exit 2); with it, stdout carries the
protocol and nothing else, and the server ends cleanly when its client closes stdin. (The tools: tests/mcp/.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run_mcp(args: list[str], stdin: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "comethook_cli", "mcp", *args], input=stdin, capture_output=True, text=True,
        env={**os.environ, **env}, timeout=timeout,
    )  # fmt: skip


def test_without_the_sdk_it_says_how_to_install_the_extra_and_exits_2(tmp_path: Path) -> None:
    # A package named mcp that fails to import, ahead of the installed SDK: as if the extra were not installed.
    fake = tmp_path / "shadow" / "mcp"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named mcp')\n")
    result = run_mcp([], "", {"PYTHONPATH": str(tmp_path / "shadow")})
    assert result.returncode == 2
    assert result.stdout == ""
    assert "`comethook mcp` needs the MCP SDK" in result.stderr and "pip install 'comethook[mcp]'" in result.stderr
    assert "Traceback" not in result.stderr


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

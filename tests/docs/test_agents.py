"""docs/guides/agents.md: its mcp.json snippets are valid JSON that start `comethook mcp`, and its tool table and
--read-only list are the server's own tools."""

from __future__ import annotations

import json
import re
from pathlib import Path

from comethook_cli.mcp.server import READ_ONLY

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "agents.md"


def test_every_json_snippet_parses_and_each_config_starts_comethook_mcp() -> None:
    blocks = re.findall(r"```json\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    documents = [json.loads(block) for block in blocks]
    configs = [d for d in documents if "mcpServers" in d or "servers" in d]
    assert len(configs) == 3  # Claude Code, Cursor, VS Code
    for config in configs:
        server = (config.get("mcpServers") or config["servers"])["comethook"]
        assert server["command"] == "comethook" and server["args"] == ["mcp"]


def test_the_tool_table_and_the_read_only_list_are_the_server_s() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)\(.*\| (yes|no) \|$", text, re.M)
    assert {name for name, sends in rows if sends == "no"} == set(READ_ONLY)
    assert {name for name, _ in rows} == set(READ_ONLY) | {"send", "check", "replay", "trigger"}
    listed = text.split("**`--read-only`**", 1)[1].split("\n- ", 1)[0]
    assert set(re.findall(r"`(\w+)`", listed)) == set(READ_ONLY)

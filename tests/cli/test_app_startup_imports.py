"""What start-up imports: the root's --help, `comethook` alone, a mistyped command and the completion of command names
import no command's declaration (its options, the config dataclasses, the payload catalog, the engine); a command
imports its own declaration and no other's. And the table the root lists commands from matches the declarations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from comethook_cli import cli
from comethook_cli.cli.app import shown_help

PACKAGE = Path(cli.__file__).parent
#: What only a command needs: its declaration module, the option groups, the config sections, the catalog, the engine.
COMMAND_ONLY = (
    *(f"{cli.__name__}.{name}" for name in cli.COMMANDS), "comethook_cli.cli.options", "comethook_cli.engine", "comethook_cli.cometchat",
)  # fmt: skip
#: The modules of comethook_cli/cli/ that are no command: what every command shares.
SHARED = ("__init__", "announce", "app", "completion", "options", "project", "projectfile")
HEAVY = ("asyncio", "aiohttp", "orjson", "uvloop", "sqlite3", "pyngrok")


def imported(args: list[str], env: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """Run the console script's main() with `args` in a fresh interpreter: its stdout and the modules it imported."""
    code = (
        "import json, sys\n"
        f"sys.argv = ['comethook', *{args!r}]\n"
        "from comethook_cli.__main__ import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('\\n' + json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    return result.stdout, json.loads(result.stderr.splitlines()[-1])


def command_only(modules: list[str]) -> list[str]:
    return [m for m in modules if m.startswith(COMMAND_ONLY) or m in HEAVY]


@pytest.mark.parametrize("args", [["--help"], ["-h"], [], ["sendd"], ["--bogus"]])
def test_the_root_imports_no_command(args: list[str]) -> None:
    out, modules = imported(args)
    assert command_only(modules) == []
    if args[:1] in (["--help"], ["-h"], []):
        assert "Commands" in out and "listen" in out and "trigger" in out  # the listing itself is all there


def test_completing_a_command_name_imports_no_command() -> None:
    env = {"_COMETHOOK_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "comethook s"}
    out, modules = imported([], env={**os.environ, **env})
    assert '"send":"Fire a realistic CometChat delivery at an..."' in out
    assert command_only(modules) == []


def test_a_command_imports_its_own_declaration_only() -> None:
    out, modules = imported(["trigger", "member", "add", "--help"])
    assert "--scope" in out
    commands = [f"comethook_cli.cli.{name}" for name in cli.COMMANDS]
    assert [m for m in modules if m in commands] == ["comethook_cli.cli.trigger"]
    assert [m for m in HEAVY if m in modules] == []


def test_mcp_help_imports_no_sdk() -> None:
    # `comethook mcp --help` works without the optional extra, and pays for none of it when it is installed.
    out, modules = imported(["mcp", "--help"])
    assert "--read-only" in out
    # (pydantic may be imported: Typer loads it for its own parameter adapters when it is installed.)
    assert [m for m in modules if m.split(".")[0] in ("mcp", "anyio") or m.startswith("comethook_cli.mcp")] == []


def test_the_table_lists_every_declared_command_with_its_own_help() -> None:
    declared = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in SHARED)
    assert sorted(cli.COMMANDS) == declared
    root = typer.main.get_command(cli.app)
    for name, summary in cli.COMMANDS.items():
        command = root.get_command(typer.Context(root), name)  # type: ignore[attr-defined]
        assert command is not None and command.name == name
        assert shown_help((command.help or "").split("\n\n")[0]) == summary, name

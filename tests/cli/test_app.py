"""The CLI contract: help for every command, version, cheap start-up (the README's checks: tests/docs/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import typer

from comethook_cli import __version__
from comethook_cli.cli import app


def all_commands() -> list[list[str]]:
    """Every command path, e.g. ["send"], ["payloads", "list"]."""
    found: list[list[str]] = []
    group = typer.main.get_group(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        sub = getattr(command, "commands", None)
        if sub:
            found.extend([name, child] for child in sub)
        else:
            found.append([name])
    return found


def test_every_command_has_help(cli: Any) -> None:
    commands = all_commands()
    assert ["send"] in commands and ["payloads", "list"] in commands
    for path in commands:
        result = cli(*path, "--help")
        assert result.exit_code == 0, path
        assert "Usage:" in result.stdout


def test_version(cli: Any) -> None:
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"comethook {__version__}"


def test_no_args_shows_help(cli: Any) -> None:
    result = cli()
    assert "Usage:" in result.output and "send" in result.output


def test_importing_the_cli_leaves_heavy_modules_out() -> None:
    heavy = "('aiohttp', 'pyngrok', 'rich.console', 'sqlite3', 'orjson', 'uvloop')"
    code = f"import sys, comethook_cli.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_help_pays_for_no_speedup_either() -> None:
    code = "import sys; from comethook_cli.cli import main; sys.argv = ['comethook', 'listen', '--help']\ntry:\n    main()\nexcept SystemExit:\n    pass\nprint(sorted(m for m in ('orjson', 'uvloop', 'aiohttp') if m in sys.modules), file=sys.stderr)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage:" in result.stdout and result.stderr.strip().splitlines()[-1] == "[]"


def test_python_dash_m_runs(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "comethook_cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"comethook {__version__}"

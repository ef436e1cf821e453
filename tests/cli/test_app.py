"""The CLI contract: help for every command, version, cheap start-up (the README's checks: tests/docs/)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from comethook_cli import __version__
from comethook_cli.cli import app
from tests.cli.test_history import stored  # noqa: F401 - a fixture: three stored exchanges


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


def closed_reader_run(*args: str, cwd: Path, reader: bool = False) -> subprocess.CompletedProcess[str]:
    """Run comethook with a stdout pipe whose reader has already gone (`| head -1` that has read its line); with
    `reader`, into /dev/null instead."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE, whatever the buffer holds
    if reader:
        os.close(write_end)
        write_end = os.open(os.devnull, os.O_WRONLY)
    try:
        return subprocess.run(
            [sys.executable, "-m", "comethook_cli", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            timeout=60,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [
        ("payloads", "list"),
        ("payloads", "show", "message_sent"),
        ("history", "list"),
        ("history", "export"),
        ("config", "show", "--json"),
        ("config", "show"),
        ("--help",),
    ],
    ids=" ".join,
)
@pytest.mark.usefixtures("stored")
def test_a_reader_that_closes_early_ends_every_command_quietly_with_0(tmp_path: Path, args: tuple[str, ...]) -> None:
    """As `send --json | head -1` does: exit 0, and not a word on stderr beyond what a reader that stays would see
    (before: exit 1 with nothing said)."""
    result = closed_reader_run(*args, cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, closed_reader_run(*args, cwd=tmp_path, reader=True).stderr)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("send", "before_message", "--to", "http://127.0.0.1:{port}"), 4),  # an engine outcome
        (("send", "before_mesage", "--to", "http://127.0.0.1:{port}"), 2),  # a UsageError with "did you mean"
        (("send", "--bogus"), 2),  # click's own usage error
        (("send", "before_message", "--timeout", "soon"), 2),  # click's bad value
        (("history", "show", "zzz"), 1),  # no history here
        (("check", "--to", "http://127.0.0.1:{port}"), 4),
    ],
)
def test_with_json_every_error_is_also_one_error_record_on_stdout(
    cli: Any, closed_port: int, args: tuple[str, ...], code: int
) -> None:
    argv = [arg.format(port=closed_port) for arg in args]
    result = cli(*argv, "--json")
    assert result.exit_code == code
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    errors = [record for record in records if record["type"] == "error"]
    assert errors == [records[-1]]  # one, and the last line
    assert errors[0]["exit_code"] == code and errors[0]["hint"]
    assert f"Error: {errors[0]['message']}" in " ".join(result.stderr.split())  # the human line says the same
    assert f"Hint: {errors[0]['hint']}"[:40] in " ".join(result.stderr.split())
    plain = cli(*argv)  # without --json, stdout carries no error record
    assert plain.exit_code == code and '"type":"error"' not in plain.stdout


def test_listen_s_one_question_has_a_yes(cli: Any) -> None:
    shown = " ".join(cli("listen", "--help").stdout.split())
    assert "--install-ngrok, --yes, -y" in shown or "-y, --install-ngrok, --yes" in shown

"""The generated parts of the reference pages, for cog: `cog -r docs/**/*.md` rewrites them, `cog --check` fails
when a page and the code disagree (tests/docs/test_reference.py runs it, so CI does too).

Each function returns Markdown. The help is the real `--help`, rendered as a user's 80-column terminal shows it
without colour, by the real Typer app (CliRunner gives the same bytes as a subprocess, faster).
"""

from __future__ import annotations

import json
from typing import Any

import typer
from typer.testing import CliRunner

HELP_ENV = {"COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb", "COMETHOOK_HOME": "/nonexistent/comethook-docs"}


def _app() -> Any:
    from comethook_cli.cli import app

    return app


def commands(top: str | None = None) -> list[list[str]]:
    """Every command path (["send"], ["payloads", "list"], ...), or those under one top-level command."""
    found: list[list[str]] = []
    group = typer.main.get_group(_app())
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        if top is not None and name != top:
            continue
        sub = getattr(command, "commands", None)
        found.append([name])
        if sub:
            found.extend([name, child] for child in sub)
    return found


def help_text(path: list[str]) -> str:
    """`comethook PATH --help` at 80 columns, plain."""
    result = CliRunner().invoke(_app(), [*path, "--help"], env=HELP_ENV, prog_name="comethook")
    if result.exit_code != 0:
        raise RuntimeError(f"comethook {' '.join(path)} --help exited {result.exit_code}: {result.output}")
    return "\n".join(line.rstrip() for line in result.stdout.strip("\n").splitlines())


def help_sections(top: str) -> str:
    """The help of a command, then of each of its subcommands under a heading of its own, one fenced block each."""
    parts = []
    for path in commands(top):
        title = f"### `comethook {' '.join(path)}`\n\n" if len(path) > 1 else ""  # the page's own heading is the top's
        parts.append(f"{title}```text\n{help_text(path)}\n```\n")
    return "\n".join(parts)


def ndjson_records() -> str:
    """Every record type of the wire format (comethook_cli/outputs/wire.py): its type, what it is, its fields."""
    from comethook_cli.outputs import wire

    def subclasses(cls: type) -> list[type]:
        out = []
        for sub in cls.__subclasses__():
            out.append(sub)
            out.extend(subclasses(sub))
        return out

    rows = ["| `type` | record | what it is | fields |", "|---|---|---|---|"]
    for cls in subclasses(wire.Record):
        doc = (cls.__doc__ or "").strip().splitlines()[0].replace("|", "\\|")
        fields = (cls.to_json.__doc__ or "").strip().splitlines()[0].replace("|", "\\|")  # type: ignore[attr-defined]
        rows.append(f"| `{cls.type}` | `{cls.__name__}` | {doc} | {fields} |")  # type: ignore[attr-defined]
    return "\n".join(rows)


def config_keys() -> str:
    """Every comethook.toml key, by section, with its default: `comethook --no-config config show --json`."""
    result = CliRunner().invoke(_app(), ["--no-config", "config", "show", "--json"], env=HELP_ENV, prog_name="comethook")
    if result.exit_code != 0:
        raise RuntimeError(f"config show exited {result.exit_code}: {result.output}")
    rows = ["| section | key | default |", "|---|---|---|"]
    for line in result.stdout.splitlines():
        setting = json.loads(line)
        value = "none" if setting["value"] is None else f"`{json.dumps(setting['value'])}`"
        rows.append(f"| `[{setting['section']}]` | `{setting['key']}` | {value} |")
    return "\n".join(rows)

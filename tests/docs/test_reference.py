"""The reference is generated from the code (cog, docs/tools/reference.py) and covers every command and option."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import typer
from cogapp import Cog

from comethook_cli.cli import app

ROOT = Path(__file__).resolve().parents[2]
GENERATED = sorted(path for path in (ROOT / "docs").rglob("*.md") if "[[[cog" in path.read_text(encoding="utf-8"))
#: The page of each top-level command; the commands without one of their own share the project-file page.
PAGES = {"init": "config", "config": "config", "trust": "config"}


def reference_page(top: str) -> Path:
    return ROOT / "docs" / "reference" / "cli" / f"{PAGES.get(top, top)}.md"


def test_the_generated_pages_match_the_code(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`cog --check`: a command's help, a wire record or a comethook.toml key changed without its page."""
    assert len(GENERATED) >= 12, GENERATED  # every command page, the NDJSON records and the keys
    monkeypatch.chdir(ROOT)
    status = Cog().main(["cog", "--check", "-I", "docs/tools", *map(str, GENERATED)])
    assert status == 0, f"{capsys.readouterr().out}\nregenerate: cog -r -I docs/tools docs/reference/*.md docs/reference/cli/*.md"


def commands() -> list[tuple[list[str], click.Command]]:
    found: list[tuple[list[str], click.Command]] = []
    group = typer.main.get_group(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        found.append(([name], command))
        for child, sub in getattr(command, "commands", {}).items():
            found.append(([name, child], sub))
    return found


def test_every_command_and_every_option_appears_in_the_reference() -> None:
    found = commands()
    assert (["send"], found[[p for p, _ in found].index(["send"])][1]) in found and len(found) > 30
    missing = []
    for path, command in found:
        page = reference_page(path[0])
        text = page.read_text(encoding="utf-8") if page.exists() else ""
        if f"comethook {' '.join(path)}" not in text:
            missing.append(f"comethook {' '.join(path)} (in {page.relative_to(ROOT)})")
        for param in command.params:
            for name in [*param.opts, *param.secondary_opts] if isinstance(param, click.Option) else []:
                if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text):
                    missing.append(f"comethook {' '.join(path)} {name} (in {page.relative_to(ROOT)})")
    assert not missing, "not in the reference:\n" + "\n".join(missing)


def test_every_command_page_is_in_the_site_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for path, _ in commands():
        assert f"reference/cli/{PAGES.get(path[0], path[0])}.md" in nav, path

"""The README's own checks: its Quick start, a section for every command, and its examples run as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_app import all_commands

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_command_has_a_readme_section() -> None:
    readme = README.read_text(encoding="utf-8")
    for path in all_commands():
        assert f"comethook {' '.join(path)}" in readme, f"README lacks `comethook {' '.join(path)}`"


def test_readme_starts_with_a_quick_start_of_two_commands() -> None:
    readme = README.read_text(encoding="utf-8")
    head = readme.split("\n## ", 2)[1]
    assert head.lower().startswith("quick start")
    assert "pip install . && comethook listen" in head
    assert "pip install '.[test]' && python -m pytest" in head


def test_the_readme_rules_example_is_a_valid_rules_file(tmp_path: Path) -> None:
    from comethook_cli.cli.options import load_rules

    readme = README.read_text(encoding="utf-8")
    example = readme.split("Rules file:", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    path = tmp_path / "rules.json"
    path.write_text(example)
    rules = load_rules(str(path))
    assert [r.action.label for r in rules] == ["drop", "inject", "body", "pass"]
    assert rules[0].text is not None and rules[0].text.search("buy SPAM now")


def test_the_readme_python_api_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    readme = README.read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    example = section.split("```python", 1)[1].split("```", 1)[0]
    exec(compile(example, "README.md", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    assert "drop" in out and "1 delivery received" in out

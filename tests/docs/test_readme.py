"""The README is a front door: a Quick start of the project's two commands, short, its links and pictures there.

Its wording is not pinned here; its examples run in test_examples.py, its facts live in docs/.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def test_readme_starts_with_a_quick_start_of_two_commands() -> None:
    readme = README.read_text(encoding="utf-8")
    head = readme.split("\n## ", 2)[1]
    assert head.lower().startswith("quick start")
    assert "pip install . && comethook listen" in head
    assert "pip install '.[test]' && python -m pytest" in head


def test_the_readme_stays_a_front_door() -> None:
    assert README.stat().st_size <= 20 * 1024


def test_every_relative_link_and_picture_of_the_readme_exists() -> None:
    readme = README.read_text(encoding="utf-8")
    targets = [t for t in re.findall(r"\]\(([^)\s]+)\)", readme) if not re.match(r"[a-z]+:", t)]
    assert len(targets) > 10
    missing = [t for t in targets if not (ROOT / t.split("#", 1)[0]).exists()]
    assert not missing, missing

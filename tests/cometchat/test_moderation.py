"""Moderation rules (cometchat/moderation.py): words match whole and in any case, patterns anywhere, ids are named; the
rules of a project file have a total compile budget. (What the emulator does with them: tests/engine/emulator/test_moderation.py.)"""

from __future__ import annotations

import pytest

from comethook_cli.cometchat.moderation import entries_of, first_match, parse_moderation
from comethook_cli.errors import UsageError

RULES = parse_moderation(entries_of("# the app's rules\ndarn\nspam-filter: /sp[a4]m+/\n"), "test")


def test_words_match_whole_and_any_case_patterns_anywhere_and_ids_are_named() -> None:
    assert [rule.id for rule in RULES] == ["rule-1", "spam-filter"]
    assert first_match(RULES, "oh DARN it") is RULES[0] and first_match(RULES, "darned") is None
    assert first_match(RULES, "buy sp4mmm now") is RULES[1]
    assert first_match(RULES, "hello") is None and first_match(RULES, None) is None
    for bad, said in ((["/a(?=b)/"], "lookahead"), ("darn", "must be a list"), ([""], "a word or /pattern/"),
                      (["x: a", "x: b"], "given twice")):  # fmt: skip
        with pytest.raises(UsageError, match=said):
            parse_moderation(bad, "test")


def test_rules_that_compile_too_big_together_are_a_usage_error() -> None:
    """RE2 keeps matching linear, but each rule's program costs memory: a project file's rules have a total budget."""
    assert len(parse_moderation([f"word{n}" for n in range(1000)], "ok")) == 1000  # a large real list fits
    with pytest.raises(UsageError, match="budget"):
        parse_moderation([f"/\\pL{{100}}x{n}/" for n in range(200)], "[emulate] moderation")
